//! Scaled dot-product attention over ragged sequences (no padding), with a mask mode
//! (bidirectional, causal, sliding window), grouped-query heads, any head width, and queries
//! for a chosen subset of rows (e.g. only each sequence's first or last token).
//!
//! Every sequence attends only to its own keys, so padding costs nothing and a sequence's
//! result does not depend on the batch it is in. Masked keys get probability exactly 0, as in
//! PyTorch's additive-mask attention (there a masked score is `s + f32::MIN` and its weight
//! `exp(f32::MIN − max) = 0`), so the result equals transformers' eager attention up to f32
//! summation order.
//!
//! Work is parallel over (sequence, query block, head). Each task computes the scores
//! transposed, `Sᵀ = K·Qᵀ` (`[keys, queries]`, each score the same dot product as in `Q·Kᵀ`),
//! for the keys its queries can see, sets masked scores to `−∞`, takes the softmax down the
//! columns (vectorised across queries), and computes `O = P·V` with the GEMM micro-kernel
//! reading `P` straight out of `Sᵀ` (which already has the packed-`A` layout), so the
//! probabilities are never repacked.
//!
//! Bits: a query's output is computed by the same operations whatever block it is in and
//! whichever other queries are computed with it — scores are independent dot products,
//! masked keys add exact zeros, and the `P·V` sum is cut into k-blocks at positions fixed by
//! the sequence's key count (not by the keys a block happens to see). So computing only some
//! query rows (say the first token in the last layer) gives the same bits as computing all.

use std::cell::RefCell;
use std::ops::Range;

use crate::buffer::{AlignedVec, SendPtr};
use crate::gemm::{gemm_strided_serial, k_blocks};
use crate::isa::Isa;
use crate::layout::HeadLayout;
use crate::microkernel::{self, Epilogue, NR};
use crate::pack::pack_cols;
use crate::schedule::Parallelism;
use crate::softmax::softmax_cols_scaled_isa;

/// Scores of one task kept at most (floats): longer bidirectional or causal sequences are cut
/// into blocks of queries so that `Sᵀ` stays at most 4 MiB per thread.
pub(crate) const SCORE_BUDGET: usize = 1 << 20;
/// Queries per block of a causal sequence (the wasted, masked half of a block is small).
const CAUSAL_BLOCK: usize = 128;

/// Per-thread scratch of one task.
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

/// Which keys each query sees. Positions count a sequence's keys from 0; a query at position
/// `p` is the token whose key is at `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionMask {
    /// Every key of the sequence (BERT, XLM-R, ModernBERT global layers).
    Bidirectional,
    /// Keys at positions `≤ p` (decoder models such as Qwen3).
    Causal,
    /// Keys at positions within `±half_width` of `p`, i.e. `|p − j| ≤ half_width`
    /// (ModernBERT's local layers: `half_width = local_attention / 2`, as transformers'
    /// `window_mask = distance <= local_attention // 2`).
    SlidingWindow {
        /// Keys seen on each side of the query.
        half_width: usize,
    },
}

impl AttentionMask {
    /// Key positions a query at position `pos` sees in a sequence of `len` keys
    /// (`pos < len`). Both ends are non-decreasing in `pos`.
    pub fn keys(&self, pos: usize, len: usize) -> Range<usize> {
        match *self {
            AttentionMask::Bidirectional => 0..len,
            AttentionMask::Causal => 0..(pos + 1).min(len),
            AttentionMask::SlidingWindow { half_width } => {
                pos.saturating_sub(half_width)..pos.saturating_add(half_width + 1).min(len)
            }
        }
    }
}

/// One sequence of a ragged batch as attention sees it: its keys/values are rows
/// `k_start .. k_start + k_len` of K and V; its queries are rows `q_start .. q_start + q_len`
/// of Q (and of the output), at key positions `q_pos .. q_pos + q_len`.
///
/// All tokens as queries: [`SeqSpan::full`]; a subset of query rows: [`SeqSpan::queries`]
/// (e.g. only the first token, with Q and the output holding one row per sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqSpan {
    /// First query row in Q and in the output.
    pub q_start: usize,
    /// Query rows.
    pub q_len: usize,
    /// Key position of the first query row (query row `i` is at `q_pos + i`).
    pub q_pos: usize,
    /// First key / value row in K and V.
    pub k_start: usize,
    /// Key / value rows (the sequence's tokens).
    pub k_len: usize,
}

impl SeqSpan {
    /// A sequence of `len` tokens at rows `start ..` of Q, K, V and the output, every token a
    /// query.
    pub fn full(start: usize, len: usize) -> Self {
        SeqSpan {
            q_start: start,
            q_len: len,
            q_pos: 0,
            k_start: start,
            k_len: len,
        }
    }

    /// The same keys, with `q_len` queries at positions `q_pos ..` read from (and written
    /// to) rows `q_start ..`.
    pub fn queries(self, q_start: usize, q_pos: usize, q_len: usize) -> Self {
        SeqSpan {
            q_start,
            q_pos,
            q_len,
            ..self
        }
    }
}

/// Geometry of an attention call: `heads` query heads of `head_dim` floats sharing
/// `kv_heads` key/value heads (grouped-query attention: query head `h` reads key/value head
/// `h / (heads / kv_heads)`, as transformers' `repeat_kv`), the layouts of Q, K and V, the
/// score scale, and the mask. The output is row-major `[rows, ld_out]` with head `h` at
/// columns `h·head_dim ..`.
#[derive(Debug, Clone, Copy)]
pub struct Attention {
    /// Query heads.
    pub heads: usize,
    /// Key / value heads (a divisor of `heads`; equal for multi-head attention).
    pub kv_heads: usize,
    /// Floats per head (need not be `hidden / heads`, e.g. Qwen3's 128).
    pub head_dim: usize,
    /// Where Q keeps head `h` of row `r`.
    pub q: HeadLayout,
    /// Where K keeps key/value head `g` of row `r`.
    pub k: HeadLayout,
    /// Where V keeps key/value head `g` of row `r`.
    pub v: HeadLayout,
    /// Row stride of the output buffer (at least `heads · head_dim`).
    pub ld_out: usize,
    /// Multiplies every score before the softmax (usually `head_dim^-½`).
    pub scale: f32,
    /// Which keys each query sees.
    pub mask: AttentionMask,
}

impl Attention {
    /// Multi-head attention (`kv_heads = heads`), all of Q, K, V in one `layout`, output
    /// `[rows, heads·head_dim]`, scale `head_dim^-½` (computed in f64, rounded to f32).
    pub fn multi_head(heads: usize, head_dim: usize, layout: HeadLayout) -> Self {
        Attention {
            heads,
            kv_heads: heads,
            head_dim,
            q: layout,
            k: layout,
            v: layout,
            ld_out: heads * head_dim,
            scale: (1.0 / (head_dim as f64).sqrt()) as f32,
            mask: AttentionMask::Bidirectional,
        }
    }

    /// For every span `s` and head `h`: the output rows of `s`'s queries, head `h`, get
    /// `softmax(Q·Kᵀ · scale + mask) · V` over `s`'s keys.
    ///
    /// `q`, `k`, `v` start at element 0 of head 0 (e.g. `k = &qkv[hidden..]` for a fused
    /// row-major `[tokens, 3·hidden]` projection). Output rows not named by a span are left
    /// untouched; spans must not name the same output row twice.
    ///
    /// Panics if a span reaches outside its buffer, a query position is not below `k_len`,
    /// or `kv_heads` does not divide `heads`.
    pub fn run(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        spans: &[SeqSpan],
        par: Parallelism,
    ) {
        self.run_isa(Isa::active(), q, k, v, out, spans, par);
    }

    /// The argument checks of [`Attention::run`] (see its panics); returns the query heads
    /// per key/value head, or `None` when there is nothing to compute.
    pub(crate) fn check(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &[f32],
        spans: &[SeqSpan],
    ) -> Option<usize> {
        let (heads, kv_heads, d) = (self.heads, self.kv_heads, self.head_dim);
        if heads == 0 || d == 0 {
            return None;
        }
        assert!(
            kv_heads > 0 && heads.is_multiple_of(kv_heads),
            "{kv_heads} key/value heads for {heads} query heads"
        );
        let group = heads / kv_heads;
        let out_layout = HeadLayout::row_major(self.ld_out, d);
        assert!(self.ld_out >= heads * d, "output row stride too small");
        for s in spans {
            assert!(
                self.q.fits(q.len(), s.q_start, s.q_len, heads, d),
                "query rows {s:?}"
            );
            assert!(
                out_layout.fits(out.len(), s.q_start, s.q_len, heads, d),
                "output rows {s:?}"
            );
            assert!(
                self.k.fits(k.len(), s.k_start, s.k_len, kv_heads, d),
                "key rows {s:?}"
            );
            assert!(
                self.v.fits(v.len(), s.k_start, s.k_len, kv_heads, d),
                "value rows {s:?}"
            );
            assert!(
                s.q_len == 0 || s.q_pos + s.q_len <= s.k_len,
                "query positions {s:?} beyond the keys"
            );
        }
        Some(group)
    }

    /// Queries per block of a span: all of them unless the scores would exceed the budget
    /// (or the mask makes most of a long block's scores wasted).
    fn query_block(&self, s: &SeqSpan, mr: usize) -> usize {
        let cap = match self.mask {
            AttentionMask::Bidirectional => SCORE_BUDGET / s.k_len.max(1),
            AttentionMask::Causal => CAUSAL_BLOCK.min(SCORE_BUDGET / s.k_len.max(1)),
            AttentionMask::SlidingWindow { half_width } => half_width.clamp(32, 256),
        };
        let cap = cap.div_ceil(mr).max(1) * mr;
        s.q_len.min(cap).max(1)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_isa(
        &self,
        isa: Isa,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        spans: &[SeqSpan],
        par: Parallelism,
    ) {
        let Some(group) = self.check(q, k, v, out, spans) else {
            return;
        };
        let (heads, d) = (self.heads, self.head_dim);
        let out_layout = HeadLayout::row_major(self.ld_out, d);
        let mr = isa.mr();
        // (span, first query row within the span, queries) of every block.
        let mut blocks: Vec<(usize, usize, usize)> = Vec::new();
        for (si, s) in spans.iter().enumerate() {
            if s.q_len == 0 || s.k_len == 0 {
                continue;
            }
            let qb = self.query_block(s, mr);
            blocks.extend(
                (0..s.q_len)
                    .step_by(qb)
                    .map(|i0| (si, i0, qb.min(s.q_len - i0))),
            );
        }
        let out_ptr = SendPtr(out.as_mut_ptr());
        let tasks = blocks.len() * heads;
        let run = |t: usize| {
            let (si, i0, nq) = blocks[t / heads];
            let head = t % heads;
            let kv_head = head / group;
            let s = spans[si];
            let pos0 = s.q_pos + i0;
            let keys =
                self.mask.keys(pos0, s.k_len).start..self.mask.keys(pos0 + nq - 1, s.k_len).end;
            let nk = keys.len();
            SCRATCH.with(|cell| {
                let mut guard = cell.borrow_mut();
                let sc = &mut *guard;
                // Row stride of Sᵀ: the kernel reads `mr` queries per key, all inside the row;
                // a multiple of 16 floats keeps rows on cache lines.
                let ld = (nq.div_ceil(mr) * mr).div_ceil(16).max(1) * 16;
                sc.scores.ensure(nk * ld);
                sc.stats.ensure(2 * ld);
                let n_pad = d.div_ceil(NR) * NR;
                // A head's values already form the packed panel when they are NR wide and dense.
                let v_in_place = d == NR && self.v.row_stride == NR;
                if !v_in_place {
                    sc.v_packed.ensure(nk * n_pad);
                }
                let st = &mut sc.scores.as_mut_slice()[..nk * ld];
                // Padding columns are read by the kernel for rows it does not store: keep them 0.
                for row in st.chunks_exact_mut(ld) {
                    row[nq..].fill(0.0);
                }
                let sp = st.as_mut_ptr();
                // SAFETY: spans were checked against the buffers above: this head's d columns
                // of K rows k_start + keys and Q rows q_start + i0 .. + nq are readable; Sᵀ
                // holds nk × ld ≥ nk × nq floats and does not overlap them; `isa` is the
                // detected one.
                unsafe {
                    gemm_strided_serial(
                        isa,
                        nk,
                        nq,
                        d,
                        k.as_ptr().add(self.k.at(s.k_start + keys.start, kv_head)),
                        self.k.row_stride,
                        1,
                        q.as_ptr().add(self.q.at(s.q_start + i0, head)),
                        1,
                        self.q.row_stride,
                        sp,
                        ld,
                    );
                }
                if self.mask != AttentionMask::Bidirectional {
                    for i in 0..nq {
                        let seen = self.mask.keys(pos0 + i, s.k_len);
                        let (lo, hi) = (seen.start - keys.start, seen.end - keys.start);
                        for j in (0..lo).chain(hi..nk) {
                            st[j * ld + i] = f32::NEG_INFINITY;
                        }
                    }
                }
                softmax_cols_scaled_isa(isa, st, nk, nq, ld, self.scale, sc.stats.as_mut_slice());
                // The P·V sum in k-blocks fixed by the sequence's key count, clipped to the
                // keys this block sees (relative to `keys.start`).
                let kb_list: Vec<(usize, usize)> = k_blocks(s.k_len)
                    .filter_map(|(b0, bl)| {
                        let (a, b) = (b0.max(keys.start), (b0 + bl).min(keys.end));
                        (a < b).then(|| (a - keys.start, b - a))
                    })
                    .collect();
                // V rows k_start + keys of this head as NR-column panels per k-block.
                let v0 = self.v.at(s.k_start + keys.start, kv_head);
                let v_rows = &v[v0..v0 + (nk - 1) * self.v.row_stride + d];
                let vp: &[f32] = if v_in_place {
                    v_rows
                } else {
                    let vp = &mut sc.v_packed.as_mut_slice()[..nk * n_pad];
                    pack_cols(
                        isa,
                        v_rows,
                        nk,
                        d,
                        self.v.row_stride,
                        1,
                        kb_list.iter().copied(),
                        vp,
                    );
                    vp
                };
                for (bi, &(k0, kb)) in kb_list.iter().enumerate() {
                    for j in 0..n_pad / NR {
                        let b = &vp[k0 * n_pad + j * kb * NR..][..kb * NR];
                        for ii in (0..nq).step_by(mr) {
                            // SAFETY: A = Pᵀ rows k0.. + kb, columns ii.. + mr ≤ ld of Sᵀ; B
                            // is one packed panel of kb × NR; the tile is output rows
                            // q_start + i0 + ii.. + min(mr, nq − ii) (inside the span,
                            // checked above) × this head's columns j·NR.. + min(NR, d − j·NR)
                            // — written by this task only, and `out` outlives the scoped
                            // parallel loop.
                            unsafe {
                                microkernel::run(
                                    isa,
                                    kb,
                                    sp.add(k0 * ld + ii),
                                    ld,
                                    b.as_ptr(),
                                    out_ptr
                                        .get()
                                        .add(out_layout.at(s.q_start + i0 + ii, head) + j * NR),
                                    self.ld_out,
                                    mr.min(nq - ii),
                                    NR.min(d - j * NR),
                                    Epilogue {
                                        accumulate: bi > 0,
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
        par.for_each_task(tasks, run);
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

    /// f64 attention of query `i` (position `pos`) of one sequence, one head: Q row at `qr`,
    /// K / V rows `k_rows(j)` / `v_rows(j)` for key position j.
    #[allow(clippy::too_many_arguments)]
    fn reference_row(
        q: &[f32],
        qr: usize,
        k: &[f32],
        v: &[f32],
        kv: impl Fn(usize) -> (usize, usize),
        keys: Range<usize>,
        d: usize,
        scale: f64,
    ) -> Vec<f64> {
        let scores: Vec<f64> = keys
            .clone()
            .map(|j| {
                let (kr, _) = kv(j);
                (0..d)
                    .map(|x| q[qr + x] as f64 * k[kr + x] as f64)
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = scores.iter().map(|x| (x - max).exp()).sum();
        let mut out = vec![0f64; d];
        for (j, sc) in keys.zip(&scores) {
            let p = (sc - max).exp() / sum;
            let (_, vr) = kv(j);
            for x in 0..d {
                out[x] += p * v[vr + x] as f64;
            }
        }
        out
    }

    /// Row-major `[tokens, heads·d]` Q and `[tokens, kv_heads·d]` K, V for the spans, the
    /// output of `attn`, and a check of every named output element against f64.
    fn check(attn: &Attention, tokens: usize, spans: &[SeqSpan], q_rows: usize, isa: Isa) {
        let (h, g, d) = (attn.heads, attn.kv_heads, attn.head_dim);
        let len = |l: HeadLayout, rows: usize, heads: usize| l.at(rows - 1, heads - 1) + d;
        let q = vals(len(attn.q, q_rows, h), 1);
        let k = vals(len(attn.k, tokens, g), 2);
        let v = vals(len(attn.v, tokens, g), 3);
        let mut out = vec![f32::NAN; q_rows * attn.ld_out];
        attn.run_isa(isa, &q, &k, &v, &mut out, spans, Parallelism::Parallel);
        for s in spans {
            for i in 0..s.q_len {
                let pos = s.q_pos + i;
                for head in 0..h {
                    let kvh = head / (h / g);
                    let want = reference_row(
                        &q,
                        attn.q.at(s.q_start + i, head),
                        &k,
                        &v,
                        |j| (attn.k.at(s.k_start + j, kvh), attn.v.at(s.k_start + j, kvh)),
                        attn.mask.keys(pos, s.k_len),
                        d,
                        attn.scale as f64,
                    );
                    for x in 0..d {
                        let got = out[(s.q_start + i) * attn.ld_out + head * d + x] as f64;
                        assert!(
                            (got - want[x]).abs() < 2e-6,
                            "{isa:?} {:?} {s:?} query {i} head {head} [{x}]: {got} vs {}",
                            attn.mask,
                            want[x]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn ragged_sequences_match_f64_for_every_mask_and_isa() {
        let masks = [
            AttentionMask::Bidirectional,
            AttentionMask::Causal,
            AttentionMask::SlidingWindow { half_width: 3 },
            AttentionMask::SlidingWindow { half_width: 40 },
        ];
        for isa in Isa::available() {
            for mask in masks {
                let (heads, d) = (3, 20);
                let layout = HeadLayout::row_major(heads * d, d);
                let attn = Attention {
                    mask,
                    ..Attention::multi_head(heads, d, layout)
                };
                let spans = [
                    SeqSpan::full(0, 17),
                    SeqSpan::full(17, 70),
                    SeqSpan::full(87, 1),
                ];
                check(&attn, 88, &spans, 88, isa);
            }
        }
    }

    #[test]
    fn grouped_query_heads_with_a_wide_head_dim() {
        // Qwen3-like: 4 query heads sharing 2 KV heads, head_dim 48 ≠ hidden / heads.
        for isa in Isa::available() {
            for mask in [AttentionMask::Causal, AttentionMask::Bidirectional] {
                let (h, g, d) = (4, 2, 48);
                let attn = Attention {
                    heads: h,
                    kv_heads: g,
                    head_dim: d,
                    q: HeadLayout::row_major(h * d, d),
                    k: HeadLayout::row_major(g * d, d),
                    v: HeadLayout::row_major(g * d, d),
                    ld_out: h * d + 5,
                    scale: 0.3,
                    mask,
                };
                let spans = [SeqSpan::full(0, 30), SeqSpan::full(30, 9)];
                check(&attn, 39, &spans, 39, isa);
            }
        }
    }

    #[test]
    fn long_sequences_are_cut_into_query_blocks() {
        // 1100 keys: bidirectional blocks of ⌈2²⁰ / 1100⌉ queries, causal blocks of 128, and
        // k-blocks of 367 keys for the P·V sum.
        let isa = Isa::active();
        for mask in [
            AttentionMask::Bidirectional,
            AttentionMask::Causal,
            AttentionMask::SlidingWindow { half_width: 64 },
        ] {
            let layout = HeadLayout::per_head(1100, 32);
            let attn = Attention {
                mask,
                ..Attention::multi_head(2, 32, layout)
            };
            check(&attn, 1100, &[SeqSpan::full(0, 1100)], 1100, isa);
        }
    }

    #[test]
    fn a_subset_of_queries_gives_the_same_bits_as_all() {
        for isa in Isa::available() {
            for mask in [
                AttentionMask::Bidirectional,
                AttentionMask::Causal,
                AttentionMask::SlidingWindow { half_width: 5 },
            ] {
                let (heads, d, tokens) = (2, 16, 600);
                let layout = HeadLayout::row_major(heads * d, d);
                let attn = Attention {
                    mask,
                    ..Attention::multi_head(heads, d, layout)
                };
                let qkv = vals(tokens * heads * d, 7);
                let lens = [450usize, 150];
                let spans = [SeqSpan::full(0, lens[0]), SeqSpan::full(lens[0], lens[1])];
                let mut all = vec![0f32; tokens * heads * d];
                attn.run_isa(
                    isa,
                    &qkv,
                    &qkv,
                    &qkv,
                    &mut all,
                    &spans,
                    Parallelism::Parallel,
                );
                // First and last token of each sequence, as a 4-row Q and output.
                let picks = [(0usize, 0usize), (0, lens[0] - 1), (1, 0), (1, lens[1] - 1)];
                let mut q_sub = Vec::new();
                let mut sub_spans = Vec::new();
                for (row, &(si, pos)) in picks.iter().enumerate() {
                    let r = spans[si].k_start + pos;
                    q_sub.extend_from_slice(&qkv[r * heads * d..(r + 1) * heads * d]);
                    sub_spans.push(spans[si].queries(row, pos, 1));
                }
                let mut sub = vec![0f32; picks.len() * heads * d];
                attn.run_isa(
                    isa,
                    &q_sub,
                    &qkv,
                    &qkv,
                    &mut sub,
                    &sub_spans,
                    Parallelism::Serial,
                );
                for (row, &(si, pos)) in picks.iter().enumerate() {
                    let r = spans[si].k_start + pos;
                    assert_eq!(
                        &sub[row * heads * d..(row + 1) * heads * d],
                        &all[r * heads * d..(r + 1) * heads * d],
                        "{isa:?} {mask:?} sequence {si} position {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_sequence_gives_the_same_bits_alone_and_in_a_batch() {
        let isa = Isa::active();
        let (heads, d) = (2, 32);
        let layout = HeadLayout::row_major(heads * d, d);
        for mask in [
            AttentionMask::Bidirectional,
            AttentionMask::SlidingWindow { half_width: 8 },
        ] {
            let attn = Attention {
                mask,
                ..Attention::multi_head(heads, d, layout)
            };
            let qkv = vals(500 * heads * d, 11);
            let spans = [SeqSpan::full(0, 300), SeqSpan::full(300, 200)];
            let mut batch = vec![0f32; 500 * heads * d];
            attn.run_isa(
                isa,
                &qkv,
                &qkv,
                &qkv,
                &mut batch,
                &spans,
                Parallelism::Parallel,
            );
            let second = &qkv[300 * heads * d..];
            let mut alone = vec![0f32; 200 * heads * d];
            let one = [SeqSpan::full(0, 200)];
            attn.run_isa(
                isa,
                second,
                second,
                second,
                &mut alone,
                &one,
                Parallelism::Serial,
            );
            assert_eq!(&batch[300 * heads * d..], &alone[..], "{mask:?}");
        }
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
            let spans = [SeqSpan::full(0, 20), SeqSpan::full(20, 30)];
            let attn = Attention {
                scale: 0.25,
                ..Attention::multi_head(heads, d, HeadLayout::row_major(ld, d))
            };
            let mut want = vec![0f32; tokens * hidden];
            let par = Parallelism::Parallel;
            let (q, k, v) = (&qkv[..], &qkv[hidden..], &qkv[2 * hidden..]);
            attn.run_isa(isa, q, k, v, &mut want, &spans, par);
            let ph = HeadLayout::per_head(tokens, d);
            let attn = Attention {
                q: ph,
                k: ph,
                v: ph,
                ..attn
            };
            let mut got = vec![0f32; tokens * hidden];
            let hb = heads * tokens * d;
            let (q, k, v) = (&blocks[..], &blocks[hb..], &blocks[2 * hb..]);
            attn.run_isa(isa, q, k, v, &mut got, &spans, par);
            assert_eq!(got, want, "{isa:?}");
        }
    }

    #[test]
    fn mask_key_ranges() {
        let w = AttentionMask::SlidingWindow { half_width: 2 };
        assert_eq!(w.keys(0, 10), 0..3);
        assert_eq!(w.keys(5, 10), 3..8);
        assert_eq!(w.keys(9, 10), 7..10);
        assert_eq!(AttentionMask::Causal.keys(4, 10), 0..5);
        assert_eq!(AttentionMask::Bidirectional.keys(4, 10), 0..10);
    }
}
