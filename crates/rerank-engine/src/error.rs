//! Typed errors of the engine.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or scoring pairs.
///
/// Load-time errors name the file (and tensor) at fault, so that a bad model folder is
/// refused before it can produce garbage scores.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model folder (or a required file in it) does not exist.
    #[error("model not found: {path}: {reason}")]
    NotFound { path: PathBuf, reason: String },

    /// A file exists but could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    BadFile { path: PathBuf, reason: String },

    /// `config.json` names an architecture this engine does not implement.
    #[error("unsupported architecture {architecture:?} in {path} (supported: {supported})")]
    UnsupportedArchitecture {
        path: PathBuf,
        architecture: String,
        supported: String,
    },

    /// A weight the architecture needs is missing (e.g. a bi-encoder passed as a reranker has
    /// no classifier).
    #[error("missing tensor {tensor:?} in {path}{hint}")]
    MissingTensor {
        path: PathBuf,
        tensor: String,
        hint: String,
    },

    /// A weight has a shape that contradicts `config.json`.
    #[error("tensor {tensor:?} in {path} has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        tensor: String,
        actual: Vec<usize>,
        expected: Vec<usize>,
    },

    /// Only `pytorch_model.bin` is present and it could not be read.
    #[error(
        "cannot load {path}: {reason}. Convert it to safetensors, e.g. in Python: \
         `from transformers import AutoModelForSequenceClassification as M; \
         M.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`"
    )]
    PickleUnsupported { path: PathBuf, reason: String },

    /// The caller passed an invalid argument (e.g. `top_n` = 0, a too small `max_length`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Tokenization failed.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// The model produced a NaN or infinite logit; the request is refused rather than
    /// returning an arbitrary order.
    #[error("non-finite logit {value} for input {index}")]
    NonFiniteLogit { index: usize, value: f32 },

    /// A tensor operation failed inside candle.
    #[error("inference error: {0}")]
    Candle(#[from] candle_core::Error),

    /// Resolving or downloading a model from the Hugging Face hub failed.
    #[error("hub: {0}")]
    Hub(String),
}

/// Result alias of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    pub(crate) fn bad_file(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        EngineError::BadFile {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
