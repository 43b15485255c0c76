//! The public cross-encoder API, in sentence-transformers' terms: `from_dir`, `predict`, `rank`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::batch::{self, DEFAULT_MAX_BATCH_TOKENS};
use crate::config::{Family, ModelConfig};
use crate::error::{EngineError, Result};
use crate::long_documents::{LongDocuments, RankedLongDocument, ScoredDocument, WindowedPairs};
use crate::model::{registry, Batch, LoadContext, Loaded, SequenceClassifier};
use crate::precision::Precision;
use crate::score::{self, Prediction, RankedDocument};
use crate::st_config::{SideConfig, StoredActivation};
use crate::tokenize::{Encoded, PairFormat, PromptTemplate, TextTokenizer};

/// Load-time options of a [`CrossEncoder`].
#[derive(Debug, Clone)]
pub struct CrossEncoderOptions {
    /// Lower the default max length (tokens, special tokens included). `None` = the model's.
    pub max_length: Option<usize>,
    /// Pairs per forward pass of the library's own planning ([`CrossEncoder::predict`],
    /// [`CrossEncoder::rank`]; after length sorting). Default 32.
    pub batch_size: usize,
    /// Precision of the model's linear layers. Default [`Precision::F32`] (PyTorch
    /// parity); [`Precision::Bf16`] is faster on CPUs with AMX / AVX512-BF16 and moves the
    /// logits by a bounded amount (see [`Precision`]).
    pub precision: Precision,
    /// Padded tokens (pairs × longest pair) per forward pass of the library's own planning
    /// ([`crate::batch::plan`]). Default [`DEFAULT_MAX_BATCH_TOKENS`] (16,384).
    /// [`CrossEncoder::predict_batch`] ignores it: it runs the batch it is given.
    pub max_batch_tokens: usize,
    /// Replaces the model's default instruction (LLM rerankers with a prompt template, e.g.
    /// Qwen3-Reranker's `{instruction}`); per-call instructions
    /// ([`CrossEncoder::predict_with_instruction`]) override it again. `None` = the model's.
    /// Loading a model without a template with `Some` fails with
    /// [`EngineError::InvalidArgument`].
    pub instruction: Option<String>,
}

impl Default for CrossEncoderOptions {
    fn default() -> Self {
        CrossEncoderOptions {
            max_length: None,
            batch_size: 32,
            precision: Precision::F32,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
            instruction: None,
        }
    }
}

/// What was loaded, for `rerank info` and the server's `/info`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Folder the model was loaded from.
    pub path: PathBuf,
    /// `architectures[0]` of config.json, e.g. `XLMRobertaForSequenceClassification`
    /// (its `model_type` when the list is absent).
    pub architecture: String,
    /// Architecture family, e.g. [`Family::XlmRoberta`] (serialized as its name).
    pub family: Family,
    /// Classifier outputs, from the classifier weight's shape.
    pub num_labels: usize,
    /// Effective max sequence length in tokens (special tokens included).
    pub max_length: usize,
    /// Hard limit from the position table (`max_position_embeddings` - offset).
    pub max_positions: usize,
    /// Dtype of the weights on disk (`F32`, `F16`, `BF16`).
    pub stored_dtype: String,
    /// Dtype the engine computes in ([`Precision::compute_dtype`] of the load option).
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
    /// The prompt an LLM reranker wraps each pair in (prefix, body with `{instruction}`,
    /// `{query}`, `{document}`, suffix, and the instruction in force); `None` for models whose
    /// tokenizer's post-processor builds the pair (`[CLS] q [SEP] d [SEP]`).
    pub prompt_template: Option<PromptTemplate>,
    /// Whether an `instruction` may be given (the model has a prompt template).
    pub accepts_instruction: bool,
    /// The instruction used when a call gives none (the model's default, or the load option).
    pub instruction: Option<String>,
    /// Id of the `yes` token of a yes/no LLM reranker (`logit = logit_yes − logit_no`),
    /// read from its tokenizer.json.
    pub yes_token_id: Option<u32>,
    /// Id of its `no` token.
    pub no_token_id: Option<u32>,
}

/// [`EngineError::InvalidArgument`] for an instruction given to a model without a template.
fn no_template_error(architecture: &str) -> EngineError {
    EngineError::InvalidArgument(format!(
        "this model ({architecture}) takes no instruction: it has no prompt template \
         (instructions are for LLM rerankers such as Qwen3-Reranker)"
    ))
}

/// A cross-encoder reranker (any architecture of [`registry::ARCHITECTURES`] with a
/// sequence-classification head) with its tokenizer.
pub struct CrossEncoder {
    model: Box<dyn SequenceClassifier>,
    tokenizer: TextTokenizer,
    info: ModelInfo,
    pair_format: PairFormat,
    batch_size: usize,
    max_batch_tokens: usize,
}

/// Smallest of the sentence-transformers max_seq_length, the tokenizer's model_max_length and
/// the position table: the default max length of sentence-transformers and TEI.
pub(crate) fn default_max_length(side: &SideConfig, max_positions: usize) -> usize {
    [
        side.max_seq_length,
        side.model_max_length,
        Some(max_positions),
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
    max_positions: usize,
    requested: Option<usize>,
) -> Result<usize> {
    match requested {
        Some(r) if r > max_positions => Err(EngineError::InvalidArgument(format!(
            "max_length {r} exceeds the model's {max_positions} positions"
        ))),
        Some(r) => Ok(r),
        None => Ok(default_max_length(side, max_positions)),
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
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let loader = registry::classifier_loader(&config)?;
        let side = SideConfig::read(dir)?;
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
        let ctx = LoadContext::new(&config, dir, options.precision);
        let Loaded { model, meta } = loader(&ctx)?;
        let weights = ctx.weights()?;
        let architecture = config.name();
        let num_labels = model.num_labels();
        if !(1..=2).contains(&num_labels) {
            return Err(EngineError::UnsupportedArchitecture {
                path: weights.source().to_path_buf(),
                architecture: format!("{architecture} with {num_labels} labels"),
                supported: "rerankers with 1 or 2 labels".into(),
            });
        }
        let max_length = effective_max_length(&side, meta.max_positions, options.max_length)?;
        let mut pair_format = meta.pair_format;
        if let Some(instruction) = options.instruction.as_deref() {
            match &mut pair_format {
                PairFormat::Template(t) => t.instruction = instruction.to_string(),
                PairFormat::PostProcessor => return Err(no_template_error(&architecture)),
            }
        }
        let template = match &pair_format {
            PairFormat::Template(t) => Some(t.clone()),
            PairFormat::PostProcessor => None,
        };
        let yes_no = model.yes_no_token_ids();
        // Fail now, not at the first request, if max_length cannot hold the special tokens
        // (or the tokenizer cannot add them).
        tokenizer.encode_pairs_as(&pair_format, &[("", "")], max_length)?;
        let stored_activation = side
            .activation_fn
            .as_deref()
            .or(config.st_activation_fn.as_deref())
            .map(StoredActivation::parse);
        let info = ModelInfo {
            path: dir.to_path_buf(),
            architecture,
            family: meta.family,
            num_labels,
            max_length,
            max_positions: meta.max_positions,
            stored_dtype: weights
                .stored_dtype
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            compute_dtype: options.precision.compute_dtype().into(),
            score_activation: if num_labels == 1 {
                "sigmoid"
            } else {
                "softmax[1]"
            }
            .into(),
            stored_activation,
            hidden_size: meta.hidden_size,
            num_hidden_layers: meta.num_hidden_layers,
            vocab_size: meta.vocab_size,
            accepts_instruction: template.is_some(),
            instruction: template.as_ref().map(|t| t.instruction.clone()),
            prompt_template: template,
            yes_token_id: yes_no.map(|[y, _]| y),
            no_token_id: yes_no.map(|[_, n]| n),
        };
        tracing::debug!(?info, "loaded cross-encoder");
        Ok(CrossEncoder {
            model,
            tokenizer,
            info,
            pair_format,
            batch_size: options.batch_size.max(1),
            max_batch_tokens: options.max_batch_tokens.max(1),
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

    /// A stable identity of the model's files (config.json, tokenizer.json and the other
    /// small configuration files whole, each weights file by its length and sampled bytes),
    /// hex SHA-256 — the same digest as [`crate::Embedder::fingerprint`]. Two paths to the
    /// same model give the same fingerprint. It says nothing about the load options: combine
    /// it with [`CrossEncoder::info`] (`compute_dtype`, `max_length`, …) to name what
    /// computes a score (the server's score cache does). Reads the folder on every call.
    ///
    /// Errors: [`EngineError::BadFile`] when the folder or a weights file cannot be read.
    pub fn fingerprint(&self) -> Result<String> {
        crate::embedder::fingerprint_dir(&self.info.path)
    }

    /// Tokenizes pairs exactly as [`CrossEncoder::predict`] will, with an optional lower
    /// `max_length` (tokens, special tokens included).
    pub fn encode(
        &self,
        pairs: &[(&str, &str)],
        max_length: Option<usize>,
    ) -> Result<Vec<Encoded>> {
        self.encode_with_instruction(pairs, max_length, None)
    }

    /// [`CrossEncoder::encode`] with `instruction` in place of the model's (LLM rerankers
    /// with a prompt template; `None` = the model's default or the load option).
    ///
    /// Errors: [`EngineError::InvalidArgument`] for an instruction given to a model without a
    /// prompt template, and as [`CrossEncoder::encode`].
    pub fn encode_with_instruction(
        &self,
        pairs: &[(&str, &str)],
        max_length: Option<usize>,
        instruction: Option<&str>,
    ) -> Result<Vec<Encoded>> {
        let max_length = self.check_max_length(max_length)?;
        match (&self.pair_format, instruction) {
            (PairFormat::Template(t), Some(_)) => {
                self.tokenizer
                    .encode_template(&t.with_instruction(instruction), pairs, max_length)
            }
            (PairFormat::PostProcessor, Some(_)) => Err(no_template_error(&self.info.architecture)),
            (format, None) => self.tokenizer.encode_pairs_as(format, pairs, max_length),
        }
    }

    /// Tokenizes `(query, document)` for every document exactly as [`CrossEncoder::encode`]
    /// does for the pairs, with the query tokenized once instead of once per document
    /// ([`TextTokenizer::encode_query_documents`]; prompt-template models render each pair,
    /// as `encode` does). Use it when one query is scored against many documents.
    ///
    /// Errors: as [`CrossEncoder::encode`].
    pub fn encode_query_documents(
        &self,
        query: &str,
        documents: &[&str],
        max_length: Option<usize>,
    ) -> Result<Vec<Encoded>> {
        let max_length = self.check_max_length(max_length)?;
        match &self.pair_format {
            PairFormat::PostProcessor => self
                .tokenizer
                .encode_query_documents(query, documents, max_length),
            format => {
                let pairs: Vec<(&str, &str)> = documents.iter().map(|d| (query, *d)).collect();
                self.tokenizer.encode_pairs_as(format, &pairs, max_length)
            }
        }
    }

    /// The windows of every document beside the whole query, ready for
    /// [`CrossEncoder::predict_encoded`] / [`CrossEncoder::predict_batch`] (chunk mode of
    /// [`LongDocuments`]; see [`crate::long_documents`] for the window rule). `max_length`:
    /// as [`CrossEncoder::encode`]; `instruction`: as [`CrossEncoder::encode_with_instruction`].
    ///
    /// Errors: a cap outside `1..=`[`crate::long_documents::MAX_CHUNKS_PER_DOC`], a query that
    /// leaves no room for a window, an instruction for a model without a template
    /// ([`EngineError::InvalidArgument`]); the tokenizer's.
    pub fn encode_windows(
        &self,
        query: &str,
        documents: &[&str],
        max_length: Option<usize>,
        instruction: Option<&str>,
        max_chunks_per_doc: usize,
    ) -> Result<WindowedPairs> {
        let max_length = self.check_max_length(max_length)?;
        match (&self.pair_format, instruction) {
            (PairFormat::PostProcessor, Some(_)) => Err(no_template_error(&self.info.architecture)),
            (PairFormat::PostProcessor, None) => self.tokenizer.encode_query_windows(
                query,
                documents,
                max_length,
                max_chunks_per_doc,
            ),
            (PairFormat::Template(t), instruction) => self.tokenizer.encode_template_windows(
                &t.with_instruction(instruction),
                query,
                documents,
                max_length,
                max_chunks_per_doc,
            ),
        }
    }

    /// Scores every document against `query`, in input order: truncated pairs
    /// ([`LongDocuments::Truncate`], the same predictions as [`CrossEncoder::rank`] uses) or
    /// each document's best window ([`LongDocuments::Chunk`], all windows of all documents
    /// planned into the same length-sorted batches).
    ///
    /// Errors: as [`CrossEncoder::encode_windows`] and [`CrossEncoder::predict_encoded`]; a
    /// non-finite logit in chunk mode is [`EngineError::NonFiniteLogit`].
    pub fn score_documents(
        &self,
        query: &str,
        documents: &[&str],
        instruction: Option<&str>,
        long_documents: LongDocuments,
    ) -> Result<Vec<ScoredDocument>> {
        match long_documents {
            LongDocuments::Truncate => {
                let encoded = match instruction {
                    None => self.encode_query_documents(query, documents, None)?,
                    Some(_) => {
                        let pairs: Vec<(&str, &str)> =
                            documents.iter().map(|d| (query, *d)).collect();
                        self.encode_with_instruction(&pairs, None, instruction)?
                    }
                };
                Ok(self
                    .predict_encoded(&encoded, self.batch_size)?
                    .into_iter()
                    .map(|prediction| ScoredDocument {
                        prediction,
                        window: None,
                    })
                    .collect())
            }
            LongDocuments::Chunk { max_chunks_per_doc } => {
                let windows =
                    self.encode_windows(query, documents, None, instruction, max_chunks_per_doc)?;
                let predictions = self.predict_encoded(&windows.items, self.batch_size)?;
                Ok(windows
                    .best(&predictions)?
                    .into_iter()
                    .map(|(prediction, window)| ScoredDocument {
                        prediction,
                        window: Some(window),
                    })
                    .collect())
            }
        }
    }

    /// [`CrossEncoder::rank_with_instruction`] with a choice of [`LongDocuments`]: in chunk
    /// mode each document is ranked by its best window, which each result names. With
    /// [`LongDocuments::Truncate`] the ranking is [`CrossEncoder::rank_with_instruction`]'s.
    ///
    /// Errors: as [`CrossEncoder::rank`] and [`CrossEncoder::score_documents`].
    pub fn rank_documents(
        &self,
        query: &str,
        documents: &[&str],
        top_n: usize,
        instruction: Option<&str>,
        long_documents: LongDocuments,
    ) -> Result<Vec<RankedLongDocument>> {
        if top_n == 0 {
            return Err(EngineError::InvalidArgument(
                "top_n must be at least 1".into(),
            ));
        }
        let scored = self.score_documents(query, documents, instruction, long_documents)?;
        let windows: Vec<_> = scored.iter().map(|s| s.window).collect();
        let predictions = scored.into_iter().map(|s| s.prediction).collect();
        Ok(score::rank(predictions, top_n)?
            .into_iter()
            .map(|ranked| RankedLongDocument {
                window: windows[ranked.index],
                ranked,
            })
            .collect())
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
        self.predict_with_instruction(pairs, None)
    }

    /// [`CrossEncoder::predict`] with a per-call instruction (see
    /// [`CrossEncoder::encode_with_instruction`] for its errors).
    pub fn predict_with_instruction(
        &self,
        pairs: &[(&str, &str)],
        instruction: Option<&str>,
    ) -> Result<Vec<Prediction>> {
        let encoded = self.encode_with_instruction(pairs, None, instruction)?;
        self.predict_encoded(&encoded, self.batch_size)
    }

    /// Scores already tokenized pairs (see [`CrossEncoder::encode`]) in length-sorted batches of
    /// at most `batch_size` pairs and the load option `max_batch_tokens` padded tokens
    /// ([`crate::batch::plan`]); the result is in input order. A pair's score does not depend
    /// on the batch it lands in (the same bits).
    ///
    /// Errors: [`EngineError::InvalidArgument`] for an input without tokens or with an id
    /// outside the model's tables.
    pub fn predict_encoded(
        &self,
        encoded: &[Encoded],
        batch_size: usize,
    ) -> Result<Vec<Prediction>> {
        let lengths: Vec<usize> = encoded.iter().map(|e| e.input_ids.len()).collect();
        let mut out: Vec<Option<Prediction>> = vec![None; encoded.len()];
        for group in batch::plan(&lengths, batch_size, self.max_batch_tokens) {
            let predictions = self.forward(group.iter().map(|&i| &encoded[i]))?;
            for (&i, p) in group.iter().zip(predictions) {
                out[i] = Some(p);
            }
        }
        Ok(out
            .into_iter()
            .map(|p| p.expect("every index is in one batch"))
            .collect())
    }

    /// Scores exactly this batch in one forward pass: no re-planning, no token cap (the
    /// caller — e.g. the server's token-budget batcher — decided the batch). One
    /// [`Prediction`] per input, in order; the same bits as [`CrossEncoder::predict_encoded`]
    /// gives each pair.
    ///
    /// Errors: as [`CrossEncoder::predict_encoded`].
    pub fn predict_batch(&self, batch: &[Encoded]) -> Result<Vec<Prediction>> {
        self.forward(batch.iter())
    }

    /// One forward pass over `items` as one ragged batch.
    fn forward<'a>(&self, items: impl IntoIterator<Item = &'a Encoded>) -> Result<Vec<Prediction>> {
        let batch = Batch::from_encoded(items)?;
        let logits = self.model.logits(&batch)?;
        let labels = self.model.num_labels();
        Ok(logits
            .chunks_exact(labels)
            .map(|row| Prediction::from_logits(row.to_vec()))
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
        self.rank_with_instruction(query, documents, top_n, None)
    }

    /// [`CrossEncoder::rank`] with a per-call instruction (see
    /// [`CrossEncoder::encode_with_instruction`]).
    pub fn rank_with_instruction(
        &self,
        query: &str,
        documents: &[&str],
        top_n: usize,
        instruction: Option<&str>,
    ) -> Result<Vec<RankedDocument>> {
        if top_n == 0 {
            return Err(EngineError::InvalidArgument(
                "top_n must be at least 1".into(),
            ));
        }
        let predictions = match instruction {
            // One query against many documents: the query is tokenized once.
            None => {
                let encoded = self.encode_query_documents(query, documents, None)?;
                self.predict_encoded(&encoded, self.batch_size)?
            }
            Some(_) => {
                let pairs: Vec<(&str, &str)> = documents.iter().map(|d| (query, *d)).collect();
                self.predict_with_instruction(&pairs, instruction)?
            }
        };
        score::rank(predictions, top_n)
    }
}
