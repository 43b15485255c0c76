//! ModernBERT (`modeling_modernbert.py` in transformers 5, `backends/candle/src/models/modernbert.rs`
//! in TEI): token embeddings → LayerNorm, then pre-norm blocks
//! `x ← x + Wo·attn(RoPE(Wqkv·attn_norm(x)))`, `x ← x + Wo·(act(input) · gate)` with
//! `input, gate = Wi·mlp_norm(x)`, then `final_norm`. Layer 0's `attn_norm` is the identity.
//! Global layers attend to the whole sequence with RoPE base `global_rope_theta`; local layers
//! see the keys within `±local_attention/2` with base `local_rope_theta`. No position table,
//! no token type ids.
//!
//! `ModernBertForSequenceClassification`'s head: `classifier_pooling` (`cls`: the first
//! token; `mean`: the mean over the sequence's tokens) → `head.dense` → `classifier_activation`
//! → `head.norm` → `classifier`.
//!
//! Registry names: `ModernBertForSequenceClassification`, `ModernBertModel`,
//! `ModernBertForMaskedLM` (its body only; model type `modernbert`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;
use serde::Deserialize;

use super::layers::{load_layer_norm, num_labels, tensor, LinearParams};
use super::parallel::for_each_group;
use super::{
    Batch, LoadContext, Loaded, ModelMeta, SequenceClassifier, TokenEncoder, TokenSelection,
    NOT_A_CROSS_ENCODER,
};
use crate::config::{Family, ModelConfig};
use crate::error::{EngineError, Result};
use crate::tokenize::PairFormat;
use crate::weights::Weights;
use rerank_kernels::activation::glu;

use rerank_kernels::norm::add_assign;
use rerank_kernels::{
    embed, Activation, Attention, AttentionMask, HeadLayout, LayerNorm, Linear, Parallelism,
    Precision, Rope, SeqSpan,
};

/// The family `info()` reports.
pub const FAMILY: Family = Family::named("ModernBert");

/// One entry of transformers 5's `rope_parameters` (`{"rope_theta": …, "rope_type": …}`).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Only `"default"` (or absent) is implemented.
    #[serde(default)]
    pub rope_type: Option<String>,
}

/// `config.json` of a ModernBERT model (transformers' `ModernBertConfig`). Both config
/// generations are read: transformers 5 writes `layer_types` and
/// `rope_parameters.{full_attention,sliding_attention}.rope_theta`; older configs (most on
/// the hub) have `global_attn_every_n_layers`, `global_rope_theta` and `local_rope_theta`.
/// Defaults are transformers'.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_activation: String,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    #[serde(default)]
    pub norm_bias: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub classifier_bias: bool,
    #[serde(default = "default_act")]
    pub classifier_activation: String,
    #[serde(default = "default_pooling")]
    pub classifier_pooling: String,
    #[serde(default = "default_every_n")]
    pub global_attn_every_n_layers: usize,
    /// Tokens a local layer's window spans (each query sees `±local_attention/2`).
    #[serde(default = "default_local_attention")]
    pub local_attention: usize,
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    #[serde(default)]
    pub rope_parameters: Option<HashMap<String, RopeParameters>>,
    #[serde(default)]
    pub global_rope_theta: Option<f64>,
    #[serde(default)]
    pub local_rope_theta: Option<f64>,
    #[serde(default = "default_pad")]
    pub pad_token_id: Option<u32>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_pooling() -> String {
    "cls".into()
}
fn default_max_positions() -> usize {
    8192
}
fn default_eps() -> f64 {
    1e-5
}
fn default_every_n() -> usize {
    3
}
fn default_local_attention() -> usize {
    128
}
fn default_pad() -> Option<u32> {
    Some(50283)
}

/// transformers' default RoPE bases (`ModernBertConfig.default_theta`).
const DEFAULT_GLOBAL_THETA: f64 = 160_000.0;
const DEFAULT_LOCAL_THETA: f64 = 10_000.0;

/// How the classifier pools the last hidden state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClassifierPooling {
    Cls,
    Mean,
}

/// What [`Config::shape`] checked and derived.
struct Shape {
    heads: usize,
    head_dim: usize,
    act: Activation,
    classifier_act: Activation,
    pooling: ClassifierPooling,
    /// Per layer: `None` for a global layer, `Some(half_width)` for a local one.
    windows: Vec<Option<usize>>,
    global_theta: f64,
    local_theta: f64,
}

impl Config {
    /// Checks what this engine implements and derives the per-layer attention pattern.
    ///
    /// Errors: [`EngineError::UnsupportedArchitecture`] for an unknown activation or pooling,
    /// or a `rope_type` other than `"default"`; [`EngineError::BadFile`] for a `hidden_size`
    /// that is not a multiple of `num_attention_heads`, an odd head width, a
    /// `global_attn_every_n_layers` of 0, or `layer_types` of the wrong length or with an
    /// unknown entry.
    fn shape(&self, mc: &ModelConfig) -> Result<Shape> {
        let arch = mc.name();
        let unsupported = |what: String| mc.unsupported(what, super::registry::supported());
        let bad = |what: String| EngineError::bad_file(&mc.path, what);
        let act = |key: &str, name: &str| {
            Activation::from_name(name)
                .ok_or_else(|| unsupported(format!("{arch} with {key} {name:?}")))
        };
        let pooling = match self.classifier_pooling.as_str() {
            "cls" => ClassifierPooling::Cls,
            "mean" => ClassifierPooling::Mean,
            other => {
                return Err(unsupported(format!(
                    "{arch} with classifier_pooling {other:?}"
                )))
            }
        };
        let heads = self.num_attention_heads;
        if self.hidden_size == 0 || heads == 0 || !self.hidden_size.is_multiple_of(heads) {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {heads}",
                self.hidden_size
            )));
        }
        let head_dim = self.hidden_size / heads;
        if !head_dim.is_multiple_of(2) {
            return Err(bad(format!(
                "head width {head_dim} is odd (RoPE needs pairs)"
            )));
        }
        let half_width = self.local_attention / 2;
        let windows = match &self.layer_types {
            Some(types) => {
                if types.len() != self.num_hidden_layers {
                    return Err(bad(format!(
                        "layer_types has {} entries for {} layers",
                        types.len(),
                        self.num_hidden_layers
                    )));
                }
                types
                    .iter()
                    .map(|t| match t.as_str() {
                        "full_attention" => Ok(None),
                        "sliding_attention" => Ok(Some(half_width)),
                        other => Err(bad(format!("unknown layer type {other:?}"))),
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            None => {
                let n = self.global_attn_every_n_layers;
                if n == 0 {
                    return Err(bad("global_attn_every_n_layers is 0".into()));
                }
                (0..self.num_hidden_layers)
                    .map(|i| (!i.is_multiple_of(n)).then_some(half_width))
                    .collect()
            }
        };
        let theta = |key: &str, legacy: Option<f64>, default: f64| -> Result<f64> {
            let p = self.rope_parameters.as_ref().and_then(|m| m.get(key));
            if let Some(t) = p.and_then(|p| p.rope_type.as_deref()) {
                if t != "default" {
                    return Err(unsupported(format!("{arch} with rope_type {t:?}")));
                }
            }
            let theta = p.and_then(|p| p.rope_theta).or(legacy).unwrap_or(default);
            if !(theta.is_finite() && theta > 0.0) {
                return Err(bad(format!("rope_theta {theta} of {key} is not positive")));
            }
            Ok(theta)
        };
        Ok(Shape {
            heads,
            head_dim,
            act: act("hidden_activation", &self.hidden_activation)?,
            classifier_act: act("classifier_activation", &self.classifier_activation)?,
            pooling,
            windows,
            global_theta: theta(
                "full_attention",
                self.global_rope_theta,
                DEFAULT_GLOBAL_THETA,
            )?,
            local_theta: theta(
                "sliding_attention",
                self.local_rope_theta,
                DEFAULT_LOCAL_THETA,
            )?,
        })
    }

    fn meta(&self) -> ModelMeta {
        ModelMeta {
            family: FAMILY,
            uses_token_type_ids: false,
            max_positions: self.max_position_embeddings,
            pad_token_id: self.pad_token_id,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            vocab_size: self.vocab_size,
            pair_format: PairFormat::PostProcessor,
        }
    }
}

/// One `layers.N` block.
struct Layer {
    /// `None` for layer 0 (`nn.Identity` in transformers).
    attn_norm: Option<LayerNorm>,
    /// `[3·hidden, hidden]`: query, key, value heads stacked.
    wqkv: Linear,
    attn_wo: Linear,
    mlp_norm: LayerNorm,
    /// `[2·intermediate, hidden]`: GeGLU input, then gate.
    wi: Linear,
    mlp_wo: Linear,
    /// `Some(half_width)` for a local (sliding-window) layer.
    window: Option<usize>,
}

/// Per-thread scratch of the row-block phase.
#[derive(Default)]
struct RowScratch {
    /// `[rows, hidden]`.
    tmp: Vec<f32>,
    /// `[rows, hidden]`: `mlp_norm(x)`.
    normed: Vec<f32>,
    /// `[rows, 2·intermediate]`: `Wi` output.
    wi: Vec<f32>,
    /// `[rows, intermediate]`: GeGLU output.
    glu: Vec<f32>,
}

thread_local! {
    static ROW_SCRATCH: RefCell<RowScratch> = RefCell::new(RowScratch::default());
}

/// `model.*` of a ModernBERT checkpoint: embeddings, layers and the final norm.
pub(crate) struct ModernBertBody {
    tok_embeddings: Vec<f32>,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    global_rope: Rope,
    local_rope: Rope,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    intermediate: usize,
    act: Activation,
    max_positions: usize,
}

/// `"model."` when the body is nested under the task model's `model` (every
/// `ModernBertFor*` checkpoint), else `""` (a bare `ModernBertModel`).
fn body_prefix(w: &Weights) -> &'static str {
    if w.contains("model.embeddings.tok_embeddings.weight") {
        "model."
    } else {
        ""
    }
}

impl ModernBertBody {
    fn load(w: &Weights, cfg: &Config, s: &Shape, precision: Precision) -> Result<Self> {
        let p = body_prefix(w);
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let eps = cfg.norm_eps;
        let norm = |name: &str| load_layer_norm(w, name, h, eps, cfg.norm_bias);
        let layers = s
            .windows
            .iter()
            .enumerate()
            .map(|(n, &window)| {
                let l = format!("{p}layers.{n}");
                let lin = |name: &str, i_dim, o_dim, bias| {
                    LinearParams::load_with_bias(w, &format!("{l}.{name}"), i_dim, o_dim, bias, "")
                        .map(|lp| lp.build(precision))
                };
                Ok(Layer {
                    attn_norm: if n == 0 {
                        None
                    } else {
                        Some(norm(&format!("{l}.attn_norm"))?)
                    },
                    wqkv: lin("attn.Wqkv", h, 3 * h, cfg.attention_bias)?,
                    attn_wo: lin("attn.Wo", h, h, cfg.attention_bias)?,
                    mlp_norm: norm(&format!("{l}.mlp_norm"))?,
                    wi: lin("mlp.Wi", h, 2 * i, cfg.mlp_bias)?,
                    mlp_wo: lin("mlp.Wo", i, h, cfg.mlp_bias)?,
                    window,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ModernBertBody {
            tok_embeddings: tensor(
                w,
                &format!("{p}embeddings.tok_embeddings.weight"),
                &[cfg.vocab_size, h],
                "",
            )?,
            emb_norm: norm(&format!("{p}embeddings.norm"))?,
            layers,
            final_norm: norm(&format!("{p}final_norm"))?,
            global_rope: Rope::new(s.head_dim, s.global_theta),
            local_rope: Rope::new(s.head_dim, s.local_theta),
            heads: s.heads,
            head_dim: s.head_dim,
            hidden: h,
            intermediate: i,
            act: s.act,
            max_positions: cfg.max_position_embeddings,
        })
    }

    /// The last hidden state (after `final_norm`) of every token of `batch`
    /// (`[total_tokens, hidden]`), or of each sequence's first / last token
    /// (`[batch.len(), hidden]`), f32 row-major. Each sequence is computed alone.
    ///
    /// Errors: [`EngineError::InvalidArgument`] for a token id outside the vocabulary or a
    /// sequence longer than `max_position_embeddings`.
    fn forward(&self, batch: &Batch, rows: TokenSelection) -> Result<Vec<f32>> {
        let h = self.hidden;
        if let Some(r) = batch.seqs().find(|r| r.len() > self.max_positions) {
            return Err(EngineError::InvalidArgument(format!(
                "a sequence of {} tokens exceeds the model's {} positions",
                r.len(),
                self.max_positions
            )));
        }
        let mut x = vec![0f32; batch.total_tokens() * h];
        for (out, &id) in x.chunks_exact_mut(h).zip(batch.input_ids()) {
            let row = embed::row(&self.tok_embeddings, h, id as usize).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "token id {id} is outside the embedding table ({} rows)",
                    self.tok_embeddings.len() / h
                ))
            })?;
            out.copy_from_slice(row);
        }
        x.par_chunks_mut(64 * h)
            .for_each(|r| self.emb_norm.forward(r));
        let seqs: Vec<Range<usize>> = batch.seqs().collect();
        let picked = for_each_group(&mut x, h, &seqs, |xs, local, par| {
            self.run_layers(xs, local, rows, par)
        });
        let mut out = match rows {
            TokenSelection::All => x,
            _ => picked.into_iter().flatten().flatten().collect(),
        };
        out.par_chunks_mut(64 * h)
            .for_each(|r| self.final_norm.forward(r));
        Ok(out)
    }

    /// Runs every layer on `x` (`[tokens, hidden]`, the tokens of `seqs` in order, updated
    /// in place; `final_norm` not applied). For a one-row [`TokenSelection`] the last layer
    /// computes attention, projections and the MLP for each sequence's selected row only
    /// (keys and values of every token) and returns those rows `[seqs.len(), hidden]`; for
    /// [`TokenSelection::All`] it returns `None`.
    fn run_layers(
        &self,
        x: &mut [f32],
        seqs: &[Range<usize>],
        rows: TokenSelection,
        par: Parallelism,
    ) -> Option<Vec<f32>> {
        let (h, d, heads) = (self.hidden, self.head_dim, self.heads);
        let t = x.len() / h;
        let pick = |r: &Range<usize>| match rows {
            TokenSelection::Last => r.end - 1,
            _ => r.start,
        };
        let picked = |x: &[f32]| -> Vec<f32> {
            seqs.iter()
                .flat_map(|r| x[pick(r) * h..(pick(r) + 1) * h].iter().copied())
                .collect()
        };
        if t == 0 || self.layers.is_empty() {
            return (rows != TokenSelection::All).then(|| picked(&*x));
        }
        let positions: Vec<u32> = seqs.iter().flat_map(|r| 0..r.len() as u32).collect();
        let spans: Vec<SeqSpan> = seqs
            .iter()
            .map(|r| SeqSpan::full(r.start, r.len()))
            .collect();
        let mut normed = vec![0f32; t * h];
        let mut qkv = vec![0f32; t * 3 * h];
        let mut ctx = vec![0f32; t * h];
        let layout = HeadLayout::row_major(3 * h, d);
        let last = self.layers.len() - 1;
        for (li, layer) in self.layers.iter().enumerate() {
            match &layer.attn_norm {
                None => normed.copy_from_slice(x),
                Some(norm) => norm_rows(norm, x, &mut normed, par),
            }
            layer.wqkv.forward(&normed, t, &mut qkv, par);
            let rope = match layer.window {
                None => &self.global_rope,
                Some(_) => &self.local_rope,
            };
            rope.apply(&mut qkv, layout, heads, &positions, par);
            rope.apply(&mut qkv[h..], layout, heads, &positions, par);
            let attn = Attention {
                mask: match layer.window {
                    None => AttentionMask::Bidirectional,
                    Some(half_width) => AttentionMask::SlidingWindow { half_width },
                },
                ..Attention::multi_head(heads, d, layout)
            };
            if li == last && rows != TokenSelection::All {
                // One query row per sequence: its (rotated) queries, attention over all keys,
                // then the rest of the layer for those rows only.
                let b = seqs.len();
                let q: Vec<f32> = seqs
                    .iter()
                    .flat_map(|r| qkv[pick(r) * 3 * h..pick(r) * 3 * h + h].iter().copied())
                    .collect();
                let sub: Vec<SeqSpan> = spans
                    .iter()
                    .zip(seqs)
                    .enumerate()
                    .map(|(i, (s, r))| s.queries(i, pick(r) - r.start, 1))
                    .collect();
                let mut ctx_q = vec![0f32; b * h];
                let attn_q = Attention {
                    q: HeadLayout::row_major(h, d),
                    ..attn
                };
                attn_q.run(&q, &qkv[h..], &qkv[2 * h..], &mut ctx_q, &sub, par);
                let mut xq = picked(&*x);
                self.post_attention(layer, &mut xq, &ctx_q, par);
                return Some(xq);
            }
            attn.run(&qkv, &qkv[h..], &qkv[2 * h..], &mut ctx, &spans, par);
            self.post_attention(layer, x, &ctx, par);
        }
        None
    }

    /// `x ← x + ctx·Woᵀ`, then `x ← x + MLP(mlp_norm(x))`, by blocks of rows (each block's
    /// intermediate activations stay in its thread's cache), in parallel over the blocks
    /// when `par` allows.
    fn post_attention(&self, layer: &Layer, x: &mut [f32], ctx: &[f32], par: Parallelism) {
        let (h, inter) = (self.hidden, self.intermediate);
        let rows = x.len() / h;
        let parallel = par.is_parallel();
        let rb = super::parallel::row_block(rows, par);
        let serial = Parallelism::Serial;
        let block = |(xb, cb): (&mut [f32], &[f32])| {
            let r = xb.len() / h;
            ROW_SCRATCH.with(|cell| {
                let mut s = cell.borrow_mut();
                let s = &mut *s;
                s.tmp.resize(r * h, 0.0);
                s.normed.resize(r * h, 0.0);
                s.wi.resize(r * 2 * inter, 0.0);
                s.glu.resize(r * inter, 0.0);
                let tmp = &mut s.tmp[..r * h];
                let normed = &mut s.normed[..r * h];
                let wi = &mut s.wi[..r * 2 * inter];
                let g = &mut s.glu[..r * inter];
                layer.attn_wo.forward(cb, r, tmp, serial);
                layer.mlp_norm.add_forward_to(xb, tmp, normed);
                layer.wi.forward(normed, r, wi, serial);
                glu(self.act, wi, inter, g);
                layer.mlp_wo.forward(g, r, tmp, serial);
                add_assign(xb, tmp);
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

/// `out = norm(x)` row by row, in parallel blocks when `par` allows.
fn norm_rows(norm: &LayerNorm, x: &[f32], out: &mut [f32], par: Parallelism) {
    let block = 64 * norm.dim();
    if par.is_parallel() {
        out.par_chunks_mut(block)
            .zip(x.par_chunks(block))
            .for_each(|(o, xb)| norm.forward_to(xb, o));
    } else {
        norm.forward_to(x, out);
    }
}

/// `head` (`ModernBertPredictionHead`) + `classifier`.
struct ClassificationHead {
    pooling: ClassifierPooling,
    dense: Linear,
    act: Activation,
    norm: LayerNorm,
    classifier: Linear,
}

impl ClassificationHead {
    /// Loads `classifier` `[num_labels, hidden]` (first, so that a bi-encoder folder is
    /// refused naming it), `head.dense` `[hidden, hidden]` (bias when `classifier_bias`) and
    /// `head.norm`.
    fn load(w: &Weights, cfg: &Config, s: &Shape, default_labels: usize) -> Result<Self> {
        let h = cfg.hidden_size;
        let labels = num_labels(w, "classifier.weight", h, default_labels)?;
        let f32_linear = |name: &str, out_dim, bias| {
            LinearParams::load_with_bias(w, name, h, out_dim, bias, NOT_A_CROSS_ENCODER)
                .map(|lp| lp.build(Precision::F32))
        };
        Ok(ClassificationHead {
            classifier: f32_linear("classifier", labels, true)?,
            dense: f32_linear("head.dense", h, cfg.classifier_bias)?,
            act: s.classifier_act,
            norm: load_layer_norm(w, "head.norm", h, cfg.norm_eps, cfg.norm_bias)?,
            pooling: s.pooling,
        })
    }

    /// `pooled`: `[batch, hidden]` → logits `[batch, num_labels]`.
    fn forward(&self, pooled: &[f32], batch: usize) -> Vec<f32> {
        let mut x = vec![0f32; batch * self.dense.out_dim()];
        self.dense
            .forward(pooled, batch, &mut x, Parallelism::Parallel);
        self.act.apply(&mut x);
        self.norm.forward(&mut x);
        let mut logits = vec![0f32; batch * self.classifier.out_dim()];
        self.classifier
            .forward(&x, batch, &mut logits, Parallelism::Parallel);
        logits
    }
}

/// Mean over each sequence's rows of `hidden` (`[total_tokens, width]`): `[seqs, width]`,
/// summed in token order then divided by the token count (transformers'
/// `(h * mask).sum(1) / mask.sum(1)` over real tokens).
fn mean_rows(hidden: &[f32], width: usize, batch: &Batch) -> Vec<f32> {
    let mut out = vec![0f32; batch.len() * width];
    for (o, r) in out.chunks_exact_mut(width).zip(batch.seqs()) {
        let n = r.len() as f32;
        for row in hidden[r.start * width..r.end * width].chunks_exact(width) {
            add_assign(o, row);
        }
        o.iter_mut().for_each(|v| *v /= n);
    }
    out
}

/// `ModernBertForSequenceClassification`.
pub struct ModernBertForSequenceClassification {
    body: ModernBertBody,
    head: ClassificationHead,
}

impl SequenceClassifier for ModernBertForSequenceClassification {
    fn num_labels(&self) -> usize {
        self.head.classifier.out_dim()
    }

    fn logits(&self, batch: &Batch) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let pooled = match self.head.pooling {
            ClassifierPooling::Cls => self.body.forward(batch, TokenSelection::First)?,
            ClassifierPooling::Mean => {
                let all = self.body.forward(batch, TokenSelection::All)?;
                mean_rows(&all, self.body.hidden, batch)
            }
        };
        Ok(self.head.forward(&pooled, batch.len()))
    }
}

/// `ModernBertModel`: the body of a bi-encoder (last hidden state after `final_norm`).
pub struct ModernBertModel {
    body: ModernBertBody,
}

impl TokenEncoder for ModernBertModel {
    fn hidden_size(&self) -> usize {
        self.body.hidden
    }

    fn hidden_states(&self, batch: &Batch, rows: TokenSelection) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.body.forward(batch, rows)
    }
}

/// Loads `ModernBertForSequenceClassification`; `num_labels` comes from the classifier
/// weight's shape. Registry loader.
pub(crate) fn load_classifier(ctx: &LoadContext) -> Result<Loaded<dyn SequenceClassifier>> {
    let cfg: Config = ctx.parse_config()?;
    let shape = cfg.shape(ctx.config())?;
    let w = ctx.weights()?;
    let default_labels = ctx.config().id2label_len.unwrap_or(1);
    let head = ClassificationHead::load(w, &cfg, &shape, default_labels)?;
    let body = ModernBertBody::load(w, &cfg, &shape, ctx.precision())?;
    Ok(Loaded {
        model: Box::new(ModernBertForSequenceClassification { body, head }),
        meta: cfg.meta(),
    })
}

/// Loads the `ModernBertModel` body of any ModernBERT checkpoint. Registry loader.
pub(crate) fn load_encoder(ctx: &LoadContext) -> Result<Loaded<dyn TokenEncoder>> {
    let cfg: Config = ctx.parse_config()?;
    let shape = cfg.shape(ctx.config())?;
    let w = ctx.weights()?;
    let body = ModernBertBody::load(w, &cfg, &shape, ctx.precision())?;
    Ok(Loaded {
        model: Box::new(ModernBertModel { body }),
        meta: cfg.meta(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn shape(json: &str) -> Result<Shape> {
        let mc = ModelConfig::from_value(
            serde_json::from_str(json).unwrap(),
            Path::new("config.json"),
        )
        .unwrap();
        mc.parse::<Config>()?.shape(&mc)
    }

    const BASE: &str = r#""architectures": ["ModernBertForSequenceClassification"],
        "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 4,
        "num_attention_heads": 2, "intermediate_size": 12"#;

    #[test]
    fn legacy_config_takes_every_nth_layer_global_and_both_thetas() {
        let s = shape(&format!(
            r#"{{{BASE}, "global_attn_every_n_layers": 3, "local_attention": 128,
                "global_rope_theta": 80000.0, "local_rope_theta": 5000.0}}"#
        ))
        .unwrap();
        assert_eq!(s.windows, vec![None, Some(64), Some(64), None]);
        assert_eq!((s.global_theta, s.local_theta), (80_000.0, 5_000.0));
        assert_eq!(s.pooling, ClassifierPooling::Cls);
    }

    #[test]
    fn transformers5_config_reads_layer_types_and_rope_parameters() {
        let s = shape(&format!(
            r#"{{{BASE}, "local_attention": 16, "classifier_pooling": "mean",
                "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"],
                "rope_parameters": {{"full_attention": {{"rope_theta": 160000.0, "rope_type": "default"}},
                                     "sliding_attention": {{"rope_theta": 10000.0, "rope_type": "default"}}}}}}"#
        ))
        .unwrap();
        assert_eq!(s.windows, vec![None, Some(8), None, Some(8)]);
        assert_eq!((s.global_theta, s.local_theta), (160_000.0, 10_000.0));
        assert_eq!(s.pooling, ClassifierPooling::Mean);
    }

    #[test]
    fn unsupported_options_are_refused_with_a_clear_error() {
        for (extra, needle) in [
            (r#""classifier_pooling": "max""#, "classifier_pooling"),
            (r#""hidden_activation": "mish""#, "hidden_activation"),
            (
                r#""rope_parameters": {"full_attention": {"rope_type": "yarn"}}"#,
                "rope_type",
            ),
            (
                r#""global_attn_every_n_layers": 0"#,
                "global_attn_every_n_layers",
            ),
            (r#""layer_types": ["full_attention"]"#, "layer_types"),
        ] {
            let e = shape(&format!("{{{BASE}, {extra}}}")).err().expect(extra);
            assert!(e.to_string().contains(needle), "{extra}: {e}");
        }
    }
}
