//! The accept loop: HTTP/1.1 connections served by hyper with a header-read timeout, an idle
//! keep-alive timeout and a connection limit, and graceful shutdown.
//!
//! What the routes never see, because hyper answers or closes before a request exists, and how
//! it still gets a JSON `{error, error_type}` answer:
//! - a malformed request line or header, or a head over [`MAX_BUF_BYTES`]: hyper writes its own
//!   400 / 414 / 431 with an empty body and closes; `GuardIo` recognises that bare answer on
//!   its way out and writes the JSON one of [`crate::error::ApiError::from_status`] instead.
//!   (Heads between [`crate::layers::MAX_HEADER_BYTES`] and [`MAX_BUF_BYTES`] reach
//!   [`crate::layers::head_limits`], which answers 431 itself.)
//! - a request head begun but not complete within `header_read_timeout`: hyper closes with no
//!   answer; `GuardIo` writes a JSON 408 `request_timeout` as the socket closes (best effort:
//!   a non-blocking write). A connection that sent nothing is closed silently.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::ServerError;

/// hyper's read buffer per connection, in bytes; also the largest request head hyper reads.
pub const MAX_BUF_BYTES: usize = 128 * 1024;

/// Open-file descriptors kept free for model files, the index, logs and the runtime.
const RESERVED_FDS: u64 = 64;

/// The connection-level limits (from [`crate::ServerConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct NetLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// One connection's activity, shared by its task and the tracker.
struct ConnState {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` of the last answer (or of the accept).
    last_active_ms: AtomicU64,
    closing: AtomicBool,
    close: Notify,
}

impl ConnState {
    fn touch(&self) {
        self.last_active_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn last_active(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed))
    }
}

/// Counts a request in flight on a connection while alive.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(c: &Arc<ConnState>) -> Self {
        c.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(c.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open connections.
struct Tracker {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Tracker {
    fn new() -> Self {
        Tracker {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self) -> (u64, Arc<ConnState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(ConnState {
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        c.touch();
        self.lock().insert(id, c.clone());
        (id, c)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Connections open and not asked to close.
    fn open(&self) -> usize {
        self.lock()
            .values()
            .filter(|c| !c.closing.load(Ordering::Relaxed))
            .count()
    }

    /// Asks the longest-idle connection without a request in flight to close; false when
    /// every connection has a request in flight.
    fn shed_idle(&self) -> bool {
        let conns = self.lock();
        let victim = conns
            .values()
            .filter(|c| {
                !c.closing.load(Ordering::Relaxed) && c.in_flight.load(Ordering::Relaxed) == 0
            })
            .min_by_key(|c| c.last_active_ms.load(Ordering::Relaxed));
        match victim {
            Some(c) => {
                c.closing.store(true, Ordering::Relaxed);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// `max_connections` lowered so that the connections, plus `RESERVED_FDS`, fit under the
/// process's soft open-file limit.
pub fn effective_max_connections(max_connections: usize) -> usize {
    let wanted = max_connections.max(1);
    match open_file_limit() {
        Some(limit) => {
            let fit = limit.saturating_sub(RESERVED_FDS).max(1);
            let fit = usize::try_from(fit).unwrap_or(usize::MAX);
            if fit < wanted {
                tracing::warn!(
                    "--max-connections {wanted} lowered to {fit}: the open-file limit is {limit}"
                );
            }
            wanted.min(fit)
        }
        None => wanted,
    }
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and has no other effect.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    if rc != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
    Some(r.rlim_cur as u64)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// The answer written to a connection refused because every slot is busy.
fn busy_response() -> Vec<u8> {
    let body = r#"{"error":"every connection slot has a request in flight (--max-connections); retry","error_type":"unhealthy"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes; then stops accepting,
/// lets every request in flight finish (closing idle connections at once) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: NetLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let max_connections = effective_max_connections(limits.max_connections);
    let tracker = Arc::new(Tracker::new());
    let busy = busy_response();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept: make
                // room and retry shortly rather than spin or stop.
                tracing::debug!("accept failed: {e}");
                tracker.shed_idle();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if tracker.open() >= max_connections && !tracker.shed_idle() {
            // Every slot has a request in flight: answer 503 without waiting (the answer fits
            // any socket buffer) and close.
            let _ = stream.try_write(&busy);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, conn) = tracker.register();
        tokio::spawn(serve_connection(
            stream,
            app.clone(),
            limits,
            conn,
            tracker.clone(),
            id,
            stop_rx.clone(),
            done_tx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    // Every connection task holds a sender; recv() is None once all have ended.
    let _ = done_rx.recv().await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: NetLimits,
    conn: Arc<ConnState>,
    tracker: Arc<Tracker>,
    id: u64,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = InFlight::new(&conn);
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(Body::new)).await;
                drop(guard);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_BUF_BYTES);
    let head_timed_out = Arc::new(AtomicBool::new(false));
    let io = GuardIo {
        inner: stream,
        replacement: None,
        read_since_write: false,
        head_timed_out: head_timed_out.clone(),
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    // When to drop a connection that had no request in flight at shutdown (hyper's graceful
    // close would wait for a half-sent head until the header timeout).
    let mut drop_at: Option<Instant> = None;
    loop {
        let idle_deadline = if conn.in_flight.load(Ordering::Relaxed) > 0 {
            Instant::now() + limits.idle_timeout
        } else {
            conn.last_active() + limits.idle_timeout
        };
        tokio::select! {
            r = connection.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection ended: {e}");
                    if e.is_timeout() {
                        head_timed_out.store(true, Ordering::Relaxed);
                    }
                }
                break;
            }
            _ = conn.close.notified() => {
                // Shed for a new connection: only ever chosen while idle.
                if conn.in_flight.load(Ordering::Relaxed) == 0 {
                    break;
                }
                connection.as_mut().graceful_shutdown();
                shutting_down = true;
            }
            _ = tokio::time::sleep_until(idle_deadline), if !shutting_down => {
                if conn.in_flight.load(Ordering::Relaxed) == 0
                    && conn.last_active() + limits.idle_timeout <= Instant::now()
                {
                    break;
                }
            }
            _ = stop.changed(), if !shutting_down => {
                connection.as_mut().graceful_shutdown();
                shutting_down = true;
                if conn.in_flight.load(Ordering::Relaxed) == 0 {
                    // Time to flush an answer just handed to hyper, then close.
                    drop_at = Some(Instant::now() + Duration::from_millis(500));
                }
            }
            _ = tokio::time::sleep_until(drop_at.unwrap_or_else(Instant::now)), if drop_at.is_some() => {
                break;
            }
        }
    }
    tracker.remove(id);
}

/// The socket as hyper sees it, turning hyper's own bare error answers into JSON ones (see the
/// module docs).
struct GuardIo {
    inner: tokio::net::TcpStream,
    /// A JSON answer being written in place of hyper's bare one, and how much is written.
    replacement: Option<(Vec<u8>, usize)>,
    /// Bytes arrived since the last answer was written (a request head is under way).
    read_since_write: bool,
    /// Set by the connection task when hyper gave up on a request head.
    head_timed_out: Arc<AtomicBool>,
}

/// The status of `buf` when it is a whole answer head of status ≥ 400 without `Content-Type`
/// (only hyper's automatic answers look like that: the router's always carry one).
fn bare_error_status(buf: &[u8]) -> Option<axum::http::StatusCode> {
    if buf.len() < 12 || !(buf.starts_with(b"HTTP/1.1 ") || buf.starts_with(b"HTTP/1.0 ")) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    if head.contains("\r\ncontent-type:") {
        return None;
    }
    let status = axum::http::StatusCode::from_bytes(&buf[9..12]).ok()?;
    (status.as_u16() >= 400).then_some(status)
}

/// A complete HTTP/1.1 answer with the JSON body of `error`, closing the connection.
fn json_answer(error: crate::error::ApiError) -> Vec<u8> {
    let status = error.status();
    let body = serde_json::json!({"error": error.to_string(), "error_type": error.error_type()})
        .to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

impl AsyncRead for GuardIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.read_since_write = true;
        }
        r
    }
}

impl AsyncWrite for GuardIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_none() {
            if let Some(status) = bare_error_status(buf) {
                let error = crate::error::ApiError::from_status(status);
                this.replacement = Some((json_answer(error), 0));
            }
        }
        this.read_since_write = false;
        match &mut this.replacement {
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
            Some((bytes, written)) => {
                while *written < bytes.len() {
                    match Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
                        }
                        Poll::Ready(Ok(n)) => *written += n,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                this.replacement = None;
                // hyper's bare answer counts as written: it is replaced, not sent.
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        // hyper then flattens each answer into one buffer, which `bare_error_status` reads.
        false
    }
}

impl Drop for GuardIo {
    fn drop(&mut self) {
        if self.head_timed_out.load(Ordering::Relaxed) && self.read_since_write {
            let answer = json_answer(crate::error::ApiError::RequestTimeout(
                "the request head did not arrive within the header read timeout".into(),
            ));
            // Best effort and non-blocking: the answer fits an empty socket buffer.
            let _ = self.inner.try_write(&answer);
        }
    }
}
