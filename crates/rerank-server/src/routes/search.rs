//! `POST /search`: two-stage retrieval over the loaded index — first stage `top_k` (dense,
//! BM25 or hybrid), reranked to `top_n` by the cross-encoder — with the results of the
//! library's `ContextualCompressionRetriever` (first-stage rank and score, then the
//! `CrossEncoderReranker`'s `relevance_score` / `relevance_logit` in each document's metadata).
//!
//! Unlike the library pipeline, the steps are spread so that a long query cannot stall other
//! requests: the query is tokenized once per model on the blocking pool (under the
//! tokenization budget), the dense query embedding is the only work run on the inference
//! thread for the first stage, HNSW / BM25 lookups run on the blocking pool, and the
//! `(query, candidate)` pairs are scored through the batcher like any `/rerank` request.
//!
//! `top_k` is clamped to the number of passages in the index (and `top_n` to `top_k`), so no
//! user number reaches usearch's or tantivy's allocations; the answer reports the values used.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use rerank_engine::score;
use rerank_engine::tokenize::Encoded;
use rerank_engine::Embedder;
use rerank_retrieval::compression::mark_first_stage;
use rerank_retrieval::index::Index;
use rerank_retrieval::retriever::reciprocal_rank_fusion;
use rerank_retrieval::{DenseRetriever, Document};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    answer, blocking, check_query, on_inference_thread, predict, tokenize_pairs, Truncation,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::openapi::ModelErrors;
use crate::state::AppState;

/// The RRF constant of the hybrid first stage (as `HybridRetriever::dense_bm25`).
const RRF_K: f32 = 60.0;

/// The body of `/search`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// The query (not empty).
    #[schema(min_length = 1)]
    pub query: String,
    /// First-stage candidates (≥ 1; clamped to the passages in the index). Default 20.
    #[serde(default)]
    #[schema(minimum = 1, default = 20)]
    pub top_k: Option<i64>,
    /// Documents kept after reranking (≥ 1; clamped to `top_k`). Default 3.
    #[serde(default)]
    #[schema(minimum = 1, default = 3)]
    pub top_n: Option<i64>,
    /// `dense` (default), `bm25` or `hybrid`.
    #[serde(default)]
    #[schema(default = "dense", example = "hybrid")]
    pub retriever: Option<String>,
}

/// One reranked document of the `/search` answer. Fields in alphabetical order, the order
/// this route has always written them in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    /// The passage id.
    pub id: String,
    /// The passage's metadata, with the first stage's `retriever`, `first_stage_rank` and
    /// `first_stage_score` and the reranker's `relevance_score` and `relevance_logit`.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// The reranker's relevance score (written as the f64 of the f32).
    pub relevance_score: f64,
    /// The passage text.
    pub text: String,
    /// `true` when the (query, passage) pair was cut to the reranker's max length; absent
    /// otherwise.
    #[serde(skip_serializing_if = "super::tei::is_false")]
    #[schema(default = false)]
    pub truncated: bool,
}

/// The `/search` answer. Fields in alphabetical order, the order this route has always
/// written them in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The `top_n` documents, by descending relevance.
    pub documents: Vec<SearchHit>,
    /// The query.
    pub query: String,
    /// The first stage used.
    pub retriever: String,
    /// The first-stage candidates asked for (after clamping to the index).
    pub top_k: usize,
    /// The documents kept (after clamping to `top_k`).
    pub top_n: usize,
}

fn positive(name: &str, v: Option<i64>, default: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(n) => Err(ApiError::Validation(format!(
            "`{name}` must be at least 1, got {n}"
        ))),
    }
}

/// Tokenizes the query for the embedder with its query prompt, as `Embedder::embed_query`
/// does; returns the encoding and the prompt tokens that pooling skips.
fn encode_query(embedder: &Embedder, query: &str) -> Result<(Vec<Encoded>, usize), ApiError> {
    let info = embedder.info();
    let prompt = info.query_prompt.as_str();
    let text = format!("{prompt}{query}");
    let tok = embedder.tokenizer();
    let encoded = tok.encode_texts(&[text.as_str()], info.max_length)?;
    // As `Embedder::embed_with_prompt`: the prompt's length with special tokens, minus one.
    let skip = if prompt.is_empty() || info.include_prompt {
        0
    } else {
        tok.encode_texts(&[prompt], info.max_length)?
            .first()
            .map_or(0, |e| e.input_ids.len().saturating_sub(1))
    };
    Ok((encoded, skip))
}

fn documents(index: &Index, hits: Vec<(usize, f32)>) -> Vec<Document> {
    hits.into_iter()
        .filter(|&(ordinal, _)| ordinal < index.len())
        .map(|(ordinal, score)| {
            let mut d = index.passage(ordinal).clone();
            d.score = score;
            d
        })
        .collect()
}

/// The dense first stage: query embedding on the inference thread, HNSW on the blocking pool.
async fn dense(
    state: &Arc<AppState>,
    index: Arc<Index>,
    embedder: Arc<Embedder>,
    query: String,
    k: usize,
) -> Result<Vec<Document>, ApiError> {
    let budget = state.tokenization_budget(query.len()).await?;
    let model = embedder.clone();
    let (encoded, skip) = blocking(state, move || {
        let _budget = budget;
        encode_query(&model, &query)
    })
    .await?;
    let mut vector = on_inference_thread(state, move || {
        embedder
            .embed_batch(&encoded, skip)
            .map_err(ApiError::from)?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Internal("the embedder returned no vector".into()))
    })
    .await?;
    rerank_engine::pooling::normalize(&mut vector);
    blocking(state, move || {
        let hits = index.search_dense(&vector, k)?;
        Ok(documents(&index, hits))
    })
    .await
}

/// The BM25 first stage, on the blocking pool.
async fn bm25(
    state: &Arc<AppState>,
    index: Arc<Index>,
    query: String,
    k: usize,
) -> Result<Vec<Document>, ApiError> {
    let budget = state.tokenization_budget(query.len()).await?;
    blocking(state, move || {
        let _budget = budget;
        let hits = index.search_bm25(&query, k)?;
        Ok(documents(&index, hits))
    })
    .await
}

/// `POST /search` → `{query, retriever, top_k, top_n, documents: [{id, text, metadata,
/// relevance_score, truncated?}]}`, best first; `metadata` carries `relevance_score`,
/// `relevance_logit`, `first_stage_rank` and `first_stage_score` beside the passage's own
/// metadata; `top_k` / `top_n` are the values used after clamping. The header
/// `x-truncated-inputs: N` counts the (query, candidate) pairs cut to the reranker's length.
///
/// Errors: 424 without an index, a reranker, or (dense/hybrid) an embedder; 422 for an empty
/// query, `top_k`/`top_n` < 1 or an unknown retriever; 413 for a query over
/// `--max-input-chars`.
#[utoipa::path(
    post,
    path = "/search",
    tag = "search",
    summary = "Two-stage search over the loaded index",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "the reranked documents", body = SearchResponse,
            headers(("x-truncated-inputs" = usize, description = "candidates truncated to the reranker's max length"))),
        ModelErrors
    )
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Response, ApiError> {
    let index = state.models.index.clone().ok_or_else(|| {
        ApiError::ModelUnavailable("this server has no index (start it with --index DIR)".into())
    })?;
    state.reranker()?;
    check_query(&req.query)?;
    state.check_input_chars(&req.query, "query")?;
    let top_k = positive("top_k", req.top_k, 20)?.min(index.len());
    let top_n = positive("top_n", req.top_n, 3)?.min(top_k.max(1));
    let kind = req.retriever.clone().unwrap_or_else(|| "dense".into());
    let embedder = match kind.as_str() {
        "bm25" => None,
        "dense" | "hybrid" => {
            let embedder = state.embedder()?.model.clone();
            // Refuses an embedder other than the one that built the index.
            DenseRetriever::new(index.clone(), embedder.clone())?;
            Some(embedder)
        }
        other => {
            return Err(ApiError::Validation(format!(
                "`retriever` must be dense, bm25 or hybrid, got {other:?}"
            )))
        }
    };
    let _permit = state.admit()?;
    let query = req.query.clone();
    let mut candidates = if top_k == 0 {
        Vec::new()
    } else {
        match (kind.as_str(), embedder) {
            ("dense", Some(e)) => dense(&state, index.clone(), e, query.clone(), top_k).await?,
            ("hybrid", Some(e)) => {
                let d = dense(&state, index.clone(), e, query.clone(), top_k).await?;
                let b = bm25(&state, index.clone(), query.clone(), top_k).await?;
                reciprocal_rank_fusion(vec![(d, 1.0), (b, 1.0)], RRF_K, top_k)
            }
            _ => bm25(&state, index.clone(), query.clone(), top_k).await?,
        }
    };
    mark_first_stage(&mut candidates);
    let mut truncated = 0;
    let mut out: Vec<SearchHit> = Vec::new();
    if !candidates.is_empty() {
        let texts: Vec<String> = candidates.iter().map(|d| d.text.clone()).collect();
        let items = tokenize_pairs(&state, query, texts, Truncation::Truncate, None).await?;
        let cut: Vec<bool> = items.iter().map(|e| e.truncated).collect();
        truncated = cut.iter().filter(|&&c| c).count();
        let predictions = predict(&state, items).await?;
        let ranked = score::rank(predictions, top_n)?;
        let mut slots: Vec<Option<Document>> = candidates.into_iter().map(Some).collect();
        for r in ranked {
            let Some(mut d) = slots.get_mut(r.index).and_then(Option::take) else {
                continue;
            };
            d.metadata
                .insert("relevance_score".into(), Value::from(r.score));
            d.metadata
                .insert("relevance_logit".into(), Value::from(r.logit));
            out.push(SearchHit {
                id: d.id,
                metadata: d.metadata,
                relevance_score: f64::from(r.score),
                text: d.text,
                truncated: cut.get(r.index).copied().unwrap_or(false),
            });
        }
    }
    let body = SearchResponse {
        documents: out,
        query: req.query,
        retriever: kind,
        top_k,
        top_n,
    };
    Ok(answer(&state, truncated, body))
}
