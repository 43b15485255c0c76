//! Typed errors of the retrieval crate.

use std::path::PathBuf;

/// Everything that can go wrong while ingesting, indexing or retrieving.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// The engine failed (model loading, tokenization, inference).
    #[error(transparent)]
    Engine(#[from] rerank_engine::EngineError),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An input file is malformed (bad JSON line, missing field, not UTF-8).
    #[error("{path}:{line}: {reason}")]
    BadInput {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// The index directory is missing, incomplete or corrupt.
    #[error("index {path}: {reason}")]
    BadIndex { path: PathBuf, reason: String },

    /// The index was built with another embedder than the one given.
    #[error("index {path} was built with embedder {built_with:?}, not {given:?}; re-index or pass --embedder {built_with}")]
    EmbedderMismatch {
        path: PathBuf,
        built_with: String,
        given: String,
    },

    /// The BM25 full-text index failed.
    #[error("full-text index: {0}")]
    FullText(String),

    /// The vector (HNSW) index failed.
    #[error("vector index: {0}")]
    Vector(String),

    /// An invalid argument (e.g. `top_n` = 0, chunk overlap ≥ chunk size).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A caller's [`QueryEmbedder`](crate::retriever::QueryEmbedder) failed; the caller's own
    /// error is kept (and can be downcast back) so that it reaches its user unchanged.
    #[error("{0}")]
    QueryEmbedder(Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias of the retrieval crate.
pub type Result<T, E = RetrievalError> = std::result::Result<T, E>;

impl RetrievalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RetrievalError::Io {
            path: path.into(),
            source,
        }
    }
}
