//! Operations: `GET /health`, `GET /info`, `GET /metrics`, `GET /openapi.json`, and the JSON 404.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /health` → 200 `{"status": "ok"}` while the inference thread accepts work. Never needs
/// the API key.
pub async fn health(State(_state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /info` → models (architecture, labels, max_length, dims, ...), limits and version.
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = &state.models;
    let c = &state.config;
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "reranker": m.reranker.as_ref().map(|r| json!({"name": r.name, "info": r.model.info()})),
        "embedder": m.embedder.as_ref().map(|e| json!({"name": e.name, "info": e.model.info()})),
        "index": m.index.as_ref().map(|i| json!({
            "dir": i.dir(),
            "passages": i.len(),
            "embedder": i.embedder().name,
        })),
        "max_input_length": m.reranker.as_ref().map(|r| r.model.info().max_length)
            .or(m.embedder.as_ref().map(|e| e.model.info().max_length)),
        "limits": {
            "max_batch_tokens": c.max_batch_tokens,
            "max_concurrent_requests": c.max_concurrent_requests,
            "max_client_batch_size": c.max_client_batch_size,
            "max_cohere_documents": c.max_cohere_documents,
            "max_input_chars": c.max_input_chars,
            "max_tokenization_bytes": c.max_tokenization_bytes,
            "payload_limit": c.payload_limit,
        },
        "auth": c.api_key.is_some(),
    }))
}

/// `GET /metrics` → Prometheus text format (see [`crate::metrics`]).
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// `GET /openapi.json` → the OpenAPI 3.1 description of every route.
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

/// Any unknown path → 404 JSON.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see GET /openapi.json".into())
}
