//! BERT specifics: absolute position ids from 0 and the `BertForSequenceClassification` head
//! (pooler dense + tanh on `[CLS]`, then `classifier`); see `modeling_bert.py` in transformers.

use super::layers::load_linear;
use super::NOT_A_CROSS_ENCODER;
use crate::config::EncoderConfig;
use crate::error::Result;
use crate::weights::Weights;
use rerank_kernels::activation;
use rerank_kernels::gemm::PackedLinear;

/// Position ids of one BERT sequence of `len` tokens: `0..len`.
pub fn position_ids(len: usize) -> impl Iterator<Item = u32> {
    0..len as u32
}

/// `bert.pooler.dense` + `classifier`.
pub struct BertClassificationHead {
    pooler: PackedLinear,
    classifier: PackedLinear,
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
            classifier: load_linear(w, "classifier", h, num_labels, NOT_A_CROSS_ENCODER)?,
            pooler: load_linear(
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

    /// `cls`: `[batch, hidden]` f32 row-major → logits `[batch, num_labels]`.
    pub fn forward(&self, cls: &[f32], batch: usize) -> Vec<f32> {
        let mut pooled = vec![0f32; batch * self.pooler.out_dim()];
        self.pooler.forward(cls, batch, &mut pooled);
        activation::tanh(&mut pooled);
        let mut logits = vec![0f32; batch * self.classifier.out_dim()];
        self.classifier.forward(&pooled, batch, &mut logits);
        logits
    }
}
