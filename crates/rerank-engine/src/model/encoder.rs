//! The BERT-style encoder shared by BERT and XLM-R: absolute embeddings, then post-LayerNorm
//! blocks (self-attention → add & norm → feed-forward → add & norm), as `BertLayer` in
//! transformers, on the [`rerank_kernels`].
//!
//! Activations are ragged: `[tokens, hidden]` row-major, the tokens of each sequence one after
//! the other, so padding costs nothing. A layer runs in three phases: the fused Q/K/V
//! projection, attention, then — by blocks of rows, each block kept in cache — output
//! projection, add & norm, feed-forward with GELU fused into the GEMM, add & norm. With many
//! sequences each group of sequences runs all layers as one single-threaded task
//! ([`super::parallel`]); otherwise each phase is parallel.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use super::embeddings::{EmbeddingShape, Embeddings};
use super::layers::{load_layer_norm, LinearParams};
use super::parallel::for_each_group;
use super::TokenSelection;
use crate::error::Result;
use crate::weights::Weights;
use rerank_kernels::buffer::AlignedVec;
use rerank_kernels::layout::COL_ALIGN;

use rerank_kernels::{
    Activation, Attention, HeadLayout, LayerNorm, Linear, OutLayout, OutSpec, Parallelism,
    Precision, SeqSpan,
};

/// Shapes and options of a BERT-style encoder (from the model's `Config`).
pub(crate) struct EncoderShape {
    pub embeddings: EmbeddingShape,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
}

/// One `encoder.layer.N` block with a fused Q/K/V projection.
struct Layer {
    /// `[3·hidden, hidden]`: query, key, value stacked.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// Position of the row `output` selects in a sequence of `len` tokens (`None`: all rows).
fn pick(output: TokenSelection, len: usize) -> Option<usize> {
    match output {
        TokenSelection::All => None,
        TokenSelection::First => Some(0),
        TokenSelection::Last => Some(len - 1),
    }
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
    /// Q/K/V and attention buffers of the per-group tasks running on this thread.
    static SEQ_WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
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

/// Embeddings and `encoder.layer.*` of a BERT / XLM-R model (`BertModel` without its pooler).
pub(crate) struct BertEncoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    intermediate: usize,
    act: Activation,
    /// Attention products in bf16 ([`Attention::run_bf16`]): under the bf16 and int8
    /// precisions, whose linear layers already round their inputs to bf16 or coarser.
    bf16_attention: bool,
    /// Reused by one forward pass at a time; concurrent callers allocate their own.
    workspace: Mutex<Workspace>,
}

impl BertEncoder {
    /// Loads `{prefix}embeddings.*` and `{prefix}encoder.layer.{0..num_hidden_layers}`; the
    /// encoder's linear layers compute in `precision`.
    pub fn load(w: &Weights, prefix: &str, s: &EncoderShape, precision: Precision) -> Result<Self> {
        let h = s.embeddings.hidden_size;
        let i = s.intermediate_size;
        let eps = s.embeddings.layer_norm_eps;
        let embeddings = Embeddings::load(w, prefix, &s.embeddings)?;
        let layers = (0..s.num_hidden_layers)
            .map(|n| {
                let p = format!("{prefix}encoder.layer.{n}");
                let lin = |name: &str, i_dim, o_dim| {
                    LinearParams::load(w, &format!("{p}.{name}"), i_dim, o_dim, "")
                };
                let q = lin("attention.self.query", h, h)?;
                let k = lin("attention.self.key", h, h)?;
                let v = lin("attention.self.value", h, h)?;
                Ok(Layer {
                    qkv: LinearParams::concat(&[q, k, v])?.build(precision),
                    attn_out: lin("attention.output.dense", h, h)?.build(precision),
                    attn_norm: load_layer_norm(
                        w,
                        &format!("{p}.attention.output.LayerNorm"),
                        h,
                        eps,
                        true,
                    )?,
                    intermediate: lin("intermediate.dense", h, i)?.build(precision),
                    output: lin("output.dense", i, h)?.build(precision),
                    out_norm: load_layer_norm(w, &format!("{p}.output.LayerNorm"), h, eps, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BertEncoder {
            embeddings,
            layers,
            heads: s.num_attention_heads,
            head_dim: h / s.num_attention_heads,
            hidden: h,
            intermediate: i,
            act: s.hidden_act,
            bf16_attention: precision != Precision::F32,
            workspace: Mutex::new(Workspace::default()),
        })
    }

    /// Hidden width.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Embeds `input_ids` / `token_type_ids` at `positions` (all `[tokens]`, the tokens of
    /// sequences `seqs` in order) and runs every layer. Returns the last hidden state of all
    /// tokens or of one row per sequence (see [`TokenSelection`]; for one row per sequence
    /// the last layer computes queries, projections and the feed-forward for those rows
    /// only), f32 row-major.
    ///
    /// Errors: [`crate::EngineError::InvalidArgument`] for an id outside its embedding table.
    pub fn forward(
        &self,
        input_ids: &[u32],
        token_type_ids: &[u32],
        positions: &[u32],
        seqs: &[Range<usize>],
        output: TokenSelection,
    ) -> Result<Vec<f32>> {
        let mut x = self
            .embeddings
            .forward(input_ids, token_type_ids, positions)?;
        let h = self.hidden;
        let rows = for_each_group(&mut x, h, seqs, |xs, local, par| match par {
            Parallelism::Serial => SEQ_WORKSPACE.with(|cell| {
                let mut ws = cell.borrow_mut();
                let out = self.run_layers(xs, local, output, &mut ws, par);
                if ws.qkv.len() + ws.ctx.len() > MAX_KEPT_WORKSPACE {
                    *ws = Workspace::default();
                }
                out
            }),
            _ => {
                // Buffers reused by every layer (and by the next call when free). Every
                // element read is written first in each layer, so stale contents are harmless.
                let mut guard = self.workspace.try_lock().ok();
                let mut local_ws = Workspace::default();
                let ws = guard.as_deref_mut().unwrap_or(&mut local_ws);
                let out = self.run_layers(xs, local, output, ws, par);
                if ws.qkv.len() + ws.ctx.len() > MAX_KEPT_WORKSPACE {
                    *ws = Workspace::default();
                }
                out
            }
        });
        Ok(match output {
            TokenSelection::All => x,
            _ => rows.into_iter().flatten().flatten().collect(),
        })
    }

    /// Runs the layers on `x` (`[tokens, hidden]`, updated in place) for the sequences
    /// `seqs`, using `ws` for Q/K/V and the attention output. Returns the selected rows
    /// `[seqs.len(), hidden]` for a one-row [`TokenSelection`] (the last layer then runs for
    /// those rows only), `None` for [`TokenSelection::All`].
    fn run_layers(
        &self,
        x: &mut [f32],
        seqs: &[Range<usize>],
        output: TokenSelection,
        ws: &mut Workspace,
        par: Parallelism,
    ) -> Option<Vec<f32>> {
        let h = self.hidden;
        let t = x.len() / h.max(1);
        ws.qkv.resize(t * 3 * h, 0.0);
        ws.ctx.resize(t * h, 0.0);
        let (qkv, ctx) = (&mut ws.qkv[..], &mut ws.ctx[..]);
        let d = self.head_dim;
        // Q/K/V as one [tokens, head_dim] block per head when heads are whole kernel panels
        // (each head's rows are then contiguous for attention), else row-major [tokens, 3h].
        let (qkv_out, head_layout, kv_offset) = if d.is_multiple_of(COL_ALIGN) {
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
        let attn = Attention::multi_head(self.heads, d, head_layout);
        let spans: Vec<SeqSpan> = seqs
            .iter()
            .map(|r| SeqSpan::full(r.start, r.len()))
            .collect();
        let picked = |x: &[f32]| -> Vec<f32> {
            seqs.iter()
                .flat_map(|r| {
                    let row = r.start + pick(output, r.len()).expect("one-row output");
                    x[row * h..(row + 1) * h].iter().copied()
                })
                .collect()
        };
        let n_layers = self.layers.len();
        for (li, layer) in self.layers.iter().enumerate() {
            if output != TokenSelection::All && li + 1 == n_layers {
                // Last layer for one row per sequence: keys and values of every token (the
                // query columns too when they cannot be skipped on a panel boundary),
                // everything else for the selected rows only.
                let kv_cols = if h.is_multiple_of(COL_ALIGN) {
                    h..3 * h
                } else {
                    0..3 * h
                };
                let spec = OutSpec::with_layout(qkv_out, kv_cols);
                layer.qkv.forward_to(x, h, t, qkv, &spec, par);
                let mut xq = picked(x);
                let b = seqs.len();
                let mut q = vec![0f32; b * h];
                let spec = OutSpec::row_major(h, 0..h);
                layer.qkv.forward_to(&xq, h, b, &mut q, &spec, par);
                let sub_spans: Vec<SeqSpan> = spans
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let pos = pick(output, s.k_len).expect("one-row output");
                        s.queries(i, pos, 1)
                    })
                    .collect();
                let mut ctx_q = vec![0f32; b * h];
                let attn_q = Attention {
                    q: HeadLayout::row_major(h, d),
                    ..attn
                };
                self.attention(
                    &attn_q,
                    &q,
                    &qkv[kv_offset..],
                    &qkv[2 * kv_offset..],
                    &mut ctx_q,
                    &sub_spans,
                    par,
                );
                self.post_attention(layer, &mut xq, &ctx_q, par);
                return Some(xq);
            }
            let spec = OutSpec::with_layout(qkv_out, 0..3 * h);
            layer.qkv.forward_to(x, h, t, qkv, &spec, par);
            self.attention(
                &attn,
                qkv,
                &qkv[kv_offset..],
                &qkv[2 * kv_offset..],
                ctx,
                &spans,
                par,
            );
            self.post_attention(layer, x, ctx, par);
        }
        match output {
            TokenSelection::All => None,
            // Only without layers: the embeddings of the selected rows.
            _ => Some(picked(x)),
        }
    }

    /// `attn` in this encoder's precision: f32, or bf16 products (see `bf16_attention`).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        attn: &Attention,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        spans: &[SeqSpan],
        par: Parallelism,
    ) {
        if self.bf16_attention {
            attn.run_bf16(q, k, v, out, spans, par);
        } else {
            attn.run(q, k, v, out, spans, par);
        }
    }

    /// `x ← LN2(y + FFN(y))` with `y = LN1(x + ctx·Woᵀ + bo)`, by blocks of rows (each
    /// block's intermediate activations stay in the thread's cache), in parallel over the
    /// blocks when `par` allows.
    fn post_attention(&self, layer: &Layer, x: &mut [f32], ctx: &[f32], par: Parallelism) {
        let h = self.hidden;
        let inter_dim = self.intermediate;
        let rows = x.len() / h.max(1);
        if rows == 0 {
            return;
        }
        let parallel = par.is_parallel();
        let rb = super::parallel::row_block(rows, par);
        let fused_gelu = self.act == Activation::GeluErf;
        let serial = Parallelism::Serial;
        let block = |(xb, cb): (&mut [f32], &[f32])| {
            let r = xb.len() / h;
            ROW_SCRATCH.with(|cell| {
                let mut s = cell.borrow_mut();
                let s = &mut *s;
                s.tmp.ensure(r * h);
                s.inter.ensure(r * inter_dim);
                let tmp = &mut s.tmp.as_mut_slice()[..r * h];
                let inter = &mut s.inter.as_mut_slice()[..r * inter_dim];
                layer.attn_out.forward(cb, r, tmp, serial);
                layer.attn_norm.forward_residual(xb, tmp);
                let spec = OutSpec::dense(inter_dim).gelu(fused_gelu);
                layer
                    .intermediate
                    .forward_to(xb, h, r, inter, &spec, serial);
                if !fused_gelu {
                    self.act.apply(inter);
                }
                layer.output.forward(inter, r, tmp, serial);
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
