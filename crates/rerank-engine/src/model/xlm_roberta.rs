//! XLM-RoBERTa specifics: position ids that start at `padding_idx + 1` and count only
//! non-pad tokens (`create_position_ids_from_input_ids` in transformers), and the
//! `XLMRobertaClassificationHead` (dense → tanh → out_proj on `<s>`).

use super::layers::load_linear;
use super::NOT_A_CROSS_ENCODER;
use crate::config::EncoderConfig;
use crate::error::Result;
use crate::weights::Weights;
use rerank_kernels::activation;
use rerank_kernels::gemm::PackedLinear;

/// Position ids of one XLM-R sequence: `padding_idx + cumsum(id != padding_idx)` for
/// non-pad tokens and `padding_idx` for pad tokens. Note a literal `<pad>` inside the text
/// is a pad id too and is skipped exactly as transformers does.
pub fn position_ids(ids: &[u32], padding_idx: u32) -> impl Iterator<Item = u32> + '_ {
    let mut count = 0u32;
    ids.iter().map(move |&id| {
        if id == padding_idx {
            padding_idx
        } else {
            count += 1;
            padding_idx + count
        }
    })
}

/// `classifier.dense` + `classifier.out_proj`.
pub struct RobertaClassificationHead {
    dense: PackedLinear,
    out_proj: PackedLinear,
}

impl RobertaClassificationHead {
    /// Loads `classifier.dense` `[hidden, hidden]` and `classifier.out_proj` `[num_labels, hidden]`.
    pub fn load(w: &Weights, cfg: &EncoderConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let num_labels = w
            .dims("classifier.out_proj.weight")
            .map(|d| d[0])
            .unwrap_or(cfg.id2label_len.unwrap_or(1));
        Ok(RobertaClassificationHead {
            out_proj: load_linear(w, "classifier.out_proj", h, num_labels, NOT_A_CROSS_ENCODER)?,
            dense: load_linear(w, "classifier.dense", h, h, NOT_A_CROSS_ENCODER)?,
        })
    }

    pub fn num_labels(&self) -> usize {
        self.out_proj.out_dim()
    }

    /// `first`: `[batch, hidden]` f32 row-major (the `<s>` token) → logits
    /// `[batch, num_labels]`.
    pub fn forward(&self, first: &[f32], batch: usize) -> Vec<f32> {
        let mut x = vec![0f32; batch * self.dense.out_dim()];
        self.dense.forward(first, batch, &mut x);
        activation::tanh(&mut x);
        let mut logits = vec![0f32; batch * self.out_proj.out_dim()];
        self.out_proj.forward(&x, batch, &mut logits);
        logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_start_at_padding_idx_plus_one() {
        let ids = [0u32, 100, 101, 2, 1, 1];
        let pos: Vec<u32> = position_ids(&ids, 1).collect();
        assert_eq!(pos, vec![2, 3, 4, 5, 1, 1]);
    }

    #[test]
    fn literal_pad_inside_text_is_skipped_like_transformers() {
        let ids = [0u32, 100, 1, 101, 2];
        let pos: Vec<u32> = position_ids(&ids, 1).collect();
        assert_eq!(pos, vec![2, 3, 1, 4, 5]);
    }
}
