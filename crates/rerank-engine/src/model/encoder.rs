//! The transformer encoder stack shared by BERT and XLM-R (post-LayerNorm blocks:
//! self-attention → add & norm → feed-forward → add & norm), as `BertLayer` in transformers,
//! on the [`crate::kernels`].
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
use crate::kernels::activation;
use crate::kernels::attention::{multi_head_attention, AttentionDims, HeadLayout, SeqSpan};
use crate::kernels::buffer::AlignedVec;
use crate::kernels::gemm::{OutLayout, PackedLinear, MC};
use crate::kernels::isa::Isa;
use crate::kernels::microkernel::NR;
use crate::kernels::norm::LayerNormParams;
use crate::weights::Weights;

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
}

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
    /// Loads `{prefix}encoder.layer.{0..num_hidden_layers}`.
    pub fn load(w: &Weights, prefix: &str, cfg: &EncoderConfig) -> Result<Self> {
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
                    qkv: LinearWeights::concat(&[q, k, v]).pack(),
                    attn_out: lin("attention.output.dense", h, h)?.pack(),
                    attn_norm: load_layer_norm(
                        w,
                        &format!("{p}.attention.output.LayerNorm"),
                        h,
                        eps,
                    )?,
                    intermediate: lin("intermediate.dense", h, i)?.pack(),
                    output: lin("output.dense", i, h)?.pack(),
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
    pub fn forward(&self, x: Vec<f32>, layout: &TokenLayout, output: EncoderOutput) -> Vec<f32> {
        let h = self.hidden;
        let t = layout.tokens.len();
        assert_eq!(x.len(), t * h, "embeddings are not [{t}, {h}]");
        // Buffers reused by every layer (and by the next call when free). Every element read
        // is written first in each layer, so stale contents are harmless.
        let mut guard = self.workspace.try_lock().ok();
        let mut local = Workspace::default();
        let ws = guard.as_deref_mut().unwrap_or(&mut local);
        ws.qkv.resize(t * 3 * h, 0.0);
        ws.ctx.resize(t * h, 0.0);
        let out = self.run_layers(x, layout, output, &mut ws.qkv, &mut ws.ctx);
        if ws.qkv.len() + ws.ctx.len() > MAX_KEPT_WORKSPACE {
            *ws = Workspace::default();
        }
        out
    }

    fn run_layers(
        &self,
        mut x: Vec<f32>,
        layout: &TokenLayout,
        output: EncoderOutput,
        qkv: &mut [f32],
        ctx: &mut [f32],
    ) -> Vec<f32> {
        let h = self.hidden;
        let t = layout.tokens.len();
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
        let n_layers = self.layers.len();
        for (li, layer) in self.layers.iter().enumerate() {
            if output == EncoderOutput::FirstTokens && li + 1 == n_layers {
                return self.last_layer_first_tokens(
                    layer, &x, qkv, qkv_out, kv_offset, layout, dims, scale,
                );
            }
            layer
                .qkv
                .forward_into_layout(&x, h, t, 0..3 * h, qkv, qkv_out, false);
            multi_head_attention(
                qkv,
                &qkv[kv_offset..],
                &qkv[2 * kv_offset..],
                ctx,
                &layout.spans,
                dims,
                scale,
            );
            self.post_attention(layer, &mut x, ctx);
        }
        match output {
            EncoderOutput::AllTokens => x,
            // Only without layers: the embeddings of the first tokens.
            EncoderOutput::FirstTokens => first_rows(&x, layout, h),
        }
    }

    /// The last layer for each sequence's first token only: keys and values for every token,
    /// everything else for one row per sequence.
    #[allow(clippy::too_many_arguments)]
    fn last_layer_first_tokens(
        &self,
        layer: &Layer,
        x: &[f32],
        qkv: &mut [f32],
        qkv_out: OutLayout,
        kv_offset: usize,
        layout: &TokenLayout,
        dims: AttentionDims,
        scale: f32,
    ) -> Vec<f32> {
        let h = self.hidden;
        let t = layout.tokens.len();
        let b = layout.spans.len();
        // Keys and values of all tokens (the query columns too when they cannot be skipped
        // on a panel boundary).
        let kv_cols = if h.is_multiple_of(NR) {
            h..3 * h
        } else {
            0..3 * h
        };
        layer
            .qkv
            .forward_into_layout(x, h, t, kv_cols, qkv, qkv_out, false);
        let mut xq = first_rows(x, layout, h);
        let mut q = vec![0f32; b * h];
        layer.qkv.forward_into(&xq, h, b, 0..h, &mut q, h, false);
        let spans: Vec<SeqSpan> = layout
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| SeqSpan {
                q_start: i,
                q_len: 1,
                ..*s
            })
            .collect();
        let mut ctx = vec![0f32; b * h];
        let dims = AttentionDims {
            q: HeadLayout::row_major(h, self.head_dim),
            ..dims
        };
        multi_head_attention(
            &q,
            &qkv[kv_offset..],
            &qkv[2 * kv_offset..],
            &mut ctx,
            &spans,
            dims,
            scale,
        );
        self.post_attention(layer, &mut xq, &ctx);
        xq
    }

    /// `x ← LN2(y + FFN(y))` with `y = LN1(x + ctx·Woᵀ + bo)`, in parallel over blocks of
    /// rows (each block's intermediate activations stay in the thread's cache).
    fn post_attention(&self, layer: &Layer, x: &mut [f32], ctx: &[f32]) {
        let h = self.hidden;
        let inter_dim = self.intermediate;
        let rows = x.len() / h.max(1);
        if rows == 0 {
            return;
        }
        let threads = rayon::current_num_threads();
        let mr = Isa::active().mr();
        let rb = rows
            .div_ceil(2 * threads)
            .div_ceil(mr)
            .saturating_mul(mr)
            .clamp(mr, MC);
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
        if rows <= rb {
            block((x, ctx));
        } else {
            x.par_chunks_mut(rb * h)
                .zip(ctx.par_chunks(rb * h))
                .for_each(block);
        }
    }
}

/// Row `spans[i].q_start` of `x` for every sequence `i` → `[batch, h]`.
fn first_rows(x: &[f32], layout: &TokenLayout, h: usize) -> Vec<f32> {
    layout
        .spans
        .iter()
        .flat_map(|s| x[s.q_start * h..(s.q_start + 1) * h].iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
