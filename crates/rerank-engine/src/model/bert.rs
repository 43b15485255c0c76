//! BERT (`modeling_bert.py` in transformers): absolute position ids from 0, token type
//! embeddings, the shared post-LN encoder (`model/encoder.rs`), and the
//! `BertForSequenceClassification` head (pooler dense + tanh on `[CLS]`, then `classifier`).
//!
//! Registry names: `BertForSequenceClassification`, `BertModel` (model type `bert`).

use std::ops::Range;

use serde::Deserialize;

use super::embeddings::EmbeddingShape;
use super::encoder::{BertEncoder, EncoderShape};
use super::layers::{load_linear, num_labels};
use super::{
    Batch, LoadContext, Loaded, ModelMeta, SequenceClassifier, TokenEncoder, TokenSelection,
    NOT_A_CROSS_ENCODER,
};
use crate::config::{Family, ModelConfig};
use crate::error::{EngineError, Result};
use crate::tokenize::PairFormat;
use crate::weights::Weights;
use rerank_kernels::{Activation, Linear, Parallelism};

/// `config.json` of a BERT model (transformers' `BertConfig`; XLM-R's config has the same
/// fields, see [`super::xlm_roberta`]).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Only `"absolute"` (the default) is implemented.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl Config {
    /// Checks what this engine implements and returns the encoder's shape.
    ///
    /// Errors: [`EngineError::UnsupportedArchitecture`] for relative position embeddings or
    /// an unknown `hidden_act`; [`EngineError::BadFile`] when `hidden_size` is not a multiple
    /// of `num_attention_heads`.
    pub(crate) fn encoder_shape(&self, mc: &ModelConfig) -> Result<EncoderShape> {
        let arch = mc.name();
        let unsupported = |what: String| mc.unsupported(what, super::registry::supported());
        if let Some(p) = self.position_embedding_type.as_deref() {
            if p != "absolute" {
                return Err(unsupported(format!(
                    "{arch} with position_embedding_type {p:?}"
                )));
            }
        }
        let hidden_act = match self.hidden_act.as_str() {
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "relu" | "silu" | "swish" => {
                Activation::from_name(&self.hidden_act).expect("known name")
            }
            other => return Err(unsupported(format!("{arch} with hidden_act {other:?}"))),
        };
        if self.hidden_size == 0
            || self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(EngineError::bad_file(
                &mc.path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        Ok(EncoderShape {
            embeddings: EmbeddingShape {
                vocab_size: self.vocab_size,
                max_position_embeddings: self.max_position_embeddings,
                type_vocab_size: self.type_vocab_size.max(1),
                hidden_size: self.hidden_size,
                layer_norm_eps: self.layer_norm_eps,
            },
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act,
        })
    }

    /// [`ModelMeta`] with `max_positions = max_position_embeddings − position_offset`.
    pub(crate) fn meta(
        &self,
        family: Family,
        pad_token_id: u32,
        position_offset: usize,
    ) -> ModelMeta {
        ModelMeta {
            family,
            uses_token_type_ids: self.type_vocab_size > 1,
            max_positions: self.max_position_embeddings.saturating_sub(position_offset),
            pad_token_id: Some(pad_token_id),
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            vocab_size: self.vocab_size,
            pair_format: PairFormat::PostProcessor,
        }
    }
}

/// The prefix (`"{model}."` or `""`) under which the encoder weights are stored:
/// `*ForSequenceClassification` checkpoints nest them under the base model's name.
pub(crate) fn encoder_prefix(w: &Weights, model: &str) -> String {
    let prefixed = format!("{model}.");
    if w.contains(&format!("{prefixed}embeddings.word_embeddings.weight")) {
        prefixed
    } else {
        String::new()
    }
}

/// Token rows of each sequence of `batch`.
pub(crate) fn seq_ranges(batch: &Batch) -> Vec<Range<usize>> {
    batch.seqs().collect()
}

/// `bert.pooler.dense` + `classifier`.
struct BertClassificationHead {
    pooler: Linear,
    classifier: Linear,
}

impl BertClassificationHead {
    /// Loads `classifier` `[num_labels, hidden]` (first, so that a bi-encoder folder is
    /// refused naming it) and `{prefix}pooler.dense` `[hidden, hidden]`.
    fn load(w: &Weights, prefix: &str, hidden: usize, default_labels: usize) -> Result<Self> {
        let labels = num_labels(w, "classifier.weight", hidden, default_labels)?;
        Ok(BertClassificationHead {
            classifier: load_linear(w, "classifier", hidden, labels, NOT_A_CROSS_ENCODER)?,
            pooler: load_linear(
                w,
                &format!("{prefix}pooler.dense"),
                hidden,
                hidden,
                NOT_A_CROSS_ENCODER,
            )?,
        })
    }

    /// `cls`: `[batch, hidden]` f32 row-major → logits `[batch, num_labels]`.
    fn forward(&self, cls: &[f32], batch: usize) -> Vec<f32> {
        let mut pooled = vec![0f32; batch * self.pooler.out_dim()];
        self.pooler
            .forward(cls, batch, &mut pooled, Parallelism::Parallel);
        Activation::Tanh.apply(&mut pooled);
        let mut logits = vec![0f32; batch * self.classifier.out_dim()];
        self.classifier
            .forward(&pooled, batch, &mut logits, Parallelism::Parallel);
        logits
    }
}

/// `BertForSequenceClassification`.
pub struct BertForSequenceClassification {
    encoder: BertEncoder,
    head: BertClassificationHead,
}

impl SequenceClassifier for BertForSequenceClassification {
    fn num_labels(&self) -> usize {
        self.head.classifier.out_dim()
    }

    fn logits(&self, batch: &Batch) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let cls = self.encoder.forward(
            batch.input_ids(),
            batch.token_type_ids(),
            &batch.positions_from_zero(),
            &seq_ranges(batch),
            TokenSelection::First,
        )?;
        Ok(self.head.forward(&cls, batch.len()))
    }
}

/// `BertModel` without its pooler: the body of a bi-encoder.
pub struct BertModel {
    encoder: BertEncoder,
}

impl TokenEncoder for BertModel {
    fn hidden_size(&self) -> usize {
        self.encoder.hidden_size()
    }

    fn hidden_states(&self, batch: &Batch, rows: TokenSelection) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.encoder.forward(
            batch.input_ids(),
            batch.token_type_ids(),
            &batch.positions_from_zero(),
            &seq_ranges(batch),
            rows,
        )
    }
}

/// Loads `BertForSequenceClassification` (from `bert.*` or unprefixed weights); `num_labels`
/// comes from the classifier weight's shape. Registry loader.
pub(crate) fn load_classifier(ctx: &LoadContext) -> Result<Loaded<dyn SequenceClassifier>> {
    let cfg: Config = ctx.parse_config()?;
    let shape = cfg.encoder_shape(ctx.config())?;
    let w = ctx.weights()?;
    let prefix = encoder_prefix(w, "bert");
    let encoder = BertEncoder::load(w, &prefix, &shape, ctx.precision())?;
    let default_labels = ctx.config().id2label_len.unwrap_or(1);
    let head = BertClassificationHead::load(w, &prefix, cfg.hidden_size, default_labels)?;
    Ok(Loaded {
        model: Box::new(BertForSequenceClassification { encoder, head }),
        meta: cfg.meta(Family::Bert, cfg.pad_token_id.unwrap_or(0), 0),
    })
}

/// Loads the `BertModel` body of any BERT checkpoint. Registry loader.
pub(crate) fn load_encoder(ctx: &LoadContext) -> Result<Loaded<dyn TokenEncoder>> {
    let cfg: Config = ctx.parse_config()?;
    let shape = cfg.encoder_shape(ctx.config())?;
    let w = ctx.weights()?;
    let prefix = encoder_prefix(w, "bert");
    let encoder = BertEncoder::load(w, &prefix, &shape, ctx.precision())?;
    Ok(Loaded {
        model: Box::new(BertModel { encoder }),
        meta: cfg.meta(Family::Bert, cfg.pad_token_id.unwrap_or(0), 0),
    })
}
