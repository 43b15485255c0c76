//! Token + token-type + position embeddings followed by LayerNorm (BERT and XLM-R share it;
//! they differ only in the position ids the caller passes, see [`crate::batch`]).

use rayon::prelude::*;

use super::layers::{load_layer_norm, tensor_vec};
use super::ModelInput;
use crate::config::EncoderConfig;
use crate::error::{EngineError, Result};
use crate::weights::Weights;
use rerank_kernels::embed;
use rerank_kernels::norm::LayerNormParams;

/// `embeddings.*` weights of a BERT / XLM-R encoder, as row-major f32 tables.
pub struct Embeddings {
    /// `[vocab_size, hidden]`.
    word: Vec<f32>,
    /// `[max_position_embeddings, hidden]`.
    position: Vec<f32>,
    /// `[type_vocab_size, hidden]`.
    token_type: Vec<f32>,
    layer_norm: LayerNormParams,
    hidden: usize,
}

impl Embeddings {
    /// Loads `{prefix}embeddings.{word,position,token_type}_embeddings.weight` and LayerNorm.
    pub fn load(w: &Weights, prefix: &str, cfg: &EncoderConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let p = format!("{prefix}embeddings");
        Ok(Embeddings {
            word: tensor_vec(
                w,
                &format!("{p}.word_embeddings.weight"),
                &[cfg.vocab_size, h],
                "",
            )?,
            position: tensor_vec(
                w,
                &format!("{p}.position_embeddings.weight"),
                &[cfg.max_position_embeddings, h],
                "",
            )?,
            token_type: tensor_vec(
                w,
                &format!("{p}.token_type_embeddings.weight"),
                &[cfg.type_vocab_size, h],
                "",
            )?,
            layer_norm: load_layer_norm(w, &format!("{p}.LayerNorm"), h, cfg.layer_norm_eps)?,
            hidden: h,
        })
    }

    /// Embeds the tokens at flat positions `tokens` (indices into the `[batch · seq_len]`
    /// arrays of `input`) → `[tokens.len(), hidden]` f32, LayerNorm applied.
    ///
    /// Errors: [`EngineError::InvalidArgument`] for a token, position or token-type id outside
    /// its table.
    pub fn forward(&self, input: &ModelInput, tokens: &[usize]) -> Result<Vec<f32>> {
        let h = self.hidden;
        let mut x = vec![0f32; tokens.len() * h];
        fn lookup<'t>(table: &'t [f32], h: usize, id: u32, what: &str) -> Result<&'t [f32]> {
            embed::row(table, h, id as usize).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "{what} id {id} is outside the embedding table ({} rows)",
                    table.len() / h.max(1)
                ))
            })
        }
        for (out, &f) in x.chunks_exact_mut(h.max(1)).zip(tokens) {
            embed::sum3(
                out,
                lookup(&self.word, h, input.input_ids[f], "token")?,
                lookup(&self.token_type, h, input.token_type_ids[f], "token type")?,
                lookup(&self.position, h, input.position_ids[f], "position")?,
            );
        }
        if h > 0 {
            x.par_chunks_mut(64 * h)
                .for_each(|rows| self.layer_norm.forward(rows));
        }
        Ok(x)
    }
}
