//! XLM-RoBERTa / RoBERTa (`modeling_xlm_roberta.py` in transformers): BERT's encoder with
//! position ids that start at `padding_idx + 1` and count only non-pad tokens
//! (`create_position_ids_from_input_ids`), and the `XLMRobertaClassificationHead`
//! (dense → tanh → out_proj on `<s>`).
//!
//! Registry names: `XLMRobertaForSequenceClassification`, `RobertaForSequenceClassification`,
//! `XLMRobertaModel`, `RobertaModel` (model types `xlm-roberta`, `roberta`).

use super::bert::{encoder_prefix, seq_ranges};
use super::encoder::BertEncoder;
use super::layers::{load_linear, num_labels};
use super::{
    Batch, LoadContext, Loaded, SequenceClassifier, TokenEncoder, TokenSelection,
    NOT_A_CROSS_ENCODER,
};
use crate::config::Family;
use crate::error::Result;
use crate::weights::Weights;
use rerank_kernels::{Activation, Linear, Parallelism};

/// `config.json` of an XLM-R / RoBERTa model: transformers' `XLMRobertaConfig` has
/// `BertConfig`'s fields; only the default `pad_token_id` (1) differs, applied by this file.
pub type Config = super::bert::Config;

/// Default `pad_token_id` (`padding_idx`) of XLM-R configs.
const DEFAULT_PAD: u32 = 1;

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

/// [`position_ids`] of every sequence of `batch`: `[total_tokens]`.
fn batch_positions(batch: &Batch, padding_idx: u32) -> Vec<u32> {
    batch
        .seqs()
        .flat_map(|r| position_ids(&batch.input_ids()[r], padding_idx))
        .collect()
}

/// `classifier.dense` + `classifier.out_proj`.
struct RobertaClassificationHead {
    dense: Linear,
    out_proj: Linear,
}

impl RobertaClassificationHead {
    /// Loads `classifier.out_proj` `[num_labels, hidden]` (first, so that a bi-encoder
    /// folder is refused naming it) and `classifier.dense` `[hidden, hidden]`.
    fn load(w: &Weights, hidden: usize, default_labels: usize) -> Result<Self> {
        let labels = num_labels(w, "classifier.out_proj.weight", hidden, default_labels)?;
        Ok(RobertaClassificationHead {
            out_proj: load_linear(
                w,
                "classifier.out_proj",
                hidden,
                labels,
                NOT_A_CROSS_ENCODER,
            )?,
            dense: load_linear(w, "classifier.dense", hidden, hidden, NOT_A_CROSS_ENCODER)?,
        })
    }

    /// `first`: `[batch, hidden]` f32 row-major (the `<s>` token) → logits
    /// `[batch, num_labels]`.
    fn forward(&self, first: &[f32], batch: usize) -> Vec<f32> {
        let mut x = vec![0f32; batch * self.dense.out_dim()];
        self.dense
            .forward(first, batch, &mut x, Parallelism::Parallel);
        Activation::Tanh.apply(&mut x);
        let mut logits = vec![0f32; batch * self.out_proj.out_dim()];
        self.out_proj
            .forward(&x, batch, &mut logits, Parallelism::Parallel);
        logits
    }
}

/// `XLMRobertaForSequenceClassification` (and RoBERTa's).
pub struct XlmRobertaForSequenceClassification {
    encoder: BertEncoder,
    head: RobertaClassificationHead,
    padding_idx: u32,
}

impl SequenceClassifier for XlmRobertaForSequenceClassification {
    fn num_labels(&self) -> usize {
        self.head.out_proj.out_dim()
    }

    fn logits(&self, batch: &Batch) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.encoder.forward(
            batch.input_ids(),
            batch.token_type_ids(),
            &batch_positions(batch, self.padding_idx),
            &seq_ranges(batch),
            TokenSelection::First,
        )?;
        Ok(self.head.forward(&first, batch.len()))
    }
}

/// `XLMRobertaModel` without its pooler: the body of a bi-encoder.
pub struct XlmRobertaModel {
    encoder: BertEncoder,
    padding_idx: u32,
}

impl TokenEncoder for XlmRobertaModel {
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
            &batch_positions(batch, self.padding_idx),
            &seq_ranges(batch),
            rows,
        )
    }
}

/// Loads `XLMRobertaForSequenceClassification` (encoder under `roberta.` or unprefixed);
/// `num_labels` comes from `classifier.out_proj.weight`. Registry loader.
pub(crate) fn load_classifier(ctx: &LoadContext) -> Result<Loaded<dyn SequenceClassifier>> {
    let cfg: Config = ctx.parse_config()?;
    let shape = cfg.encoder_shape(ctx.config())?;
    let pad = cfg.pad_token_id.unwrap_or(DEFAULT_PAD);
    let w = ctx.weights()?;
    let prefix = encoder_prefix(w, "roberta");
    let encoder = BertEncoder::load(w, &prefix, &shape, ctx.precision())?;
    let head = RobertaClassificationHead::load(
        w,
        cfg.hidden_size,
        ctx.config().id2label_len.unwrap_or(1),
    )?;
    Ok(Loaded {
        model: Box::new(XlmRobertaForSequenceClassification {
            encoder,
            head,
            padding_idx: pad,
        }),
        meta: cfg.meta(Family::XlmRoberta, pad, pad as usize + 1),
    })
}

/// Loads the `XLMRobertaModel` body of any XLM-R / RoBERTa checkpoint. Registry loader.
pub(crate) fn load_encoder(ctx: &LoadContext) -> Result<Loaded<dyn TokenEncoder>> {
    let cfg: Config = ctx.parse_config()?;
    let shape = cfg.encoder_shape(ctx.config())?;
    let pad = cfg.pad_token_id.unwrap_or(DEFAULT_PAD);
    let w = ctx.weights()?;
    let prefix = encoder_prefix(w, "roberta");
    let encoder = BertEncoder::load(w, &prefix, &shape, ctx.precision())?;
    Ok(Loaded {
        model: Box::new(XlmRobertaModel {
            encoder,
            padding_idx: pad,
        }),
        meta: cfg.meta(Family::XlmRoberta, pad, pad as usize + 1),
    })
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

    #[test]
    fn every_sequence_of_a_ragged_batch_counts_from_padding_idx() {
        use crate::tokenize::Encoded;
        let e = |ids: &[u32]| Encoded {
            input_ids: ids.to_vec(),
            token_type_ids: vec![0; ids.len()],
            truncated: false,
        };
        let b = Batch::from_encoded([&e(&[0, 5, 2]), &e(&[0, 2])]).unwrap();
        assert_eq!(batch_positions(&b, 1), vec![2, 3, 4, 2, 3]);
    }
}
