//! Second stage: LangChain's `CrossEncoderReranker` document compressor and
//! `ContextualCompressionRetriever`, which retrieves top-k and keeps the reranked top_n.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rerank_engine::{CrossEncoder, LongDocuments};
use serde_json::Value;

use crate::error::{Result, RetrievalError};
use crate::retriever::Retriever;
use crate::Document;

/// Reorders / filters documents for a query (LangChain's `BaseDocumentCompressor`).
pub trait DocumentCompressor: Send + Sync {
    fn compress_documents(&self, documents: Vec<Document>, query: &str) -> Result<Vec<Document>>;
}

/// Scores each `(query, document.text)` pair with a cross-encoder and keeps the best `top_n`,
/// sorted by relevance. Sets `metadata["relevance_score"]` (and `score`) to the reranker's
/// score and `metadata["relevance_logit"]` to its raw logit; every other metadata key is kept.
/// With [`LongDocuments::Chunk`] a document is scored by its best window and
/// `metadata["best_window"]` is `{index, char_start, char_end}` of that window
/// ([`rerank_engine::long_documents`]).
pub struct CrossEncoderReranker {
    pub model: Arc<CrossEncoder>,
    pub top_n: usize,
    /// Truncate (default) or score each document by its best window.
    pub long_documents: LongDocuments,
}

impl DocumentCompressor for CrossEncoderReranker {
    fn compress_documents(&self, documents: Vec<Document>, query: &str) -> Result<Vec<Document>> {
        if self.top_n == 0 {
            return Err(RetrievalError::InvalidArgument(
                "top_n must be at least 1".into(),
            ));
        }
        if documents.is_empty() {
            return Ok(documents);
        }
        let texts: Vec<&str> = documents.iter().map(|d| d.text.as_str()).collect();
        let ranked =
            self.model
                .rank_documents(query, &texts, self.top_n, None, self.long_documents)?;
        let mut slots: Vec<Option<Document>> = documents.into_iter().map(Some).collect();
        Ok(ranked
            .into_iter()
            .map(|long| {
                let r = long.ranked;
                let mut d = slots[r.index].take().expect("rank returns each index once");
                if let Some(w) = long.window {
                    d.metadata.insert(
                        "best_window".into(),
                        serde_json::json!({"index": w.index, "char_start": w.char_start, "char_end": w.char_end}),
                    );
                }
                d.score = r.score;
                d.metadata
                    .insert("relevance_score".into(), Value::from(r.score));
                d.metadata
                    .insert("relevance_logit".into(), Value::from(r.logit));
                d
            })
            .collect())
    }
}

/// Time spent in each stage of one [`ContextualCompressionRetriever::invoke_timed`] call.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub first_stage: Duration,
    pub rerank: Duration,
}

/// Retrieves `top_k` documents with `base_retriever`, then lets `base_compressor` rerank them.
/// Each returned document carries `metadata["first_stage_rank"]` (1-based) and
/// `metadata["first_stage_score"]` from the first stage.
pub struct ContextualCompressionRetriever {
    pub base_retriever: Box<dyn Retriever>,
    pub base_compressor: Box<dyn DocumentCompressor>,
    /// How many candidates the first stage returns.
    pub top_k: usize,
}

/// Records the first stage's rank and score in each document's metadata.
pub fn mark_first_stage(documents: &mut [Document]) {
    for (rank, d) in documents.iter_mut().enumerate() {
        d.metadata
            .insert("first_stage_rank".into(), Value::from(rank + 1));
        d.metadata
            .insert("first_stage_score".into(), Value::from(d.score));
    }
}

impl ContextualCompressionRetriever {
    /// The reranked top_n documents for `query`, best first.
    pub fn invoke(&self, query: &str) -> Result<Vec<Document>> {
        Ok(self.invoke_timed(query)?.0)
    }

    /// Like [`invoke`](Self::invoke), with the time of each stage.
    pub fn invoke_timed(&self, query: &str) -> Result<(Vec<Document>, StageTimings)> {
        let start = Instant::now();
        let mut candidates = self.base_retriever.retrieve(query, self.top_k)?;
        mark_first_stage(&mut candidates);
        let first_stage = start.elapsed();
        let start = Instant::now();
        let documents = self.base_compressor.compress_documents(candidates, query)?;
        Ok((
            documents,
            StageTimings {
                first_stage,
                rerank: start.elapsed(),
            },
        ))
    }
}

impl Retriever for ContextualCompressionRetriever {
    /// Reranks the first stage's `top_k` candidates and returns at most `k` of them.
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Document>> {
        let mut docs = self.invoke(query)?;
        docs.truncate(k);
        Ok(docs)
    }

    fn name(&self) -> &'static str {
        "reranked"
    }
}
