//! Models: one file per architecture behind two traits, picked by [`registry`].
//!
//! - [`Batch`]: a ragged batch — every sequence's tokens one after the other, no padding, with
//!   cumulative sequence lengths — so each model computes its own position ids and a
//!   sequence's result cannot depend on what else is in the batch.
//! - [`SequenceClassifier`]: a cross-encoder (`*ForSequenceClassification`): logits
//!   `[batch, num_labels]` for a batch.
//! - [`TokenEncoder`]: a bi-encoder body: the last hidden state of every token (or only of
//!   each sequence's first or last token); pooling is [`crate::pooling`]'s, shared by all
//!   architectures.
//! - [`registry`]: `config.json` `architectures[0]` → the file that loads it.
//!
//! Adding an architecture: one file here (a `Config` mirroring its `config.json`, its
//! building blocks on [`rerank_kernels`], and a type implementing one or both traits), its
//! loaders, and one line per architecture name in [`registry`] (see the README's "What adding an architecture takes").

pub mod bert;
mod embeddings;
mod encoder;
mod layers;
pub mod modernbert;
mod parallel;
pub mod qwen3;
pub mod registry;
pub mod xlm_roberta;

use std::cell::OnceCell;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::config::{Family, ModelConfig};
use crate::error::{EngineError, Result};
use crate::tokenize::{Encoded, PairFormat};
use crate::weights::Weights;
pub use rerank_kernels::Precision;

/// A ragged batch: the tokens of every sequence one after the other, no padding.
///
/// Sequence `i` is tokens `cu_seq_lengths[i] .. cu_seq_lengths[i + 1]` of `input_ids` and
/// `token_type_ids` (as TEI's `Batch::cumulative_seq_lengths`). Every sequence has at least
/// one token (checked by [`Batch::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    cu_seq_lengths: Vec<usize>,
}

impl Batch {
    /// Builds a batch from flat `input_ids` and `token_type_ids` (`[total_tokens]` each) and
    /// `cu_seq_lengths` (`[sequences + 1]`, starting at 0, strictly increasing, ending at
    /// `total_tokens`).
    ///
    /// Errors: [`EngineError::InvalidArgument`] for lengths that disagree or an empty
    /// sequence (a model has nothing to classify in it).
    pub fn new(
        input_ids: Vec<u32>,
        token_type_ids: Vec<u32>,
        cu_seq_lengths: Vec<usize>,
    ) -> Result<Self> {
        let total = input_ids.len();
        let bad = |what: String| Err(EngineError::InvalidArgument(what));
        if token_type_ids.len() != total {
            return bad(format!(
                "{} token type ids for {total} token ids",
                token_type_ids.len()
            ));
        }
        if cu_seq_lengths.first() != Some(&0) || cu_seq_lengths.last() != Some(&total) {
            return bad(format!(
                "cumulative sequence lengths {:?} must run from 0 to {total}",
                cu_seq_lengths
                    .iter()
                    .take(4)
                    .chain(cu_seq_lengths.last())
                    .collect::<Vec<_>>()
            ));
        }
        if let Some(i) = cu_seq_lengths.windows(2).position(|w| w[1] <= w[0]) {
            return bad(format!("sequence {i} of the batch has no tokens"));
        }
        Ok(Batch {
            input_ids,
            token_type_ids,
            cu_seq_lengths,
        })
    }

    /// Concatenates tokenized inputs (see [`crate::tokenize`]) into one batch, in order.
    ///
    /// Errors: [`EngineError::InvalidArgument`] for an input without tokens or whose token
    /// type ids do not match its token ids.
    pub fn from_encoded<'a>(items: impl IntoIterator<Item = &'a Encoded>) -> Result<Self> {
        let mut input_ids = Vec::new();
        let mut token_type_ids = Vec::new();
        let mut cu = vec![0usize];
        for (i, e) in items.into_iter().enumerate() {
            if e.token_type_ids.len() != e.input_ids.len() {
                return Err(EngineError::InvalidArgument(format!(
                    "input {i}: {} token type ids for {} token ids",
                    e.token_type_ids.len(),
                    e.input_ids.len()
                )));
            }
            if e.input_ids.is_empty() {
                return Err(EngineError::InvalidArgument(format!(
                    "input {i} has no tokens"
                )));
            }
            input_ids.extend_from_slice(&e.input_ids);
            token_type_ids.extend_from_slice(&e.token_type_ids);
            cu.push(input_ids.len());
        }
        Batch::new(input_ids, token_type_ids, cu)
    }

    /// Sequences in the batch.
    pub fn len(&self) -> usize {
        self.cu_seq_lengths.len() - 1
    }

    /// Whether the batch holds no sequence.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens of all sequences.
    pub fn total_tokens(&self) -> usize {
        self.input_ids.len()
    }

    /// `[total_tokens]` token ids.
    pub fn input_ids(&self) -> &[u32] {
        &self.input_ids
    }

    /// `[total_tokens]` segment ids (all 0 for models without token types).
    pub fn token_type_ids(&self) -> &[u32] {
        &self.token_type_ids
    }

    /// `[len + 1]` cumulative sequence lengths.
    pub fn cu_seq_lengths(&self) -> &[usize] {
        &self.cu_seq_lengths
    }

    /// Token rows of sequence `i`.
    pub fn seq(&self, i: usize) -> Range<usize> {
        self.cu_seq_lengths[i]..self.cu_seq_lengths[i + 1]
    }

    /// Token rows of every sequence, in order.
    pub fn seqs(&self) -> impl ExactSizeIterator<Item = Range<usize>> + '_ {
        self.cu_seq_lengths.windows(2).map(|w| w[0]..w[1])
    }

    /// Length of the longest sequence.
    pub fn max_seq_len(&self) -> usize {
        self.seqs().map(|r| r.len()).max().unwrap_or(0)
    }

    /// Position ids counted from 0 in every sequence (BERT, RoPE models): `[total_tokens]`.
    pub fn positions_from_zero(&self) -> Vec<u32> {
        self.seqs().flat_map(|r| 0..r.len() as u32).collect()
    }
}

/// A cross-encoder reranker: `*ForSequenceClassification` (or an LLM reranker's yes/no head).
pub trait SequenceClassifier: Send + Sync {
    /// Classifier outputs per sequence.
    fn num_labels(&self) -> usize;

    /// `logits`: `[batch.len(), num_labels]` f32 row-major, the raw classifier output of each
    /// sequence, computed from that sequence alone (the same bits whatever else is in the
    /// batch).
    ///
    /// Errors: [`EngineError::InvalidArgument`] for a token id outside the vocabulary or a
    /// sequence longer than the model's positions.
    fn logits(&self, batch: &Batch) -> Result<Vec<f32>>;

    /// `[yes, no]` token ids of an LLM reranker whose logit is `logit_yes − logit_no`
    /// (read from its tokenizer), `None` for a classification head.
    fn yes_no_token_ids(&self) -> Option<[u32; 2]> {
        None
    }
}

/// Which rows of the last hidden state [`TokenEncoder::hidden_states`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSelection {
    /// Every token: `[batch.total_tokens(), hidden]` (mean / max pooling).
    All,
    /// Each sequence's first token: `[batch.len(), hidden]` (CLS pooling). Models may skip
    /// the last layer's work for the other tokens.
    First,
    /// Each sequence's last token: `[batch.len(), hidden]` (last-token pooling).
    Last,
}

/// A bi-encoder body: the transformer without a head.
pub trait TokenEncoder: Send + Sync {
    /// Width of the hidden states (the embedding dimensions before pooling).
    fn hidden_size(&self) -> usize;

    /// The last hidden state, f32 row-major, of the tokens `rows` selects (see
    /// [`TokenSelection`]), each sequence computed alone.
    ///
    /// Errors: as [`SequenceClassifier::logits`].
    fn hidden_states(&self, batch: &Batch, rows: TokenSelection) -> Result<Vec<f32>>;
}

/// What the rest of the engine needs to know about a loaded model, from its own `Config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMeta {
    /// Architecture family (e.g. [`Family::Bert`]), for `info()`.
    pub family: Family,
    /// Whether the model reads token type ids (BERT with `type_vocab_size > 1`); the
    /// tokenizer's are passed either way.
    pub uses_token_type_ids: bool,
    /// Longest input in tokens (special tokens included) the model's positions allow.
    pub max_positions: usize,
    /// Padding token id (`pad_token_id`), for callers that pad (the engine does not).
    pub pad_token_id: Option<u32>,
    /// `hidden_size`.
    pub hidden_size: usize,
    /// `num_hidden_layers`.
    pub num_hidden_layers: usize,
    /// `vocab_size`.
    pub vocab_size: usize,
    /// How a cross-encoder's `(query, document)` pairs become token ids: the tokenizer's
    /// post-processor (BERT-style models) or a prompt template (LLM rerankers).
    pub pair_format: PairFormat,
}

/// A loaded model with its [`ModelMeta`].
pub struct Loaded<M: ?Sized> {
    /// The model.
    pub model: Box<M>,
    /// What the tokenizer side and `info()` need.
    pub meta: ModelMeta,
}

/// What a loader gets: the parsed `config.json`, the model folder, the precision of the
/// linear layers, and the checkpoint — read on first use, so that a bad `config.json` is
/// refused before any weight is read.
pub struct LoadContext<'a> {
    config: &'a ModelConfig,
    dir: &'a Path,
    precision: Precision,
    weights: OnceCell<Weights>,
}

impl<'a> LoadContext<'a> {
    /// A context for the folder `dir` whose `config.json` is `config`.
    pub fn new(config: &'a ModelConfig, dir: &'a Path, precision: Precision) -> Self {
        LoadContext {
            config,
            dir,
            precision,
            weights: OnceCell::new(),
        }
    }

    /// The generic part of `config.json` (architecture, dtype, labels).
    pub fn config(&self) -> &ModelConfig {
        self.config
    }

    /// `config.json` as the architecture's own `Config` type.
    ///
    /// Errors: [`EngineError::BadFile`] naming `config.json` and the missing / mistyped field.
    pub fn parse_config<T: DeserializeOwned>(&self) -> Result<T> {
        self.config.parse()
    }

    /// The precision every linear layer of the model body is packed for (heads are f32).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        self.dir
    }

    /// The checkpoint, read on first call (see [`Weights::from_dir`] for its errors).
    pub fn weights(&self) -> Result<&Weights> {
        if let Some(w) = self.weights.get() {
            return Ok(w);
        }
        let w = Weights::from_dir(self.dir)?;
        Ok(self.weights.get_or_init(|| w))
    }

    /// The checkpoint if it was read.
    pub fn loaded_weights(&self) -> Option<&Weights> {
        self.weights.get()
    }
}

/// Hint appended to a missing-classifier error.
pub(crate) const NOT_A_CROSS_ENCODER: &str =
    " — this folder has no sequence-classification head: it looks like a \
bi-encoder (embedding model), not a cross-encoder reranker";

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ids: &[u32]) -> Encoded {
        Encoded {
            input_ids: ids.to_vec(),
            token_type_ids: vec![0; ids.len()],
            truncated: false,
        }
    }

    #[test]
    fn ragged_batch_concatenates_without_padding() {
        let b = Batch::from_encoded([&enc(&[1, 2, 3]), &enc(&[4]), &enc(&[5, 6])]).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b.total_tokens(), 6);
        assert_eq!(b.cu_seq_lengths(), &[0, 3, 4, 6]);
        assert_eq!(b.seq(2), 4..6);
        assert_eq!(b.max_seq_len(), 3);
        assert_eq!(b.positions_from_zero(), vec![0, 1, 2, 0, 0, 1]);
        assert!(Batch::from_encoded([]).unwrap().is_empty());
    }

    #[test]
    fn inconsistent_or_empty_sequences_are_refused() {
        assert!(Batch::from_encoded([&enc(&[1]), &enc(&[])]).is_err());
        assert!(Batch::new(vec![1, 2], vec![0], vec![0, 2]).is_err());
        assert!(Batch::new(vec![1, 2], vec![0, 0], vec![0, 3]).is_err());
        assert!(Batch::new(vec![1, 2], vec![0, 0], vec![0, 0, 2]).is_err());
        assert!(Batch::new(vec![1, 2], vec![0, 0], vec![0, 1, 2]).is_ok());
    }
}
