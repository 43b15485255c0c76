//! `POST /search`: two-stage retrieval over the loaded index — first stage `top_k` (dense,
//! BM25 or hybrid), reranked to `top_n` by the cross-encoder — with the results of the
//! library's `ContextualCompressionRetriever` (first-stage rank and score, then the
//! `CrossEncoderReranker`'s `relevance_score` / `relevance_logit` in each document's metadata).
//!
//! The first stage is the one `rerank-retrieval` builds for the CLI and the Python package
//! ([`build_retriever_with`]); the server only chooses where its steps run, so that a long
//! query cannot stall other requests: the whole first stage runs on the blocking pool (HNSW /
//! BM25 lookups, and the query's tokenization under the tokenization budget), the dense query
//! embedding is the only work sent to the inference thread ([`QueryEmbedder`]), and the
//! `(query, candidate)` pairs are scored through the batcher like any `/rerank` request.
//!
//! With `fusion` (`rrf` or `linear:ALPHA`, see [`rerank_retrieval::fusion`]) the `top_n` kept
//! are the best by the fused score of the first stage's rank or score and the reranker's
//! logit, as the library's `CrossEncoderReranker` with a fusion does; the default `none` is
//! the reranker's order alone.
//!
//! `top_k` is clamped to the number of passages in the index (and `top_n` to `top_k`), so no
//! user number reaches usearch's or tantivy's allocations; the answer reports the values used.
//!
//! The answer's `Server-Timing` header (W3C Server Timing, read by browsers' developer tools
//! and by the playground page) gives each stage's wall time in milliseconds:
//! `first_stage;dur=…, rerank;dur=…, total;dur=…` ([`SERVER_TIMING_HEADER`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use rerank_engine::score;
use rerank_engine::tokenize::Encoded;
use rerank_engine::Embedder;
use rerank_retrieval::compression::mark_first_stage;
use rerank_retrieval::{
    build_retriever_with, fusion, Document, Fusion, QueryEmbedder, RetrievalError, RetrieverKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::runtime::Handle;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::{answer, check_query, on_inference_thread, predict, tokenize_pairs, Truncation};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metrics::Hist;
use crate::openapi::ModelErrors;
use crate::state::AppState;

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
    /// How the reranker's score is combined with the first stage's after reranking: `none`
    /// (default: the reranker's order), `rrf` (`1/(60 + first-stage rank) + 1/(60 + rerank
    /// rank)`) or `linear:ALPHA` (`ALPHA·minmax(logit) + (1 − ALPHA)·minmax(first-stage
    /// score)` over the candidates, 0 ≤ ALPHA ≤ 1).
    #[serde(default)]
    #[schema(default = "none", example = "rrf")]
    pub fusion: Option<String>,
}

/// One reranked document of the `/search` answer. Fields in alphabetical order, the order
/// this route has always written them in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    /// The fused score (with a `fusion` other than `none`; absent otherwise). The documents
    /// are ordered by it; `metadata` then also holds `fusion`, `fusion_score` and
    /// `rerank_rank` (1-based rank by the reranker alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion_score: Option<f64>,
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
    /// The `top_n` documents, by descending relevance (or fused score with `fusion`).
    pub documents: Vec<SearchHit>,
    /// The fusion used (`rrf`, `linear:ALPHA`); absent for `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<String>,
    /// The query.
    pub query: String,
    /// The first stage used.
    pub retriever: String,
    /// The first-stage candidates asked for (after clamping to the index).
    pub top_k: usize,
    /// The documents kept (after clamping to `top_k`).
    pub top_n: usize,
}

/// The response header of `/search` with the stages' wall times: `first_stage;dur=MS,
/// rerank;dur=MS, total;dur=MS` (milliseconds with 3 decimals; `first_stage` is the whole
/// first stage, query embedding included; `rerank` is the pairs' tokenization and scoring;
/// `total` is the handler's time from the request's arrival to the answer).
pub const SERVER_TIMING_HEADER: &str = "server-timing";

/// The [`SERVER_TIMING_HEADER`] value for the given stage times.
fn server_timing(first_stage: Duration, rerank: Duration, total: Duration) -> HeaderValue {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let value = format!(
        "first_stage;dur={:.3}, rerank;dur={:.3}, total;dur={:.3}",
        ms(first_stage),
        ms(rerank),
        ms(total)
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("total;dur=0"))
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

/// The server's [`QueryEmbedder`] for the dense first stage that `rerank-retrieval` builds: it
/// tokenizes the query on the calling thread (a blocking-pool thread, under the tokenization
/// budget) and runs only the model on the inference thread, so that a long query cannot stall
/// other requests. Its errors are the server's own (an [`ApiError`] inside
/// [`RetrievalError::QueryEmbedder`]).
struct ServerQueryEmbedder {
    state: Arc<AppState>,
    runtime: Handle,
    /// Closed when the request is dropped (the client went away): the embedding is then not
    /// run, as for any queued work.
    alive: watch::Sender<()>,
}

impl ServerQueryEmbedder {
    fn run(&self, embedder: &Arc<Embedder>, query: &str) -> Result<Vec<f32>, ApiError> {
        let state = &self.state;
        let budget = self
            .runtime
            .block_on(state.tokenization_budget(query.len()))?;
        let start = Instant::now();
        let (encoded, skip) = encode_query(embedder, query)?;
        drop(budget);
        state
            .metrics
            .observe_duration(Hist::Tokenization, start.elapsed());
        let model = embedder.clone();
        let embedding = on_inference_thread(state, move || {
            model
                .embed_batch(&encoded, skip)
                .map_err(ApiError::from)?
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::Internal("the embedder returned no vector".into()))
        });
        self.runtime.block_on(async {
            tokio::select! {
                out = embedding => out,
                _ = self.alive.closed() => Err(ApiError::Internal("the request was dropped".into())),
            }
        })
    }
}

impl QueryEmbedder for ServerQueryEmbedder {
    fn embed_query(
        &self,
        embedder: &Arc<Embedder>,
        query: &str,
    ) -> rerank_retrieval::Result<Vec<f32>> {
        self.run(embedder, query)
            .map_err(|e| RetrievalError::QueryEmbedder(Box::new(e)))
    }
}

/// `POST /search` → `{query, retriever, top_k, top_n, documents: [{id, text, metadata,
/// relevance_score, truncated?}]}`, best first; `metadata` carries `relevance_score`,
/// `relevance_logit`, `first_stage_rank` and `first_stage_score` beside the passage's own
/// metadata; `top_k` / `top_n` are the values used after clamping. The header
/// `x-truncated-inputs: N` counts the (query, candidate) pairs cut to the reranker's length;
/// `Server-Timing` gives the stages' times ([`SERVER_TIMING_HEADER`]).
///
/// Errors: 424 without an index, a reranker, or (dense/hybrid) an embedder; 422 for an empty
/// query, `top_k`/`top_n` < 1, an unknown retriever or a bad `fusion`; 413 for a query over
/// `--max-input-chars`.
#[utoipa::path(
    post,
    path = "/search",
    tag = "search",
    summary = "Two-stage search over the loaded index",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "the reranked documents", body = SearchResponse,
            headers(
                ("x-truncated-inputs" = usize, description = "candidates truncated to the reranker's max length"),
                ("server-timing" = String, description = "the stages' wall times in ms: `first_stage;dur=…, rerank;dur=…, total;dur=…`")
            )),
        ModelErrors
    )
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let index = state.models.index.clone().ok_or_else(|| {
        ApiError::ModelUnavailable("this server has no index (start it with --index DIR)".into())
    })?;
    state.reranker()?;
    check_query(&req.query)?;
    state.check_input_chars(&req.query, "query")?;
    let top_k = positive("top_k", req.top_k, 20)?.min(index.len());
    let top_n = positive("top_n", req.top_n, 3)?.min(top_k.max(1));
    let kind = match req.retriever.as_deref() {
        None => RetrieverKind::Dense,
        Some(name) => name.parse::<RetrieverKind>().map_err(|_| {
            ApiError::Validation(format!(
                "`retriever` must be dense, bm25 or hybrid, got {name:?}"
            ))
        })?,
    };
    let fusion = match req.fusion.as_deref() {
        None => Fusion::None,
        Some(f) => f
            .parse::<Fusion>()
            .map_err(|e| ApiError::Validation(format!("`fusion`: {e}")))?,
    };
    let embedder = if kind.needs_embedder() {
        Some(state.embedder()?.model.clone())
    } else {
        None
    };
    let (alive, request_alive) = watch::channel(());
    let query_embedder = Arc::new(ServerQueryEmbedder {
        state: state.clone(),
        runtime: Handle::current(),
        alive,
    });
    // Refuses an embedder other than the one that built the index (424), before admission.
    let first_stage = build_retriever_with(kind, index, embedder, false, query_embedder)?;
    let _permit = state.admit()?;
    let query = req.query.clone();
    let first_stage_start = Instant::now();
    let mut candidates = if top_k == 0 {
        Vec::new()
    } else {
        // HNSW / BM25 lookups and the query's tokenization on the blocking pool; the query
        // embedding alone on the inference thread (see `ServerQueryEmbedder`).
        let q = query.clone();
        let found = tokio::task::spawn_blocking(move || first_stage.retrieve(&q, top_k))
            .await
            .map_err(|e| ApiError::Internal(format!("first-stage task failed: {e}")))?;
        drop(request_alive);
        found?
    };
    let first_stage_time = first_stage_start.elapsed();
    mark_first_stage(&mut candidates);
    let rerank_start = Instant::now();
    let mut truncated = 0;
    let mut out: Vec<SearchHit> = Vec::new();
    if !candidates.is_empty() {
        let texts: Vec<String> = candidates.iter().map(|d| d.text.clone()).collect();
        let items = tokenize_pairs(&state, query, texts, Truncation::Truncate, None).await?;
        let cut: Vec<bool> = items.iter().map(|e| e.truncated).collect();
        truncated = cut.iter().filter(|&&c| c).count();
        let predictions = predict(&state, items).await?;
        // (ranked document, fused score and rerank rank) best first; no fused score for `none`.
        let ranked: Vec<(score::RankedDocument, Option<(f64, usize)>)> = if fusion.is_none() {
            score::rank(predictions, top_n)?
                .into_iter()
                .map(|r| (r, None))
                .collect()
        } else {
            let n = predictions.len();
            let mut by_index: Vec<Option<score::RankedDocument>> = vec![None; n];
            for r in score::rank(predictions, n)? {
                let i = r.index;
                by_index[i] = Some(r);
            }
            let by_index: Vec<score::RankedDocument> = by_index.into_iter().flatten().collect();
            let first: Vec<f32> = candidates.iter().map(|d| d.score).collect();
            let logits: Vec<f32> = by_index.iter().map(|r| r.logit).collect();
            fusion::fuse(fusion, &first, &logits)
                .map_err(|e| ApiError::Internal(format!("fusion failed: {e}")))?
                .into_iter()
                .take(top_n)
                .filter_map(|f| {
                    let r = by_index.get(f.index)?.clone();
                    Some((r, Some((f.score, f.rerank_rank))))
                })
                .collect()
        };
        let mut slots: Vec<Option<Document>> = candidates.into_iter().map(Some).collect();
        for (r, fused) in ranked {
            let Some(mut d) = slots.get_mut(r.index).and_then(Option::take) else {
                continue;
            };
            d.metadata
                .insert("relevance_score".into(), Value::from(r.score));
            d.metadata
                .insert("relevance_logit".into(), Value::from(r.logit));
            if let Some((fused_score, rerank_rank)) = fused {
                d.metadata
                    .insert("rerank_rank".into(), Value::from(rerank_rank));
                d.metadata
                    .insert("fusion".into(), Value::from(fusion.to_string()));
                d.metadata
                    .insert("fusion_score".into(), Value::from(fused_score));
            }
            out.push(SearchHit {
                fusion_score: fused.map(|f| f.0),
                id: d.id,
                metadata: d.metadata,
                relevance_score: f64::from(r.score),
                text: d.text,
                truncated: cut.get(r.index).copied().unwrap_or(false),
            });
        }
    }
    let rerank_time = rerank_start.elapsed();
    let body = SearchResponse {
        documents: out,
        fusion: (!fusion.is_none()).then(|| fusion.to_string()),
        query: req.query,
        retriever: kind.name().to_string(),
        top_k,
        top_n,
    };
    let mut response = answer(&state, truncated, body);
    response.headers_mut().insert(
        HeaderName::from_static(SERVER_TIMING_HEADER),
        server_timing(first_stage_time, rerank_time, arrived.elapsed()),
    );
    Ok(response)
}
