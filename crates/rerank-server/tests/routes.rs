//! Every route of the real server on a loopback port, against the PyTorch reference outputs.

mod common;

use base64::Engine as _;
use common::*;
use rerank_server::{Models, ServerConfig};
use serde_json::{json, Value};

fn tiny_ce() -> Value {
    load_json("reference/expected.json")["models"]["tiny-bert-ce"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_rerank_matches_reference_order_scores_and_logits() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    for case in tiny_ce()["rank_cases"].as_array().unwrap() {
        let body = json!({"query": case["query"], "texts": case["documents"], "truncate": true, "return_text": true});
        let (status, got) = post(&c, &s.at("/rerank"), &body).await;
        assert_eq!(status, 200, "{got}");
        let got = got.as_array().unwrap();
        assert_eq!(got.len(), case["documents"].as_array().unwrap().len());
        for (g, e) in got.iter().zip(case["expected"].as_array().unwrap()) {
            assert_eq!(g["index"], e["index"]);
            let d = (g["score"].as_f64().unwrap() - e["score"].as_f64().unwrap()).abs();
            assert!(d <= 1e-5, "score {g} vs {e}");
            assert_eq!(
                g["text"],
                case["documents"][g["index"].as_u64().unwrap() as usize]
            );
        }
        let raw = json!({"query": case["query"], "texts": case["documents"], "truncate": true, "raw_scores": true});
        let (_, got) = post(&c, &s.at("/rerank"), &raw).await;
        let first = &got[0];
        assert!(first.get("text").is_none(), "text only with return_text");
        let d = (first["score"].as_f64().unwrap() - case["expected"][0]["logit"].as_f64().unwrap())
            .abs();
        assert!(d <= 1e-5, "raw score {first}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_v1_v2_shapes_top_n_top_k_and_documents() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let case = tiny_ce()["rank_cases"][0].clone();
    let docs = case["documents"].clone();
    // v1: documents returned by default, as {"text": ...}; top_n honoured.
    let (st, v1) = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"model": "anything", "query": case["query"], "documents": docs, "top_n": 2}),
    )
    .await;
    assert_eq!(st, 200, "{v1}");
    assert!(v1["id"].is_string());
    assert!(v1["meta"]["billed_units"]["search_units"].is_number());
    assert!(v1["meta"]["tokens"]["input_tokens"].as_u64().unwrap() > 0);
    let r = v1["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    for (g, e) in r.iter().zip(case["expected"].as_array().unwrap()) {
        assert_eq!(g["index"], e["index"]);
        assert!(
            (g["relevance_score"].as_f64().unwrap() - e["score"].as_f64().unwrap()).abs() <= 1e-5
        );
        assert_eq!(
            g["document"]["text"],
            docs[g["index"].as_u64().unwrap() as usize]
        );
    }
    // v2: no document by default — the key is absent, not null; top_k is an alias of top_n.
    let (st, v2) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": case["query"], "documents": docs, "top_k": 3}),
    )
    .await;
    assert_eq!(st, 200);
    let r = v2["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert!(
        r.iter()
            .all(|x| x.as_object().unwrap().get("document").is_none()),
        "{v2}"
    );
    assert_eq!(r[0]["index"], case["expected"][0]["index"]);
    // return_documents: false on v1 omits the key; object documents are echoed whole.
    let objs: Vec<Value> = docs
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"text": t, "id": format!("d{i}")}))
        .collect();
    let (_, v1) = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": case["query"], "documents": objs, "return_documents": false}),
    )
    .await;
    assert!(v1["results"][0]
        .as_object()
        .unwrap()
        .get("document")
        .is_none());
    let (_, v1) = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": case["query"], "documents": objs, "return_documents": true, "top_n": 1}),
    )
    .await;
    let i = v1["results"][0]["index"].as_u64().unwrap();
    assert_eq!(v1["results"][0]["document"]["id"], format!("d{i}"));
    // top_n larger than the list returns all; an empty list is 200 with no results.
    let (_, all) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": "q", "documents": ["a", "b"], "top_n": 50}),
    )
    .await;
    assert_eq!(all["results"].as_array().unwrap().len(), 2);
    for route in ["/v1/rerank", "/v2/rerank"] {
        let (st, empty) = post(&c, &s.at(route), &json!({"query": "q", "documents": []})).await;
        assert_eq!(st, 200);
        assert_eq!(empty["results"], json!([]));
    }
    // max_tokens_per_doc truncates instead of refusing.
    let long = "word ".repeat(2000);
    let (st, t) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": "q", "documents": [long], "max_tokens_per_doc": 20}),
    )
    .await;
    assert_eq!(st, 200, "{t}");
    assert!(
        t["meta"]["tokens"]["input_tokens"].as_u64().unwrap() <= 30,
        "{t}"
    );
    s.shutdown().await;
}

fn embedder_case(name: &str) -> Value {
    load_json("reference/expected.json")["models"]["tiny-bert-embedder"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

fn close(a: &Value, b: &Value, tol: f64) {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= tol,
            "{x} vs {y}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_embed_and_openai_embeddings_match_reference() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let short = embedder_case("short_english");
    let long = embedder_case("long_truncated");
    let (st, v) = post(
        &c,
        &s.at("/embed"),
        &json!({"inputs": [short["text"], long["text"]], "truncate": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    close(&v[0], &short["embedding"], 1e-5);
    close(&v[1], &long["embedding"], 1e-5);
    let (st, v) = post(&c, &s.at("/embed"), &json!({"inputs": short["text"]})).await;
    assert_eq!(st, 200);
    close(&v[0], &short["embedding"], 1e-5);
    // truncate defaults to false: the long input is refused, naming it.
    let r = post(
        &c,
        &s.at("/embed"),
        &json!({"inputs": ["ok", long["text"]]}),
    )
    .await;
    assert_error(&r, 422, "validation", "input 1");

    let (st, o) = post(
        &c,
        &s.at("/v1/embeddings"),
        &json!({"input": [short["text"], long["text"]], "model": "m"}),
    )
    .await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(o["object"], "list");
    assert_eq!(o["model"], "m");
    assert_eq!(o["data"][1]["index"], 1);
    assert_eq!(o["data"][0]["object"], "embedding");
    close(&o["data"][0]["embedding"], &short["embedding"], 1e-5);
    close(&o["data"][1]["embedding"], &long["embedding"], 1e-5);
    assert!(o["usage"]["prompt_tokens"].as_u64().unwrap() > 64);
    // base64 = little-endian f32 bytes of the same vector.
    let (_, b) = post(
        &c,
        &s.at("/v1/embeddings"),
        &json!({"input": short["text"], "encoding_format": "base64"}),
    )
    .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    close(&json!(floats), &short["embedding"], 1e-5);
    // dimensions keeps the first N, re-normalised.
    let (_, d) = post(
        &c,
        &s.at("/v1/embeddings"),
        &json!({"input": "hello", "dimensions": 8}),
    )
    .await;
    let v: Vec<f64> = d["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 8);
    assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-5);
    let r = post(
        &c,
        &s.at("/v1/embeddings"),
        &json!({"input": "x", "dimensions": 100000}),
    )
    .await;
    assert_error(&r, 422, "validation", "dimensions");
    let r = post(
        &c,
        &s.at("/v1/embeddings"),
        &json!({"input": "x", "encoding_format": "int8"}),
    )
    .await;
    assert_error(&r, 422, "validation", "encoding_format");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_scores_pairs_like_rerank() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let case = &tiny_ce()["cases"][0];
    let (st, one) = post(
        &c,
        &s.at("/predict"),
        &json!({"inputs": [case["query"], case["document"]]}),
    )
    .await;
    assert_eq!(st, 200, "{one}");
    assert_eq!(one[0]["label"], "LABEL_0");
    assert!((one[0]["score"].as_f64().unwrap() - case["score"].as_f64().unwrap()).abs() <= 1e-5);
    let (_, many) = post(
        &c,
        &s.at("/predict"),
        &json!({"inputs": [[case["query"], case["document"]], ["a", "b"]], "raw_scores": true}),
    )
    .await;
    assert_eq!(many.as_array().unwrap().len(), 2);
    assert!(
        (many[0][0]["score"].as_f64().unwrap() - case["logits"][0].as_f64().unwrap()).abs() <= 1e-5
    );
    let r = post(&c, &s.at("/predict"), &json!({"inputs": "just a text"})).await;
    assert_error(&r, 422, "validation", "pairs");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_reranks_the_first_stage_of_the_index() {
    use rerank_retrieval::index::Index;
    use rerank_retrieval::Document;
    let dir = tempfile::tempdir().unwrap();
    let emb = embedder("tiny-bert-embedder");
    let passages = [
        "The economy grew and jobs came back.",
        "We will fight inflation by lowering costs.",
        "Ukraine is defending its freedom.",
        "Cancer research gets new funding.",
        "Roads and bridges will be rebuilt.",
    ];
    {
        let mut index = Index::create(
            &dir.path().join("idx"),
            rerank_retrieval::pipeline::embedder_id(&emb.model, "tiny-bert-embedder").unwrap(),
        )
        .unwrap();
        let docs: Vec<Document> = passages
            .iter()
            .enumerate()
            .map(|(i, t)| Document {
                id: format!("p{i}"),
                text: t.to_string(),
                metadata: serde_json::Map::from_iter([("source".to_string(), json!("test"))]),
                score: 0.0,
            })
            .collect();
        rerank_retrieval::pipeline::add_passages(&mut index, &emb.model, docs, &mut |_, _| {})
            .unwrap();
    }
    let index = std::sync::Arc::new(Index::open(&dir.path().join("idx")).unwrap());
    let ce = reranker("tiny-bert-ce");
    let s = Server::start(
        ServerConfig::default(),
        Models {
            reranker: Some(ce),
            embedder: Some(emb),
            index: Some(index),
        },
    )
    .await;
    let c = client();
    for retriever in ["dense", "bm25", "hybrid"] {
        let (st, v) = post(&c, &s.at("/search"), &json!({"query": "jobs and the economy", "top_k": 5, "top_n": 2, "retriever": retriever})).await;
        assert_eq!(st, 200, "{retriever}: {v}");
        let docs = v["documents"].as_array().unwrap();
        assert!(!docs.is_empty() && docs.len() <= 2, "{v}");
        for d in docs {
            assert_eq!(d["metadata"]["source"], "test");
            assert!(d["metadata"]["first_stage_rank"].is_number());
            assert_eq!(d["relevance_score"], d["metadata"]["relevance_score"]);
        }
        // The reranked order is the cross-encoder's: check against /rerank over the same texts.
        let texts: Vec<Value> = docs.iter().map(|d| d["text"].clone()).collect();
        let (_, rr) = post(
            &c,
            &s.at("/rerank"),
            &json!({"query": "jobs and the economy", "texts": texts}),
        )
        .await;
        assert_eq!(
            rr[0]["index"], 0,
            "{retriever}: best of /search is best of /rerank"
        );
    }
    let r = post(
        &c,
        &s.at("/search"),
        &json!({"query": "x", "retriever": "sparse"}),
    )
    .await;
    assert_error(&r, 422, "validation", "retriever");
    let r = post(&c, &s.at("/search"), &json!({"query": "x", "top_k": 0})).await;
    assert_error(&r, 422, "validation", "top_k");

    // Fusion: the RRF of the first-stage ranks and the reranker's ranks of the plain answer.
    let q = "jobs and the economy";
    let (st, plain) = post(
        &c,
        &s.at("/search"),
        &json!({"query": q, "top_k": 5, "top_n": 5}),
    )
    .await;
    assert_eq!(st, 200, "{plain}");
    assert!(plain.get("fusion").is_none() && plain["documents"][0].get("fusion_score").is_none());
    let mut want: Vec<(String, f64, usize)> = plain["documents"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(r, d)| {
            let f = d["metadata"]["first_stage_rank"].as_u64().unwrap() as f64;
            let s = 1.0 / (60.0 + f) + 1.0 / (60.0 + (r + 1) as f64);
            (d["id"].as_str().unwrap().to_string(), s, r)
        })
        .collect();
    want.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.2.cmp(&b.2)));
    let (st, fused) = post(
        &c,
        &s.at("/search"),
        &json!({"query": q, "top_k": 5, "top_n": 3, "fusion": "rrf"}),
    )
    .await;
    assert_eq!(st, 200, "{fused}");
    assert_eq!(fused["fusion"], "rrf");
    let docs = fused["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    for (d, (id, score, rerank_index)) in docs.iter().zip(&want) {
        assert_eq!(d["id"], id.as_str(), "{fused}");
        assert!((d["fusion_score"].as_f64().unwrap() - score).abs() < 1e-12);
        assert_eq!(d["fusion_score"], d["metadata"]["fusion_score"]);
        assert_eq!(d["metadata"]["rerank_rank"], json!(rerank_index + 1));
        // The reranker's score is still there.
        assert_eq!(
            d["relevance_score"],
            plain["documents"][*rerank_index]["relevance_score"]
        );
    }
    for bad in ["linear:1.5", "linear:nan", "max", "linear:"] {
        let r = post(&c, &s.at("/search"), &json!({"query": "x", "fusion": bad})).await;
        assert_error(&r, 422, "validation", "fusion");
    }
    let (st, v) = post(
        &c,
        &s.at("/search"),
        &json!({"query": q, "top_k": 5, "top_n": 2, "fusion": "linear:0.5"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["fusion"], "linear:0.5");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_routes_health_info_metrics_openapi() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let h: Value = c
        .get(s.at("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    let info: Value = c
        .get(s.at("/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["reranker"]["info"]["max_length"], 512);
    assert_eq!(info["embedder"]["info"]["max_length"], 64);
    assert_eq!(info["limits"]["max_client_batch_size"], 1000);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "q", "texts": ["a", "b"]}),
    )
    .await;
    post(&c, &s.at("/rerank"), &json!({"query": "", "texts": ["a"]})).await;
    let m = c
        .get(s.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("rerank_requests_total{route=\"/rerank\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("rerank_requests_total{route=\"/rerank\",status=\"422\"} 1"),
        "{m}"
    );
    for series in [
        "rerank_queue_size",
        "rerank_batch_size_count",
        "rerank_batch_tokens_sum",
        "rerank_tokenization_duration_seconds_bucket",
        "rerank_queue_duration_seconds_count",
        "rerank_inference_duration_seconds_count",
    ] {
        assert!(m.contains(series), "{series}");
    }
    let doc: Value = c
        .get(s.at("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in [
        ("post", "/rerank"),
        ("post", "/v2/rerank"),
        ("get", "/health"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    let r = c.get(s.at("/nope")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_type"], "not_found");
    s.shutdown().await;
}

/// The OpenAPI document and the router come from one list (`openapi::api_router`): the served
/// document is that list's, every operation it names is answered by its handler (never the
/// JSON 404 / 405 fallbacks), and every path answers 405 for every method it does not
/// document, so a route on the router that is missing from the document fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_exactly_the_routes_of_the_router() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let served: Value = c
        .get(s.at("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generated = serde_json::to_value(rerank_server::openapi::document()).unwrap();
    assert_eq!(served, generated);
    let paths = served["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let documented: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| ["get", "post", "put", "delete", "patch"].contains(k))
            .collect();
        for method in ["get", "post", "put", "delete", "patch"] {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = c
                .request(m, s.at(path))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if documented.contains(&method) {
                operations += 1;
                // `{}` is refused by the handler (422 naming a missing field) or answered.
                assert!(
                    status != 404 && status != 405,
                    "{method} {path} is documented but not routed: {status} {body}"
                );
                assert_ne!(body["error_type"], "not_found", "{method} {path}");
                assert_ne!(body["error_type"], "method_not_allowed", "{method} {path}");
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is routed but not documented: {body}"
                );
                assert_eq!(body["error_type"], "method_not_allowed");
            }
        }
        // Every documented operation has its error schema and a 200 answer.
        for method in &documented {
            assert!(
                item[method]["responses"]["200"].is_object(),
                "{method} {path}"
            );
        }
    }
    // 11 before issue 14; + GET /ready, GET /.well-known/ready, GET /meta; + GET / (issue 15).
    assert_eq!(operations, 15, "{:?}", paths.keys().collect::<Vec<_>>());
    assert_eq!(
        served["components"]["schemas"]["ErrorBody"]["required"],
        json!(["error", "error_type"])
    );
    s.shutdown().await;
}

/// The real trained reranker against its PyTorch reference, through the Cohere route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_minilm_reranker_matches_reference_over_http() {
    let s = Server::start(
        ServerConfig::default(),
        Models {
            reranker: Some(reranker("minilm-l6-sotu-ce")),
            ..Default::default()
        },
    )
    .await;
    let c = client();
    let reference = load_json("reference/expected-minilm-l6-sotu-ce.json");
    let case = &reference["models"]["minilm-l6-sotu-ce"]["rank_cases"][0];
    let (st, v) = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": case["query"], "documents": case["documents"], "top_n": case["top_n"]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    for (g, e) in v["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(case["expected"].as_array().unwrap())
    {
        assert_eq!(g["index"], e["index"]);
        assert!(
            (g["relevance_score"].as_f64().unwrap() - e["score"].as_f64().unwrap()).abs() <= 1e-4
        );
    }
    s.shutdown().await;
}
