//! Errors of the HTTP API: each maps to a status code and a JSON body `{error, error_type}`,
//! with the status codes of text-embeddings-inference and Cohere.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

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
/// | `MethodNotAllowed` | 405 | `method_not_allowed` |
/// | `BadRequest` | 400 | `validation` |
/// | `UriTooLong` | 414 | `validation` |
/// | `HeaderTooLarge` | 431 | `validation` |
/// | `RequestTimeout` | 408 | `request_timeout` |
/// | `Timeout` | 504 | `timeout` |
/// | `Unavailable` | 503 | `unhealthy` |
/// | `Internal` | 500 | `internal` |
///
/// The strings follow text-embeddings-inference's `ErrorType` (`validation`, `overloaded`,
/// `backend`, `unhealthy`, `tokenizer`, `empty`) where TEI has one; the others name what TEI
/// does not answer in JSON (401, 404, 405, 408, 504, panics).
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
    /// The route exists but not for this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A request the HTTP layer cannot read (bad framing, bad header values).
    #[error("{0}")]
    BadRequest(String),
    /// The request target is longer than the server reads.
    #[error("{0}")]
    UriTooLong(String),
    /// The request headers are larger than the server reads.
    #[error("{0}")]
    HeaderTooLarge(String),
    /// The client did not send the whole request body within the body timeout.
    #[error("{0}")]
    RequestTimeout(String),
    /// The server did not answer within `--request-timeout`.
    #[error("{0}")]
    Timeout(String),
    /// The server cannot take this connection now (every connection slot is busy).
    #[error("{0}")]
    Unavailable(String),
    /// A bug (a panic in a handler) or a lost inference thread.
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable message (names the field or document index at fault).
    #[schema(example = "`query` must not be empty")]
    pub error: String,
    /// Machine-readable kind, see [`ApiError`].
    #[schema(value_type = ErrorType)]
    pub error_type: &'static str,
}

/// The `error_type` strings, for the OpenAPI schema of [`ErrorBody`] (the body itself carries
/// [`ApiError::error_type`]).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Only its schema is used.
pub enum ErrorType {
    /// 422 and the other refused inputs (413 too many documents, 400, 414, 415, 431).
    Validation,
    /// 413: body or text over a size limit.
    PayloadTooLarge,
    /// 429.
    Overloaded,
    /// 424: no model or index for the route.
    ModelUnavailable,
    /// 424: the model failed on this input.
    Backend,
    /// 401.
    Unauthorized,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408.
    RequestTimeout,
    /// 504.
    Timeout,
    /// 503.
    Unhealthy,
    /// 500.
    Internal,
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
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeaderTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error for a bare `status` produced below the handlers (axum's 405, a layer's
    /// timeout): the closest variant, with the status's reason phrase as message.
    pub fn from_status(status: StatusCode) -> ApiError {
        let msg = status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string();
        match status.as_u16() {
            400 => ApiError::BadRequest(msg),
            401 => ApiError::Unauthorized(msg),
            404 => ApiError::NotFound(msg),
            405 => ApiError::MethodNotAllowed(msg),
            408 => ApiError::RequestTimeout(msg),
            413 => ApiError::PayloadTooLarge(msg),
            414 => ApiError::UriTooLong(msg),
            415 => ApiError::UnsupportedMediaType(msg),
            422 => ApiError::Validation(msg),
            429 => ApiError::Overloaded(msg),
            431 => ApiError::HeaderTooLarge(msg),
            503 => ApiError::Unavailable(msg),
            504 => ApiError::Timeout(
                "the answer took longer than the server's --request-timeout".into(),
            ),
            424 => ApiError::Backend(msg),
            s if s < 500 => ApiError::BadRequest(msg),
            _ => ApiError::Internal(msg),
        }
    }

    /// The `error_type` string of the JSON body.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::Validation(_)
            | ApiError::TooManyDocuments(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::BadRequest(_)
            | ApiError::UriTooLong(_)
            | ApiError::HeaderTooLarge(_) => "validation",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Timeout(_) => "timeout",
            ApiError::Unavailable(_) => "unhealthy",
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
    /// 424 `backend`, except the server's own errors raised inside a first stage (its
    /// [`QueryEmbedder`](rerank_retrieval::QueryEmbedder)), which come back unchanged.
    fn from(e: rerank_retrieval::RetrievalError) -> Self {
        match e {
            rerank_retrieval::RetrievalError::QueryEmbedder(inner) => {
                match inner.downcast::<ApiError>() {
                    Ok(api) => *api,
                    Err(other) => ApiError::Backend(other.to_string()),
                }
            }
            other => ApiError::Backend(other.to_string()),
        }
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
