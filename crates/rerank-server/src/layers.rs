//! HTTP-layer middleware around the routes: the request body timeout, limits on the request
//! target and header size, the per-request deadline, panics turned into 500, and JSON
//! `{error, error_type}` on every error answer that a layer below the handlers produced with an
//! empty body (axum's 405, tower-http's timeout).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::state::ServerConfig;

/// Wraps `app` in the HTTP-layer guards, outermost first: JSON bodies on every error answer
/// ([`json_errors`]), a panic → 500 `internal` ([`panic_response`]), the
/// `config.request_timeout` deadline (504 `timeout`), the request target and header limits
/// (414 / 431, [`head_limits`]), and the `config.body_timeout` ([`body_timeout`], 408).
pub fn guard(app: Router, config: &ServerConfig) -> Router {
    app.layer(middleware::from_fn_with_state(
        config.body_timeout,
        body_timeout,
    ))
    .layer(middleware::from_fn(head_limits))
    .layer(request_deadline(config.request_timeout))
    .layer(CatchPanicLayer::custom(panic_response))
    .layer(middleware::from_fn(json_errors))
}

/// Longest request target (path and query) read, in bytes; longer → 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request head (all header names and values) read, in bytes; larger → 431.
/// hyper itself refuses heads over [`crate::net::MAX_BUF_BYTES`] with an empty 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Middleware: replaces an error answer (status ≥ 400) that has no `Content-Type` (so no
/// body from our handlers) with the JSON body of [`ApiError::from_status`], keeping its other
/// headers (`Allow` on 405, `Connection`).
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    jsonify(response)
}

/// The JSON form of an empty error answer; other answers unchanged.
pub fn jsonify(response: Response) -> Response {
    let status = response.status();
    if status.as_u16() < 400 || response.headers().contains_key(CONTENT_TYPE) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let json = ApiError::from_status(status).into_response();
    let (json_parts, body) = json.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    for (name, value) in &json_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}

/// Middleware: 414 for a request target over [`MAX_URI_BYTES`], 431 for headers over
/// [`MAX_HEADER_BYTES`] (names + values + 4 bytes per line). Both answers close the connection
/// (`Connection: close`), as hyper does when a head overflows its own read buffer: whether a
/// head between the two limits reaches this layer or hyper's depends on how the bytes arrive,
/// and the client must see the same answer either way.
pub async fn head_limits(req: Request, next: Next) -> Response {
    match head_limit_error(&req) {
        Some(e) => {
            let mut r = e.into_response();
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            r
        }
        None => next.run(req).await,
    }
}

/// The 414 / 431 error for a request over the head limits, if it is.
fn head_limit_error(req: &Request) -> Option<ApiError> {
    let uri_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if uri_len > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong(format!(
            "request target is {uri_len} bytes, more than the limit of {MAX_URI_BYTES}"
        )));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::HeaderTooLarge(format!(
            "request headers are {header_bytes} bytes, more than the limit of {MAX_HEADER_BYTES}"
        )));
    }
    None
}

/// Middleware: the request body must be complete within `config.body_timeout` of the head.
/// When it is not, reading it fails, the answer is 408 `request_timeout` whatever the handler
/// made of the failed read, and the connection is closed (`Connection: close`).
pub async fn body_timeout(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let body = TimedBody {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(timeout)),
        expired: expired.clone(),
    };
    let response = next.run(Request::from_parts(parts, Body::new(body))).await;
    if expired.load(Ordering::Relaxed) {
        let mut r = ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} s",
            timeout.as_secs_f64()
        ))
        .into_response();
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    response
}

/// A body that fails once its deadline passes before its end.
struct TimedBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new("request body timeout"))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a panic in a handler: 500 `internal`, JSON; the panic message is logged, not
/// sent.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!("handler panicked: {detail}");
    ApiError::Internal("internal error: the handler panicked (see the server log)".into())
        .into_response()
}

/// tower-http's timeout with the server's status for a missed `--request-timeout`.
pub fn request_deadline(timeout: Duration) -> tower_http::timeout::TimeoutLayer {
    tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, timeout)
}
