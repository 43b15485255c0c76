//! Attention throughput (FLOP/s as criterion elements/s: `4·queries·keys_seen·head_dim` per
//! head, the two products) for the masks and shapes the models use: BERT-style bidirectional
//! batches, one long ModernBERT sequence with global and sliding-window (±64) layers, and a
//! Qwen3-0.6B causal sequence (16 query heads on 8 KV heads of 128), on rayon's pool and on
//! one thread.
//!
//! ```text
//! cargo bench -p rerank-kernels --bench attention
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rerank_kernels::{Attention, AttentionMask, HeadLayout, Parallelism, SeqSpan};

struct Case {
    name: &'static str,
    seqs: usize,
    len: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    mask: AttentionMask,
}

const CASES: &[Case] = &[
    Case {
        name: "bert 32x128",
        seqs: 32,
        len: 128,
        heads: 12,
        kv_heads: 12,
        head_dim: 64,
        mask: AttentionMask::Bidirectional,
    },
    Case {
        name: "minilm 8x512",
        seqs: 8,
        len: 512,
        heads: 12,
        kv_heads: 12,
        head_dim: 32,
        mask: AttentionMask::Bidirectional,
    },
    Case {
        name: "modernbert global 1x4096",
        seqs: 1,
        len: 4096,
        heads: 12,
        kv_heads: 12,
        head_dim: 64,
        mask: AttentionMask::Bidirectional,
    },
    Case {
        name: "modernbert local 1x4096",
        seqs: 1,
        len: 4096,
        heads: 12,
        kv_heads: 12,
        head_dim: 64,
        mask: AttentionMask::SlidingWindow { half_width: 64 },
    },
    Case {
        name: "qwen3 causal 1x1024",
        seqs: 1,
        len: 1024,
        heads: 16,
        kv_heads: 8,
        head_dim: 128,
        mask: AttentionMask::Causal,
    },
];

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 9) as f32) / 8.4e6 - 1.0)
        .collect()
}

fn attention(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for case in CASES {
        let tokens = case.seqs * case.len;
        let d = case.head_dim;
        let q = values(tokens * case.heads * d, 1);
        let k = values(tokens * case.kv_heads * d, 2);
        let v = values(tokens * case.kv_heads * d, 3);
        let mut out = vec![0f32; tokens * case.heads * d];
        let spans: Vec<SeqSpan> = (0..case.seqs)
            .map(|s| SeqSpan::full(s * case.len, case.len))
            .collect();
        let attn = Attention {
            heads: case.heads,
            kv_heads: case.kv_heads,
            head_dim: d,
            q: HeadLayout::row_major(case.heads * d, d),
            k: HeadLayout::row_major(case.kv_heads * d, d),
            v: HeadLayout::row_major(case.kv_heads * d, d),
            ld_out: case.heads * d,
            scale: (d as f32).powf(-0.5),
            mask: case.mask,
        };
        let seen: usize = (0..case.len)
            .map(|p| case.mask.keys(p, case.len).len())
            .sum();
        group.throughput(Throughput::Elements(
            (4 * case.seqs * seen * d * case.heads) as u64,
        ));
        for par in [Parallelism::Parallel, Parallelism::Serial] {
            group.bench_function(BenchmarkId::new(format!("{par:?}"), case.name), |b| {
                b.iter(|| attn.run(black_box(&q), &k, &v, &mut out, &spans, par));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, attention);
criterion_main!(benches);
