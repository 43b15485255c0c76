//! GFLOP/s of the packed GEMM at MiniLM-L6 / BERT-base (bge-reranker-base) shapes, f32 and
//! bf16 (`PackedLinear::new_bf16`: AMX / AVX512-BF16), on rayon's pool and on one thread.
//!
//! ```text
//! cargo build --release -p rerank-engine --example gemm_bench
//! ./target/release/examples/gemm_bench [M=4800] [REPEATS=5] [MODE=both|serial|parallel] [N K] [PRECISION=both|f32|bf16]
//! ```
//!
//! Timings are the best of `REPEATS`. The single-thread figure uses the thread's CPU time
//! (`/proc/thread-self/schedstat`), so it is not inflated when other processes share the
//! cores; the parallel one is wall-clock.

use std::time::Instant;

use rerank_kernels::gemm::PackedLinear;

/// CPU time of the calling thread in seconds (Linux), or `None`.
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let m: usize = args.get(1).map_or(4800, |s| s.parse().unwrap());
    let repeats: usize = args.get(2).map_or(5, |s| s.parse().unwrap());
    let mode = args.get(3).map_or("both", String::as_str);
    let (par, ser) = (mode != "serial", mode != "parallel");
    let custom: Option<(usize, usize)> = match (args.get(4), args.get(5)) {
        (Some(n), Some(k)) => Some((n.parse().unwrap(), k.parse().unwrap())),
        _ => None,
    };
    let mut shapes = vec![
        ("qkv 384->1152", 1152usize, 384usize),
        ("attn_out 384->384", 384, 384),
        ("ffn_up 384->1536", 1536, 384),
        ("ffn_down 1536->384", 384, 1536),
        ("base qkv 768->2304", 2304, 768),
        ("base attn_out 768->768", 768, 768),
        ("base ffn_up 768->3072", 3072, 768),
        ("base ffn_down 3072->768", 768, 3072),
    ];
    let precisions: &[bool] = match args.get(6).map(String::as_str) {
        Some("f32") => &[false],
        Some("bf16") => &[true],
        _ => &[false, true],
    };
    if let Some((n, k)) = custom {
        shapes = vec![("custom", n, k)];
    }
    let isa = rerank_kernels::isa::Isa::active();
    println!(
        "isa {isa:?}, bf16 isa {:?}, threads {}",
        rerank_kernels::isa::Bf16Isa::active(),
        rayon::current_num_threads()
    );
    // Micro-kernel alone, operands in L1: the ceiling of the blocked product.
    {
        use rerank_kernels::microkernel::{run, Epilogue, NR};
        let (kc, mr) = (128usize, isa.mr());
        let a = vec![0.5f32; kc * mr];
        let b = vec![0.25f32; kc * NR];
        let mut c = vec![0f32; mr * NR];
        let ep = Epilogue {
            accumulate: false,
            bias: std::ptr::null(),
            gelu: false,
        };
        let calls = 2_000_000;
        let mut best = f64::MAX;
        for _ in 0..repeats {
            let (t, cpu) = (Instant::now(), thread_cpu_secs());
            for _ in 0..calls {
                // SAFETY: the buffers hold kc × mr, kc × NR and mr × NR floats; `isa` is the
                // detected one.
                unsafe {
                    run(
                        isa,
                        kc,
                        a.as_ptr(),
                        mr,
                        b.as_ptr(),
                        c.as_mut_ptr(),
                        NR,
                        mr,
                        NR,
                        ep,
                    )
                };
            }
            let secs = match (cpu, thread_cpu_secs()) {
                (Some(a), Some(b)) => b - a,
                _ => t.elapsed().as_secs_f64(),
            };
            best = best.min(secs);
        }
        let flops = 2.0 * (calls * kc * mr * NR) as f64;
        println!(
            "micro-kernel in L1 (kc={kc}): 1 thread {:6.1} GFLOP/s",
            flops / best / 1e9
        );
    }
    for (name, n, k) in shapes {
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        for &bf16 in precisions {
            let lin = if bf16 {
                PackedLinear::new_bf16(&w, None, n, k)
            } else {
                PackedLinear::new(&w, None, n, k)
            };
            let prec = if bf16 { "bf16" } else { "f32" };
            let mut c = vec![0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let mut best_par = f64::MAX;
            let mut best_ser = f64::MAX;
            for _ in 0..repeats {
                if par {
                    let t = Instant::now();
                    lin.forward(&a, m, &mut c);
                    best_par = best_par.min(t.elapsed().as_secs_f64());
                }
                if ser {
                    // Several products per sample: the CPU clock ticks coarsely in some VMs.
                    let inner = (3e10 / flops).ceil() as usize;
                    let (t, cpu) = (Instant::now(), thread_cpu_secs());
                    for _ in 0..inner {
                        lin.forward_serial(&a, k, m, &mut c, n, false);
                    }
                    let secs = match (cpu, thread_cpu_secs()) {
                        (Some(a), Some(b)) => b - a,
                        _ => t.elapsed().as_secs_f64(),
                    };
                    best_ser = best_ser.min(secs / inner as f64);
                }
            }
            println!(
                "{name:24} {prec:4} m={m}: parallel {:6.1} GFLOP/s, 1 thread {:6.1} GFLOP/s",
                flops / best_par / 1e9,
                flops / best_ser / 1e9
            );
        }
    }
}
