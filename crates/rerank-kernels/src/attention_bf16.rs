//! Attention with bf16 products, for the bf16 and int8 precisions: `S = bf16(Q)·bf16(K)ᵀ`
//! and `O = bf16(P)·bf16(V)` on the bf16 GEMM (`gemm_bf16`: AMX, AVX512-BF16, AVX2
//! or portable, f32 sums), the softmax in f32 between them — what PyTorch's bf16 autocast and
//! OpenVINO's bf16 inference do. Per (sequence, head) task: the head's keys are packed as the
//! GEMM's weight (`W = K`, `[keys, head_dim]`), its values transposed (`W = Vᵀ`,
//! `[head_dim, keys]`), the scores `[queries, keys]` are row-major and soft-maxed by rows.
//!
//! Bits: a query's output depends only on its own row and its sequence's keys and values
//! (the GEMM's rows are independent of their batch), so a score still never depends on the
//! batch, and computing one query row of a sequence gives the bits of computing all of them.
//! Masks other than bidirectional (and score blocks over 2²⁰ floats) take the f32
//! attention ([`Attention::run`]).

use std::cell::RefCell;

use crate::attention::{Attention, AttentionMask, SeqSpan, SCORE_BUDGET};
use crate::buffer::{AlignedVec, SendPtr};
use crate::gemm_bf16::PackedBf16;
use crate::isa::{Bf16Isa, Isa};
use crate::layout::{HeadLayout, OutLayout};
use crate::schedule::Parallelism;
use crate::softmax::softmax_rows_scaled_isa;

/// Per-thread scratch: the scores / probabilities `[queries, ld]` and the head's output
/// `[queries, head_dim]`.
#[derive(Default)]
struct Scratch {
    scores: AlignedVec,
    out: AlignedVec,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Attention {
    /// [`Attention::run`] with bf16 products (see the module docs): the same arguments, the
    /// same output rows written, the same panics.
    pub fn run_bf16(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        spans: &[SeqSpan],
        par: Parallelism,
    ) {
        self.run_bf16_isa(Bf16Isa::active(), q, k, v, out, spans, par);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_bf16_isa(
        &self,
        isa: Bf16Isa,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        spans: &[SeqSpan],
        par: Parallelism,
    ) {
        let too_big = spans
            .iter()
            .any(|s| s.q_len.saturating_mul(s.k_len.div_ceil(32) * 32) > SCORE_BUDGET);
        if self.mask != AttentionMask::Bidirectional || too_big {
            self.run(q, k, v, out, spans, par);
            return;
        }
        let Some(group) = self.check(q, k, v, out, spans) else {
            return;
        };
        let (heads, d) = (self.heads, self.head_dim);
        let out_layout = HeadLayout::row_major(self.ld_out, d);
        let work: Vec<usize> = (0..spans.len())
            .filter(|&i| spans[i].q_len > 0 && spans[i].k_len > 0)
            .collect();
        let out_ptr = SendPtr(out.as_mut_ptr());
        let tasks = work.len() * heads;
        let serial = Parallelism::Serial;
        let run = |t: usize| {
            let s = spans[work[t / heads]];
            let head = t % heads;
            let kv_head = head / group;
            let (nq, nk) = (s.q_len, s.k_len);
            // The head's keys and values as GEMM weights (checked to fit by `check`).
            let k0 = self.k.at(s.k_start, kv_head);
            let keys = PackedBf16::from_strided(&k[k0..], nk, d, self.k.row_stride, 1);
            let v0 = self.v.at(s.k_start, kv_head);
            let values = PackedBf16::from_strided(&v[v0..], d, nk, 1, self.v.row_stride);
            let q0 = self.q.at(s.q_start, head);
            SCRATCH.with(|cell| {
                let mut guard = cell.borrow_mut();
                let sc = &mut *guard;
                let ld = nk.div_ceil(32) * 32;
                sc.scores.ensure(nq * ld);
                sc.out.ensure(nq * d);
                let scores = &mut sc.scores.as_mut_slice()[..nq * ld];
                keys.forward(
                    isa,
                    &q[q0..],
                    self.q.row_stride,
                    nq,
                    0..nk,
                    scores,
                    OutLayout::row_major(ld),
                    None,
                    false,
                    serial,
                );
                softmax_rows_scaled_isa(Isa::active(), scores, nq, nk, ld, self.scale);
                let o = &mut sc.out.as_mut_slice()[..nq * d];
                values.forward(
                    isa,
                    scores,
                    ld,
                    nq,
                    0..d,
                    o,
                    OutLayout::row_major(d),
                    None,
                    false,
                    serial,
                );
                for (i, row) in o.chunks_exact(d).enumerate() {
                    // SAFETY: the output rows of this span's queries, this head's d columns,
                    // lie inside `out` (checked by `check`) and are written by this task
                    // only (spans name distinct rows; tasks distinct heads); `out` outlives
                    // the scoped parallel loop.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            row.as_ptr(),
                            out_ptr.get().add(out_layout.at(s.q_start + i, head)),
                            d,
                        )
                    };
                }
            });
        };
        par.for_each_task(tasks, run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bf16::round_bf16;

    fn vals(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 2_654_435_761usize) % 2001) as f32 / 500.0 - 2.0)
            .collect()
    }

    /// f64 attention of one query row on bf16-rounded Q, K and probabilities·V: the
    /// reference of the bf16 path (its only other differences are f32 sums and the f32
    /// softmax).
    fn reference(q: &[f32], keys: &[&[f32]], values: &[&[f32]], scale: f32) -> Vec<f64> {
        let r = |x: f32| round_bf16(x) as f64;
        let s: Vec<f64> = keys
            .iter()
            .map(|kr| q.iter().zip(*kr).map(|(&a, &b)| r(a) * r(b)).sum::<f64>() * scale as f64)
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        (0..q.len())
            .map(|c| {
                e.iter()
                    .zip(values)
                    .map(|(p, vr)| r((p / z) as f32) * r(vr[c]))
                    .sum()
            })
            .collect()
    }

    /// Per-head layout `[heads][tokens][d]` (the encoders'), several sequences, every ISA:
    /// within bf16 rounding of the reference, equal to f32 attention within 2e-2, and one
    /// sequence alone gives the bits it gets in the batch.
    #[test]
    fn matches_a_bf16_reference_and_is_batch_independent() {
        let (heads, d) = (3usize, 64usize);
        let lens = [1usize, 17, 70, 33];
        let tokens: usize = lens.iter().sum();
        let layout = HeadLayout::per_head(tokens, d);
        let attn = Attention::multi_head(heads, d, layout);
        let q = vals(heads * tokens * d, 1);
        let k = vals(heads * tokens * d, 2);
        let v = vals(heads * tokens * d, 3);
        let mut spans = Vec::new();
        let mut start = 0;
        for &l in &lens {
            spans.push(SeqSpan::full(start, l));
            start += l;
        }
        let mut f32_out = vec![0f32; tokens * heads * d];
        attn.run(&q, &k, &v, &mut f32_out, &spans, Parallelism::Parallel);
        for isa in Bf16Isa::available() {
            let mut out = vec![f32::NAN; tokens * heads * d];
            attn.run_bf16_isa(isa, &q, &k, &v, &mut out, &spans, Parallelism::Parallel);
            for s in &spans {
                for i in 0..s.q_len {
                    let row = s.q_start + i;
                    for h in 0..heads {
                        let at = |r: usize| layout.at(r, h);
                        let keys: Vec<&[f32]> = (s.k_start..s.k_start + s.k_len)
                            .map(|r| &k[at(r)..at(r) + d])
                            .collect();
                        let values: Vec<&[f32]> = (s.k_start..s.k_start + s.k_len)
                            .map(|r| &v[at(r)..at(r) + d])
                            .collect();
                        let want = reference(&q[at(row)..at(row) + d], &keys, &values, attn.scale);
                        let got = &out[row * heads * d + h * d..][..d];
                        let f = &f32_out[row * heads * d + h * d..][..d];
                        for c in 0..d {
                            let g = got[c] as f64;
                            assert!(
                                (g - want[c]).abs() <= 1e-2 * (1.0 + want[c].abs()),
                                "{isa:?} row {row} head {h} col {c}: {g} vs {}",
                                want[c]
                            );
                            assert!(
                                (g - f[c] as f64).abs() <= 2e-2,
                                "{isa:?} vs f32: {g} vs {}",
                                f[c]
                            );
                        }
                    }
                }
            }
            // The third sequence alone, at row 0 of its own buffers: the same bits.
            let s = spans[2];
            let alone = HeadLayout::per_head(s.k_len, d);
            let pick = |x: &[f32]| -> Vec<f32> {
                (0..heads)
                    .flat_map(|h| x[layout.at(s.k_start, h)..][..s.k_len * d].to_vec())
                    .collect()
            };
            let (q1, k1, v1) = (pick(&q), pick(&k), pick(&v));
            let mut out1 = vec![0f32; s.k_len * heads * d];
            Attention::multi_head(heads, d, alone).run_bf16_isa(
                isa,
                &q1,
                &k1,
                &v1,
                &mut out1,
                &[SeqSpan::full(0, s.k_len)],
                Parallelism::Serial,
            );
            assert_eq!(
                &out1[..],
                &out[s.q_start * heads * d..(s.q_start + s.q_len) * heads * d],
                "{isa:?}: a sequence alone differs from the batch"
            );
            // One query row (the last layer's first-token pass) gives that row's bits.
            let mut one = vec![0f32; heads * d];
            let q_one: Vec<f32> = (0..heads)
                .flat_map(|h| q[layout.at(s.q_start, h)..][..d].to_vec())
                .collect();
            let a_one = Attention {
                q: HeadLayout::row_major(heads * d, d),
                ..attn
            };
            a_one.run_bf16_isa(
                isa,
                &q_one,
                &k,
                &v,
                &mut one,
                &[s.queries(0, 0, 1)],
                Parallelism::Serial,
            );
            assert_eq!(
                &one[..],
                &out[s.q_start * heads * d..][..heads * d],
                "{isa:?} one row"
            );
        }
    }

    #[test]
    fn other_masks_take_the_f32_path() {
        let (heads, d, t) = (2usize, 32usize, 20usize);
        let layout = HeadLayout::row_major(heads * d, d);
        let attn = Attention {
            mask: AttentionMask::Causal,
            ..Attention::multi_head(heads, d, layout)
        };
        let (q, k, v) = (
            vals(t * heads * d, 4),
            vals(t * heads * d, 5),
            vals(t * heads * d, 6),
        );
        let spans = [SeqSpan::full(0, t)];
        let mut a = vec![0f32; t * heads * d];
        let mut b = vec![0f32; t * heads * d];
        attn.run(&q, &k, &v, &mut a, &spans, Parallelism::Serial);
        attn.run_bf16(&q, &k, &v, &mut b, &spans, Parallelism::Serial);
        assert_eq!(a, b);
    }
}
