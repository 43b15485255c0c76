//! Qwen3 (`modeling_qwen3.py` in transformers) as a reranker: the decoder body and two heads.
//!
//! Body: `model.embed_tokens`; per layer `input_layernorm` (RMSNorm) → self-attention with
//! per-head RMSNorm on queries and keys (`q_norm`, `k_norm`, over `head_dim`), RoPE
//! (`rope_theta`), grouped-query heads (`num_key_value_heads`) and a causal mask → residual →
//! `post_attention_layernorm` → SwiGLU MLP (`down_proj(silu(gate_proj(x)) · up_proj(x))`) →
//! residual; final `model.norm`. The batch is ragged (no padding): each sequence's positions
//! count from 0 and it attends only to its own earlier tokens, so a score never depends on the
//! batch it is in — this is what left padding achieves in the PyTorch reference.
//!
//! Heads:
//! - [`Qwen3Reranker`] (`Qwen3ForCausalLM`, the Qwen3-Reranker checkpoints): the model card's
//!   `logit = lm_head[yes]·h − lm_head[no]·h` of the last token (sentence-transformers'
//!   `LogitScore(yes, no)`), `score = sigmoid(logit)` = `softmax([no, yes])[1]`. Only the last
//!   token of each sequence goes through the final norm, and only the two `lm_head` rows
//!   (`lm_head.weight`, or `model.embed_tokens.weight` when `tie_word_embeddings`) are kept:
//!   the 151,669-row head is never computed. The `yes` / `no` ids are read from the folder's
//!   `tokenizer.json`.
//! - [`Qwen3ForSequenceClassification`] (converted "-seq-cls" checkpoints): `score.weight`
//!   `[num_labels, hidden]` (no bias) on the last token that is not `pad_token_id`, as
//!   transformers picks it.
//!
//! How a folder is recognised: `architectures[0]` is `Qwen3ForCausalLM` (yes/no head) or
//! `Qwen3ForSequenceClassification` (`score` head); both get the Qwen3-Reranker model card's
//! prompt template ([`qwen3_reranker_template`]). Like sentence-transformers (≥ 5.4, any
//! `*ForCausalLM` with `yes` / `no` tokens becomes a `LogitScore` reranker), a plain Qwen3 chat
//! model passed as a reranker is loaded the same way: its scores are then the chat model's own
//! yes/no judgement under that prompt, not a trained reranker's. A tokenizer without `yes` or
//! `no` tokens is refused.
//!
//! Registry names: `Qwen3ForCausalLM`, `Qwen3ForSequenceClassification` (model type `qwen3`).

use std::ops::Range;

use serde::Deserialize;

use super::layers::{load_rms_norm, tensor, LinearParams};
use super::parallel::for_each_group;
use super::{Batch, LoadContext, Loaded, ModelMeta, SequenceClassifier, NOT_A_CROSS_ENCODER};
use crate::config::{Family, ModelConfig};
use crate::error::{EngineError, Result};
use crate::tokenize::{PairFormat, PromptTemplate, TextTokenizer};
use crate::weights::Weights;
use rerank_kernels::activation::glu;
use rerank_kernels::norm::add_assign;
use rerank_kernels::{
    embed, Activation, Attention, AttentionMask, HeadLayout, Linear, Parallelism, Precision,
    RmsNorm, Rope, SeqSpan,
};

/// The family name reported by `info()`.
pub const FAMILY: Family = Family::named("Qwen3");

/// The Qwen3-Reranker model card's system prompt and chat markup before the body.
pub const PROMPT_PREFIX: &str = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n";
/// The model card's text after the body (an empty thinking block, then the answer position).
pub const PROMPT_SUFFIX: &str = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
/// The model card's `format_instruction` body.
pub const PROMPT_BODY: &str = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}";
/// The model card's default instruction.
pub const DEFAULT_INSTRUCTION: &str =
    "Given a web search query, retrieve relevant passages that answer the query";

/// The text of [`PROMPT_BODY`] that ends what every document of one query shares (system
/// prompt, instruction, query): a batch's sequences compute that prefix once.
pub const SHARED_PREFIX_END: &str = "<Document>:";

/// The ids of [`SHARED_PREFIX_END`] as `tokenizer` writes it inside a prompt (it follows a
/// newline and is followed by a space, both of which the Qwen2 pre-tokenizer splits off), or
/// none when it cannot be encoded.
fn shared_prefix_marker(tokenizer: &TextTokenizer) -> Vec<u32> {
    tokenizer
        .inner()
        .encode(SHARED_PREFIX_END, false)
        .map(|e| e.get_ids().to_vec())
        .unwrap_or_default()
}

/// The Qwen3-Reranker model card's prompt (`process_inputs`) with its default instruction.
pub fn qwen3_reranker_template() -> PromptTemplate {
    PromptTemplate {
        prefix: PROMPT_PREFIX.into(),
        body: PROMPT_BODY.into(),
        suffix: PROMPT_SUFFIX.into(),
        instruction: DEFAULT_INSTRUCTION.into(),
    }
}

/// `rope_parameters` of a config written by transformers ≥ 5.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_type: Option<String>,
}

/// `config.json` of a Qwen3 model (transformers' `Qwen3Config`). Both the transformers-5
/// layout (`rope_parameters.rope_theta`) and the older top-level `rope_theta` are read.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Defaults to `num_attention_heads` (multi-head attention).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Legacy RoPE scaling block; only `null` / `"default"` is implemented.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub use_sliding_window: bool,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_act() -> String {
    "silu".into()
}

/// Shapes checked against what this file implements.
#[derive(Debug, Clone, Copy)]
struct Shape {
    vocab: usize,
    hidden: usize,
    inter: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f64,
    theta: f64,
    max_positions: usize,
}

impl Config {
    /// Errors: [`EngineError::UnsupportedArchitecture`] for sliding-window attention, RoPE
    /// scaling or an activation other than SiLU; [`EngineError::BadFile`] for inconsistent
    /// head counts.
    fn shape(&self, mc: &ModelConfig) -> Result<Shape> {
        let arch = mc.name();
        let unsupported = |what: String| mc.unsupported(what, super::registry::supported());
        if self.hidden_act != "silu" && self.hidden_act != "swish" {
            return Err(unsupported(format!(
                "{arch} with hidden_act {:?}",
                self.hidden_act
            )));
        }
        if self.use_sliding_window {
            return Err(unsupported(format!("{arch} with use_sliding_window")));
        }
        let scaling = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_type.clone())
            .or_else(|| {
                self.rope_scaling.as_ref().and_then(|s| {
                    s.get("rope_type")
                        .or_else(|| s.get("type"))
                        .and_then(|t| t.as_str())
                        .map(str::to_string)
                })
            });
        if let Some(t) = scaling.filter(|t| t != "default") {
            return Err(unsupported(format!("{arch} with rope_type {t:?}")));
        }
        let bad = |what: String| Err(EngineError::bad_file(&mc.path, what));
        let heads = self.num_attention_heads;
        let kv_heads = self.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return bad(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
            ));
        }
        let head_dim = match self.head_dim {
            Some(d) => d,
            None if self.hidden_size.is_multiple_of(heads) => self.hidden_size / heads,
            None => {
                return bad(format!(
                    "hidden_size {} is not a multiple of num_attention_heads {heads} and no head_dim is given",
                    self.hidden_size
                ))
            }
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return bad(format!("head_dim {head_dim} must be even for RoPE"));
        }
        let theta = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0);
        Ok(Shape {
            vocab: self.vocab_size,
            hidden: self.hidden_size,
            inter: self.intermediate_size,
            layers: self.num_hidden_layers,
            heads,
            kv_heads,
            head_dim,
            eps: self.rms_norm_eps,
            theta,
            max_positions: self.max_position_embeddings,
        })
    }

    fn meta(&self, s: &Shape, pad_token_id: Option<u32>) -> ModelMeta {
        ModelMeta {
            family: FAMILY,
            uses_token_type_ids: false,
            max_positions: s.max_positions,
            pad_token_id,
            hidden_size: s.hidden,
            num_hidden_layers: s.layers,
            vocab_size: s.vocab,
            pair_format: PairFormat::Template(qwen3_reranker_template()),
        }
    }
}

/// One `model.layers.N` block.
struct Layer {
    input_norm: RmsNorm,
    /// `[(heads + 2·kv_heads)·head_dim, hidden]`: q_proj, k_proj, v_proj stacked.
    qkv: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    o_proj: Linear,
    post_norm: RmsNorm,
    /// `[2·intermediate, hidden]`: gate_proj, up_proj stacked.
    gate_up: Linear,
    down: Linear,
}

/// `Qwen3Model`: embeddings, layers, final norm.
pub(crate) struct Qwen3Body {
    embed: Vec<f32>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    rope: Rope,
    s: Shape,
    /// The tokens that end the prompt prefix shared by a batch's sequences (`<Document>:`
    /// as the folder's tokenizer writes it; empty: no sharing). See [`shared_prefix_len`].
    prefix_marker: Vec<u32>,
}

impl Qwen3Body {
    fn load(w: &Weights, s: Shape, precision: Precision, attention_bias: bool) -> Result<Self> {
        let (h, d, i) = (s.hidden, s.head_dim, s.inter);
        let (qd, kvd) = (s.heads * d, s.kv_heads * d);
        let embed = tensor(w, "model.embed_tokens.weight", &[s.vocab, h], "")?;
        let layers = (0..s.layers)
            .map(|n| {
                let p = format!("model.layers.{n}");
                let lin = |name: &str, i_dim, o_dim, bias| {
                    LinearParams::load_with_bias(w, &format!("{p}.{name}"), i_dim, o_dim, bias, "")
                };
                let q = lin("self_attn.q_proj", h, qd, attention_bias)?;
                let k = lin("self_attn.k_proj", h, kvd, attention_bias)?;
                let v = lin("self_attn.v_proj", h, kvd, attention_bias)?;
                let gate = lin("mlp.gate_proj", h, i, false)?;
                let up = lin("mlp.up_proj", h, i, false)?;
                Ok(Layer {
                    input_norm: load_rms_norm(w, &format!("{p}.input_layernorm"), h, s.eps)?,
                    qkv: LinearParams::concat(&[q, k, v])?.build(precision),
                    q_norm: load_rms_norm(w, &format!("{p}.self_attn.q_norm"), d, s.eps)?,
                    k_norm: load_rms_norm(w, &format!("{p}.self_attn.k_norm"), d, s.eps)?,
                    o_proj: lin("self_attn.o_proj", qd, h, attention_bias)?.build(precision),
                    post_norm: load_rms_norm(
                        w,
                        &format!("{p}.post_attention_layernorm"),
                        h,
                        s.eps,
                    )?,
                    gate_up: LinearParams::concat(&[gate, up])?.build(precision),
                    down: lin("mlp.down_proj", i, h, false)?.build(precision),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Qwen3Body {
            embed,
            layers,
            norm: load_rms_norm(w, "model.norm", h, s.eps)?,
            rope: Rope::new(d, s.theta),
            s,
            prefix_marker: Vec::new(),
        })
    }

    /// The final-norm hidden state `[batch.len(), hidden]` of one token per sequence: the
    /// token at offset `pick(ids_of_sequence)` (the last one for the causal-LM head). Every
    /// layer runs on every token; only the picked rows go through the final norm.
    ///
    /// Sequences whose prompts share a prefix (see [`shared_prefix_len`]) run it once: the
    /// prefix is its own causal sequence, and each sequence's remaining tokens attend to that
    /// prefix's keys and values followed by their own ([`Plan`]). The prefix's K/V are exactly
    /// those the sequence would compute itself (causal attention: no prefix token sees what
    /// follows), and the split depends only on the sequence's own ids, so a score still never
    /// depends on its batch.
    ///
    /// Errors: [`EngineError::InvalidArgument`] for a token id outside the vocabulary or a
    /// sequence longer than `max_position_embeddings`.
    fn forward(&self, batch: &Batch, pick: impl Fn(&[u32]) -> usize + Sync) -> Result<Vec<f32>> {
        let h = self.s.hidden;
        let ids = batch.input_ids();
        if let Some(len) = batch
            .seqs()
            .map(|r| r.len())
            .find(|&l| l > self.s.max_positions)
        {
            return Err(EngineError::InvalidArgument(format!(
                "a sequence of {len} tokens exceeds the model's {} positions",
                self.s.max_positions
            )));
        }
        let seqs: Vec<Range<usize>> = batch.seqs().collect();
        let units = Unit::split(ids, &seqs, &self.prefix_marker);
        // The rows of the pass: per unit its prefix, then each member's own tokens.
        let mut unit_rows = Vec::with_capacity(units.len());
        let mut row_ids = Vec::with_capacity(ids.len());
        for u in &units {
            let start = row_ids.len();
            row_ids.extend_from_slice(&ids[u.prefix.clone()]);
            for &m in &u.members {
                row_ids.extend_from_slice(&ids[seqs[m].start + u.prefix.len()..seqs[m].end]);
            }
            unit_rows.push(start..row_ids.len());
        }
        let mut x = vec![0f32; row_ids.len() * h];
        for (row, &id) in x.chunks_exact_mut(h.max(1)).zip(&row_ids) {
            let e = embed::row(&self.embed, h, id as usize).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "token id {id} is outside the embedding table ({} rows)",
                    self.s.vocab
                ))
            })?;
            row.copy_from_slice(e);
        }
        // Offset of the picked token in each sequence, from its own ids.
        let picks: Vec<usize> = seqs
            .iter()
            .map(|r| pick(&ids[r.clone()]).min(r.len() - 1))
            .collect();
        let unit_starts: Vec<usize> = unit_rows.iter().map(|r| r.start).collect();
        // `for_each_group` hands each task a sub-slice of `x`; its distance from the start of
        // `x` gives the task's first row, and so its first unit.
        let base = x.as_ptr() as usize;
        let parts = for_each_group(&mut x, h, &unit_rows, |xs, local, par| {
            let first_row = (xs.as_ptr() as usize - base) / std::mem::size_of::<f32>() / h;
            let first = unit_starts.partition_point(|&c| c < first_row);
            let mine = &units[first..first + local.len()];
            let plan = Plan::new(mine, local, &seqs);
            self.run_layers(xs, &plan, par);
            let mut picked = Vec::new();
            let mut out = Vec::new();
            for (u, rows) in mine.iter().zip(local) {
                let p = u.prefix.len();
                let mut own = rows.start + p;
                for &m in &u.members {
                    let o = picks[m];
                    let row = if o < p { rows.start + o } else { own + o - p };
                    out.extend_from_slice(&xs[row * h..(row + 1) * h]);
                    picked.push(m);
                    own += seqs[m].len() - p;
                }
            }
            self.norm.forward(&mut out);
            (picked, out)
        });
        let mut hidden = vec![0f32; seqs.len() * h];
        for (picked, out) in parts {
            for (&m, row) in picked.iter().zip(out.chunks_exact(h.max(1))) {
                hidden[m * h..(m + 1) * h].copy_from_slice(row);
            }
        }
        Ok(hidden)
    }

    /// All layers on `x` (`[rows, hidden]`, laid out as `plan` says), in place.
    fn run_layers(&self, x: &mut [f32], plan: &Plan, par: Parallelism) {
        let s = &self.s;
        let (h, d) = (s.hidden, s.head_dim);
        let t = x.len() / h.max(1);
        if t == 0 {
            return;
        }
        let (qd, kvd) = (s.heads * d, s.kv_heads * d);
        let ld = qd + 2 * kvd;
        let layout = HeadLayout::row_major(ld, d);
        let attn = Attention {
            heads: s.heads,
            kv_heads: s.kv_heads,
            head_dim: d,
            q: layout,
            k: layout,
            v: layout,
            ld_out: qd,
            scale: (1.0 / (d as f64).sqrt()) as f32,
            mask: AttentionMask::Causal,
        };
        // Own tokens after a shared prefix read keys and values from `kv` (`[kv_rows, 2·kvd]`:
        // K then V, the prefix's rows followed by the sequence's own).
        let kv_layout = HeadLayout::row_major(2 * kvd, d);
        let attn_shared = Attention {
            k: kv_layout,
            v: kv_layout,
            ..attn
        };
        let mut kv = vec![0f32; plan.kv_rows * 2 * kvd];
        let mut xn = vec![0f32; t * h];
        let mut qkv = vec![0f32; t * ld];
        let mut ctx = vec![0f32; t * qd];
        let mut tmp = vec![0f32; t * h];
        let mut gate_up = vec![0f32; t * 2 * s.inter];
        let mut inter = vec![0f32; t * s.inter];
        for layer in &self.layers {
            layer.input_norm.forward_to(x, &mut xn);
            layer.qkv.forward(&xn, t, &mut qkv, par);
            for row in qkv.chunks_exact_mut(ld) {
                layer.q_norm.forward(&mut row[..qd]);
                layer.k_norm.forward(&mut row[qd..qd + kvd]);
            }
            self.rope
                .apply(&mut qkv, layout, s.heads, &plan.positions, par);
            self.rope
                .apply(&mut qkv[qd..], layout, s.kv_heads, &plan.positions, par);
            attn.run(
                &qkv,
                &qkv[qd..],
                &qkv[qd + kvd..],
                &mut ctx,
                &plan.direct,
                par,
            );
            if !plan.shared.is_empty() {
                let mut dst = kv.chunks_exact_mut(2 * kvd);
                for src in plan.kv_sources.iter().flat_map(|r| r.clone()) {
                    if let Some(row) = dst.next() {
                        row.copy_from_slice(&qkv[src * ld + qd..(src + 1) * ld]);
                    }
                }
                attn_shared.run(&qkv, &kv, &kv[kvd..], &mut ctx, &plan.shared, par);
            }
            layer.o_proj.forward(&ctx, t, &mut tmp, par);
            add_assign(x, &tmp);
            layer.post_norm.forward_to(x, &mut xn);
            layer.gate_up.forward(&xn, t, &mut gate_up, par);
            glu(Activation::Silu, &gate_up, s.inter, &mut inter);
            layer.down.forward(&inter, t, &mut tmp, par);
            add_assign(x, &tmp);
        }
    }
}

/// The length of a sequence's prompt prefix whose keys and values are computed once for
/// every sequence of a batch that starts with the same tokens: everything up to and including
/// the first occurrence of `marker` (the tokens of `<Document>:`, so the system prompt, the
/// instruction and the query), or 0 when `marker` is empty, does not occur, or would leave
/// no token after it. Read from the sequence's own ids only.
fn shared_prefix_len(ids: &[u32], marker: &[u32]) -> usize {
    if marker.is_empty() || ids.len() <= marker.len() {
        return 0;
    }
    ids.windows(marker.len())
        .position(|w| w == marker)
        .map(|i| i + marker.len())
        .filter(|&p| p < ids.len())
        .unwrap_or(0)
}

/// Sequences of a batch that share a prompt prefix: `prefix` (token range of the first
/// member's ids in the batch; empty for a unit of one sequence without a shared prefix) and
/// the members' sequence indices, in batch order.
struct Unit {
    prefix: Range<usize>,
    members: Vec<usize>,
}

impl Unit {
    /// Groups `seqs` by their [`shared_prefix_len`] prefix (equal tokens), in order of first
    /// appearance; a sequence without one is a unit of its own.
    fn split(ids: &[u32], seqs: &[Range<usize>], marker: &[u32]) -> Vec<Unit> {
        let mut units: Vec<Unit> = Vec::new();
        let mut by_prefix: std::collections::HashMap<&[u32], usize> = Default::default();
        for (i, r) in seqs.iter().enumerate() {
            let p = shared_prefix_len(&ids[r.clone()], marker);
            let prefix = r.start..r.start + p;
            if p == 0 {
                units.push(Unit {
                    prefix,
                    members: vec![i],
                });
                continue;
            }
            match by_prefix.entry(&ids[prefix.clone()]) {
                std::collections::hash_map::Entry::Occupied(e) => units[*e.get()].members.push(i),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(units.len());
                    units.push(Unit {
                        prefix,
                        members: vec![i],
                    });
                }
            }
        }
        units
    }
}

/// Where the rows of one pass over [`Unit`]s sit and what each attends to.
struct Plan {
    /// RoPE position of every row.
    positions: Vec<u32>,
    /// Causal sequences whose keys are their own rows: each shared prefix, and each
    /// sequence without one.
    direct: Vec<SeqSpan>,
    /// Each member's own tokens after a shared prefix: queries at positions `prefix ..`,
    /// keys and values rows of `kv`.
    shared: Vec<SeqSpan>,
    /// The rows of `x` copied, in order, into `kv` each layer (per `shared` span: the
    /// prefix's rows, then the member's own).
    kv_sources: Vec<Range<usize>>,
    kv_rows: usize,
}

impl Plan {
    /// The plan for `units`, whose rows are `rows` (prefix first, then each member's own
    /// tokens; relative to the task's first row); `seqs` are the batch's sequences.
    fn new(units: &[Unit], rows: &[Range<usize>], seqs: &[Range<usize>]) -> Plan {
        let mut plan = Plan {
            positions: Vec::with_capacity(rows.last().map_or(0, |r| r.end)),
            direct: Vec::new(),
            shared: Vec::new(),
            kv_sources: Vec::new(),
            kv_rows: 0,
        };
        for (u, r) in units.iter().zip(rows) {
            let p = u.prefix.len();
            if p == 0 {
                // One member, all its tokens.
                plan.direct.push(SeqSpan::full(r.start, r.len()));
                plan.positions.extend(0..r.len() as u32);
                continue;
            }
            plan.direct.push(SeqSpan::full(r.start, p));
            plan.positions.extend(0..p as u32);
            let mut own = r.start + p;
            for &m in &u.members {
                let n = seqs[m].len() - p;
                plan.positions.extend(p as u32..(p + n) as u32);
                plan.shared
                    .push(SeqSpan::full(plan.kv_rows, p + n).queries(own, p, n));
                plan.kv_sources.push(r.start..r.start + p);
                plan.kv_sources.push(own..own + n);
                plan.kv_rows += p + n;
                own += n;
            }
        }
        plan
    }
}

/// `Qwen3ForCausalLM` as a Qwen3-Reranker: `logits = [lm_head[yes]·h − lm_head[no]·h]` of
/// each sequence's last token.
pub struct Qwen3Reranker {
    body: Qwen3Body,
    /// `[2, hidden]`: the `yes` row, then the `no` row of `lm_head` (f32).
    yes_no: Linear,
    yes_no_ids: [u32; 2],
}

impl SequenceClassifier for Qwen3Reranker {
    fn num_labels(&self) -> usize {
        1
    }

    fn logits(&self, batch: &Batch) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let last = self.body.forward(batch, |ids| ids.len() - 1)?;
        let b = batch.len();
        let mut yn = vec![0f32; b * 2];
        self.yes_no
            .forward(&last, b, &mut yn, Parallelism::Parallel);
        Ok(yn.chunks_exact(2).map(|r| r[0] - r[1]).collect())
    }

    fn yes_no_token_ids(&self) -> Option<[u32; 2]> {
        Some(self.yes_no_ids)
    }
}

/// `Qwen3ForSequenceClassification`: `score` on the last token that is not `pad_token_id`.
pub struct Qwen3ForSequenceClassification {
    body: Qwen3Body,
    /// `[num_labels, hidden]`, no bias (f32).
    score: Linear,
    pad_token_id: Option<u32>,
}

/// transformers' choice of the token a `*ForSequenceClassification` decoder classifies: the
/// last one that is not `pad` (position 0 when every token is `pad`, as its `argmax` of an
/// all-zero mask gives), or the last one without a pad id.
fn last_non_pad(ids: &[u32], pad: Option<u32>) -> usize {
    match pad {
        Some(p) => ids.iter().rposition(|&t| t != p).unwrap_or(0),
        None => ids.len() - 1,
    }
}

impl SequenceClassifier for Qwen3ForSequenceClassification {
    fn num_labels(&self) -> usize {
        self.score.out_dim()
    }

    fn logits(&self, batch: &Batch) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let pad = self.pad_token_id;
        let rows = self.body.forward(batch, |ids| last_non_pad(ids, pad))?;
        let b = batch.len();
        let mut out = vec![0f32; b * self.score.out_dim()];
        self.score
            .forward(&rows, b, &mut out, Parallelism::Parallel);
        Ok(out)
    }
}

fn body(ctx: &LoadContext) -> Result<(Config, Shape, Qwen3Body)> {
    let cfg: Config = ctx.parse_config()?;
    let shape = cfg.shape(ctx.config())?;
    let w = ctx.weights()?;
    let body = Qwen3Body::load(w, shape, ctx.precision(), cfg.attention_bias)?;
    Ok((cfg, shape, body))
}

/// The ids of the `yes` and `no` tokens in the folder's `tokenizer.json`.
///
/// Errors: [`EngineError::NotFound`] / [`EngineError::BadFile`] for the tokenizer;
/// [`EngineError::BadFile`] when it lacks either token.
pub fn yes_no_token_ids(tokenizer: &TextTokenizer, path: &std::path::Path) -> Result<[u32; 2]> {
    let id = |t: &str| {
        tokenizer.token_to_id(t).ok_or_else(|| {
            EngineError::bad_file(
                path,
                format!("the tokenizer has no {t:?} token, so this causal LM cannot be a yes/no reranker"),
            )
        })
    };
    Ok([id("yes")?, id("no")?])
}

/// Loads `Qwen3ForCausalLM` as a yes/no reranker. Registry loader.
pub(crate) fn load_causal_lm(ctx: &LoadContext) -> Result<Loaded<dyn SequenceClassifier>> {
    let (model, meta) = causal_lm(ctx)?;
    Ok(Loaded {
        model: Box::new(model),
        meta,
    })
}

fn causal_lm(ctx: &LoadContext) -> Result<(Qwen3Reranker, ModelMeta)> {
    let tok_path = ctx.dir().join("tokenizer.json");
    let tokenizer = TextTokenizer::from_file(&tok_path)?;
    let ids = yes_no_token_ids(&tokenizer, &tok_path)?;
    let (cfg, shape, mut body) = body(ctx)?;
    body.prefix_marker = shared_prefix_marker(&tokenizer);
    if ids.iter().any(|&i| i as usize >= shape.vocab) {
        return Err(EngineError::bad_file(
            &tok_path,
            format!(
                "yes/no token ids {ids:?} are outside the model's vocab_size {}",
                shape.vocab
            ),
        ));
    }
    let w = ctx.weights()?;
    let h = shape.hidden;
    let rows: Vec<f32> = if cfg.tie_word_embeddings || !w.contains("lm_head.weight") {
        if !cfg.tie_word_embeddings {
            return Err(EngineError::MissingTensor {
                path: w.source().to_path_buf(),
                tensor: "lm_head.weight".into(),
                hint: " (tie_word_embeddings is false)".into(),
            });
        }
        ids.iter()
            .flat_map(|&i| body.embed[i as usize * h..(i as usize + 1) * h].to_vec())
            .collect()
    } else {
        let head = tensor(w, "lm_head.weight", &[shape.vocab, h], "")?;
        ids.iter()
            .flat_map(|&i| head[i as usize * h..(i as usize + 1) * h].to_vec())
            .collect()
    };
    let meta = cfg.meta(
        &shape,
        cfg.pad_token_id.or(tokenizer.token_to_id("<|endoftext|>")),
    );
    Ok((
        Qwen3Reranker {
            body,
            yes_no: Linear::new(&rows, None, 2, h, Precision::F32),
            yes_no_ids: ids,
        },
        meta,
    ))
}

/// Loads `Qwen3ForSequenceClassification` (`score.weight` `[num_labels, hidden]`). Registry
/// loader.
pub(crate) fn load_seq_cls(ctx: &LoadContext) -> Result<Loaded<dyn SequenceClassifier>> {
    let (cfg, shape, mut body) = body(ctx)?;
    // Without a tokenizer the folder gets raw ids only: no prompt, nothing to share.
    if let Ok(tokenizer) = TextTokenizer::from_file(&ctx.dir().join("tokenizer.json")) {
        body.prefix_marker = shared_prefix_marker(&tokenizer);
    }
    let w = ctx.weights()?;
    let h = shape.hidden;
    let default_labels = ctx.config().id2label_len.unwrap_or(1);
    let labels = super::layers::num_labels(w, "score.weight", h, default_labels)?;
    let score = tensor(w, "score.weight", &[labels, h], NOT_A_CROSS_ENCODER)?;
    Ok(Loaded {
        model: Box::new(Qwen3ForSequenceClassification {
            body,
            score: Linear::new(&score, None, labels, h, Precision::F32),
            pad_token_id: cfg.pad_token_id,
        }),
        meta: cfg.meta(&shape, cfg.pad_token_id),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn shared_prefix_ends_after_the_first_marker_and_leaves_a_token() {
        assert_eq!(shared_prefix_len(&[1, 2, 7, 8, 3, 7, 8], &[7, 8]), 4);
        assert_eq!(shared_prefix_len(&[1, 2, 7, 8], &[7, 8]), 0);
        assert_eq!(shared_prefix_len(&[1, 2, 3], &[7, 8]), 0);
        assert_eq!(shared_prefix_len(&[1, 2, 3], &[]), 0);
        assert!(PROMPT_BODY.contains(&format!("\n{SHARED_PREFIX_END} {{document}}")));
    }

    fn tiny(name: &str) -> PathBuf {
        std::env::var_os("RERANK_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
            .join("models")
            .join(name)
    }

    /// Issue 11 item 6: running a shared prompt prefix once changes no bit of any logit.
    /// Two queries (two shared prefixes), a document repeated under both, and a pair whose
    /// body is cut before `<Document>:` (no shared prefix: computed whole), in one batch; the
    /// same batch with sharing switched off, in f32 and bf16.
    #[test]
    fn shared_prefix_gives_the_bits_of_each_sequence_computed_whole() {
        let dir = tiny("tiny-qwen3-reranker");
        let mc = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        let tok = TextTokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
        let template = qwen3_reranker_template();
        let long_query = "what is the plan for the economy ".repeat(20);
        let pairs = [
            (
                "What is the plan for the economy?",
                "We will build the economy from the bottom up.",
            ),
            (
                "What is the plan for the economy?",
                "Inflation is robbing families of their gains.",
            ),
            (
                "Who is the president of Ukraine?",
                "Inflation is robbing families of their gains.",
            ),
            (
                "What is the plan for the economy?",
                "Cancer research gets a moonshot.",
            ),
            (
                "Who is the president of Ukraine?",
                "Zelenskyy and every Ukrainian stand with courage.",
            ),
            (long_query.as_str(), "This body is cut before its document."),
        ];
        let mut enc = tok.encode_template(&template, &pairs[..5], 512).unwrap();
        enc.extend(tok.encode_template(&template, &pairs[5..], 100).unwrap());
        let batch = Batch::from_encoded(&enc).unwrap();
        for precision in [Precision::F32, Precision::Bf16] {
            let ctx = LoadContext::new(&mc, &dir, precision);
            let (mut model, _) = causal_lm(&ctx).unwrap();
            let marker = model.body.prefix_marker.clone();
            let seqs: Vec<_> = batch.seqs().collect();
            let units = Unit::split(batch.input_ids(), &seqs, &marker);
            let sizes: Vec<usize> = units.iter().map(|u| u.members.len()).collect();
            assert_eq!(sizes, vec![3, 2, 1], "{marker:?}");
            assert_eq!(units[2].prefix.len(), 0);
            let shared = model.logits(&batch).unwrap();
            model.body.prefix_marker.clear();
            let whole = model.logits(&batch).unwrap();
            assert_eq!(
                shared.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{precision:?}: {shared:?} vs {whole:?}"
            );
        }
    }

    #[test]
    fn last_non_pad_follows_transformers() {
        assert_eq!(last_non_pad(&[5, 6, 7], Some(9)), 2);
        assert_eq!(last_non_pad(&[5, 6, 9], Some(9)), 1);
        assert_eq!(last_non_pad(&[9, 9], Some(9)), 0);
        assert_eq!(last_non_pad(&[9, 9], None), 1);
    }
}
