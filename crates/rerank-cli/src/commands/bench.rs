//! `rerank bench`: speed of the full `CrossEncoder::rank` call (tokenization included) on
//! `{"query", "document"}` pairs, in pairs per second, milliseconds per query and achieved
//! GFLOP/s against the machine's measured fp32 FMA peak.
//!
//! One query's documents (consecutive lines with the same query) are one `rank` call, as a
//! reranker serves "1 query × N documents". A repeat runs every query once; the figures are
//! the median (and p90) over the repeats.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rerank_engine::CrossEncoder;
use serde::Serialize;

use crate::input;

#[derive(clap::Args)]
pub struct Args {
    /// Cross-encoder: a model folder or a Hugging Face hub id.
    #[arg(long)]
    reranker: String,
    /// JSONL `{"query", "document"}` lines; each run of lines with the same query is one
    /// `rank` call.
    #[arg(long)]
    pairs: PathBuf,
    /// Timed repeats over all queries (the median and p90 are reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Untimed warm-up runs first, each over every query's first `--batch-size` documents
    /// (enough to start the thread pool and grow the buffers).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// fp32 peak in GFLOP/s to compare against; default: measured with an FMA loop on every
    /// thread of the pool.
    #[arg(long)]
    peak_gflops: Option<f64>,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: super::RerankerFlags,
}

/// The model shape that the FLOP count needs, from `config.json`.
#[derive(Debug, Clone, Copy, Serialize)]
struct Shape {
    hidden: usize,
    layers: usize,
    intermediate: usize,
    heads: usize,
    num_labels: usize,
    /// Width of the query projection (`heads · head_dim`; `hidden` unless the config says).
    q_dim: usize,
    /// Width of each of the key and value projections (`num_key_value_heads · head_dim`).
    kv_dim: usize,
    /// `hidden × intermediate` matrices of the feed-forward: 2 (GELU MLP), 3 (GeGLU, SwiGLU).
    ffn_matrices: usize,
    /// Multiply-adds of the scoring head per sequence (`h·h + h·labels` for a BERT-style
    /// pooler head, `2·h` for the yes/no rows of a causal LM reranker, `labels·h` for a
    /// sequence-classification decoder).
    head_macs: usize,
}

/// Everything `rerank bench --json` prints.
#[derive(Serialize)]
struct Report {
    /// `rerank` (f32) or `rerank_bf16` (`--precision bf16`).
    engine: &'static str,
    model: String,
    architecture: String,
    shape: Shape,
    pairs_file: String,
    queries: usize,
    pairs: usize,
    tokens: usize,
    tokens_per_pair: LengthStats,
    batch_size: usize,
    threads: usize,
    repeat: usize,
    warmup: usize,
    /// Seconds of each timed repeat (all queries).
    times_seconds: Vec<f64>,
    median_seconds: f64,
    pairs_per_second: f64,
    /// Milliseconds per `rank` call: median and p90 over all calls of all repeats.
    ms_per_query_median: f64,
    ms_per_query_p90: f64,
    /// Model FLOPs of one repeat (GEMMs of every layer for every token, attention, head).
    gflop: f64,
    gflops: f64,
    peak_gflops: f64,
    peak_source: String,
    fraction_of_peak: f64,
    loadavg_before: Vec<f64>,
    loadavg_after: Vec<f64>,
    /// Process CPU seconds / wall seconds over the timed repeats: close to `threads` when the
    /// cores were ours, lower when other processes took them.
    cpu_over_wall: Option<f64>,
    /// GFLOP per second of CPU time the process got (median repeat's FLOPs × repeats / CPU
    /// seconds): a load-independent efficiency figure, to compare with the per-thread peak.
    gflops_per_cpu_second: Option<f64>,
    first_scores: Vec<f32>,
}

#[derive(Serialize)]
struct LengthStats {
    min: usize,
    median: usize,
    max: usize,
    mean: f64,
}

pub fn run(args: Args) -> Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let pairs = input::read_pairs(Some(&args.pairs))?;
    if pairs.is_empty() {
        bail!("{}: no pairs", args.pairs.display());
    }
    let queries = group_by_query(&pairs);
    let dir = rerank_engine::resolve::resolve_model(&args.reranker)?;
    let shape = read_shape(&dir)?;
    let ce = CrossEncoder::from_dir(&dir, args.model.options()?)
        .with_context(|| format!("cannot load cross-encoder {}", args.reranker))?;

    // Token lengths exactly as `rank` will see them (not timed).
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();
    let lengths: Vec<usize> = ce
        .encode(&refs, None)?
        .iter()
        .map(|e| e.input_ids.len())
        .collect();
    let flops: f64 = queries
        .iter()
        .map(|(_, range)| model_flops(&shape, &lengths[range.clone()]))
        .sum();

    let run_once = |calls: &mut Vec<f64>, limit: usize| -> Result<Vec<f32>> {
        let mut first = Vec::new();
        for (query, range) in &queries {
            let docs: Vec<&str> = pairs[range.clone()]
                .iter()
                .take(limit)
                .map(|(_, d)| d.as_str())
                .collect();
            let t = Instant::now();
            let ranked = ce.rank(query, &docs, docs.len())?;
            calls.push(t.elapsed().as_secs_f64());
            if first.is_empty() {
                let mut by_index = vec![0f32; docs.len()];
                for r in &ranked {
                    by_index[r.index] = r.score;
                }
                first = by_index.into_iter().take(5).collect();
            }
        }
        Ok(first)
    };
    for _ in 0..args.warmup {
        run_once(&mut Vec::new(), args.model.batch_size)?;
    }
    let (peak, peak_source) = match args.peak_gflops {
        Some(p) => (p, "given (--peak-gflops)".to_string()),
        None => {
            let (p, how) = measure_fma_peak();
            (p, how)
        }
    };
    let load_before = loadavg();
    let (cpu0, wall0) = (process_cpu_seconds(), Instant::now());
    let mut times = Vec::with_capacity(args.repeat);
    let mut calls = Vec::new();
    let mut first_scores = Vec::new();
    for _ in 0..args.repeat {
        let t = Instant::now();
        first_scores = run_once(&mut calls, usize::MAX)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let cpu_seconds = match (cpu0, process_cpu_seconds()) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };
    let cpu_over_wall = cpu_seconds.map(|c| c / wall0.elapsed().as_secs_f64());
    let gflops_per_cpu_second = cpu_seconds.map(|c| flops * args.repeat as f64 / c / 1e9);
    let load_after = loadavg();
    let median_seconds = quantile(&times, 0.5);
    let gflops = flops / median_seconds / 1e9;
    let mut sorted_lengths = lengths.clone();
    sorted_lengths.sort_unstable();
    let info = ce.info();
    let report = Report {
        engine: match args.model.precision {
            super::PrecisionArg::F32 => "rerank",
            super::PrecisionArg::Bf16 => "rerank_bf16",
            super::PrecisionArg::Int8 => "rerank_int8",
        },
        model: dir.display().to_string(),
        architecture: info.architecture.clone(),
        shape,
        pairs_file: args.pairs.display().to_string(),
        queries: queries.len(),
        pairs: pairs.len(),
        tokens: lengths.iter().sum(),
        tokens_per_pair: LengthStats {
            min: sorted_lengths[0],
            median: sorted_lengths[sorted_lengths.len() / 2],
            max: *sorted_lengths.last().expect("non-empty"),
            mean: lengths.iter().sum::<usize>() as f64 / lengths.len() as f64,
        },
        batch_size: args.model.batch_size,
        threads: rayon_threads(),
        repeat: args.repeat,
        warmup: args.warmup,
        times_seconds: times.clone(),
        median_seconds,
        pairs_per_second: pairs.len() as f64 / median_seconds,
        ms_per_query_median: 1e3 * quantile(&calls, 0.5),
        ms_per_query_p90: 1e3 * quantile(&calls, 0.9),
        gflop: flops / 1e9,
        gflops,
        peak_gflops: peak,
        peak_source,
        fraction_of_peak: gflops / peak,
        loadavg_before: load_before,
        loadavg_after: load_after,
        cpu_over_wall,
        gflops_per_cpu_second,
        first_scores,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn print_summary(r: &Report) {
    println!("model        {} ({})", r.model, r.architecture);
    println!(
        "shape        {} layers × {} hidden, {} heads, intermediate {}",
        r.shape.layers, r.shape.hidden, r.shape.heads, r.shape.intermediate
    );
    println!(
        "input        {} queries, {} pairs, {} tokens (per pair min {} median {} max {})",
        r.queries,
        r.pairs,
        r.tokens,
        r.tokens_per_pair.min,
        r.tokens_per_pair.median,
        r.tokens_per_pair.max
    );
    println!(
        "speed        {:.1} pairs/s, {:.1} ms/query median, {:.1} ms/query p90 ({} threads, {} repeats)",
        r.pairs_per_second, r.ms_per_query_median, r.ms_per_query_p90, r.threads, r.repeat
    );
    println!(
        "compute      {:.1} GFLOP per repeat, {:.1} GFLOP/s = {:.0} % of {:.0} GFLOP/s fp32 peak ({})",
        r.gflop,
        r.gflops,
        100.0 * r.fraction_of_peak,
        r.peak_gflops,
        r.peak_source
    );
    println!(
        "load average {:.2} before, {:.2} after; CPU/wall {:.2}; {:.1} GFLOP per CPU-second",
        r.loadavg_before.first().copied().unwrap_or(f64::NAN),
        r.loadavg_after.first().copied().unwrap_or(f64::NAN),
        r.cpu_over_wall.unwrap_or(f64::NAN),
        r.gflops_per_cpu_second.unwrap_or(f64::NAN)
    );
}

/// Consecutive lines with the same query: `(query, line range)`.
fn group_by_query(pairs: &[(String, String)]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut groups: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    for (i, (q, _)) in pairs.iter().enumerate() {
        match groups.last_mut() {
            Some((last, range)) if last == q => range.end = i + 1,
            _ => groups.push((q.clone(), i..i + 1)),
        }
    }
    groups
}

/// Reads the encoder shape from `dir/config.json`.
fn read_shape(dir: &std::path::Path) -> Result<Shape> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let get = |k: &str| -> Result<usize> {
        v[k].as_u64()
            .map(|x| x as usize)
            .with_context(|| format!("{}: no integer {k:?}", path.display()))
    };
    let num_labels = v["id2label"]
        .as_object()
        .map(|m| m.len())
        .or_else(|| v["num_labels"].as_u64().map(|x| x as usize))
        .unwrap_or(1)
        .max(1);
    let arch = v["architectures"][0].as_str().unwrap_or_default();
    let (hidden, heads) = (get("hidden_size")?, get("num_attention_heads")?);
    let head_dim = v["head_dim"]
        .as_u64()
        .map_or(hidden / heads.max(1), |x| x as usize);
    let kv_heads = v["num_key_value_heads"]
        .as_u64()
        .map_or(heads, |x| x as usize);
    let decoder = arch.starts_with("Qwen");
    let ffn_matrices = if decoder || arch.starts_with("ModernBert") {
        3
    } else {
        2
    };
    let head_macs = if arch.ends_with("ForCausalLM") {
        2 * hidden
    } else if decoder {
        num_labels * hidden
    } else {
        hidden * hidden + hidden * num_labels
    };
    Ok(Shape {
        hidden,
        layers: get("num_hidden_layers")?,
        intermediate: get("intermediate_size")?,
        heads,
        num_labels,
        q_dim: heads * head_dim,
        kv_dim: kv_heads * head_dim,
        ffn_matrices,
        head_macs,
    })
}

/// Model FLOPs of one forward pass over sequences of `lengths` tokens (no padding), counting
/// multiply-adds as 2: per layer and token the Q, K, V and output projections
/// `2·(2·h·q_dim + 2·h·kv_dim)` and the feed-forward `2·ffn_matrices·h·i`; attention scores
/// and context `4·L²·q_dim` per sequence (counted in full for causal and sliding-window
/// layers too); then the scoring head once per sequence. Embeddings, norms and activations
/// are not counted. This is what a padding-free PyTorch forward computes, so the same
/// numerator serves every engine.
fn model_flops(s: &Shape, lengths: &[usize]) -> f64 {
    let (h, i) = (s.hidden as f64, s.intermediate as f64);
    let (q, kv) = (s.q_dim as f64, s.kv_dim as f64);
    let t: f64 = lengths.iter().map(|&l| l as f64).sum();
    let l2: f64 = lengths.iter().map(|&l| (l * l) as f64).sum();
    let per_token = 2.0 * h * q + 2.0 * h * kv + s.ffn_matrices as f64 * h * i;
    let per_layer = 2.0 * t * per_token + 4.0 * l2 * q;
    let head = 2.0 * lengths.len() as f64 * s.head_macs as f64;
    s.layers as f64 * per_layer + head
}

/// `q`-quantile (nearest rank) of `xs`.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            s.split_whitespace()
                .take(3)
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Threads rerank computes on: `RAYON_NUM_THREADS` or the available cores.
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// CPU seconds the calling thread has run (Linux `/proc/thread-self/schedstat`), or `None`.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s),
/// or `None`.
fn process_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// fp32 peak of all cores, measured: every thread runs independent FMA chains (AVX-512:
/// 16 lanes, else AVX2+FMA: 8 lanes) for ~0.1 s of its own CPU time; the GFLOP/s per CPU
/// second of the slowest thread × the thread count, best of 3 trials. Returns the figure and how it was
/// obtained.
fn measure_fma_peak() -> (f64, String) {
    let threads = rayon_threads();
    let Some((lanes, isa)) = fma::best() else {
        return (f64::NAN, "no FMA unit detected".into());
    };
    let iters: u64 = 8_000_000;
    // Best of a few short trials: the figure is a ceiling, and a trial can lose its core.
    let trial = || -> Vec<f64> {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || {
                        let (t, c) = (Instant::now(), thread_cpu_seconds());
                        let sink = fma::run(iters);
                        let wall = t.elapsed().as_secs_f64();
                        // CPU time of this thread, so that other processes on the core do not
                        // lower the figure; wall-clock where /proc has no schedstat.
                        let secs = match (c, thread_cpu_seconds()) {
                            (Some(a), Some(b)) if b > a => b - a,
                            _ => wall,
                        };
                        std::hint::black_box(sink);
                        (iters * fma::CHAINS as u64 * lanes as u64 * 2) as f64 / secs / 1e9
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or(f64::NAN))
                .collect()
        })
    };
    let slowest = (0..3)
        .map(|_| trial().into_iter().fold(f64::INFINITY, f64::min))
        .fold(0.0, f64::max);
    (
        slowest * threads as f64,
        format!(
            "measured: {threads} threads × {isa} FMA loop, {:.0} GFLOP/s/thread",
            slowest
        ),
    )
}

/// A register-resident FMA loop: [`fma::CHAINS`] independent accumulators hide the FMA
/// latency so both FMA ports stay busy.
mod fma {
    /// Independent accumulator chains per thread.
    pub const CHAINS: usize = 16;

    /// (f32 lanes, name) of the widest FMA the CPU has.
    pub fn best() -> Option<(usize, &'static str)> {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return Some((16, "AVX-512"));
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Some((8, "AVX2"));
            }
        }
        None
    }

    /// Runs `iters` × [`CHAINS`] vector FMAs with the ISA [`best`] picked; returns a value
    /// that depends on every chain.
    pub fn run(iters: u64) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above).
                return unsafe { run_avx512(iters) };
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { run_avx2(iters) };
            }
        }
        let _ = iters;
        f32::NAN
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_avx512(iters: u64) -> f32 {
        use std::arch::x86_64::*;
        let a = _mm512_set1_ps(0.999_999);
        let b = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let mut s = _mm512_setzero_ps();
        for x in acc {
            s = _mm512_add_ps(s, x);
        }
        _mm512_reduce_add_ps(s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(iters: u64) -> f32 {
        use std::arch::x86_64::*;
        let a = _mm256_set1_ps(0.999_999);
        let b = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut buf = [0f32; 8];
        let mut s = _mm256_setzero_ps();
        for x in acc {
            s = _mm256_add_ps(s, x);
        }
        // SAFETY: `buf` holds 8 f32.
        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), s) };
        buf.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_count_the_gemms_attention_and_head() {
        let s = Shape {
            hidden: 2,
            layers: 3,
            intermediate: 4,
            heads: 1,
            num_labels: 1,
            q_dim: 2,
            kv_dim: 2,
            ffn_matrices: 2,
            head_macs: 2 * 2 + 2,
        };
        // T = 5, ΣL² = 9 + 4 = 13: per layer 2·5·(16 + 16) + 4·13·2 = 424; head 2·2·(4 + 2) = 24.
        assert_eq!(model_flops(&s, &[3, 2]), 3.0 * 424.0 + 24.0);
    }

    #[test]
    fn qwen3_reranker_shape_counts_gqa_swiglu_and_two_head_rows() {
        let dir = std::env::temp_dir().join(format!("rerank-bench-shape-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/models/configs/Qwen3-Reranker-0.6B.config.json");
        std::fs::copy(cfg, dir.join("config.json")).unwrap();
        let s = read_shape(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            (s.q_dim, s.kv_dim, s.ffn_matrices, s.head_macs),
            (2048, 1024, 3, 2048)
        );
        // Per token and layer, by hand: q 1024·2048 + k, v 2·1024·1024 + o 2048·1024 + gate,
        // up, down 3·1024·3072 = 15,728,640 multiply-adds (the layer's 15,730,944 parameters
        // minus its 2,304 norm weights).
        let one_token = model_flops(&s, &[1]);
        assert_eq!(
            one_token,
            28.0 * (2.0 * 15_728_640.0 + 4.0 * 2048.0) + 2.0 * 2048.0
        );
    }

    #[test]
    fn queries_group_consecutive_lines() {
        let p = |q: &str| (q.to_string(), String::new());
        let g = group_by_query(&[p("a"), p("a"), p("b"), p("a")]);
        let ranges: Vec<_> = g.iter().map(|(q, r)| (q.as_str(), r.clone())).collect();
        assert_eq!(ranges, vec![("a", 0..2), ("b", 2..3), ("a", 3..4)]);
    }

    #[test]
    fn quantile_is_nearest_rank() {
        let xs = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&xs, 0.5), 3.0);
        assert_eq!(quantile(&xs, 0.9), 5.0);
    }
}
