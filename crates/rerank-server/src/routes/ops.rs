//! Operations: `GET /health` (liveness), `GET /ready` (readiness), `GET /info`, `GET /metrics`,
//! `GET /openapi.json`, and the JSON 404.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The `/health` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /health` (liveness) → 200 `{"status": "ok"}` while the process answers and its
/// inference thread runs; 503 `unhealthy` once the inference thread has stopped (restart the
/// process). It does not wait for the inference thread (a long batch does not fail it). Never
/// needs the API key.
#[utoipa::path(
    get,
    path = "/health",
    tag = "ops",
    summary = "Liveness (no API key needed)",
    security(()),
    responses(
        (status = 200, description = "the server and its inference thread are up", body = Health),
        (status = 503, description = "the inference thread has stopped", body = ErrorBody)
    )
)]
pub async fn health(State(state): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    state.liveness()?;
    Ok(Json(Health { status: "ok" }))
}

/// The `/ready` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready` (a server that is not ready answers 503).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Requests queued or running now.
    pub in_flight: usize,
    /// Readiness fails at this many requests queued or running (`--ready-max-in-flight`,
    /// default `--max-concurrent-requests`).
    pub max_in_flight: usize,
}

/// The readiness answer of `/ready` and `/.well-known/ready`.
pub(crate) fn readiness(state: &AppState) -> Result<Json<Readiness>, ApiError> {
    let in_flight = state.readiness()?;
    Ok(Json(Readiness {
        status: "ready",
        in_flight,
        max_in_flight: state.ready_threshold(),
    }))
}

/// `GET /ready` (readiness) → 200 `{status: "ready", in_flight, max_in_flight}` when the
/// models are loaded (the server listens only after loading them), the inference thread
/// runs, the server is not draining (after SIGTERM, see `--drain-seconds`) and fewer than
/// `--ready-max-in-flight` requests are queued or running; else 503 `unhealthy` naming the
/// reason. Never needs the API key.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "ops",
    summary = "Readiness (no API key needed)",
    security(()),
    responses(
        (status = 200, description = "ready to take requests", body = Readiness),
        (status = 503, description = "not ready: draining, busy, or the inference thread stopped", body = ErrorBody)
    )
)]
pub async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<Readiness>, ApiError> {
    readiness(&state)
}

/// A loaded model in `/info`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// The model's configuration: architecture, labels, `max_length`, dims, prompts, ...
    #[schema(value_type = Object)]
    pub info: Value,
    /// The name given on the command line (folder or hub id).
    pub name: String,
}

/// The loaded index in `/info`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexEntry {
    /// The index folder.
    #[schema(value_type = String)]
    pub dir: PathBuf,
    /// The name of the embedder that built it.
    pub embedder: String,
    /// Passages in the index.
    pub passages: usize,
}

/// The server's limits in `/info` (the `rerank serve` flags).
#[derive(Debug, Serialize, ToSchema)]
pub struct Limits {
    /// `--max-batch-tokens`.
    pub max_batch_tokens: usize,
    /// `--max-client-batch-size`.
    pub max_client_batch_size: usize,
    /// `--max-cohere-documents`.
    pub max_cohere_documents: usize,
    /// `--max-concurrent-requests`.
    pub max_concurrent_requests: usize,
    /// `--max-input-chars`.
    pub max_input_chars: usize,
    /// `--max-tokenization-bytes`.
    pub max_tokenization_bytes: usize,
    /// `--payload-limit` (bytes).
    pub payload_limit: usize,
    /// The rerank score cache's byte bound (`--score-cache-mb` × 2^20); 0 when disabled (or
    /// without a reranker).
    pub score_cache_bytes: usize,
    /// The most pairs the rerank score cache holds (the smaller of `--score-cache-entries`
    /// and what the byte bound holds); 0 when disabled.
    pub score_cache_entries: usize,
}

/// The `/info` answer. Fields are declared in the order they are written (alphabetical, as
/// the server has always answered).
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// Whether the server needs an API key.
    pub auth: bool,
    /// The embedder, or `null`.
    pub embedder: Option<ModelEntry>,
    /// The index, or `null`.
    pub index: Option<IndexEntry>,
    /// The server's limits.
    pub limits: Limits,
    /// The reranker's max length in tokens (else the embedder's), or `null`.
    pub max_input_length: Option<usize>,
    /// The reranker, or `null`.
    pub reranker: Option<ModelEntry>,
    /// The server's version.
    pub version: &'static str,
}

fn model_entry<T: Serialize>(name: &str, info: &T) -> Result<ModelEntry, ApiError> {
    Ok(ModelEntry {
        info: serde_json::to_value(info).map_err(|e| ApiError::Internal(e.to_string()))?,
        name: name.to_string(),
    })
}

/// `GET /info` → models (architecture, labels, max_length, dims, ...), limits and version.
#[utoipa::path(
    get,
    path = "/info",
    tag = "ops",
    summary = "Models, max length, limits and version",
    responses(
        (status = 200, description = "info", body = Info),
        (status = 401, description = "missing or wrong API key", body = ErrorBody)
    )
)]
pub async fn info(State(state): State<Arc<AppState>>) -> Result<Json<Info>, ApiError> {
    let m = &state.models;
    let c = &state.config;
    Ok(Json(Info {
        auth: c.api_key.is_some(),
        embedder: m
            .embedder
            .as_ref()
            .map(|e| model_entry(&e.name, e.model.info()))
            .transpose()?,
        index: m.index.as_ref().map(|i| IndexEntry {
            dir: i.dir().to_path_buf(),
            embedder: i.embedder().name.clone(),
            passages: i.len(),
        }),
        limits: Limits {
            max_batch_tokens: c.max_batch_tokens,
            max_client_batch_size: c.max_client_batch_size,
            max_cohere_documents: c.max_cohere_documents,
            max_concurrent_requests: c.max_concurrent_requests,
            max_input_chars: c.max_input_chars,
            max_tokenization_bytes: c.max_tokenization_bytes,
            payload_limit: c.payload_limit,
            score_cache_bytes: state.score_cache.as_ref().map_or(0, |s| s.max_bytes()),
            score_cache_entries: state.score_cache.as_ref().map_or(0, |s| s.max_entries()),
        },
        max_input_length: m
            .reranker
            .as_ref()
            .map(|r| r.model.info().max_length)
            .or(m.embedder.as_ref().map(|e| e.model.info().max_length)),
        reranker: m
            .reranker
            .as_ref()
            .map(|r| model_entry(&r.name, r.model.info()))
            .transpose()?,
        version: env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /metrics` → Prometheus text format (see [`crate::metrics`]).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text format, version 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "missing or wrong API key", body = ErrorBody)
    )
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// `GET /openapi.json` → the OpenAPI 3.1 description of every route, as generated with the
/// router ([`crate::openapi::api_router`]).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    summary = "This document",
    responses(
        (status = 200, description = "OpenAPI 3.1", body = Object),
        (status = 401, description = "missing or wrong API key", body = ErrorBody)
    )
)]
pub async fn openapi(
    Extension(document): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(document.as_ref().clone())
}

/// Any unknown path → 404 JSON.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see GET /openapi.json".into())
}
