//! Token + position + token-type embeddings followed by LayerNorm (BERT and XLM-R share it;
//! they differ only in the position ids the caller passes, see [`crate::batch`]).

use candle_core::{Module, Tensor};

use super::layers::LayerNorm;
use crate::config::EncoderConfig;
use crate::error::Result;
use crate::weights::Weights;

/// `embeddings.*` weights of a BERT / XLM-R encoder.
pub struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    layer_norm: LayerNorm,
}

impl Embeddings {
    /// Loads `{prefix}embeddings.{word,position,token_type}_embeddings.weight` and LayerNorm.
    pub fn load(w: &Weights, prefix: &str, cfg: &EncoderConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let p = format!("{prefix}embeddings");
        Ok(Embeddings {
            word: w.get(
                &format!("{p}.word_embeddings.weight"),
                &[cfg.vocab_size, h],
                "",
            )?,
            position: w.get(
                &format!("{p}.position_embeddings.weight"),
                &[cfg.max_position_embeddings, h],
                "",
            )?,
            token_type: w.get(
                &format!("{p}.token_type_embeddings.weight"),
                &[cfg.type_vocab_size, h],
                "",
            )?,
            layer_norm: LayerNorm::load(w, &format!("{p}.LayerNorm"), h, cfg.layer_norm_eps)?,
        })
    }

    /// `input_ids`, `position_ids`, `token_type_ids`: `[n]` u32 (flattened batch) →
    /// `[n, hidden]` f32.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        position_ids: &Tensor,
        token_type_ids: &Tensor,
    ) -> Result<Tensor> {
        let x = self
            .word
            .embedding(input_ids)?
            .add(&self.position.embedding(position_ids)?)?
            .add(&self.token_type.embedding(token_type_ids)?)?;
        Ok(self.layer_norm.forward(&x)?)
    }
}
