//! Regression tests of the HTTP layer (issue 13, items 2, 5, 7): one per finding, named after
//! it. The socket-level ones speak raw HTTP/1.1 over a `TcpStream` with short timeouts
//! configured, so each takes well under a few seconds.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rerank_server::ServerConfig;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;

fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (Ok(bytes)) or `limit` passes (Err(bytes so far)). Blocking
/// socket I/O, run with `block_in_place` so the server keeps the other worker thread.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
    tokio::task::block_in_place(|| {
        let mut out = Vec::new();
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(out);
            }
            stream.set_read_timeout(Some(left)).unwrap();
            match stream.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(out)
                }
                Err(_) => return Ok(out),
            }
        }
    })
}

/// Reads one answer whose body is a JSON object (ends with `}`), without waiting for close.
fn read_json_response(stream: &mut TcpStream) -> String {
    tokio::task::block_in_place(|| {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        loop {
            let n = stream.read(&mut buf).expect("no answer within 5 s");
            assert!(
                n > 0,
                "closed before a full answer: {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out);
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                if body.trim_end().ends_with('}') {
                    return text.into_owned();
                }
            }
        }
    })
}

/// Splits a raw answer into (status, JSON body).
fn parse(raw: &str) -> (u16, Value) {
    let status: u16 = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {raw:?}"));
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed() {
    let s = Server::tiny(ServerConfig {
        idle_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_secs(20),
        ..Default::default()
    })
    .await;
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let (status, _) = parse(&read_json_response(&mut c));
    assert_eq!(status, 200);
    let t = Instant::now();
    read_until_closed(&mut c, Duration::from_secs(5))
        .expect("an idle keep-alive connection must be closed after idle_timeout");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "closed too early: {waited:?}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_head_times_out() {
    let s = Server::tiny(ServerConfig {
        header_read_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    // Slowloris: a head that never ends, one header line at a time.
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    let t = Instant::now();
    c.write_all(b"POST /rerank HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = c.write_all(format!("x-h{i}: y\r\n").as_bytes());
    }
    let raw = read_until_closed(&mut c, Duration::from_secs(5))
        .expect("a slow request head must be cut off after header_read_timeout");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let (status, v) = parse(&String::from_utf8_lossy(&raw));
    assert_eq!(status, 408, "{v}");
    assert_eq!(v["error_type"], "request_timeout", "{v}");
    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(addr(&s)).unwrap();
    let raw = read_until_closed(&mut silent, Duration::from_secs(5))
        .expect("a silent connection must be closed after header_read_timeout");
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_body_times_out() {
    let s = Server::tiny(ServerConfig {
        body_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    let t = Instant::now();
    // Content-Length promises 100 bytes; 10 arrive.
    c.write_all(
        b"POST /rerank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"query\":",
    )
    .unwrap();
    let raw = read_until_closed(&mut c, Duration::from_secs(5))
        .expect("a body shorter than its Content-Length must not hold the connection");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let (status, v) = parse(&String::from_utf8_lossy(&raw));
    assert_eq!(status, 408, "{v}");
    assert_eq!(v["error_type"], "request_timeout", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_is_json_504() {
    let s = Server::tiny(ServerConfig {
        request_timeout: Duration::from_millis(1),
        ..Default::default()
    })
    .await;
    let texts: Vec<String> = (0..500)
        .map(|i| format!("passage {i} about the economy, jobs and inflation"))
        .collect();
    let resp = post(
        &client(),
        &s.at("/rerank"),
        &json!({"query": "economy", "texts": texts}),
    )
    .await;
    assert_error(&resp, 504, "timeout", "request-timeout");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_connections_do_not_block_health() {
    // Far more idle connections than slots: new connections push the idle ones out.
    let s = Server::tiny(ServerConfig {
        max_connections: 50,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr(&s)).unwrap());
    }
    for _ in 0..5 {
        let t = Instant::now();
        let r = reqwest::Client::new()
            .get(s.at("/health"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("/health must answer while 300 idle connections are open");
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    drop(idle);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_and_half_sent_connections() {
    let s = Server::tiny(ServerConfig::default()).await;
    let mut held = Vec::new();
    for i in 0..5 {
        let mut c = TcpStream::connect(addr(&s)).unwrap();
        if i % 2 == 0 {
            c.write_all(b"POST /rerank HTTP/1.1\r\nhost: x\r\n")
                .unwrap();
        }
        held.push(c);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), s.shutdown())
        .await
        .expect("graceful shutdown must not wait for idle or half-sent connections");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_json_405() {
    let s = Server::tiny(ServerConfig::default()).await;
    let r = client().get(s.at("/rerank")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(allow.as_deref().unwrap_or("").contains("POST"), "{allow:?}");
    let v: Value = r.json().await.expect("405 body must be JSON");
    assert_eq!(v["error_type"], "method_not_allowed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("GET"), "{v}");
    let r = client().delete(s.at("/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.expect("405 body must be JSON");
    assert_eq!(v["error_type"], "method_not_allowed", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_json_404() {
    let s = Server::tiny(ServerConfig::default()).await;
    for (method, path) in [("GET", "/nope"), ("POST", "/v3/rerank"), ("PUT", "/v1")] {
        let r = client()
            .request(method.parse().unwrap(), s.at(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{method} {path}");
        let v: Value = r.json().await.expect("404 body must be JSON");
        assert_eq!(v["error_type"], "not_found", "{v}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_header_is_json_431() {
    let s = Server::tiny(ServerConfig::default()).await;
    let big = "a".repeat(80 * 1024);
    let r = client()
        .get(s.at("/health"))
        .header("x-big", big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 431);
    assert_eq!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let v: Value = r.json().await.expect("431 body must be JSON");
    assert_eq!(v["error_type"], "validation", "{v}");
    s.shutdown().await;
}

/// Past hyper's own head limit (`MAX_BUF_BYTES`) hyper answers 431 itself, unless the whole head
/// arrived in one read, when `head_limits` does (seen in CI, 2026-12-02: the answer came but the
/// connection stayed open). Either way the answer is JSON and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_over_read_buffer_is_json_431() {
    let s = Server::tiny(ServerConfig::default()).await;
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    let big = "a".repeat(200 * 1024);
    let _ =
        c.write_all(format!("GET /health HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n").as_bytes());
    let raw = read_until_closed(&mut c, Duration::from_secs(5)).unwrap();
    let (status, v) = parse(&String::from_utf8_lossy(&raw));
    assert_eq!(status, 431, "{v}");
    assert_eq!(v["error_type"], "validation", "{v}");
    s.shutdown().await;
}

/// A request line hyper cannot parse gets hyper's 400, rewritten as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_is_json_400() {
    let s = Server::tiny(ServerConfig::default()).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /health HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET /he alth HTTP/1.1\r\nhost: x\r\n\r\n",
    ] {
        let mut c = TcpStream::connect(addr(&s)).unwrap();
        c.write_all(garbage).unwrap();
        let raw = read_until_closed(&mut c, Duration::from_secs(5)).unwrap();
        let (status, v) = parse(&String::from_utf8_lossy(&raw));
        assert_eq!(
            status,
            400,
            "{v} for {:?}",
            String::from_utf8_lossy(garbage)
        );
        assert_eq!(v["error_type"], "validation", "{v}");
    }
    // The server still serves.
    let r = client().get(s.at("/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_uri_is_json_414() {
    let s = Server::tiny(ServerConfig::default()).await;
    let url = format!("{}?q={}", s.at("/health"), "a".repeat(10 * 1024));
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 414);
    let v: Value = r.json().await.expect("414 body must be JSON");
    assert_eq!(v["error_type"], "validation", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_scheme_case_insensitive() {
    let s = Server::tiny(ServerConfig {
        api_key: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    let c = client();
    for (value, want) in [
        ("Bearer s3cret", 200),
        ("BEARER s3cret", 200),
        ("bearer s3cret", 200),
        ("bEaReR  s3cret ", 200),
        ("Bearer s3cre", 401),
        ("Bearer s3cret-and-more", 401),
        ("Basic s3cret", 401),
        ("s3cret", 401),
    ] {
        let r = c
            .get(s.at("/info"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{value:?}");
        if want == 401 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error_type"], "unauthorized");
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_panic_is_json_500() {
    use axum::routing::get;
    let config = ServerConfig::default();
    let app = axum::Router::new()
        .route(
            "/boom",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route("/ok", get(|| async { "ok" }));
    let app = rerank_server::layers::guard(app, &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = rerank_server::net::NetLimits {
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
    };
    let task = tokio::spawn(rerank_server::net::serve(
        listener,
        app,
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    let c = client();
    let r = c.get(format!("{url}/boom")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let v: Value = r.json().await.expect("500 body must be JSON");
    assert_eq!(v["error_type"], "internal", "{v}");
    assert!(
        !v["error"].as_str().unwrap().contains("boom"),
        "panic text leaked: {v}"
    );
    let r = c.get(format!("{url}/ok")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_list_truncated_inputs_total() {
    let s = Server::tiny(ServerConfig::default()).await;
    s.state.metrics.truncated_inputs(3);
    let m = client()
        .get(s.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("# TYPE rerank_truncated_inputs_total counter"),
        "{m}"
    );
    assert!(m.contains("rerank_truncated_inputs_total 3\n"), "{m}");
    s.shutdown().await;
}
