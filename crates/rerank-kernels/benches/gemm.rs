//! Linear-layer throughput (FLOP/s, reported by criterion as elements/s with one element per
//! floating-point operation, `2·m·n·k` per product) at the shapes of the models rerank runs:
//! MiniLM-L6 (384 / 1536), BERT-base / bge-reranker-base (768 / 3072), ModernBERT-base
//! (768, fused Wqkv 2304, GeGLU Wi 2304 / Wo 1152) and Qwen3-0.6B (1024, GQA q+k+v 4096,
//! SwiGLU gate+up 6144 / down 3072), f32, bf16 and int8, on rayon's pool and on one thread.
//! (For int8 the "FLOP" are integer multiply-adds, counted the same way, plus the per-call
//! quantization of `A`.)
//!
//! ```text
//! cargo bench -p rerank-kernels --bench gemm            # all
//! cargo bench -p rerank-kernels --bench gemm -- bf16    # a filter
//! cargo bench -p rerank-kernels --bench gemm -- 'int8 Parallel'
//! ```
//! `RERANK_KERNEL_ISA=avx2|scalar|avx512bf16|avx512vnni` runs a lower instruction set.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rerank_kernels::isa::{Bf16Isa, Int8Isa, Isa};
use rerank_kernels::{Linear, Parallelism, Precision};

/// Rows per product: e.g. 4 pairs of 128 tokens.
const M: usize = 512;

const SHAPES: &[(&str, usize, usize)] = &[
    ("minilm qkv", 1152, 384),
    ("minilm ffn_up", 1536, 384),
    ("minilm ffn_down", 384, 1536),
    ("base qkv", 2304, 768),
    ("base ffn_up", 3072, 768),
    ("base ffn_down", 768, 3072),
    ("modernbert wi", 2304, 768),
    ("modernbert wo", 768, 1152),
    ("qwen3 qkv", 4096, 1024),
    ("qwen3 gate_up", 6144, 1024),
    ("qwen3 down", 1024, 3072),
];

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 9) as f32) / 8.4e6 - 1.0)
        .collect()
}

fn gemm(c: &mut Criterion) {
    eprintln!(
        "isa {:?}, bf16 isa {:?}, int8 isa {:?}, threads {}",
        Isa::active(),
        Bf16Isa::active(),
        Int8Isa::active(),
        rayon::current_num_threads()
    );
    let mut group = c.benchmark_group("linear");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for &(name, n, k) in SHAPES {
        let w = values(n * k, 1);
        let bias = values(n, 2);
        let a = values(M * k, 3);
        let mut out = vec![0f32; M * n];
        group.throughput(Throughput::Elements((2 * M * n * k) as u64));
        for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
            let lin = Linear::new(&w, Some(&bias), n, k, precision);
            for par in [Parallelism::Parallel, Parallelism::Serial] {
                let id = BenchmarkId::new(
                    format!("{precision} {par:?}"),
                    format!("{name} {M}x{n}x{k}"),
                );
                group.bench_function(id, |b| {
                    b.iter(|| lin.forward(black_box(&a), M, &mut out, par));
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, gemm);
criterion_main!(benches);
