//! Errors of the HTTP API: each maps to a status code and a JSON body `{error, error_type}`,
//! with the status codes of text-embeddings-inference and Cohere.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// A failed request. The status code and `error_type` string it maps to:
///
/// | variant | status | `error_type` |
/// |---|---|---|
/// | `Validation` | 422 | `validation` |
/// | `PayloadTooLarge` | 413 | `payload_too_large` |
/// | `TooManyDocuments` | 413 | `validation` |
/// | `Overloaded` | 429 | `overloaded` |
/// | `ModelUnavailable` | 424 | `model_unavailable` |
/// | `Backend` | 424 | `backend` |
/// | `Unauthorized` | 401 | `unauthorized` |
/// | `NotFound` | 404 | `not_found` |
/// | `UnsupportedMediaType` | 415 | `validation` |
/// | `Internal` | 500 | `internal` |
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Invalid input: empty query, bad JSON naming the field, over-long input with
    /// `truncate: false`, `top_n` = 0, ...
    #[error("{0}")]
    Validation(String),
    /// The body exceeds `--payload-limit` bytes.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// More documents/inputs than `--max-client-batch-size`.
    #[error("{0}")]
    TooManyDocuments(String),
    /// `--max-concurrent-requests` requests are already queued or running.
    #[error("model is overloaded: {0}")]
    Overloaded(String),
    /// The route needs a model (or index) the server was not started with.
    #[error("{0}")]
    ModelUnavailable(String),
    /// The model failed on this input (e.g. a NaN logit, a tokenizer error).
    #[error("{0}")]
    Backend(String),
    /// Missing or wrong `Authorization: Bearer` key.
    #[error("{0}")]
    Unauthorized(String),
    /// No such route.
    #[error("{0}")]
    NotFound(String),
    /// The body is not declared as `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A bug or a lost inference thread.
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Human-readable message (names the field or document index at fault).
    pub error: String,
    /// Machine-readable kind, see [`ApiError`].
    pub error_type: &'static str,
}

impl ApiError {
    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) | ApiError::TooManyDocuments(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ModelUnavailable(_) | ApiError::Backend(_) => StatusCode::FAILED_DEPENDENCY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error_type` string of the JSON body.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::Validation(_)
            | ApiError::TooManyDocuments(_)
            | ApiError::UnsupportedMediaType(_) => "validation",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::ModelUnavailable(_) => "model_unavailable",
            ApiError::Backend(_) => "backend",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: self.to_string(),
            error_type: self.error_type(),
        };
        (status, Json(body)).into_response()
    }
}

impl From<rerank_engine::EngineError> for ApiError {
    fn from(e: rerank_engine::EngineError) -> Self {
        use rerank_engine::EngineError as E;
        match e {
            E::InvalidArgument(m) => ApiError::Validation(m),
            other => ApiError::Backend(other.to_string()),
        }
    }
}

impl From<rerank_retrieval::RetrievalError> for ApiError {
    fn from(e: rerank_retrieval::RetrievalError) -> Self {
        ApiError::Backend(e.to_string())
    }
}

/// Errors of starting the server (not of single requests).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or serving the socket failed.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration cannot work (e.g. no model at all).
    #[error("invalid configuration: {0}")]
    Config(String),
}
