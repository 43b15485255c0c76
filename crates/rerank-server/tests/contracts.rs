//! Contract tests (issue 14): for each client family, the request body its code sends (read
//! from that project's source, cited above each test) to the real server on a loopback port,
//! and assertions on exactly the fields its parser reads, scores against the PyTorch reference
//! (`../shared/reference/expected.json`, tiny-bert-ce, 1e-5). Then the probes and the drain.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rerank_server::ServerConfig;
use serde_json::{json, Value};

fn tiny_ce() -> Value {
    load_json("reference/expected.json")["models"]["tiny-bert-ce"].clone()
}

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
    assert!((g - w).abs() <= 1e-5, "{what}: {g} vs reference {w}");
}

/// Reference single-pair cases every route accepts as they are: the model's own max length
/// (no per-case override), a non-blank query, and no surrounding whitespace (which infinity
/// strips).
fn plain_cases() -> Vec<Value> {
    tiny_ce()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("max_length").is_none())
        .filter(|c| {
            let q = c["query"].as_str().unwrap();
            let d = c["document"].as_str().unwrap();
            !q.trim().is_empty() && q.trim() == q && d.trim() == d
        })
        .cloned()
        .collect()
}

/// POSTs raw bytes with an optional content type: (status, body as JSON).
async fn post_raw(url: &str, body: String, content_type: Option<&str>) -> (u16, Value) {
    let mut r = client().post(url).body(body);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Milvus 2.6 Model Ranker `provider: "tei"` (milvus `internal/util/function/models/tei/tei.go`
/// `teiRerank.rerank`): `{query, texts}` plus the function's `truncate` /
/// `truncation_direction` params, Content-Type JSON, `Authorization: Bearer` when a credential
/// is set; it parses `[{index, score}]` and re-sorts by `index`. Also what any TEI client sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_shape_milvus_tei_provider() {
    let s = Server::tiny(ServerConfig {
        api_key: Some("milvus-credential".into()),
        ..Default::default()
    })
    .await;
    let c = client();
    for case in tiny_ce()["rank_cases"].as_array().unwrap() {
        let body = json!({"query": case["query"], "texts": case["documents"], "truncate": true, "truncation_direction": "Right"});
        let r = c
            .post(s.at("/rerank"))
            .bearer_auth("milvus-credential")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let got: Vec<Value> = r.json().await.unwrap();
        assert_eq!(got.len(), case["documents"].as_array().unwrap().len());
        // TEI order: by descending score, as the reference's top_n.
        for (g, e) in got.iter().zip(case["expected"].as_array().unwrap()) {
            assert_eq!(g["index"], e["index"], "{got:?}");
            close(&g["score"], &e["score"], "score");
        }
    }
    s.shutdown().await;
}

/// Weaviate `reranker-transformers` (weaviate `modules/reranker-transformers/clients/ranker.go`):
/// `RankInput{Query, Documents, RankPropertyValue}` marshalled as
/// `{"query", "documents", "property": ""}`, chunks of 32 documents, POSTed with no
/// Content-Type header and no credentials; it reads `scores[i].document` / `scores[i].score`
/// (float64) in input order, and `error` on a non-200 answer. Readiness:
/// `GET /.well-known/ready`, any status ≤ 299 (clients/startup.go); `GET /meta` unmarshalled
/// into a map (clients/ranker_meta.go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weaviate_shape_reranker_transformers_client() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let ready = c.get(s.at("/.well-known/ready")).send().await.unwrap();
    assert!(ready.status().as_u16() <= 299, "{}", ready.status());
    let meta: Value = c
        .get(s.at("/meta"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.is_object() && meta["model"].is_object(), "{meta}");
    // One document per request: every plain reference case, scored in input order.
    let cases = plain_cases();
    assert!(cases.len() >= 15, "{}", cases.len());
    for case in &cases {
        let body = json!({"query": case["query"], "documents": [case["document"]], "property": ""});
        let (st, got) = post_raw(&s.at("/rerank"), body.to_string(), None).await;
        assert_eq!(st, 200, "{} {got}", case["name"]);
        assert_eq!(got["scores"][0]["document"], case["document"]);
        close(
            &got["scores"][0]["score"],
            &case["score"],
            case["name"].as_str().unwrap(),
        );
    }
    // A chunk of several documents: scores stay in input order (Weaviate concatenates chunks).
    for rc in tiny_ce()["rank_cases"].as_array().unwrap() {
        let docs = rc["documents"].as_array().unwrap();
        let body = json!({"query": rc["query"], "documents": docs, "property": ""});
        let (st, got) = post_raw(&s.at("/rerank"), body.to_string(), None).await;
        assert_eq!(st, 200, "{got}");
        let scores = got["scores"].as_array().unwrap();
        assert_eq!(scores.len(), docs.len());
        for (i, sc) in scores.iter().enumerate() {
            assert_eq!(sc["document"], docs[i]);
        }
        for e in rc["expected"].as_array().unwrap() {
            let i = e["index"].as_u64().unwrap() as usize;
            close(&scores[i]["score"], &e["score"], "chunk score");
        }
        // The container's other keys, null with documents.
        assert_eq!(got["query"], rc["query"]);
        assert!(got["property"].is_null() && got["score"].is_null(), "{got}");
    }
    // The container's single-pair form: {query, property} → score.
    let case = &cases[0];
    let (st, got) = post_raw(
        &s.at("/rerank"),
        json!({"query": case["query"], "property": case["document"]}).to_string(),
        Some("application/json"),
    )
    .await;
    assert_eq!(st, 200, "{got}");
    assert!(got["scores"].is_null());
    assert_eq!(got["property"], case["document"]);
    close(&got["score"], &case["score"], "single score");
    // Errors carry `error`, which the Go client reports.
    let (st, got) = post_raw(
        &s.at("/rerank"),
        json!({"documents": ["a"], "property": ""}).to_string(),
        None,
    )
    .await;
    assert_eq!(st, 422);
    assert!(got["error"].as_str().unwrap().contains("query"), "{got}");
    s.shutdown().await;
}

/// infinity (michaelfeil/infinity `libs/infinity_emb/.../fastapi_schemas/pymodels.py`
/// `RerankInput` / `ReRankResult`) as LangChain's `InfinityRerank`
/// (langchain-community `document_compressors/infinity_rerank.py`) sends it through
/// `infinity_client`: `RerankInput(query, documents, model).to_dict()` =
/// `{query, documents, return_documents: false, raw_scores: false, model}` (top_n unset, so
/// absent). `ReRankResult.from_dict` requires `results`, `model` and `usage` (with
/// `prompt_tokens`, `total_tokens`), each result `relevance_score` and `index`; `object` must
/// be `"rerank"` when present. LangChain then sorts by `relevance_score` and keeps its top_n.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinity_shape_langchain_infinity_rerank() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    for rc in tiny_ce()["rank_cases"].as_array().unwrap() {
        let docs = rc["documents"].as_array().unwrap();
        let body = json!({"query": rc["query"], "documents": docs, "return_documents": false, "raw_scores": false, "model": "BAAI/bge-reranker-base"});
        let (st, got) = post(&c, &s.at("/rerank"), &body).await;
        assert_eq!(st, 200, "{got}");
        assert_eq!(got["object"], "rerank");
        assert_eq!(got["model"], "tiny-bert-ce");
        let tokens = got["usage"]["prompt_tokens"].as_u64().unwrap();
        assert!(tokens > 0);
        assert_eq!(got["usage"]["total_tokens"].as_u64(), Some(tokens));
        assert!(got["id"].as_str().unwrap().starts_with("infinity-"));
        assert!(got["created"].as_u64().unwrap() > 1_700_000_000);
        let results = got["results"].as_array().unwrap();
        assert_eq!(results.len(), docs.len());
        for (g, e) in results.iter().zip(rc["expected"].as_array().unwrap()) {
            assert_eq!(g["index"], e["index"]);
            close(&g["relevance_score"], &e["score"], "relevance_score");
            assert!(g.get("document").is_none(), "{g}");
        }
        // top_n, return_documents (a string, as infinity) and raw_scores (the logit).
        let body = json!({"query": rc["query"], "documents": docs, "top_n": rc["top_n"], "return_documents": true, "raw_scores": true});
        let (st, got) = post(&c, &s.at("/rerank"), &body).await;
        assert_eq!(st, 200, "{got}");
        let results = got["results"].as_array().unwrap();
        assert_eq!(results.len() as u64, rc["top_n"].as_u64().unwrap());
        for (g, e) in results.iter().zip(rc["expected"].as_array().unwrap()) {
            assert_eq!(g["index"], e["index"]);
            close(&g["relevance_score"], &e["logit"], "raw relevance_score");
            assert_eq!(g["document"], docs[e["index"].as_u64().unwrap() as usize]);
        }
    }
    // Whitespace around texts is stripped before scoring, as infinity's INPUT_STRING does.
    let case = &plain_cases()[1];
    let body = json!({"query": format!("  {}\n", case["query"].as_str().unwrap()), "documents": [format!("\t{} ", case["document"].as_str().unwrap())], "return_documents": true});
    let (st, got) = post(&c, &s.at("/rerank"), &body).await;
    assert_eq!(st, 200, "{got}");
    close(
        &got["results"][0]["relevance_score"],
        &case["score"],
        "stripped",
    );
    assert_eq!(got["results"][0]["document"], case["document"]);
    s.shutdown().await;
}

/// OpenSearch ML Commons, the Cohere rerank connector of the rerank-pipeline tutorial
/// (ml-commons `docs/tutorials/rerank/rerank_pipeline_with_Cohere_Rerank_model.md`):
/// `request_body` `{"documents", "query", "model", "top_n"}` to `/v1/rerank`, parsed by
/// `connector.post_process.cohere.rerank` from `results[].index` / `relevance_score`.
/// Elasticsearch's `cohere` service, `rerank` task (`CohereV1RerankRequest.toXContent`):
/// `{"model", "query", "documents", "return_documents"?, "top_n"?}` (model `null` without
/// `model_id`), reading `results[].index`, `relevance_score` and `document.text`.
/// Jina's `/v1/rerank` (LangChain `JinaRerank`): `{query, documents, model, top_n}`, reading
/// `results[].index` / `relevance_score`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_v1_shape_opensearch_elasticsearch_jina() {
    let s = Server::tiny(ServerConfig {
        api_key: Some("k".into()),
        ..Default::default()
    })
    .await;
    let c = client();
    let rc = tiny_ce()["rank_cases"][1].clone();
    let docs = rc["documents"].clone();
    let n = docs.as_array().unwrap().len();
    let bodies = [
        (
            "opensearch",
            json!({"documents": docs, "query": rc["query"], "model": "rerank-english-v2.0", "top_n": n}),
        ),
        (
            "elasticsearch",
            json!({"model": null, "query": rc["query"], "documents": docs, "return_documents": true, "top_n": rc["top_n"]}),
        ),
        (
            "jina",
            json!({"query": rc["query"], "documents": docs, "model": "jina-reranker-v2-base-multilingual", "top_n": rc["top_n"]}),
        ),
    ];
    for (who, body) in bodies {
        let r = c
            .post(s.at("/v1/rerank"))
            .bearer_auth("k")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{who}");
        let got: Value = r.json().await.unwrap();
        let results = got["results"].as_array().unwrap();
        let want = body["top_n"].as_u64().unwrap() as usize;
        assert_eq!(results.len(), want, "{who}");
        for (g, e) in results.iter().zip(rc["expected"].as_array().unwrap()) {
            assert_eq!(g["index"], e["index"], "{who}");
            close(&g["relevance_score"], &e["score"], who);
            let i = g["index"].as_u64().unwrap() as usize;
            assert_eq!(g["document"]["text"], docs[i], "{who}");
        }
    }
    s.shutdown().await;
}

/// Bad or ambiguous bodies: JSON 422 naming the field; a non-JSON content type stays 415.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_ambiguous_rerank_bodies_are_422_naming_the_field() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let url = s.at("/rerank");
    let cases = [
        (
            json!({"query": "q", "texts": ["a"], "documents": ["a"]}),
            "texts",
        ),
        (
            json!({"query": "q", "documents": [{"text": "a"}]}),
            "documents[0]",
        ),
        (
            json!({"query": "q", "documents": ["a"], "top_n": 0}),
            "top_n",
        ),
        (json!({"query": "q", "documents": []}), "documents"),
        (json!({"documents": ["a"]}), "query"),
        (json!({"query": " ", "documents": ["a"]}), "query"),
        (
            json!({"query": "q", "documents": ["a"], "property": 5}),
            "property",
        ),
        (
            json!({"query": "q", "documents": "a", "property": ""}),
            "documents",
        ),
        (json!({"query": "q"}), "texts"),
    ];
    for (body, field) in cases {
        let resp = post(&c, &url, &body).await;
        assert_error(&resp, 422, "validation", field);
        let msg = resp.1["error"].as_str().unwrap().to_string();
        if body.get("texts").is_some() && body.get("documents").is_some() {
            assert!(msg.contains("documents"), "{msg}");
        }
    }
    // A declared non-JSON body is 415 for every shape; no content type is 415 for TEI only
    // (as TEI answers), while Weaviate's header-less body is read.
    for body in [
        json!({"query": "q", "texts": ["a"]}),
        json!({"query": "q", "documents": ["a"]}),
    ] {
        let (st, v) = post_raw(&url, body.to_string(), Some("text/plain")).await;
        assert_eq!(st, 415, "{v}");
        assert!(v["error_type"].is_string());
    }
    let (st, v) = post_raw(
        &url,
        json!({"query": "q", "texts": ["a"]}).to_string(),
        None,
    )
    .await;
    assert_eq!(st, 415, "{v}");
    let (st, v) = post_raw(
        &url,
        json!({"query": "q", "documents": ["a"]}).to_string(),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    s.shutdown().await;
}

/// Probes: `/health` and `/ready` answer without the API key (Kubernetes probes send none);
/// `/ready` turns 503 once `--ready-max-in-flight` requests are in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_need_no_key_and_readiness_follows_the_load() {
    let s = Server::tiny(ServerConfig {
        api_key: Some("k".into()),
        ready_max_in_flight: Some(1),
        ..Default::default()
    })
    .await;
    let c = client();
    for path in ["/health", "/ready", "/.well-known/ready"] {
        let r = c.get(s.at(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let ready: Value = c
        .get(s.at("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["max_in_flight"], 1);
    assert_eq!(
        c.get(s.at("/meta")).send().await.unwrap().status().as_u16(),
        401
    );
    // Hold the inference thread with a long request; readiness turns 503 meanwhile.
    let long = vec!["word ".repeat(400); 200];
    let url = s.at("/rerank");
    let busy = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth("k")
            .json(&json!({"query": "economy", "texts": long, "truncate": true}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let start = Instant::now();
    let mut saw_busy = false;
    while start.elapsed() < Duration::from_secs(30) && !busy.is_finished() {
        let r = c.get(s.at("/ready")).send().await.unwrap();
        if r.status().as_u16() == 503 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error_type"], "unhealthy");
            assert!(v["error"].as_str().unwrap().contains("busy"), "{v}");
            // Liveness does not wait for the inference thread.
            assert_eq!(
                c.get(s.at("/health"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
                200
            );
            saw_busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(busy.await.unwrap(), 200);
    assert!(saw_busy, "/ready never reported the request in flight");
    assert_eq!(
        c.get(s.at("/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    s.shutdown().await;
}

/// Drain: once the shutdown future completes (SIGTERM in `rerank serve`), `/ready` is 503 at
/// once while `/rerank` still answers — requests in flight and new ones — for the drain time;
/// then the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_readiness_off_requests_answered_then_stops() {
    let drain = Duration::from_millis(1500);
    let mut s = Server::tiny(ServerConfig {
        drain,
        ..Default::default()
    })
    .await;
    let c = client();
    let rc = tiny_ce()["rank_cases"][0].clone();
    let body = json!({"query": rc["query"], "texts": rc["documents"], "truncate": true});
    assert_eq!(
        c.get(s.at("/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // A request in flight when the signal arrives.
    let url = s.at("/rerank");
    let in_flight = {
        let body = json!({"query": rc["query"], "texts": vec!["word ".repeat(400); 100], "truncate": true});
        tokio::spawn(async move {
            client()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    s.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = c.get(s.at("/ready")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_type"], "unhealthy");
    assert!(v["error"].as_str().unwrap().contains("draining"), "{v}");
    assert_eq!(
        c.get(s.at("/.well-known/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        503
    );
    assert_eq!(
        c.get(s.at("/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // New requests, on new connections too, are answered with the reference scores.
    let fresh = reqwest::Client::new();
    let (st, got) = post(&fresh, &s.at("/rerank"), &body).await;
    assert_eq!(st, 200, "{got}");
    assert!(started.elapsed() < drain, "answered only after the drain");
    for (g, e) in got
        .as_array()
        .unwrap()
        .iter()
        .zip(rc["expected"].as_array().unwrap())
    {
        assert_eq!(g["index"], e["index"]);
        close(&g["score"], &e["score"], "score during the drain");
    }
    assert_eq!(in_flight.await.unwrap(), 200);
    let url = s.url.clone();
    s.stopped().await;
    assert!(
        started.elapsed() >= drain,
        "stopped after {:?}",
        started.elapsed()
    );
    assert!(reqwest::Client::new()
        .get(format!("{url}/health"))
        .send()
        .await
        .is_err());
}
