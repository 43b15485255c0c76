//! Running a first stage (and optionally a cross-encoder reranker) over every query of a BEIR
//! set and scoring both rankings.
//!
//! Protocol (that of BEIR's reranking evaluation and of `../shared/data/sotu-ict`):
//! the first stage returns `top_k` documents per query; the first `rerank_depth` of them are
//! reordered by the cross-encoder's logit (descending; ties keep the first-stage order) and the
//! rest (`rerank_depth + 1 ..= top_k`) are appended unchanged, so Recall@100 after reranking
//! equals the first stage's when `top_k` = 100.
//!
//! With fusion ([`evaluate_fused`]), each [`Fusion`] gives one more run per first stage: the
//! first `rerank_depth` candidates ordered by the fused score of their first-stage score or
//! rank and the reranker's logit ([`crate::fusion`]), the rest appended unchanged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rerank_engine::{CrossEncoder, LongDocuments, Prediction};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Result, RetrievalError};
use crate::eval::beir::{Qrels, Query};
use crate::eval::metrics::{Judgments, Metrics, MetricsSummary};
use crate::fusion::{self, Fusion};
use crate::retriever::Retriever;
use crate::Document;

/// Depths of one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct EvalSettings {
    /// First-stage depth: documents retrieved per query (≥ 1).
    pub top_k: usize,
    /// How many of the first-stage documents the cross-encoder reorders (≥ 1; capped at
    /// `top_k`).
    pub rerank_depth: usize,
}

/// Scores `(query, document)` pairs with a cross-encoder and remembers each pair's
/// prediction (keyed by query id and document id), so that evaluating several first stages
/// scores a pair shared by their candidate lists once. A pair's logit does not depend on the
/// batch it was scored in (the engine guarantees this within 1e-5), so reuse changes nothing
/// but time.
pub struct PairScorer<'a> {
    model: &'a CrossEncoder,
    cache: HashMap<(String, String), Prediction>,
    long_documents: LongDocuments,
}

/// One document after reranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RerankedId {
    pub id: String,
    /// 1-based rank in the first stage.
    pub first_stage_rank: usize,
    /// The ordering logit (see [`Prediction::rank_logit`]); `None` for documents below the
    /// rerank depth, which keep their first-stage order.
    pub logit: Option<f32>,
}

/// What reranking one query's candidates cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct RerankCost {
    /// Pairs sent to the model.
    pub scored: usize,
    /// Pairs whose prediction came from the cache.
    pub reused: usize,
    /// Time spent (tokenization and model).
    pub elapsed: Duration,
}

impl<'a> PairScorer<'a> {
    /// A scorer with an empty cache.
    pub fn new(model: &'a CrossEncoder) -> Self {
        PairScorer {
            model,
            cache: HashMap::new(),
            long_documents: LongDocuments::Truncate,
        }
    }

    /// The same scorer scoring documents that do not fit beside the query as `mode` says:
    /// truncated (the default) or by their best window
    /// ([`CrossEncoder::score_documents`]; whole documents instead of their first
    /// `max_length` tokens).
    pub fn with_long_documents(mut self, mode: LongDocuments) -> Self {
        self.long_documents = mode;
        self
    }

    /// Reorders the first `depth` of `candidates` (ids and texts, first-stage order) by the
    /// cross-encoder's logit for `query`, ties by first-stage rank, and appends the rest
    /// unchanged. Returns every candidate once.
    ///
    /// Errors: the engine's (a NaN or infinite logit is
    /// [`rerank_engine::EngineError::NonFiniteLogit`]); `depth == 0` is
    /// [`RetrievalError::InvalidArgument`].
    pub fn rerank(
        &mut self,
        query: &Query,
        candidates: &[Document],
        depth: usize,
    ) -> Result<(Vec<RerankedId>, RerankCost)> {
        if depth == 0 {
            return Err(RetrievalError::InvalidArgument(
                "rerank depth must be at least 1".into(),
            ));
        }
        let start = Instant::now();
        let head = &candidates[..depth.min(candidates.len())];
        let missing: Vec<&Document> = head
            .iter()
            .filter(|d| !self.cache.contains_key(&(query.id.clone(), d.id.clone())))
            .collect();
        if !missing.is_empty() {
            let predictions = match self.long_documents {
                LongDocuments::Truncate => {
                    let pairs: Vec<(&str, &str)> = missing
                        .iter()
                        .map(|d| (query.text.as_str(), d.text.as_str()))
                        .collect();
                    self.model.predict(&pairs)?
                }
                mode => {
                    let texts: Vec<&str> = missing.iter().map(|d| d.text.as_str()).collect();
                    self.model
                        .score_documents(&query.text, &texts, None, mode)?
                        .into_iter()
                        .map(|s| s.prediction)
                        .collect()
                }
            };
            for (d, p) in missing.iter().zip(predictions) {
                self.cache.insert((query.id.clone(), d.id.clone()), p);
            }
        }
        let predictions: Vec<Prediction> = head
            .iter()
            .map(|d| self.cache[&(query.id.clone(), d.id.clone())].clone())
            .collect();
        let mut out: Vec<RerankedId> = Vec::with_capacity(candidates.len());
        if !head.is_empty() {
            for r in rerank_engine::score::rank(predictions, head.len())? {
                out.push(RerankedId {
                    id: head[r.index].id.clone(),
                    first_stage_rank: r.index + 1,
                    logit: Some(r.logit),
                });
            }
        }
        for (i, d) in candidates.iter().enumerate().skip(head.len()) {
            out.push(RerankedId {
                id: d.id.clone(),
                first_stage_rank: i + 1,
                logit: None,
            });
        }
        let cost = RerankCost {
            scored: missing.len(),
            reused: head.len() - missing.len(),
            elapsed: start.elapsed(),
        };
        Ok((out, cost))
    }
}

/// One query's result.
#[derive(Debug, Clone, Serialize)]
pub struct QueryEval {
    pub query_id: String,
    /// The query's `metadata` from the queries file (e.g. `{"kind": "ict"}`).
    pub query_metadata: Map<String, Value>,
    /// First-stage top 10 ids, best first.
    pub first_stage_top10: Vec<String>,
    /// Top 10 ids after reranking (absent without a reranker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranked_top10: Option<Vec<String>>,
    /// Ordering logits of `reranked_top10` (`None` below the rerank depth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranked_top10_logits: Option<Vec<Option<f32>>>,
    pub first_stage: Metrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranked: Option<Metrics>,
    /// One entry per fusion of [`evaluate_fused`], in its order (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fused: Vec<FusedQueryEval>,
}

/// One query's result under one fusion.
#[derive(Debug, Clone, Serialize)]
pub struct FusedQueryEval {
    /// The fusion (`rrf`, `linear:0.5`, ...).
    pub fusion: String,
    /// Top 10 ids by fused score, best first.
    pub top10: Vec<String>,
    pub metrics: Metrics,
}

/// The means of one fusion over all queries.
#[derive(Debug, Clone, Serialize)]
pub struct FusedRun {
    /// The fusion (`rrf`, `linear:0.5`, ...).
    pub fusion: String,
    pub metrics: Metrics,
}

/// Times of one run. Rerank figures cover the pairs actually scored (cache hits cost ~0).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RunTimings {
    /// Mean first-stage time per query (query embedding + search), milliseconds.
    pub first_stage_ms_per_query: f64,
    /// Mean reranking time per query (tokenization + cross-encoder), milliseconds.
    pub rerank_ms_per_query: f64,
    /// Pairs sent to the cross-encoder.
    pub pairs_scored: usize,
    /// Pairs whose logit was reused from an earlier run of the same invocation.
    pub pairs_reused: usize,
    /// `pairs_scored` / total reranking seconds (0 without reranking).
    pub pairs_per_sec: f64,
}

/// The result of evaluating one first stage (and its reranking) over a set.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The first stage's name (`dense`, `bm25`, `hybrid`).
    pub retriever: String,
    /// Queries evaluated (every judged query).
    pub queries: usize,
    pub top_k: usize,
    /// Absent without a reranker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_depth: Option<usize>,
    /// Means over all queries.
    pub first_stage: Metrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranked: Option<Metrics>,
    /// Means of each fusion of [`evaluate_fused`], in its order (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fused: Vec<FusedRun>,
    pub timings: RunTimings,
    #[serde(skip)]
    pub per_query: Vec<QueryEval>,
}

/// Evaluates `retriever` (and, with `scorer`, its reranking) on every query; `qrels` must hold
/// each query's judgments (a query without judgments scores 0). `progress(done, total)` is
/// called after each query.
///
/// Errors: `top_k` or `rerank_depth` of 0 ([`RetrievalError::InvalidArgument`]); the
/// retriever's and the engine's errors.
pub fn evaluate(
    retriever: &dyn Retriever,
    scorer: Option<&mut PairScorer<'_>>,
    queries: &[Query],
    qrels: &Qrels,
    settings: EvalSettings,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    evaluate_fused(retriever, scorer, queries, qrels, settings, &[], progress)
}

/// The ranked ids of one query under `fusion`: the reranked head (`reranked` entries with a
/// logit) fused with the first stage's scores of `candidates`, then the tail unchanged.
///
/// Errors: [`RetrievalError::InvalidArgument`] for a non-finite first-stage score or logit.
pub fn fused_ids(
    fusion: Fusion,
    candidates: &[Document],
    reranked: &[RerankedId],
) -> Result<Vec<String>> {
    let head: Vec<&RerankedId> = reranked.iter().filter(|r| r.logit.is_some()).collect();
    let mut logits = vec![0.0f32; head.len()];
    for r in &head {
        let i = r.first_stage_rank - 1;
        if i >= head.len() {
            return Err(RetrievalError::InvalidArgument(
                "the reranked candidates must be the first stage's head".into(),
            ));
        }
        logits[i] = r.logit.unwrap_or_default();
    }
    let first: Vec<f32> = candidates[..head.len()].iter().map(|d| d.score).collect();
    let order = fusion::fuse(fusion, &first, &logits)?;
    Ok(order
        .into_iter()
        .map(|f| candidates[f.index].id.clone())
        .chain(candidates[head.len()..].iter().map(|d| d.id.clone()))
        .collect())
}

/// [`evaluate`] with one more run per entry of `fusions` (each over the same reranker
/// predictions; see [`fused_ids`]). A `scorer` is needed when `fusions` is not empty.
///
/// Errors: those of [`evaluate`]; [`RetrievalError::InvalidArgument`] for fusions without a
/// scorer.
pub fn evaluate_fused(
    retriever: &dyn Retriever,
    mut scorer: Option<&mut PairScorer<'_>>,
    queries: &[Query],
    qrels: &Qrels,
    settings: EvalSettings,
    fusions: &[Fusion],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    if !fusions.is_empty() && scorer.is_none() {
        return Err(RetrievalError::InvalidArgument(
            "fusion needs a reranker".into(),
        ));
    }
    if settings.top_k == 0 || settings.rerank_depth == 0 {
        return Err(RetrievalError::InvalidArgument(
            "top_k and rerank_depth must be at least 1".into(),
        ));
    }
    let depth = settings.rerank_depth.min(settings.top_k);
    let empty = Judgments::new();
    let mut first_summary = MetricsSummary::default();
    let mut reranked_summary = MetricsSummary::default();
    let mut fused_summaries = vec![MetricsSummary::default(); fusions.len()];
    let mut first_time = Duration::ZERO;
    let mut rerank_cost = RerankCost::default();
    let mut per_query = Vec::with_capacity(queries.len());
    for (n, query) in queries.iter().enumerate() {
        let judgments = qrels.get(&query.id).unwrap_or(&empty);
        let start = Instant::now();
        let candidates = retriever.retrieve(&query.text, settings.top_k)?;
        first_time += start.elapsed();
        let first_ids: Vec<&str> = candidates.iter().map(|d| d.id.as_str()).collect();
        let first_metrics = Metrics::of_run(&first_ids, judgments);
        first_summary.add(&first_metrics);
        let mut eval = QueryEval {
            query_id: query.id.clone(),
            query_metadata: query.metadata.clone(),
            first_stage_top10: first_ids.iter().take(10).map(|s| s.to_string()).collect(),
            reranked_top10: None,
            reranked_top10_logits: None,
            first_stage: first_metrics,
            reranked: None,
            fused: Vec::new(),
        };
        if let Some(scorer) = scorer.as_deref_mut() {
            let (reranked, cost) = scorer.rerank(query, &candidates, depth)?;
            rerank_cost.scored += cost.scored;
            rerank_cost.reused += cost.reused;
            rerank_cost.elapsed += cost.elapsed;
            let ids: Vec<&str> = reranked.iter().map(|r| r.id.as_str()).collect();
            let m = Metrics::of_run(&ids, judgments);
            reranked_summary.add(&m);
            eval.reranked = Some(m);
            eval.reranked_top10 = Some(ids.iter().take(10).map(|s| s.to_string()).collect());
            eval.reranked_top10_logits = Some(reranked.iter().take(10).map(|r| r.logit).collect());
            for (fusion, summary) in fusions.iter().zip(&mut fused_summaries) {
                let ids = fused_ids(*fusion, &candidates, &reranked)?;
                let m = Metrics::of_run(&ids, judgments);
                summary.add(&m);
                eval.fused.push(FusedQueryEval {
                    fusion: fusion.to_string(),
                    top10: ids.into_iter().take(10).collect(),
                    metrics: m,
                });
            }
        }
        per_query.push(eval);
        progress(n + 1, queries.len());
    }
    let nq = queries.len().max(1) as f64;
    let reranking = scorer.is_some();
    let rerank_secs = rerank_cost.elapsed.as_secs_f64();
    Ok(RunReport {
        retriever: retriever.name().to_string(),
        queries: queries.len(),
        top_k: settings.top_k,
        rerank_depth: reranking.then_some(depth),
        first_stage: first_summary.mean(),
        reranked: reranking.then(|| reranked_summary.mean()),
        fused: fusions
            .iter()
            .zip(&fused_summaries)
            .map(|(f, s)| FusedRun {
                fusion: f.to_string(),
                metrics: s.mean(),
            })
            .collect(),
        timings: RunTimings {
            first_stage_ms_per_query: first_time.as_secs_f64() * 1e3 / nq,
            rerank_ms_per_query: rerank_secs * 1e3 / nq,
            pairs_scored: rerank_cost.scored,
            pairs_reused: rerank_cost.reused,
            pairs_per_sec: if rerank_secs > 0.0 {
                rerank_cost.scored as f64 / rerank_secs
            } else {
                0.0
            },
        },
        per_query,
    })
}
