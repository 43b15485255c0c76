//! Second stage: LangChain's `CrossEncoderReranker` document compressor and
//! `ContextualCompressionRetriever`, which retrieves top-k and keeps the reranked top_n.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rerank_engine::{CrossEncoder, LongDocuments};
use serde_json::Value;

use crate::error::{Result, RetrievalError};
use crate::fusion::{self, Fusion};
use crate::retriever::Retriever;
use crate::Document;

/// Reorders / filters documents for a query (LangChain's `BaseDocumentCompressor`).
pub trait DocumentCompressor: Send + Sync {
    fn compress_documents(&self, documents: Vec<Document>, query: &str) -> Result<Vec<Document>>;
}

/// Scores each `(query, document.text)` pair with a cross-encoder and keeps the best `top_n`,
/// sorted by relevance. Sets `metadata["relevance_score"]` (and `score`) to the reranker's
/// score and `metadata["relevance_logit"]` to its raw logit; every other metadata key is kept.
///
/// With [`LongDocuments::Chunk`] a document is scored by its best window and
/// `metadata["best_window"]` is `{index, char_start, char_end}` of that window
/// ([`rerank_engine::long_documents`]).
///
/// With a [`fusion`](Self::fusion) other than [`Fusion::None`], every document is scored, the
/// input order is taken as the first stage's ranking and each document's `score` as its
/// first-stage score, the best `top_n` by fused score are kept ([`crate::fusion`]), and
/// `score` and `metadata["fusion_score"]` hold the fused score (f64), `metadata["fusion"]`
/// the method and `metadata["rerank_rank"]` the 1-based rank by the reranker alone;
/// `relevance_score` / `relevance_logit` stay the reranker's.
pub struct CrossEncoderReranker {
    pub model: Arc<CrossEncoder>,
    pub top_n: usize,
    /// How the reranker's scores are combined with the first stage's; [`Fusion::None`]
    /// (the reranker's order alone) by default.
    pub fusion: Fusion,
    /// Truncate (default) or score each document by its best window.
    pub long_documents: LongDocuments,
}

/// `metadata["best_window"]` of a document scored by its best window.
fn mark_best_window(d: &mut Document, window: Option<rerank_engine::long_documents::Window>) {
    if let Some(w) = window {
        d.metadata.insert(
            "best_window".into(),
            serde_json::json!({"index": w.index, "char_start": w.char_start, "char_end": w.char_end}),
        );
    }
}

impl CrossEncoderReranker {
    /// A reranker keeping `top_n` documents, without fusion, truncating long documents.
    pub fn new(model: Arc<CrossEncoder>, top_n: usize) -> Self {
        CrossEncoderReranker {
            model,
            top_n,
            fusion: Fusion::None,
            long_documents: LongDocuments::Truncate,
        }
    }

    /// Reranks all `documents` (first-stage order) and keeps the `top_n` best by fused score.
    fn fused(&self, documents: Vec<Document>, query: &str) -> Result<Vec<Document>> {
        let texts: Vec<&str> = documents.iter().map(|d| d.text.as_str()).collect();
        let ranked =
            self.model
                .rank_documents(query, &texts, documents.len(), None, self.long_documents)?;
        let mut predictions = vec![(0.0f32, 0.0f32, None); documents.len()];
        for long in &ranked {
            let r = &long.ranked;
            predictions[r.index] = (r.logit, r.score, long.window);
        }
        let first: Vec<f32> = documents.iter().map(|d| d.score).collect();
        let logits: Vec<f32> = predictions.iter().map(|p| p.0).collect();
        let order = fusion::fuse(self.fusion, &first, &logits)?;
        let method = self.fusion.to_string();
        let mut slots: Vec<Option<Document>> = documents.into_iter().map(Some).collect();
        Ok(order
            .into_iter()
            .take(self.top_n)
            .filter_map(|f| {
                let mut d = slots[f.index].take()?;
                let (logit, score, window) = predictions[f.index];
                mark_best_window(&mut d, window);
                d.score = f.score as f32;
                let m = &mut d.metadata;
                m.insert("relevance_score".into(), Value::from(score));
                m.insert("relevance_logit".into(), Value::from(logit));
                m.insert("rerank_rank".into(), Value::from(f.rerank_rank));
                m.insert("fusion".into(), Value::from(method.clone()));
                m.insert("fusion_score".into(), Value::from(f.score));
                Some(d)
            })
            .collect())
    }
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
        if !self.fusion.is_none() {
            return self.fused(documents, query);
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
                mark_best_window(&mut d, long.window);
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
