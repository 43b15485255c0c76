//! 32 concurrent clients with mixed valid and invalid requests; batching must not change a
//! pair's score; graceful shutdown finishes in-flight requests.

mod common;

use common::*;
use rerank_server::ServerConfig;
use serde_json::{json, Value};

fn docs(seed: usize) -> Vec<String> {
    let words = [
        "economy",
        "jobs",
        "inflation",
        "Ukraine",
        "bridges",
        "cancer",
        "schools",
        "taxes",
    ];
    (0..(3 + seed % 5))
        .map(|i| {
            let n = 2 + (seed * 7 + i * 13) % 40;
            (0..n)
                .map(|k| words[(seed + i + k) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mixed_clients_get_the_scores_they_get_alone() {
    // A small token budget forces requests to be split and merged across clients. No score
    // cache: every round must be computed in whatever batch it lands in.
    let s = Server::tiny(ServerConfig {
        max_batch_tokens: 512,
        score_cache_bytes: 0,
        ..Default::default()
    })
    .await;
    let c = client();
    // Scores of each request sent alone, one at a time.
    let mut alone = Vec::new();
    for i in 0..32 {
        let (st, v) = post(
            &c,
            &s.at("/rerank"),
            &json!({"query": format!("query {i} economy"), "texts": docs(i), "raw_scores": true}),
        )
        .await;
        assert_eq!(st, 200);
        alone.push(v);
    }
    let mut tasks = Vec::new();
    for (i, expected) in alone.iter().cloned().enumerate() {
        let c = c.clone();
        let url = s.url.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..3 {
                match (i + round) % 4 {
                    0 | 1 => {
                        let (st, v) = post(&c, &format!("{url}/rerank"), &json!({"query": format!("query {i} economy"), "texts": docs(i), "raw_scores": true})).await;
                        assert_eq!(st, 200, "{v}");
                        let (a, b) = (v.as_array().unwrap(), expected.as_array().unwrap());
                        assert_eq!(a.len(), b.len());
                        for (x, y) in a.iter().zip(b) {
                            assert_eq!(x["index"], y["index"]);
                            let d = (x["score"].as_f64().unwrap() - y["score"].as_f64().unwrap()).abs();
                            assert!(d <= 1e-5, "client {i}: batched {x} vs alone {y}");
                        }
                    }
                    2 => {
                        let r = post(&c, &format!("{url}/v1/rerank"), &json!({"query": "", "documents": docs(i)})).await;
                        assert_error(&r, 422, "validation", "query");
                    }
                    _ => {
                        let (st, v) = post(&c, &format!("{url}/v1/embeddings"), &json!({"input": docs(i)})).await;
                        assert_eq!(st, 200, "{v}");
                        assert_eq!(v["data"].as_array().unwrap().len(), docs(i).len());
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let h: Value = c
        .get(s.at("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    let m = c
        .get(s.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("rerank_queue_size 0"), "{m}");
    assert_eq!(s.state.metrics.requests("/v1/rerank", 422), 24);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let url = s.at("/rerank");
    let texts: Vec<String> = (0..200)
        .map(|i| format!("passage {i} about the economy and jobs"))
        .collect();
    let inflight =
        tokio::spawn(
            async move { post(&c, &url, &json!({"query": "economy", "texts": texts})).await },
        );
    // Wait until the server has admitted the request, then ask it to stop.
    while s.state.in_flight() == 0 && !inflight.is_finished() {
        tokio::task::yield_now().await;
    }
    s.shutdown().await;
    let (st, v) = inflight.await.unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 200);
}
