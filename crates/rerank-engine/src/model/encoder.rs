//! The transformer encoder stack shared by BERT and XLM-R (post-LayerNorm blocks:
//! self-attention → add & norm → feed-forward → add & norm), as `BertLayer` in transformers,
//! on the [`rerank_kernels`].
//!
//! Activations are ragged: only the tokens a batch needs (its real tokens, see
//! [`TokenLayout`]) are stored, `[tokens, hidden]` row-major, so padding costs nothing.
//! A layer runs in three parallel phases: the fused Q/K/V projection (parallel GEMM),
//! attention (parallel over sequence × head), then — parallel over blocks of rows, each block
//! kept in cache — output projection, add & norm, feed-forward with GELU fused into the GEMM,
//! add & norm.

use std::cell::RefCell;
use std::sync::Mutex;

use rayon::prelude::*;

use super::layers::{load_layer_norm, LinearWeights};
use crate::config::{EncoderConfig, HiddenAct};
use crate::error::Result;
use crate::precision::Precision;
use crate::weights::Weights;
use rerank_kernels::activation;
use rerank_kernels::attention::{
    multi_head_attention, multi_head_attention_serial, AttentionDims, HeadLayout, SeqSpan,
};
use rerank_kernels::buffer::AlignedVec;
use rerank_kernels::gemm::{OutLayout, PackedLinear, MC};
use rerank_kernels::isa::Isa;
use rerank_kernels::microkernel::NR;
use rerank_kernels::norm::LayerNormParams;

/// One `encoder.layer.N` block with a fused Q/K/V projection.
struct Layer {
    /// `[3·hidden, hidden]`: query, key, value stacked.
    qkv: PackedLinear,
    attn_out: PackedLinear,
    attn_norm: LayerNormParams,
    intermediate: PackedLinear,
    output: PackedLinear,
    out_norm: LayerNormParams,
}

/// Which tokens of a padded `[batch, seq_len]` input the encoder computes, and how they form
/// sequences.
#[derive(Debug, Clone, Default)]
pub struct TokenLayout {
    /// Flat input position (`row · seq_len + pos`) of each computed token, sequence after
    /// sequence.
    pub tokens: Vec<usize>,
    /// Per sequence: its token rows (queries) and the rows it attends to (keys). The first
    /// query row of each sequence is its position 0 (`[CLS]` / `<s>`).
    pub spans: Vec<SeqSpan>,
}

impl TokenLayout {
    /// Builds the layout from a `[batch, seq_len]` 0/1 attention mask: each row's real tokens
    /// (mask 1) are queries and keys. Position 0 is always computed (it feeds the
    /// classification head), as a query only if it is padding. A row without any real token
    /// attends to all its positions.
    pub fn from_mask(mask: &[u8], batch: usize, seq_len: usize) -> Self {
        let mut layout = TokenLayout::default();
        for row in 0..batch {
            let base = row * seq_len;
            let m = &mask[base..base + seq_len];
            let q_start = layout.tokens.len();
            if m.iter().all(|&v| v == 0) {
                layout.tokens.extend(base..base + seq_len);
                layout.spans.push(SeqSpan {
                    q_start,
                    q_len: seq_len,
                    k_start: q_start,
                    k_len: seq_len,
                });
                continue;
            }
            if m[0] == 0 {
                layout.tokens.push(base);
            }
            let k_start = layout.tokens.len();
            layout
                .tokens
                .extend((0..seq_len).filter(|&p| m[p] != 0).map(|p| base + p));
            let end = layout.tokens.len();
            layout.spans.push(SeqSpan {
                q_start,
                q_len: end - q_start,
                k_start,
                k_len: end - k_start,
            });
        }
        layout
    }
}

/// What [`Encoder::forward`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderOutput {
    /// The last hidden state of every computed token, `[tokens, hidden]`.
    AllTokens,
    /// Only each sequence's first token, `[batch, hidden]`; the last layer then computes
    /// attention queries, projections and the feed-forward for those tokens only.
    FirstTokens,
}

/// Per-thread scratch of the row-block phase.
#[derive(Default)]
struct RowScratch {
    /// `[rows, hidden]`: projection outputs before the residual add.
    tmp: AlignedVec,
    /// `[rows, intermediate]`: feed-forward activations.
    inter: AlignedVec,
}

thread_local! {
    static ROW_SCRATCH: RefCell<RowScratch> = RefCell::new(RowScratch::default());
    /// Q/K/V and attention buffers of the per-sequence tasks running on this thread.
    static SEQ_WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

/// Sequences per thread from which [`Encoder::forward`] runs one task per sequence.
pub const SEQS_PER_THREAD: usize = 4;

/// Rows a per-sequence task aims at: consecutive short sequences share a task (and so each
/// product) until they reach this many rows, so that the GEMM's partial row panels and the
/// streaming of each weight matrix are paid once per group instead of once per sequence.
/// Two kernel row blocks ([`MC`]).
const GROUP_ROWS: usize = 2 * MC;

/// Activation buffers of one forward pass, kept between calls (fresh pages cost page faults
/// and zeroing on every batch).
#[derive(Default)]
struct Workspace {
    /// `[tokens, 3·hidden]`: fused Q/K/V projection.
    qkv: Vec<f32>,
    /// `[tokens, hidden]`: attention output before its projection.
    ctx: Vec<f32>,
}

/// Workspaces larger than this (in floats, 64 MiB) are dropped after use rather than kept.
const MAX_KEPT_WORKSPACE: usize = 16 << 20;

/// `encoder.layer.*` of a BERT / XLM-R model.
pub struct Encoder {
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    intermediate: usize,
    act: HiddenAct,
    /// Reused by one forward pass at a time; concurrent callers allocate their own.
    workspace: Mutex<Workspace>,
}

impl Encoder {
    /// Loads `{prefix}encoder.layer.{0..num_hidden_layers}`; the linear layers compute in
    /// `precision`.
    pub fn load(
        w: &Weights,
        prefix: &str,
        cfg: &EncoderConfig,
        precision: Precision,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let i = cfg.intermediate_size;
        let eps = cfg.layer_norm_eps;
        let layers = (0..cfg.num_hidden_layers)
            .map(|n| {
                let p = format!("{prefix}encoder.layer.{n}");
                let lin = |name: &str, i_dim, o_dim| {
                    LinearWeights::load(w, &format!("{p}.{name}"), i_dim, o_dim, "")
                };
                let q = lin("attention.self.query", h, h)?;
                let k = lin("attention.self.key", h, h)?;
                let v = lin("attention.self.value", h, h)?;
                Ok(Layer {
                    qkv: LinearWeights::concat(&[q, k, v]).pack_as(precision),
                    attn_out: lin("attention.output.dense", h, h)?.pack_as(precision),
                    attn_norm: load_layer_norm(
                        w,
                        &format!("{p}.attention.output.LayerNorm"),
                        h,
                        eps,
                    )?,
                    intermediate: lin("intermediate.dense", h, i)?.pack_as(precision),
                    output: lin("output.dense", i, h)?.pack_as(precision),
                    out_norm: load_layer_norm(w, &format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            layers,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            hidden: h,
            intermediate: i,
            act: cfg.hidden_act,
            workspace: Mutex::new(Workspace::default()),
        })
    }

    /// Runs every layer on `x`: `[layout.tokens.len(), hidden]` embeddings. Returns the last
    /// hidden state of all tokens or of each sequence's first token (see [`EncoderOutput`]).
    ///
    /// Sequences never interact, so with enough of them (at least [`SEQS_PER_THREAD`] per
    /// thread) each runs through all layers as one single-threaded task: no barrier between
    /// layers, and a sequence's activations stay in its core's cache. Otherwise every product
    /// is parallel on its own. Both give the same bits.
    pub fn forward(&self, x: Vec<f32>, layout: &TokenLayout, output: EncoderOutput) -> Vec<f32> {
        let h = self.hidden;
        let t = layout.tokens.len();
        assert_eq!(x.len(), t * h, "embeddings are not [{t}, {h}]");
        let threads = rayon::current_num_threads();
        if threads > 1 && layout.spans.len() >= SEQS_PER_THREAD * threads {
            return self.forward_per_sequence(x, layout, output);
        }
        let mut x = x;
        // Buffers reused by every layer (and by the next call when free). Every element read
        // is written first in each layer, so stale contents are harmless.
        let mut guard = self.workspace.try_lock().ok();
        let mut local = Workspace::default();
        let ws = guard.as_deref_mut().unwrap_or(&mut local);
        let first = self.run_layers(&mut x, &layout.spans, output, ws, true);
        if ws.qkv.len() + ws.ctx.len() > MAX_KEPT_WORKSPACE {
            *ws = Workspace::default();
        }
        first.unwrap_or(x)
    }

    /// [`Encoder::forward`] as one single-threaded task per group of consecutive sequences
    /// (see [`group_spans`]).
    fn forward_per_sequence(
        &self,
        mut x: Vec<f32>,
        layout: &TokenLayout,
        output: EncoderOutput,
    ) -> Vec<f32> {
        let h = self.hidden;
        let min_tasks = SEQS_PER_THREAD * rayon::current_num_threads();
        // Each sequence's rows are contiguous and in order: cut x into one slice per group.
        let groups = group_spans(&layout.spans, min_tasks, GROUP_ROWS);
        let mut parts: Vec<(&mut [f32], Vec<SeqSpan>)> = Vec::with_capacity(groups.len());
        let mut rest: &mut [f32] = &mut x;
        let mut row = 0;
        for group in groups {
            let first_row = row;
            let mut local = Vec::with_capacity(group.len());
            for s in &layout.spans[group] {
                assert_eq!(s.q_start, row, "sequences must be contiguous");
                row += s.q_len;
                // The same span, relative to the group's first row.
                local.push(SeqSpan {
                    q_start: s.q_start - first_row,
                    k_start: s.k_start - first_row,
                    ..*s
                });
            }
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut((row - first_row) * h);
            rest = tail;
            parts.push((mine, local));
        }
        let firsts: Vec<Option<Vec<f32>>> = parts
            .into_par_iter()
            .map(|(xs, spans)| {
                SEQ_WORKSPACE.with(|cell| {
                    let mut ws = cell.borrow_mut();
                    let first = self.run_layers(xs, &spans, output, &mut ws, false);
                    if ws.qkv.len() + ws.ctx.len() > MAX_KEPT_WORKSPACE {
                        *ws = Workspace::default();
                    }
                    first
                })
            })
            .collect();
        match output {
            EncoderOutput::AllTokens => x,
            EncoderOutput::FirstTokens => firsts.into_iter().flatten().flatten().collect(),
        }
    }

    /// Runs the layers on `x` (`[tokens, hidden]`, updated in place) for the sequences
    /// `spans`, using `ws` for Q/K/V and the attention output; products are parallel when
    /// `parallel`. Returns the first rows `[spans.len(), hidden]` for
    /// [`EncoderOutput::FirstTokens`] (the last layer then runs for those rows only), `None`
    /// for [`EncoderOutput::AllTokens`].
    fn run_layers(
        &self,
        x: &mut [f32],
        spans: &[SeqSpan],
        output: EncoderOutput,
        ws: &mut Workspace,
        parallel: bool,
    ) -> Option<Vec<f32>> {
        let h = self.hidden;
        let t = x.len() / h.max(1);
        ws.qkv.resize(t * 3 * h, 0.0);
        ws.ctx.resize(t * h, 0.0);
        let (qkv, ctx) = (&mut ws.qkv[..], &mut ws.ctx[..]);
        let d = self.head_dim;
        let scale = (1.0 / (d as f64).sqrt()) as f32;
        // Q/K/V as one [tokens, head_dim] block per head when heads are whole kernel panels
        // (each head's rows are then contiguous for attention), else row-major [tokens, 3h].
        let per_head = d.is_multiple_of(NR);
        let (qkv_out, head_layout, kv_offset) = if per_head {
            (
                OutLayout::blocked(d, t),
                HeadLayout::per_head(t, d),
                self.heads * t * d,
            )
        } else {
            (
                OutLayout::row_major(3 * h),
                HeadLayout::row_major(3 * h, d),
                h,
            )
        };
        let dims = AttentionDims {
            heads: self.heads,
            head_dim: d,
            q: head_layout,
            k: head_layout,
            v: head_layout,
            ld_out: h,
        };
        let qkv_proj = |layer: &Layer, a: &[f32], m: usize, cols, out: &mut [f32], l| {
            if parallel {
                layer.qkv.forward_into_layout(a, h, m, cols, out, l, false);
            } else {
                layer
                    .qkv
                    .forward_serial_layout(a, h, m, cols, out, l, false);
            }
        };
        let attention = |q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], s: &[SeqSpan], dims| {
            if parallel {
                multi_head_attention(q, k, v, out, s, dims, scale);
            } else {
                multi_head_attention_serial(q, k, v, out, s, dims, scale);
            }
        };
        let n_layers = self.layers.len();
        for (li, layer) in self.layers.iter().enumerate() {
            if output == EncoderOutput::FirstTokens && li + 1 == n_layers {
                // Last layer for each sequence's first token only: keys and values of every
                // token (the query columns too when they cannot be skipped on a panel
                // boundary), everything else for one row per sequence.
                let kv_cols = if h.is_multiple_of(NR) {
                    h..3 * h
                } else {
                    0..3 * h
                };
                qkv_proj(layer, x, t, kv_cols, qkv, qkv_out);
                let mut xq = first_rows(x, spans, h);
                let b = spans.len();
                let mut q = vec![0f32; b * h];
                qkv_proj(layer, &xq, b, 0..h, &mut q, OutLayout::row_major(h));
                let first_spans: Vec<SeqSpan> = spans
                    .iter()
                    .enumerate()
                    .map(|(i, s)| SeqSpan {
                        q_start: i,
                        q_len: 1,
                        ..*s
                    })
                    .collect();
                let mut ctx_q = vec![0f32; b * h];
                let dims_q = AttentionDims {
                    q: HeadLayout::row_major(h, d),
                    ..dims
                };
                attention(
                    &q,
                    &qkv[kv_offset..],
                    &qkv[2 * kv_offset..],
                    &mut ctx_q,
                    &first_spans,
                    dims_q,
                );
                self.post_attention(layer, &mut xq, &ctx_q, parallel);
                return Some(xq);
            }
            qkv_proj(layer, x, t, 0..3 * h, qkv, qkv_out);
            attention(
                qkv,
                &qkv[kv_offset..],
                &qkv[2 * kv_offset..],
                ctx,
                spans,
                dims,
            );
            self.post_attention(layer, x, ctx, parallel);
        }
        match output {
            EncoderOutput::AllTokens => None,
            // Only without layers: the embeddings of the first tokens.
            EncoderOutput::FirstTokens => Some(first_rows(x, spans, h)),
        }
    }

    /// `x ← LN2(y + FFN(y))` with `y = LN1(x + ctx·Woᵀ + bo)`, by blocks of rows (each
    /// block's intermediate activations stay in the thread's cache), in parallel over the
    /// blocks when `parallel`.
    fn post_attention(&self, layer: &Layer, x: &mut [f32], ctx: &[f32], parallel: bool) {
        let h = self.hidden;
        let inter_dim = self.intermediate;
        let rows = x.len() / h.max(1);
        if rows == 0 {
            return;
        }
        let threads = rayon::current_num_threads();
        let mr = Isa::active().mr();
        let rb = if parallel {
            rows.div_ceil(2 * threads)
                .div_ceil(mr)
                .saturating_mul(mr)
                .clamp(mr, MC)
        } else {
            MC
        };
        let fused_gelu = self.act == HiddenAct::GeluErf;
        let block = |(xb, cb): (&mut [f32], &[f32])| {
            let r = xb.len() / h;
            ROW_SCRATCH.with(|cell| {
                let mut s = cell.borrow_mut();
                let s = &mut *s;
                s.tmp.ensure(r * h);
                s.inter.ensure(r * inter_dim);
                let tmp = &mut s.tmp.as_mut_slice()[..r * h];
                let inter = &mut s.inter.as_mut_slice()[..r * inter_dim];
                layer.attn_out.forward_serial(cb, h, r, tmp, h, false);
                layer.attn_norm.forward_residual(xb, tmp);
                layer
                    .intermediate
                    .forward_serial(xb, h, r, inter, inter_dim, fused_gelu);
                match self.act {
                    HiddenAct::GeluErf => {}
                    HiddenAct::GeluTanh => activation::gelu_tanh(inter),
                    HiddenAct::Relu => activation::relu(inter),
                    HiddenAct::Silu => activation::silu(inter),
                }
                layer
                    .output
                    .forward_serial(inter, inter_dim, r, tmp, h, false);
                layer.out_norm.forward_residual(xb, tmp);
            });
        };
        if parallel && rows > rb {
            x.par_chunks_mut(rb * h)
                .zip(ctx.par_chunks(rb * h))
                .for_each(block);
        } else {
            x.chunks_mut(rb * h).zip(ctx.chunks(rb * h)).for_each(block);
        }
    }
}

/// Cuts `spans` into runs of consecutive sequences, each closed once it holds `target_rows`
/// query rows (lowered to `1/min_groups` of all rows when that is smaller), and always keeping
/// at least `min_groups` runs when there are that many sequences (each run is one parallel
/// task). Returns index ranges.
fn group_spans(
    spans: &[SeqSpan],
    min_groups: usize,
    target_rows: usize,
) -> Vec<std::ops::Range<usize>> {
    let total: usize = spans.iter().map(|s| s.q_len).sum();
    let target = target_rows.min(total / min_groups.max(1)).max(1);
    let mut groups = Vec::new();
    let need = min_groups.min(spans.len());
    let (mut start, mut rows) = (0, 0);
    for (i, s) in spans.iter().enumerate() {
        rows += s.q_len;
        // Extending this run to the next sequence would leave too few sequences for `need`.
        let must_close = groups.len() + (spans.len() - i - 1) < need;
        if rows >= target || must_close {
            groups.push(start..i + 1);
            (start, rows) = (i + 1, 0);
        }
    }
    if start < spans.len() {
        groups.push(start..spans.len());
    }
    groups
}

/// Row `spans[i].q_start` of `x` for every sequence `i` → `[spans.len(), h]`.
fn first_rows(x: &[f32], spans: &[SeqSpan], h: usize) -> Vec<f32> {
    spans
        .iter()
        .flat_map(|s| x[s.q_start * h..(s.q_start + 1) * h].iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(q_len: usize) -> SeqSpan {
        SeqSpan {
            q_start: 0,
            q_len,
            k_start: 0,
            k_len: q_len,
        }
    }

    #[test]
    fn groups_cover_every_sequence_once_and_keep_enough_tasks() {
        let spans: Vec<SeqSpan> = [200, 150, 150, 100, 90, 80, 70, 60, 50, 40]
            .into_iter()
            .map(span)
            .collect();
        // Target 336 rows, but at least 4 groups of the 990 rows: target 247.
        let g = group_spans(&spans, 4, 336);
        assert_eq!(g, vec![0..2, 2..4, 4..8, 8..10]);
        // A sequence is never split, and asking for as many groups as sequences keeps each
        // alone even when the row target would merge them.
        assert_eq!(group_spans(&spans[..3], 3, 336), vec![0..1, 1..2, 2..3]);
        let g = group_spans(&spans, 1, 10_000);
        assert_eq!(g, vec![0..10]);
    }

    #[test]
    fn layout_skips_padding_and_keeps_position_zero() {
        // Row 0: 3 real + 1 pad; row 1: left-padded; row 2: no real token.
        let mask = [1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0];
        let l = TokenLayout::from_mask(&mask, 3, 4);
        assert_eq!(l.tokens, vec![0, 1, 2, 4, 5, 6, 8, 9, 10, 11]);
        assert_eq!(
            l.spans,
            vec![
                SeqSpan {
                    q_start: 0,
                    q_len: 3,
                    k_start: 0,
                    k_len: 3
                },
                SeqSpan {
                    q_start: 3,
                    q_len: 3,
                    k_start: 4,
                    k_len: 2
                },
                SeqSpan {
                    q_start: 6,
                    q_len: 4,
                    k_start: 6,
                    k_len: 4
                },
            ]
        );
    }
}
