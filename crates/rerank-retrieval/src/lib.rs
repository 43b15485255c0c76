//! # rerank-retrieval
//!
//! The two-stage pipeline around the engine: ingest files, split them into passages measured in
//! the embedder's tokens, keep passages + vectors + an HNSW graph + a BM25 index in one
//! persistent directory, retrieve top-k (dense, BM25 or hybrid), and rerank to top_n with a
//! cross-encoder — with LangChain's names (`Retriever`, `CrossEncoderReranker`,
//! `ContextualCompressionRetriever`).

pub mod chunk;
pub mod compression;
pub mod document;
pub mod error;
pub mod eval;
pub mod fusion;
pub mod index;
pub mod ingest;
pub mod pipeline;
pub mod retriever;

pub use compression::{ContextualCompressionRetriever, CrossEncoderReranker, DocumentCompressor};
pub use document::Document;
pub use error::{Result, RetrievalError};
pub use fusion::Fusion;
pub use retriever::{
    build_retriever, build_retriever_with, Bm25Retriever, DenseRetriever, DirectQueryEmbedder,
    HybridRetriever, QueryEmbedder, Retriever, RetrieverKind,
};

/// Counts the tokens of a text, as the embedder's tokenizer would (without special tokens).
/// Chunk sizes are measured with it.
pub trait TokenCounter {
    fn count_tokens(&self, text: &str) -> usize;
}
