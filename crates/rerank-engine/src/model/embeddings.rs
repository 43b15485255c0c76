//! Absolute embeddings of BERT-style encoders: token + token-type + position rows, summed in
//! transformers' order `(word + token_type) + position`, then LayerNorm. BERT and XLM-R share
//! them; they differ only in the position ids their model files compute.

use rayon::prelude::*;

use super::layers::{load_layer_norm, tensor};
use crate::error::{EngineError, Result};
use crate::weights::Weights;
use rerank_kernels::embed;
use rerank_kernels::LayerNorm;

/// `embeddings.*` weights of a BERT-style encoder, as row-major f32 tables.
pub(crate) struct Embeddings {
    /// `[vocab_size, hidden]`.
    word: Vec<f32>,
    /// `[max_position_embeddings, hidden]`.
    position: Vec<f32>,
    /// `[type_vocab_size, hidden]`; with one row every token uses it.
    token_type: Vec<f32>,
    layer_norm: LayerNorm,
    hidden: usize,
}

/// Shapes of the embedding tables.
pub(crate) struct EmbeddingShape {
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub hidden_size: usize,
    pub layer_norm_eps: f64,
}

impl Embeddings {
    /// Loads `{prefix}embeddings.{word,position,token_type}_embeddings.weight` and LayerNorm.
    pub fn load(w: &Weights, prefix: &str, s: &EmbeddingShape) -> Result<Self> {
        let h = s.hidden_size;
        let p = format!("{prefix}embeddings");
        Ok(Embeddings {
            word: tensor(
                w,
                &format!("{p}.word_embeddings.weight"),
                &[s.vocab_size, h],
                "",
            )?,
            position: tensor(
                w,
                &format!("{p}.position_embeddings.weight"),
                &[s.max_position_embeddings, h],
                "",
            )?,
            token_type: tensor(
                w,
                &format!("{p}.token_type_embeddings.weight"),
                &[s.type_vocab_size, h],
                "",
            )?,
            layer_norm: load_layer_norm(w, &format!("{p}.LayerNorm"), h, s.layer_norm_eps, true)?,
            hidden: h,
        })
    }

    /// Embeds tokens `input_ids` with segments `token_type_ids` at `positions` (all
    /// `[tokens]`) → `[tokens, hidden]` f32, LayerNorm applied. With a single token-type row
    /// (XLM-R) the segment ids are ignored.
    ///
    /// Errors: [`EngineError::InvalidArgument`] for a token, position or token-type id outside
    /// its table.
    pub fn forward(
        &self,
        input_ids: &[u32],
        token_type_ids: &[u32],
        positions: &[u32],
    ) -> Result<Vec<f32>> {
        let h = self.hidden;
        let single_type = self.token_type.len() == h;
        let mut x = vec![0f32; input_ids.len() * h];
        fn lookup<'t>(table: &'t [f32], h: usize, id: u32, what: &str) -> Result<&'t [f32]> {
            embed::row(table, h, id as usize).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "{what} id {id} is outside the embedding table ({} rows)",
                    table.len() / h.max(1)
                ))
            })
        }
        for (t, out) in x.chunks_exact_mut(h.max(1)).enumerate() {
            let tt = if single_type { 0 } else { token_type_ids[t] };
            embed::sum3(
                out,
                lookup(&self.word, h, input_ids[t], "token")?,
                lookup(&self.token_type, h, tt, "token type")?,
                lookup(&self.position, h, positions[t], "position")?,
            );
        }
        if h > 0 {
            x.par_chunks_mut(64 * h)
                .for_each(|rows| self.layer_norm.forward(rows));
        }
        Ok(x)
    }
}
