//! Model code: one encoder implementation ([`Transformer`]) shared by BERT and XLM-R, and the
//! sequence-classification heads that turn it into a cross-encoder.

pub mod bert;
mod embeddings;
mod encoder;
mod layers;
pub mod xlm_roberta;

use candle_core::{Device, Tensor};

use crate::config::{EncoderConfig, Family};
use crate::error::{EngineError, Result};
use crate::precision::Precision;
use crate::weights::Weights;
pub use embeddings::Embeddings;
pub use encoder::{Encoder, EncoderOutput, TokenLayout};

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

impl ModelInput {
    /// Checks that the four arrays hold `batch × seq_len` values.
    fn check(&self) -> Result<()> {
        let n = self.batch * self.seq_len;
        let lens = [
            self.input_ids.len(),
            self.token_type_ids.len(),
            self.position_ids.len(),
            self.attention_mask.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err(EngineError::InvalidArgument(format!(
                "model input arrays have lengths {lens:?}, expected batch {} × seq_len {} = {n}",
                self.batch, self.seq_len
            )));
        }
        Ok(())
    }
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
    /// Loads `{prefix}embeddings.*` and `{prefix}encoder.*` (weights converted to f32, or to
    /// bf16 for the encoder's linear layers under [`Precision::Bf16`], and packed for the
    /// kernels).
    pub fn load(
        w: &Weights,
        prefix: &str,
        cfg: &EncoderConfig,
        device: &Device,
        precision: Precision,
    ) -> Result<Self> {
        Ok(Transformer {
            embeddings: Embeddings::load(w, prefix, cfg)?,
            encoder: Encoder::load(w, prefix, cfg, precision)?,
            hidden_size: cfg.hidden_size,
            device: device.clone(),
        })
    }

    /// Hidden width.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Runs the encoder. Returns the last hidden state `[batch, seq_len, hidden]` f32 as a
    /// candle tensor (see [`Transformer::hidden_states`]).
    pub fn forward(&self, input: &ModelInput) -> Result<Tensor> {
        let hidden = self.hidden_states(input)?;
        Ok(Tensor::from_vec(
            hidden,
            (input.batch, input.seq_len, self.hidden_size),
            &self.device,
        )?)
    }

    /// Runs the encoder. Returns the last hidden state `[batch, seq_len, hidden]` f32,
    /// row-major. Real tokens (mask 1) and position 0 match PyTorch; other padding positions
    /// are not computed and hold 0 (every pooling ignores them).
    pub fn hidden_states(&self, input: &ModelInput) -> Result<Vec<f32>> {
        input.check()?;
        let h = self.hidden_size;
        let layout = TokenLayout::from_mask(&input.attention_mask, input.batch, input.seq_len);
        let x = self.embeddings.forward(input, &layout.tokens)?;
        let x = self.encoder.forward(x, &layout, EncoderOutput::AllTokens);
        let mut out = vec![0f32; input.batch * input.seq_len * h];
        for (row, &flat) in x.chunks_exact(h.max(1)).zip(&layout.tokens) {
            out[flat * h..(flat + 1) * h].copy_from_slice(row);
        }
        Ok(out)
    }

    /// Runs the encoder for the first token of every sequence only (the input of a
    /// classification head): `[batch, hidden]` f32, row-major.
    pub fn first_token_states(&self, input: &ModelInput) -> Result<Vec<f32>> {
        input.check()?;
        if input.seq_len == 0 {
            return Err(EngineError::InvalidArgument(
                "empty sequences have no first token".into(),
            ));
        }
        let layout = TokenLayout::from_mask(&input.attention_mask, input.batch, input.seq_len);
        let x = self.embeddings.forward(input, &layout.tokens)?;
        Ok(self.encoder.forward(x, &layout, EncoderOutput::FirstTokens))
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
    /// The encoder's linear layers compute in `precision`; the head is always f32.
    pub fn load(
        w: &Weights,
        cfg: &EncoderConfig,
        device: &Device,
        precision: Precision,
    ) -> Result<Self> {
        let prefix = encoder_prefix(w, cfg.family);
        let transformer = Transformer::load(w, &prefix, cfg, device, precision)?;
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

    /// `logits`: `[batch, num_labels]` f32, the raw classifier output, as a candle tensor.
    pub fn forward(&self, input: &ModelInput) -> Result<Tensor> {
        let logits = self.logits(input)?;
        Ok(Tensor::from_vec(
            logits,
            (input.batch, self.num_labels),
            &self.transformer.device,
        )?)
    }

    /// `logits`: `[batch, num_labels]` f32 row-major, the raw classifier output.
    pub fn logits(&self, input: &ModelInput) -> Result<Vec<f32>> {
        if input.batch == 0 {
            input.check()?;
            return Ok(Vec::new());
        }
        let first = self.transformer.first_token_states(input)?;
        Ok(match &self.head {
            ClassificationHead::Bert(h) => h.forward(&first, input.batch),
            ClassificationHead::XlmRoberta(h) => h.forward(&first, input.batch),
        })
    }
}

/// Hint appended to a missing-classifier error.
pub(crate) const NOT_A_CROSS_ENCODER: &str =
    " — this folder has no sequence-classification head: it looks like a \
bi-encoder (embedding model), not a cross-encoder reranker";
