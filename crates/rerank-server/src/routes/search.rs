//! `POST /search`: two-stage retrieval over the loaded index — first stage `top_k` (dense,
//! BM25 or hybrid), reranked to `top_n` by the cross-encoder (the library's
//! `ContextualCompressionRetriever`). Runs on the inference thread, one search at a time.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use rerank_retrieval::{
    Bm25Retriever, ContextualCompressionRetriever, CrossEncoderReranker, DenseRetriever,
    HybridRetriever, Retriever,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_query, on_inference_thread};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// The body of `/search`.
#[derive(Debug, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    /// First-stage candidates (≥ 1). Default 20.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Documents kept after reranking (≥ 1). Default 3.
    #[serde(default)]
    pub top_n: Option<i64>,
    /// `dense` (default), `bm25` or `hybrid`.
    #[serde(default)]
    pub retriever: Option<String>,
}

fn positive(name: &str, v: Option<i64>, default: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 => Ok(n as usize),
        Some(n) => Err(ApiError::Validation(format!(
            "`{name}` must be at least 1, got {n}"
        ))),
    }
}

/// `POST /search` → `{query, retriever, top_k, top_n, documents: [{id, text, metadata,
/// relevance_score}]}`, best first; `metadata` carries `relevance_score`,
/// `first_stage_rank` and `first_stage_score` beside the passage's own metadata.
///
/// Errors: 424 without an index, a reranker, or (dense/hybrid) an embedder; 422 for an empty
/// query, `top_k`/`top_n` < 1 or an unknown retriever.
pub async fn search(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<Value>, ApiError> {
    let index = state.models.index.clone().ok_or_else(|| {
        ApiError::ModelUnavailable("this server has no index (start it with --index DIR)".into())
    })?;
    let reranker = state.reranker()?.model.clone();
    check_query(&req.query)?;
    let top_k = positive("top_k", req.top_k, 20)?;
    let top_n = positive("top_n", req.top_n, 3)?;
    let kind = req.retriever.clone().unwrap_or_else(|| "dense".into());
    let base: Box<dyn Retriever> = match kind.as_str() {
        "bm25" => Box::new(Bm25Retriever {
            index: index.clone(),
        }),
        "dense" | "hybrid" => {
            let embedder = state.embedder()?.model.clone();
            let dense = DenseRetriever::new(index.clone(), embedder)?;
            if kind == "dense" {
                Box::new(dense)
            } else {
                Box::new(HybridRetriever::dense_bm25(
                    dense,
                    Bm25Retriever {
                        index: index.clone(),
                    },
                ))
            }
        }
        other => {
            return Err(ApiError::Validation(format!(
                "`retriever` must be dense, bm25 or hybrid, got {other:?}"
            )))
        }
    };
    let _permit = state.admit()?;
    let query = req.query.clone();
    let documents = on_inference_thread(&state, move || {
        let pipeline = ContextualCompressionRetriever {
            base_retriever: base,
            base_compressor: Box::new(CrossEncoderReranker {
                model: reranker,
                top_n,
            }),
            top_k,
        };
        pipeline.invoke(&query).map_err(ApiError::from)
    })
    .await?;
    let documents: Vec<Value> = documents
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "text": d.text,
                "relevance_score": d.score,
                "metadata": d.metadata,
            })
        })
        .collect();
    Ok(Json(json!({
        "query": req.query,
        "retriever": kind,
        "top_k": top_k,
        "top_n": top_n,
        "documents": documents,
    })))
}
