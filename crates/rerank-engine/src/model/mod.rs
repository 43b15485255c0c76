//! Model code: one encoder implementation ([`Transformer`]) shared by BERT and XLM-R, and the
//! sequence-classification heads that turn it into a cross-encoder.

pub mod bert;
mod embeddings;
mod encoder;
mod layers;
pub mod xlm_roberta;

use candle_core::{Device, IndexOp, Tensor};

use crate::config::{EncoderConfig, Family};
use crate::error::Result;
use crate::weights::Weights;
pub use embeddings::Embeddings;
pub use encoder::Encoder;

/// A padded batch ready for the model, all row-major `[batch, seq_len]` flattened.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub position_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u8>,
    pub batch: usize,
    pub seq_len: usize,
}

/// Embeddings + encoder stack of a BERT / XLM-R model (`BertModel` without its pooler).
pub struct Transformer {
    embeddings: Embeddings,
    encoder: Encoder,
    hidden_size: usize,
    device: Device,
}

/// Finds the prefix (`"bert."`, `"roberta."` or `""`) under which the encoder weights are stored.
pub fn encoder_prefix(w: &Weights, family: Family) -> String {
    let prefixed = format!("{}.", family.weight_prefix());
    if w.contains(&format!("{prefixed}embeddings.word_embeddings.weight")) {
        prefixed
    } else {
        String::new()
    }
}

impl Transformer {
    /// Loads `{prefix}embeddings.*` and `{prefix}encoder.*`.
    pub fn load(w: &Weights, prefix: &str, cfg: &EncoderConfig, device: &Device) -> Result<Self> {
        Ok(Transformer {
            embeddings: Embeddings::load(w, prefix, cfg)?,
            encoder: Encoder::load(w, prefix, cfg)?,
            hidden_size: cfg.hidden_size,
            device: device.clone(),
        })
    }

    /// Runs the encoder. Returns the last hidden state `[batch, seq_len, hidden]` f32.
    pub fn forward(&self, input: &ModelInput) -> Result<Tensor> {
        let (b, l) = (input.batch, input.seq_len);
        let n = b * l;
        let ids = Tensor::from_slice(&input.input_ids, n, &self.device)?;
        let pos = Tensor::from_slice(&input.position_ids, n, &self.device)?;
        let types = Tensor::from_slice(&input.token_type_ids, n, &self.device)?;
        let hidden = self.embeddings.forward(&ids, &pos, &types)?;
        let bias = encoder::mask_bias(&input.attention_mask, b, l, &self.device)?;
        let out = self.encoder.forward(hidden, &bias, b, l)?;
        Ok(out.reshape((b, l, self.hidden_size))?)
    }
}

/// The classification head on top of the encoder.
pub enum ClassificationHead {
    Bert(bert::BertClassificationHead),
    XlmRoberta(xlm_roberta::RobertaClassificationHead),
}

/// `*ForSequenceClassification`: encoder + head on the first token.
pub struct SequenceClassifier {
    transformer: Transformer,
    head: ClassificationHead,
    num_labels: usize,
}

impl SequenceClassifier {
    /// Loads a BERT or XLM-R sequence classifier. `num_labels` is read from the classifier
    /// weight's shape. Errors name the checkpoint file and the missing / mis-shaped tensor.
    pub fn load(w: &Weights, cfg: &EncoderConfig, device: &Device) -> Result<Self> {
        let prefix = encoder_prefix(w, cfg.family);
        let transformer = Transformer::load(w, &prefix, cfg, device)?;
        let head = match cfg.family {
            Family::Bert => {
                ClassificationHead::Bert(bert::BertClassificationHead::load(w, &prefix, cfg)?)
            }
            Family::XlmRoberta => ClassificationHead::XlmRoberta(
                xlm_roberta::RobertaClassificationHead::load(w, cfg)?,
            ),
        };
        let num_labels = match &head {
            ClassificationHead::Bert(h) => h.num_labels(),
            ClassificationHead::XlmRoberta(h) => h.num_labels(),
        };
        Ok(SequenceClassifier {
            transformer,
            head,
            num_labels,
        })
    }

    /// Classifier outputs per label.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// `logits`: `[batch, num_labels]` f32, the raw classifier output.
    pub fn forward(&self, input: &ModelInput) -> Result<Tensor> {
        let hidden = self.transformer.forward(input)?;
        let first = hidden.i((.., 0, ..))?.contiguous()?;
        match &self.head {
            ClassificationHead::Bert(h) => h.forward(&first),
            ClassificationHead::XlmRoberta(h) => h.forward(&first),
        }
    }
}

/// Hint appended to a missing-classifier error.
pub(crate) const NOT_A_CROSS_ENCODER: &str =
    " — this folder has no sequence-classification head: it looks like a \
bi-encoder (embedding model), not a cross-encoder reranker";
