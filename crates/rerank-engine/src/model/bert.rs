//! BERT specifics: absolute position ids from 0 and the `BertForSequenceClassification` head
//! (pooler dense + tanh on `[CLS]`, then `classifier`); see `modeling_bert.py` in transformers.

use candle_core::{Module, Tensor};

use super::layers::Linear;
use super::NOT_A_CROSS_ENCODER;
use crate::config::EncoderConfig;
use crate::error::Result;
use crate::weights::Weights;

/// Position ids of one BERT sequence of `len` tokens: `0..len`.
pub fn position_ids(len: usize) -> impl Iterator<Item = u32> {
    0..len as u32
}

/// `bert.pooler.dense` + `classifier`.
pub struct BertClassificationHead {
    pooler: Linear,
    classifier: Linear,
}

impl BertClassificationHead {
    /// Loads `{prefix}pooler.dense` `[hidden, hidden]` and `classifier` `[num_labels, hidden]`.
    pub fn load(w: &Weights, prefix: &str, cfg: &EncoderConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let num_labels = w
            .dims("classifier.weight")
            .map(|d| d[0])
            .unwrap_or(cfg.id2label_len.unwrap_or(1));
        Ok(BertClassificationHead {
            classifier: Linear::load(w, "classifier", h, num_labels, NOT_A_CROSS_ENCODER)?,
            pooler: Linear::load(
                w,
                &format!("{prefix}pooler.dense"),
                h,
                h,
                NOT_A_CROSS_ENCODER,
            )?,
        })
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.out_dim()
    }

    /// `cls`: `[batch, hidden]` → logits `[batch, num_labels]`.
    pub fn forward(&self, cls: &Tensor) -> Result<Tensor> {
        let pooled = self.pooler.forward(cls)?.tanh()?;
        Ok(self.classifier.forward(&pooled)?)
    }
}
