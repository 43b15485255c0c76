//! The public cross-encoder API, in sentence-transformers' terms: `from_dir`, `predict`, `rank`.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::Serialize;

use crate::batch;
use crate::config::{EncoderConfig, Family};
use crate::error::{EngineError, Result};
use crate::model::SequenceClassifier;
use crate::precision::Precision;
use crate::score::{self, Prediction, RankedDocument};
use crate::st_config::{SideConfig, StoredActivation};
use crate::tokenize::{Encoded, TextTokenizer};
use crate::weights::Weights;

/// Load-time options of a [`CrossEncoder`].
#[derive(Debug, Clone)]
pub struct CrossEncoderOptions {
    /// Lower the default max length (tokens, special tokens included). `None` = the model's.
    pub max_length: Option<usize>,
    /// Pairs per forward pass (after length sorting). Default 32.
    pub batch_size: usize,
    /// Precision of the encoder's linear layers. Default [`Precision::F32`] (PyTorch
    /// parity); [`Precision::Bf16`] is faster on CPUs with AMX / AVX512-BF16 and moves the
    /// logits by a bounded amount (see [`Precision`]).
    pub precision: Precision,
}

impl Default for CrossEncoderOptions {
    fn default() -> Self {
        CrossEncoderOptions {
            max_length: None,
            batch_size: 32,
            precision: Precision::F32,
        }
    }
}

/// What was loaded, for `rerank info` and the server's `/info`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Folder the model was loaded from.
    pub path: PathBuf,
    /// `architectures[0]` of config.json, e.g. `XLMRobertaForSequenceClassification`.
    pub architecture: String,
    pub family: Family,
    /// Classifier outputs, from the classifier weight's shape.
    pub num_labels: usize,
    /// Effective max sequence length in tokens (special tokens included).
    pub max_length: usize,
    /// Hard limit from the position table (`max_position_embeddings` - offset).
    pub max_positions: usize,
    /// Dtype of the weights on disk (`F32`, `F16`, `BF16`).
    pub stored_dtype: String,
    /// Dtype the engine computes in.
    pub compute_dtype: String,
    /// How `score` is derived from the logits: `sigmoid` or `softmax[1]`.
    pub score_activation: String,
    /// The activation stored by sentence-transformers (`Sigmoid`, `Identity`, …), if any.
    /// `Identity` means sentence-transformers' `predict` would return raw logits; rerank still
    /// reports the sigmoid as `score` and the raw value as `logits`.
    pub stored_activation: Option<StoredActivation>,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub vocab_size: usize,
}

/// A cross-encoder reranker (`BertForSequenceClassification` or
/// `XLMRobertaForSequenceClassification`) with its tokenizer.
pub struct CrossEncoder {
    model: SequenceClassifier,
    tokenizer: TextTokenizer,
    config: EncoderConfig,
    info: ModelInfo,
    pad_id: u32,
    batch_size: usize,
}

/// Smallest of the sentence-transformers max_seq_length, the tokenizer's model_max_length and
/// the position table: the default max length of sentence-transformers and TEI.
pub(crate) fn default_max_length(side: &SideConfig, cfg: &EncoderConfig) -> usize {
    [
        side.max_seq_length,
        side.model_max_length,
        Some(cfg.max_positions()),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(512)
}

/// The load-time max length: `requested` if given (error when it exceeds the position
/// table), else [`default_max_length`]. Shared by cross-encoders and embedders.
pub(crate) fn effective_max_length(
    side: &SideConfig,
    cfg: &EncoderConfig,
    requested: Option<usize>,
) -> Result<usize> {
    match requested {
        Some(r) if r > cfg.max_positions() => Err(EngineError::InvalidArgument(format!(
            "max_length {r} exceeds the model's {} positions",
            cfg.max_positions()
        ))),
        Some(r) => Ok(r),
        None => Ok(default_max_length(side, cfg)),
    }
}

/// Errors with [`EngineError::NotFound`] unless `dir` is a directory.
pub(crate) fn require_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(EngineError::NotFound {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        })
    }
}

impl CrossEncoder {
    /// Loads a reranker from a local Hugging Face folder (config.json, tokenizer.json and
    /// model.safetensors / shards / pytorch_model.bin, plus optional sentence-transformers files).
    ///
    /// Errors: a missing folder or file, an unsupported architecture, a missing classifier
    /// (e.g. a bi-encoder folder) or mis-shaped tensor — each naming the file at fault;
    /// [`EngineError::InvalidArgument`] when `options.max_length` exceeds the position table.
    pub fn from_dir(path: impl AsRef<Path>, options: CrossEncoderOptions) -> Result<Self> {
        let dir = path.as_ref();
        require_dir(dir)?;
        let config = EncoderConfig::from_file(&dir.join("config.json"))?;
        let side = SideConfig::read(dir)?;
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
        let device = Device::Cpu;
        let weights = Weights::from_dir(dir, &device)?;
        let model = SequenceClassifier::load(&weights, &config, &device, options.precision)?;
        let num_labels = model.num_labels();
        if !(1..=2).contains(&num_labels) {
            return Err(EngineError::UnsupportedArchitecture {
                path: weights.source().to_path_buf(),
                architecture: format!("{} with {num_labels} labels", config.architecture),
                supported: "rerankers with 1 or 2 labels".into(),
            });
        }
        let max_length = effective_max_length(&side, &config, options.max_length)?;
        // Fail now, not at the first request, if max_length cannot hold the special tokens.
        tokenizer.encode_pairs(&[("", "")], max_length)?;
        let pad_id = config.pad_token_id;
        let stored_activation = side
            .activation_fn
            .as_deref()
            .or(config.st_activation_fn.as_deref())
            .map(StoredActivation::parse);
        let info = ModelInfo {
            path: dir.to_path_buf(),
            architecture: config.architecture.clone(),
            family: config.family,
            num_labels,
            max_length,
            max_positions: config.max_positions(),
            stored_dtype: weights
                .stored_dtype
                .map(|d| format!("{d:?}").to_uppercase())
                .unwrap_or_else(|| "unknown".into()),
            compute_dtype: match options.precision {
                Precision::F32 => "F32",
                Precision::Bf16 => "BF16 linear layers, F32 accumulation",
            }
            .into(),
            score_activation: if num_labels == 1 {
                "sigmoid"
            } else {
                "softmax[1]"
            }
            .into(),
            stored_activation,
            hidden_size: config.hidden_size,
            num_hidden_layers: config.num_hidden_layers,
            vocab_size: config.vocab_size,
        };
        tracing::debug!(?info, "loaded cross-encoder");
        Ok(CrossEncoder {
            model,
            tokenizer,
            config,
            info,
            pad_id,
            batch_size: options.batch_size.max(1),
        })
    }

    /// Architecture, labels, lengths and dtypes of the loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Tokenizes pairs exactly as [`CrossEncoder::predict`] will, with an optional lower
    /// `max_length` (tokens, special tokens included).
    pub fn encode(
        &self,
        pairs: &[(&str, &str)],
        max_length: Option<usize>,
    ) -> Result<Vec<Encoded>> {
        let max_length = self.check_max_length(max_length)?;
        self.tokenizer.encode_pairs(pairs, max_length)
    }

    fn check_max_length(&self, max_length: Option<usize>) -> Result<usize> {
        match max_length {
            None => Ok(self.info.max_length),
            Some(m) if m > self.info.max_positions => Err(EngineError::InvalidArgument(format!(
                "max_length {m} exceeds the model's {} positions",
                self.info.max_positions
            ))),
            Some(m) => Ok(m),
        }
    }

    /// Scores `(query, document)` pairs. Returns one [`Prediction`] per pair, in input order.
    pub fn predict(&self, pairs: &[(&str, &str)]) -> Result<Vec<Prediction>> {
        let encoded = self.encode(pairs, None)?;
        self.predict_encoded(&encoded, self.batch_size)
    }

    /// Scores already tokenized pairs (see [`CrossEncoder::encode`]) in length-sorted batches of
    /// at most `batch_size`; the result is in input order and a pair's score does not depend on
    /// the batch it lands in (within 1e-5).
    pub fn predict_encoded(
        &self,
        encoded: &[Encoded],
        batch_size: usize,
    ) -> Result<Vec<Prediction>> {
        let lengths: Vec<usize> = encoded.iter().map(|e| e.input_ids.len()).collect();
        let mut out: Vec<Option<Prediction>> = vec![None; encoded.len()];
        for group in batch::plan(&lengths, batch_size) {
            let items: Vec<&Encoded> = group.iter().map(|&i| &encoded[i]).collect();
            let input = batch::build_input(
                &items,
                self.config.family,
                self.pad_id,
                self.config.type_vocab_size == 1,
            );
            let logits = self.model.logits(&input)?;
            let labels = self.model.num_labels();
            for (&i, row) in group.iter().zip(logits.chunks_exact(labels)) {
                out[i] = Some(Prediction::from_logits(row.to_vec()));
            }
        }
        Ok(out
            .into_iter()
            .map(|p| p.expect("every index is in one batch"))
            .collect())
    }

    /// Scores `documents` against `query` and returns the best `top_n`, sorted by descending
    /// logit (ties: lower index first), like sentence-transformers `CrossEncoder.rank`.
    ///
    /// Errors: `top_n == 0` ([`EngineError::InvalidArgument`]); a NaN logit
    /// ([`EngineError::NonFiniteLogit`]). An empty `documents` list gives an empty result;
    /// `top_n` larger than the list returns all.
    pub fn rank(
        &self,
        query: &str,
        documents: &[&str],
        top_n: usize,
    ) -> Result<Vec<RankedDocument>> {
        if top_n == 0 {
            return Err(EngineError::InvalidArgument(
                "top_n must be at least 1".into(),
            ));
        }
        let pairs: Vec<(&str, &str)> = documents.iter().map(|d| (query, *d)).collect();
        let predictions = self.predict(&pairs)?;
        score::rank(predictions, top_n)
    }
}
