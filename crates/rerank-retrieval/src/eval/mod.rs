//! Retrieval-quality evaluation on BEIR-format sets (`rerank eval`): load the corpus, queries
//! and qrels ([`beir`]), index each document whole ([`index_corpus`]), run a first stage and
//! a cross-encoder reranker over every query ([`run`]) and score both rankings with the
//! pytrec_eval definitions of nDCG@10, MRR@10, Recall@10 and Recall@100 ([`metrics`]).

pub mod beir;
pub mod metrics;
pub mod run;

use std::collections::HashSet;

use rerank_engine::Embedder;

use crate::error::{Result, RetrievalError};
use crate::index::Index;
use crate::pipeline::{add_passages, IndexingReport};
use crate::Document;

pub use beir::{BeirDataset, Qrels, Query};
pub use metrics::{Judgments, Metrics, MetricsSummary};
pub use run::{
    evaluate, evaluate_fused, fused_ids, EvalSettings, FusedQueryEval, FusedRun, PairScorer,
    QueryEval, RerankedId, RunReport, RunTimings,
};

/// Adds the corpus documents the index does not hold yet, each embedded **whole** — one
/// passage per document, truncated by the embedder at its max length (sentence-transformers'
/// `max_seq_length`), never chunked, as BEIR evaluates — with the BEIR `_id` as passage id.
/// `progress(done, total)` is called after each embedded block.
///
/// Errors: the index's and the engine's; [`RetrievalError::InvalidArgument`] when the index
/// holds passages that are not corpus documents (e.g. one built by `rerank index`, whose
/// passages are chunks), since those would be retrieved but never judged.
pub fn index_corpus(
    index: &mut Index,
    embedder: &Embedder,
    corpus: &[Document],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<IndexingReport> {
    let ids: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
    if let Some(stray) = (0..index.len())
        .map(|i| index.passage(i))
        .find(|p| !ids.contains(p.id.as_str()))
    {
        return Err(RetrievalError::InvalidArgument(format!(
            "index {} holds passage {:?}, which is not a document of the corpus; \
             evaluate with a fresh --index directory",
            index.dir().display(),
            stray.id
        )));
    }
    add_passages(index, embedder, corpus.to_vec(), progress)
}
