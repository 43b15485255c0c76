//! The playground page (`GET /`, issue 15 item 4) and what it relies on: served without the API
//! key as self-contained HTML, calling only documented routes, and `/search`'s `Server-Timing`
//! header. The page in a real browser: `scripts/playground_check.sh`.

mod common;

use std::time::Instant;

use common::*;
use rerank_server::{Models, ServerConfig};
use serde_json::{json, Value};

/// `(method, path)` of every `call("METHOD", "/path"` in the page's script.
fn page_calls(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in page.split("call(\"").skip(1) {
        let mut quoted = part.split('"');
        let method = quoted.next().unwrap_or_default().to_string();
        let _comma = quoted.next();
        let path = quoted.next().unwrap_or_default().to_string();
        out.push((method, path));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_is_self_contained_html_served_without_the_key() {
    let s = Server::tiny(ServerConfig {
        api_key: Some("secret".into()),
        ..Default::default()
    })
    .await;
    let c = client();
    let r = c.get(s.at("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET / needs no key");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp:?}");
    }
    let page = r.text().await.unwrap();
    assert_eq!(page, rerank_server::routes::playground::PAGE);
    assert!(page.contains("<title>rerank playground</title>"));
    // Nothing from another origin: no URL, no external script, style, font or image.
    for needle in [
        "http:", "https:", "//cdn", "src=", "<link", "@import", "url(",
    ] {
        assert!(!page.contains(needle), "the page contains {needle:?}");
    }
    assert!(page.len() < 64 * 1024, "{} bytes", page.len());
    // The API routes still need the key; the key goes in the bearer header the page sends.
    let r = c.get(s.at("/info")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(page.contains("\"Bearer \" + key"));
    // Other methods on `/` are the JSON 405 of every documented path.
    let r = c.put(s.at("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_type"], "method_not_allowed", "{v}");
    s.shutdown().await;
}

/// The page calls only public routes: each `call(METHOD, PATH)` in its script is an operation
/// of the OpenAPI document, and `GET /` is documented as needing no key.
#[test]
fn page_calls_only_documented_routes() {
    let doc = serde_json::to_value(rerank_server::openapi::document()).unwrap();
    let calls = page_calls(rerank_server::routes::playground::PAGE);
    let mut seen: Vec<String> = calls.iter().map(|(m, p)| format!("{m} {p}")).collect();
    seen.sort();
    assert_eq!(seen, ["GET /info", "POST /rerank", "POST /search"]);
    for (method, path) in &calls {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(doc["paths"]["/"]["get"]["security"], json!([{}]));
    assert!(doc["paths"]["/"]["get"]["responses"]["200"]["content"]["text/html"].is_object());
}

/// `/search` answers `Server-Timing: first_stage;dur=…, rerank;dur=…, total;dur=…` (ms): the
/// stages fit in the total, and the total in the client's round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_reports_stage_times_in_server_timing() {
    use rerank_retrieval::index::Index;
    use rerank_retrieval::Document;
    let dir = tempfile::tempdir().unwrap();
    let emb = embedder("tiny-bert-embedder");
    {
        let mut index = Index::create(
            &dir.path().join("idx"),
            rerank_retrieval::pipeline::embedder_id(&emb.model, "tiny-bert-embedder").unwrap(),
        )
        .unwrap();
        let docs: Vec<Document> = [
            "The economy grew and jobs came back.",
            "We will fight inflation by lowering costs.",
            "Roads and bridges will be rebuilt.",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| Document {
            id: format!("p{i}"),
            text: t.to_string(),
            metadata: Default::default(),
            score: 0.0,
        })
        .collect();
        rerank_retrieval::pipeline::add_passages(&mut index, &emb.model, docs, &mut |_, _| {})
            .unwrap();
    }
    let index = std::sync::Arc::new(Index::open(&dir.path().join("idx")).unwrap());
    let s = Server::start(
        ServerConfig::default(),
        Models {
            reranker: Some(reranker("tiny-bert-ce")),
            embedder: Some(emb),
            index: Some(index),
        },
    )
    .await;
    let c = client();
    for retriever in ["dense", "bm25", "hybrid"] {
        let start = Instant::now();
        let r = c
            .post(s.at("/search"))
            .json(&json!({"query": "jobs", "top_k": 3, "top_n": 3, "retriever": retriever}))
            .send()
            .await
            .unwrap();
        let timing = r
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body: Value = r.json().await.unwrap();
        let round_trip_ms = start.elapsed().as_secs_f64() * 1e3;
        // BM25 finds only the passage with "jobs"; dense and hybrid all three.
        let found = body["documents"].as_array().unwrap().len();
        assert!((1..=3).contains(&found), "{body}");
        let stages: Vec<(String, f64)> = timing
            .split(',')
            .map(|part| {
                let (name, dur) = part.trim().split_once(";dur=").expect(&timing);
                (name.to_string(), dur.parse::<f64>().expect(&timing))
            })
            .collect();
        let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["first_stage", "rerank", "total"], "{timing}");
        let (first, rerank, total) = (stages[0].1, stages[1].1, stages[2].1);
        assert!(first > 0.0 && rerank > 0.0, "{retriever}: {timing}");
        assert!(first + rerank <= total + 1e-3, "{retriever}: {timing}");
        assert!(
            total <= round_trip_ms,
            "{retriever}: {timing} vs {round_trip_ms} ms"
        );
    }
    s.shutdown().await;
}
