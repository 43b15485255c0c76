//! Throughput bench of the cross-encoder, timed like `rerank score`: tokenization plus
//! `predict_encoded`, in pairs per second on stderr (wall clock, and the process's CPU time
//! — user + system of all threads — which other load on the machine inflates less).
//!
//! ```text
//! cargo build --release -p rerank-engine --example score_bench
//! ./target/release/examples/score_bench MODEL_DIR PAIRS.jsonl [BATCH_SIZE=32] [REPEATS=1] [PRECISION=f32|bf16|int8]
//! ```
//!
//! `PAIRS.jsonl`: one `{"query": ..., "document": ...}` per line. Stdout gets one line per pair
//! (`index<TAB>score<TAB>logits`) from the last repeat, so two builds can be diffed.
//!
//! A 6th argument `strip-shared-prefix` measures what reusing the keys and values of a prompt
//! prefix shared by every pair could at best save (issue 11 item 6): the longest common prefix
//! of all encoded pairs' ids (Qwen3-Reranker's system prompt, instruction and query) is cut
//! from every pair before `predict_encoded`, so the timing is that of the un-shared tokens
//! alone — a lower bound on the time with prefix reuse (which still computes the prefix once
//! and attends to it). The scores printed in that mode are meaningless.

use std::io::{BufRead, Write};
use std::time::Instant;

use rerank_engine::{CrossEncoder, CrossEncoderOptions, Precision};

/// User + system CPU seconds of this process (all threads), Linux.
fn process_cpu_secs() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` into the pointed-to, properly sized buffer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    if rc != 0 {
        return f64::NAN;
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: score_bench MODEL_DIR PAIRS.jsonl [BATCH_SIZE=32] [REPEATS=1] [PRECISION=f32|bf16|int8]"
        );
        std::process::exit(2);
    }
    let batch_size: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let repeats: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let precision = match args.get(5).map(String::as_str) {
        None | Some("f32") => Precision::F32,
        Some("bf16") => Precision::Bf16,
        Some("int8") => Precision::Int8,
        Some(other) => {
            return Err(format!("unknown precision {other:?} (f32, bf16 or int8)").into())
        }
    };
    let strip_shared_prefix = match args.get(6).map(String::as_str) {
        None => false,
        Some("strip-shared-prefix") => true,
        Some(other) => return Err(format!("unknown 6th argument {other:?}").into()),
    };
    let file = std::io::BufReader::new(std::fs::File::open(&args[2])?);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in file.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let field = |k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("no {k:?}"));
        pairs.push((field("query")?, field("document")?));
    }
    let ce = CrossEncoder::from_dir(
        &args[1],
        CrossEncoderOptions {
            max_length: None,
            batch_size,
            precision,
            ..Default::default()
        },
    )?;
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();
    let mut last = Vec::new();
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let cpu0 = process_cpu_secs();
        let mut encoded = ce.encode(&refs, None)?;
        if strip_shared_prefix {
            let first = encoded[0].input_ids.clone();
            let shared = encoded.iter().fold(first.len(), |n, e| {
                let common = first.iter().zip(&e.input_ids).take_while(|(a, b)| a == b);
                n.min(common.count()).min(e.input_ids.len() - 1)
            });
            eprintln!("cutting the {shared} shared prefix tokens from every pair");
            for e in &mut encoded {
                e.input_ids.drain(..shared);
                e.token_type_ids.drain(..shared.min(e.token_type_ids.len()));
            }
        }
        let predictions = ce.predict_encoded(&encoded, batch_size)?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = process_cpu_secs() - cpu0;
        let tokens: usize = encoded.iter().map(|e| e.input_ids.len()).sum();
        eprintln!(
            "scored {} pairs ({} tokens) in {:.3} s ({:.1} pairs/s), CPU {:.3} s ({:.1} pairs per CPU-s)",
            pairs.len(),
            tokens,
            secs,
            pairs.len() as f64 / secs,
            cpu,
            pairs.len() as f64 / cpu
        );
        last = predictions;
    }
    let mut out = std::io::stdout().lock();
    for (i, p) in last.iter().enumerate() {
        let logits: Vec<String> = p.logits.iter().map(|l| format!("{l:.7}")).collect();
        writeln!(out, "{i}\t{:.7}\t[{}]", p.score, logits.join(", "))?;
    }
    Ok(())
}
