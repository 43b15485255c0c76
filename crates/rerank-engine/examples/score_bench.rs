//! Throughput bench of the cross-encoder, timed like `rerank score`: tokenization plus
//! `predict_encoded`, in pairs per second on stderr.
//!
//! ```text
//! cargo build --release -p rerank-engine --example score_bench
//! ./target/release/examples/score_bench MODEL_DIR PAIRS.jsonl [BATCH_SIZE=32] [REPEATS=1] [PRECISION=f32|bf16]
//! ```
//!
//! `PAIRS.jsonl`: one `{"query": ..., "document": ...}` per line. Stdout gets one line per pair
//! (`index<TAB>score<TAB>logits`) from the last repeat, so two builds can be diffed.

use std::io::{BufRead, Write};
use std::time::Instant;

use rerank_engine::{CrossEncoder, CrossEncoderOptions, Precision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: score_bench MODEL_DIR PAIRS.jsonl [BATCH_SIZE=32] [REPEATS=1] [PRECISION=f32|bf16]"
        );
        std::process::exit(2);
    }
    let batch_size: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let repeats: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let precision = match args.get(5).map(String::as_str) {
        None | Some("f32") => Precision::F32,
        Some("bf16") => Precision::Bf16,
        Some(other) => return Err(format!("unknown precision {other:?} (f32 or bf16)").into()),
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
        },
    )?;
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();
    let mut last = Vec::new();
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let encoded = ce.encode(&refs, None)?;
        let predictions = ce.predict_encoded(&encoded, batch_size)?;
        let secs = start.elapsed().as_secs_f64();
        let tokens: usize = encoded.iter().map(|e| e.input_ids.len()).sum();
        eprintln!(
            "scored {} pairs ({} tokens) in {:.3} s ({:.1} pairs/s)",
            pairs.len(),
            tokens,
            secs,
            pairs.len() as f64 / secs
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
