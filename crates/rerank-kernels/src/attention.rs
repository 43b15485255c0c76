//! Multi-head scaled dot-product self-attention over ragged sequences.
//!
//! Every sequence attends only to its own real (unpadded) keys, so padding costs nothing and
//! the result equals PyTorch's additive-mask attention (a masked key's weight there is
//! `exp(f32::MIN − max) = 0` exactly). Work is parallel over (sequence, head) pairs.
//!
//! Each pair computes the scores transposed, `Sᵀ = K·Qᵀ` (`[keys, queries]`, each score the
//! same dot product as in `Q·Kᵀ`), the softmax down the columns (vectorised across queries),
//! and `O = P·V` with the GEMM micro-kernel reading `P` straight out of `Sᵀ` (`Sᵀ` already
//! has the packed-`A` layout: for each key, consecutive queries), so the probabilities are
//! never repacked.

use std::cell::RefCell;

use rayon::prelude::*;

use super::buffer::{AlignedVec, SendPtr};
use super::gemm::{gemm_strided_serial_isa, k_blocks};
use super::isa::Isa;
use super::microkernel::{self, Epilogue, NR};
use super::pack::pack_cols;
use super::softmax::softmax_cols_scaled_isa;

/// Per-thread scratch of one (sequence, head) task.
#[derive(Default)]
struct Scratch {
    /// `Sᵀ` / `Pᵀ`: `[keys, ld]`, `ld` ≥ queries rounded up to the kernel's rows.
    scores: AlignedVec,
    /// Column max and sum of the softmax.
    stats: AlignedVec,
    /// `V` packed into `NR`-column panels.
    v_packed: AlignedVec,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Which rows of the query and key/value buffers form one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqSpan {
    /// First query row (also the first output row).
    pub q_start: usize,
    /// Query rows.
    pub q_len: usize,
    /// First key / value row.
    pub k_start: usize,
    /// Key / value rows (the sequence's real tokens).
    pub k_len: usize,
}

/// Where a Q, K or V buffer keeps head `h` of row `r`: `head_dim` floats from
/// `h·head_stride + r·row_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLayout {
    pub row_stride: usize,
    pub head_stride: usize,
}

impl HeadLayout {
    /// Row-major `[rows, ld]` with the heads side by side (`head_stride = head_dim`).
    pub fn row_major(ld: usize, head_dim: usize) -> Self {
        HeadLayout {
            row_stride: ld,
            head_stride: head_dim,
        }
    }

    /// One dense `[rows, head_dim]` block per head (`head_stride = rows · head_dim`).
    pub fn per_head(rows: usize, head_dim: usize) -> Self {
        HeadLayout {
            row_stride: head_dim,
            head_stride: rows * head_dim,
        }
    }

    /// Offset of element 0 of head `h`, row `r`.
    #[inline]
    fn at(&self, r: usize, h: usize) -> usize {
        h * self.head_stride + r * self.row_stride
    }
}

/// Geometry of the attention: heads and the layouts of Q, K, V; the output is row-major
/// `[rows, ld_out]` with head `h` at columns `h·head_dim ..`.
#[derive(Debug, Clone, Copy)]
pub struct AttentionDims {
    pub heads: usize,
    pub head_dim: usize,
    pub q: HeadLayout,
    pub k: HeadLayout,
    pub v: HeadLayout,
    /// Row stride of the output buffer.
    pub ld_out: usize,
}

/// For every sequence `s` and head `h`:
/// `out[q rows of s, head h] = softmax(Q·Kᵀ · scale) · V` over the keys of `s`.
///
/// `q`, `k`, `v` start at element 0 of head 0 (e.g. `k = &qkv[hidden..]` for a fused
/// row-major `[tokens, 3·hidden]` projection). Output rows not named by a span are left
/// untouched. Panics if a span reaches outside its buffer.
pub fn multi_head_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    spans: &[SeqSpan],
    dims: AttentionDims,
    scale: f32,
) {
    multi_head_attention_isa(Isa::active(), q, k, v, out, spans, dims, scale, true);
}

/// [`multi_head_attention`] on the calling thread only (for callers that are already
/// parallel tasks).
pub fn multi_head_attention_serial(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    spans: &[SeqSpan],
    dims: AttentionDims,
    scale: f32,
) {
    multi_head_attention_isa(Isa::active(), q, k, v, out, spans, dims, scale, false);
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn multi_head_attention_isa(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    spans: &[SeqSpan],
    dims: AttentionDims,
    scale: f32,
    parallel: bool,
) {
    let (heads, d) = (dims.heads, dims.head_dim);
    let fits = |len: usize, start: usize, rows: usize, l: HeadLayout| {
        rows == 0 || heads == 0 || l.at(start + rows - 1, heads - 1) + d <= len
    };
    let out_layout = HeadLayout::row_major(dims.ld_out, d);
    assert!(dims.ld_out >= heads * d, "output row stride too small");
    for s in spans {
        assert!(
            fits(q.len(), s.q_start, s.q_len, dims.q),
            "query rows {s:?}"
        );
        assert!(
            fits(out.len(), s.q_start, s.q_len, out_layout),
            "output rows {s:?}"
        );
        assert!(fits(k.len(), s.k_start, s.k_len, dims.k), "key rows {s:?}");
        assert!(
            fits(v.len(), s.k_start, s.k_len, dims.v),
            "value rows {s:?}"
        );
    }
    let out_ptr = SendPtr(out.as_mut_ptr());
    let tasks = spans.len() * dims.heads;
    let run = |t: usize| {
        let s = spans[t / dims.heads];
        let head = t % dims.heads;
        if s.q_len == 0 || s.k_len == 0 {
            return;
        }
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let sc = &mut *guard;
            let (nq, nk, d) = (s.q_len, s.k_len, dims.head_dim);
            let mr = isa.mr();
            // Row stride of Sᵀ: the kernel reads `mr` queries per key, all inside the row;
            // a multiple of 16 floats keeps rows on cache lines.
            let ld = (nq.div_ceil(mr) * mr).div_ceil(16).max(1) * 16;
            sc.scores.ensure(nk * ld);
            sc.stats.ensure(2 * ld);
            let n_pad = d.div_ceil(NR) * NR;
            // A head's values already form the packed panel when they are NR wide and dense.
            let v_in_place = d == NR && dims.v.row_stride == NR;
            if !v_in_place {
                sc.v_packed.ensure(nk * n_pad);
            }
            let st = &mut sc.scores.as_mut_slice()[..nk * ld];
            // Padding columns are read by the kernel for rows it does not store: keep them 0.
            for row in st.chunks_exact_mut(ld) {
                row[nq..].fill(0.0);
            }
            let sp = st.as_mut_ptr();
            // SAFETY: spans were checked against the buffers above: this head's d columns of
            // K rows k_start.. + nk and Q rows q_start.. + nq are readable; Sᵀ holds
            // nk × ld ≥ nk × nq floats and does not overlap them.
            unsafe {
                gemm_strided_serial_isa(
                    isa,
                    nk,
                    nq,
                    d,
                    k.as_ptr().add(dims.k.at(s.k_start, head)),
                    dims.k.row_stride,
                    1,
                    q.as_ptr().add(dims.q.at(s.q_start, head)),
                    1,
                    dims.q.row_stride,
                    sp,
                    ld,
                );
            }
            softmax_cols_scaled_isa(isa, st, nk, nq, ld, scale, sc.stats.as_mut_slice());
            // V rows k_start.. + nk of this head as NR-column panels per k-block.
            let v0 = dims.v.at(s.k_start, head);
            let v_rows = &v[v0..v0 + (nk - 1) * dims.v.row_stride + d];
            let vp: &[f32] = if v_in_place {
                v_rows
            } else {
                let vp = &mut sc.v_packed.as_mut_slice()[..nk * n_pad];
                pack_cols(isa, v_rows, nk, d, dims.v.row_stride, 1, k_blocks(nk), vp);
                vp
            };
            for (k0, kb) in k_blocks(nk) {
                for j in 0..n_pad / NR {
                    let b = &vp[k0 * n_pad + j * kb * NR..][..kb * NR];
                    for i0 in (0..nq).step_by(mr) {
                        // SAFETY: A = Pᵀ rows k0.. + kb, columns i0.. + mr ≤ ld of Sᵀ; B is
                        // one packed panel of kb × NR; the tile is output rows
                        // q_start + i0.. + min(mr, nq − i0) (inside the span, checked above)
                        // × this head's columns j·NR.. + min(NR, d − j·NR) — written by this
                        // task only, and `out` outlives the scoped parallel loop.
                        unsafe {
                            microkernel::run(
                                isa,
                                kb,
                                sp.add(k0 * ld + i0),
                                ld,
                                b.as_ptr(),
                                out_ptr
                                    .get()
                                    .add(out_layout.at(s.q_start + i0, head) + j * NR),
                                dims.ld_out,
                                mr.min(nq - i0),
                                NR.min(d - j * NR),
                                Epilogue {
                                    accumulate: k0 > 0,
                                    bias: std::ptr::null(),
                                    gelu: false,
                                },
                            )
                        };
                    }
                }
            }
        });
    };
    if !parallel || tasks <= 1 || rayon::current_num_threads() <= 1 {
        (0..tasks).for_each(run);
    } else {
        (0..tasks).into_par_iter().for_each(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 2_654_435_761usize) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// f64 attention of one (span, head).
    #[allow(clippy::too_many_arguments)]
    fn reference(
        qkv: &[f32],
        ld: usize,
        hidden: usize,
        s: SeqSpan,
        h: usize,
        d: usize,
        scale: f64,
    ) -> Vec<f64> {
        let mut out = vec![0f64; s.q_len * d];
        for i in 0..s.q_len {
            let qr = (s.q_start + i) * ld + h * d;
            let scores: Vec<f64> = (0..s.k_len)
                .map(|j| {
                    let kr = (s.k_start + j) * ld + hidden + h * d;
                    (0..d)
                        .map(|x| qkv[qr + x] as f64 * qkv[kr + x] as f64)
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = scores.iter().map(|x| (x - max).exp()).sum();
            for (j, sc) in scores.iter().enumerate() {
                let p = (sc - max).exp() / sum;
                let vr = (s.k_start + j) * ld + 2 * hidden + h * d;
                for x in 0..d {
                    out[i * d + x] += p * qkv[vr + x] as f64;
                }
            }
        }
        out
    }

    #[test]
    fn per_head_layout_equals_row_major() {
        for isa in Isa::available() {
            let (heads, d, tokens) = (2usize, 32usize, 50usize);
            let hidden = heads * d;
            let ld = 3 * hidden;
            let qkv = vals(tokens * ld, 9);
            // The same numbers as [3·heads, tokens, d] blocks.
            let mut blocks = vec![0f32; 3 * heads * tokens * d];
            for r in 0..tokens {
                for c in 0..ld {
                    blocks[(c / d) * tokens * d + r * d + c % d] = qkv[r * ld + c];
                }
            }
            let spans = [
                SeqSpan {
                    q_start: 0,
                    q_len: 20,
                    k_start: 0,
                    k_len: 20,
                },
                SeqSpan {
                    q_start: 20,
                    q_len: 30,
                    k_start: 21,
                    k_len: 29,
                },
            ];
            let scale = 0.25;
            let rm = HeadLayout::row_major(ld, d);
            let dims = AttentionDims {
                heads,
                head_dim: d,
                q: rm,
                k: rm,
                v: rm,
                ld_out: hidden,
            };
            let mut want = vec![0f32; tokens * hidden];
            multi_head_attention_isa(
                isa,
                &qkv,
                &qkv[hidden..],
                &qkv[2 * hidden..],
                &mut want,
                &spans,
                dims,
                scale,
                true,
            );
            let ph = HeadLayout::per_head(tokens, d);
            let dims = AttentionDims {
                q: ph,
                k: ph,
                v: ph,
                ..dims
            };
            let mut got = vec![0f32; tokens * hidden];
            let hb = heads * tokens * d;
            multi_head_attention_isa(
                isa,
                &blocks,
                &blocks[hb..],
                &blocks[2 * hb..],
                &mut got,
                &spans,
                dims,
                scale,
                true,
            );
            assert_eq!(got, want, "{isa:?}");
        }
    }

    #[test]
    fn ragged_sequences_match_f64_reference() {
        for isa in Isa::available() {
            let (heads, d) = (3, 20);
            let hidden = heads * d;
            let ld = 3 * hidden;
            let tokens = 40;
            let qkv = vals(tokens * ld, 5);
            // Sequence 0: 17 tokens; sequence 1: a non-key first token then 21 keys;
            // sequence 2: one token.
            let spans = [
                SeqSpan {
                    q_start: 0,
                    q_len: 17,
                    k_start: 0,
                    k_len: 17,
                },
                SeqSpan {
                    q_start: 17,
                    q_len: 22,
                    k_start: 18,
                    k_len: 21,
                },
                SeqSpan {
                    q_start: 39,
                    q_len: 1,
                    k_start: 39,
                    k_len: 1,
                },
            ];
            let mut out = vec![0f32; tokens * hidden];
            let rm = HeadLayout::row_major(ld, d);
            let dims = AttentionDims {
                heads,
                head_dim: d,
                q: rm,
                k: rm,
                v: rm,
                ld_out: hidden,
            };
            let scale = 1.0 / (d as f32).sqrt();
            multi_head_attention_isa(
                isa,
                &qkv,
                &qkv[hidden..],
                &qkv[2 * hidden..],
                &mut out,
                &spans,
                dims,
                scale,
                true,
            );
            for s in spans {
                for h in 0..heads {
                    let want = reference(&qkv, ld, hidden, s, h, d, scale as f64);
                    for i in 0..s.q_len {
                        for x in 0..d {
                            let g = out[(s.q_start + i) * hidden + h * d + x] as f64;
                            let w = want[i * d + x];
                            assert!((g - w).abs() < 2e-6, "{isa:?} {s:?} head {h}: {g} vs {w}");
                        }
                    }
                }
            }
        }
    }
}
