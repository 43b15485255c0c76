//! Limits and errors: status codes and `{error, error_type}` bodies; none of them brings the
//! server down.

mod common;

use common::*;
use rerank_server::{Models, ServerConfig};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_limits_and_status_codes() {
    let s = Server::tiny(ServerConfig {
        payload_limit: 64 * 1024,
        max_client_batch_size: 8,
        max_cohere_documents: 12,
        ..Default::default()
    })
    .await;
    let c = client();
    let rerank = s.at("/rerank");
    // Empty query → 422 naming the field.
    assert_error(
        &post(&c, &rerank, &json!({"query": " ", "texts": ["a"]})).await,
        422,
        "validation",
        "query",
    );
    assert_error(
        &post(
            &c,
            &s.at("/v1/rerank"),
            &json!({"query": "", "documents": ["a"]}),
        )
        .await,
        422,
        "validation",
        "query",
    );
    // Missing / mistyped fields → 422 naming them.
    assert_error(
        &post(&c, &rerank, &json!({"query": "q"})).await,
        422,
        "validation",
        "texts",
    );
    assert_error(
        &post(&c, &rerank, &json!({"query": "q", "texts": ["a", 3]})).await,
        422,
        "validation",
        "texts[1]",
    );
    // Invalid JSON → 422.
    let r = c
        .post(&rerank)
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error_type"], "validation");
    // Empty texts: 422 for TEI (as TEI); Cohere answers 200 [] (tested in routes.rs).
    assert_error(
        &post(&c, &rerank, &json!({"query": "q", "texts": []})).await,
        422,
        "validation",
        "texts",
    );
    // More documents than --max-client-batch-size → 413.
    let nine: Vec<String> = (0..9).map(|i| format!("doc {i}")).collect();
    assert_error(
        &post(&c, &rerank, &json!({"query": "q", "texts": nine})).await,
        413,
        "validation",
        "texts",
    );
    // The Cohere routes take up to --max-cohere-documents (split internally into chunks of
    // --max-client-batch-size): 9 are answered, 13 are not.
    let (st, v) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": "q", "documents": nine}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 9, "{v}");
    let thirteen: Vec<String> = (0..13).map(|i| format!("doc {i}")).collect();
    assert_error(
        &post(
            &c,
            &s.at("/v2/rerank"),
            &json!({"query": "q", "documents": thirteen}),
        )
        .await,
        413,
        "validation",
        "max-cohere-documents",
    );
    assert_error(
        &post(&c, &s.at("/v1/embeddings"), &json!({"input": nine})).await,
        413,
        "validation",
        "input",
    );
    // Body over --payload-limit → 413.
    let big = "x".repeat(100 * 1024);
    assert_error(
        &post(&c, &rerank, &json!({"query": "q", "texts": [big]})).await,
        413,
        "payload_too_large",
        "too large",
    );
    // Over-long pair with truncate false (the default) → 422 naming the document index.
    let long = "word ".repeat(700);
    assert_error(
        &post(
            &c,
            &rerank,
            &json!({"query": "q", "texts": ["short", long]}),
        )
        .await,
        422,
        "validation",
        "document 1",
    );
    let (st, _) = post(
        &c,
        &rerank,
        &json!({"query": "q", "texts": ["short", long], "truncate": true}),
    )
    .await;
    assert_eq!(st, 200);
    assert_error(
        &post(
            &c,
            &rerank,
            &json!({"query": "q", "texts": ["a"], "truncation_direction": "Left"}),
        )
        .await,
        422,
        "validation",
        "truncation_direction",
    );
    // top_n 0 (or negative) → 422.
    assert_error(
        &post(
            &c,
            &s.at("/v1/rerank"),
            &json!({"query": "q", "documents": ["a"], "top_n": 0}),
        )
        .await,
        422,
        "validation",
        "top_n",
    );
    assert_error(
        &post(
            &c,
            &s.at("/v2/rerank"),
            &json!({"query": "q", "documents": ["a"], "top_k": -1}),
        )
        .await,
        422,
        "validation",
        "top_n",
    );
    assert_error(
        &post(
            &c,
            &s.at("/v2/rerank"),
            &json!({"query": "q", "documents": [{"title": "no text"}]}),
        )
        .await,
        422,
        "validation",
        "documents[0]",
    );
    // A route without its model → 424: this server has no index.
    assert_error(
        &post(&c, &s.at("/search"), &json!({"query": "q"})).await,
        424,
        "model_unavailable",
        "index",
    );
    // Still healthy.
    assert_eq!(
        c.get(s.at("/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let (st, _) = post(&c, &rerank, &json!({"query": "q", "texts": ["a"]})).await;
    assert_eq!(st, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_without_their_model_answer_424() {
    let s = Server::start(
        ServerConfig::default(),
        Models {
            embedder: Some(embedder("tiny-bert-embedder")),
            ..Default::default()
        },
    )
    .await;
    let c = client();
    for (route, body) in [
        ("/rerank", json!({"query": "q", "texts": ["a"]})),
        ("/v1/rerank", json!({"query": "q", "documents": ["a"]})),
        ("/v2/rerank", json!({"query": "q", "documents": ["a"]})),
        ("/predict", json!({"inputs": ["q", "a"]})),
        ("/search", json!({"query": "q"})),
    ] {
        assert_error(
            &post(&c, &s.at(route), &body).await,
            424,
            "model_unavailable",
            "",
        );
    }
    let (st, _) = post(&c, &s.at("/embed"), &json!({"inputs": "a"})).await;
    assert_eq!(st, 200);
    s.shutdown().await;
    let s = Server::start(
        ServerConfig::default(),
        Models {
            reranker: Some(reranker("tiny-bert-ce")),
            ..Default::default()
        },
    )
    .await;
    assert_error(
        &post(&c, &s.at("/embed"), &json!({"inputs": "a"})).await,
        424,
        "model_unavailable",
        "embedder",
    );
    assert_error(
        &post(&c, &s.at("/v1/embeddings"), &json!({"input": "a"})).await,
        424,
        "model_unavailable",
        "embedder",
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_guards_every_route_but_health() {
    let s = Server::tiny(ServerConfig {
        api_key: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    let c = client();
    assert_eq!(
        c.get(s.at("/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    for path in ["/info", "/metrics", "/openapi.json"] {
        let r = c.get(s.at(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error_type"], "unauthorized");
        let r = c.get(s.at(path)).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        let r = c
            .get(s.at(path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let body = json!({"query": "q", "documents": ["a"]});
    assert_error(
        &post(&c, &s.at("/v1/rerank"), &body).await,
        401,
        "unauthorized",
        "API key",
    );
    let r = c
        .post(s.at("/v1/rerank"))
        .bearer_auth("s3cret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_429_and_recovers() {
    let s = Server::tiny(ServerConfig {
        max_concurrent_requests: 2,
        ..Default::default()
    })
    .await;
    let c = client();
    // Hold both slots as two in-flight requests would.
    let a = s.state.admit().unwrap();
    let b = s.state.admit().unwrap();
    assert_error(
        &post(&c, &s.at("/rerank"), &json!({"query": "q", "texts": ["a"]})).await,
        429,
        "overloaded",
        "",
    );
    assert_error(
        &post(&c, &s.at("/v1/embeddings"), &json!({"input": "a"})).await,
        429,
        "overloaded",
        "",
    );
    // Operations routes do not need a slot.
    assert_eq!(
        c.get(s.at("/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    drop((a, b));
    let (st, _) = post(&c, &s.at("/rerank"), &json!({"query": "q", "texts": ["a"]})).await;
    assert_eq!(st, 200);
    s.shutdown().await;
}
