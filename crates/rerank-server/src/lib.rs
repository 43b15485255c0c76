//! # rerank-server
//!
//! The HTTP server behind `rerank serve`: a drop-in for text-embeddings-inference
//! (`/rerank`, `/embed`, `/predict`), Cohere and Jina (`/v1/rerank`, `/v2/rerank`), OpenAI
//! (`/v1/embeddings`), infinity and Weaviate reranker-transformers clients (`/rerank` tells
//! the shapes apart by their fields, see [`routes::rerank`]), plus two-stage `/search` over an
//! index and operations routes (`/health`, `/ready`, `/.well-known/ready`, `/meta`, `/info`,
//! `/metrics`, `/openapi.json`) and a static playground page at `/`
//! ([`routes::playground`]).
//!
//! Requests are tokenized on tokio's blocking pool, queued (bounded: 429 when
//! `max_concurrent_requests` are in flight) and merged by a single inference thread into model
//! batches by a padded-token budget ([`batcher`]); rerank scores already computed are answered
//! from a bounded LRU cache without the model ([`score_cache`], `--score-cache-mb`). Errors
//! are JSON `{error, error_type}` ([`error::ApiError`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), rerank_server::ServerError> {
//! use std::sync::Arc;
//! use rerank_engine::CrossEncoder;
//! use rerank_server::{AppState, Models, Named, ServerConfig};
//! let model = CrossEncoder::from_dir("../shared/models/minilm-l6-sotu-ce", Default::default()).unwrap();
//! let models = Models {
//!     reranker: Some(Named { name: "minilm-l6-sotu-ce".into(), model: Arc::new(model) }),
//!     ..Default::default()
//! };
//! let state = AppState::new(ServerConfig::default(), models);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! rerank_server::serve(listener, state, rerank_server::shutdown_signal()).await
//! # }
//! ```

pub mod auth;
pub mod batcher;
pub mod error;
pub mod extract;
pub mod layers;
pub mod metrics;
pub mod net;
pub mod openapi;
pub mod routes;
pub mod score_cache;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};

pub use error::{ApiError, ServerError};
pub use state::{AppState, Models, Named, ServerConfig};

/// Counts every answered request by matched route and status.
async fn count_requests(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    state.metrics.request(&route, response.status().as_u16());
    response
}

/// The router with every route of [`openapi::api_router`] (which also yields the OpenAPI
/// document served at `/openapi.json`), the body limit, the API key check, request counting,
/// and the HTTP-layer guards of [`layers`] (outermost first): JSON bodies on every error,
/// panics → 500 `internal`, the `request_timeout` deadline (504 `timeout`), the request-target
/// and header size limits (414 / 431), the body timeout (408).
pub fn router(state: Arc<AppState>) -> Router {
    let (api, document) = openapi::api_router().split_for_parts();
    let app = api
        .fallback(routes::ops::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(document)))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .layer(DefaultBodyLimit::max(state.config.payload_limit))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state.clone());
    layers::guard(app, &state.config)
}

/// A known path with the wrong method → 405 JSON (axum adds the `Allow` header).
async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "method {} is not allowed on {}; see GET /openapi.json",
        req.method(),
        req.uri().path()
    ))
}

/// Serves `state` on `listener` until `shutdown` completes; then drains and stops.
///
/// Drain: when `shutdown` completes the state turns draining at once (`/ready` and
/// `/.well-known/ready` answer 503, so load balancers take the replica out), and the server
/// keeps accepting and answering requests — in flight, queued and new — for
/// `state.config.drain` ([`ServerConfig::drain`], `--drain-seconds`). After that it stops
/// accepting connections and finishes the requests in flight before returning (idle
/// connections are closed at once). With a zero drain it stops accepting at once.
/// Connections get the header-read and idle timeouts and the connection limit of
/// `state.config` ([`net::serve`]).
///
/// Errors: [`ServerError::Io`] when the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let limits = net::NetLimits {
        header_read_timeout: state.config.header_read_timeout,
        idle_timeout: state.config.idle_timeout,
        max_connections: state.config.max_connections,
    };
    let drain = state.config.drain;
    let draining = state.clone();
    let shutdown = async move {
        shutdown.await;
        draining.start_draining();
        if !drain.is_zero() {
            tracing::info!(
                "draining: /ready answers 503; serving for {:.1} s more",
                drain.as_secs_f64()
            );
            tokio::time::sleep(drain).await;
        }
        tracing::info!("stopping: finishing the requests in flight");
    };
    let app = router(state);
    net::serve(listener, app, limits, shutdown).await
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
