//! Regression tests of the HTTP API, one per public report (named after it) or finding of
//! issue 13. Each runs the real server in-process on a loopback port.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rerank_engine::CrossEncoder;
use rerank_retrieval::index::Index;
use rerank_retrieval::Document;
use rerank_server::{Models, Named, ServerConfig};
use serde_json::{json, Value};

fn tiny_ce() -> Value {
    load_json("reference/expected.json")["models"]["tiny-bert-ce"].clone()
}

const PASSAGES: [&str; 5] = [
    "The economy grew and jobs came back.",
    "We will fight inflation by lowering costs.",
    "Ukraine is defending its freedom.",
    "Cancer research gets new funding.",
    "Roads and bridges will be rebuilt.",
];

/// A 5-passage index built with tiny-bert-embedder, and a server with it.
async fn search_server(config: ServerConfig) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let emb = embedder("tiny-bert-embedder");
    {
        let mut index = Index::create(
            &dir.path().join("idx"),
            rerank_retrieval::pipeline::embedder_id(&emb.model, "tiny-bert-embedder").unwrap(),
        )
        .unwrap();
        let docs: Vec<Document> = PASSAGES
            .iter()
            .enumerate()
            .map(|(i, t)| Document {
                id: format!("p{i}"),
                text: t.to_string(),
                metadata: serde_json::Map::new(),
                score: 0.0,
            })
            .collect();
        rerank_retrieval::pipeline::add_passages(&mut index, &emb.model, docs, &mut |_, _| {})
            .unwrap();
    }
    let index = Arc::new(Index::open(&dir.path().join("idx")).unwrap());
    let s = Server::start(
        config,
        Models {
            reranker: Some(reranker("tiny-bert-ce")),
            embedder: Some(emb),
            index: Some(index),
        },
    )
    .await;
    (s, dir)
}

async fn health_ok(c: &reqwest::Client, s: &Server) {
    let r = c.get(s.at("/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// POSTs and returns (status, x-truncated-inputs header, body).
async fn post_h(c: &reqwest::Client, url: &str, body: &Value) -> (u16, Option<String>, Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    let h = header(&r, "x-truncated-inputs");
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, h, v)
}

/// Issue 13 finding 1: `top_k` 2^63−1 aborted the process in usearch (dense) and 4e9
/// aborted in tantivy allocating 32 GB (bm25). Every retriever now answers with `top_k`
/// clamped to the 5 passages of the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_huge_top_k_does_not_abort() {
    let (s, _dir) = search_server(ServerConfig::default()).await;
    let c = client();
    for retriever in ["dense", "bm25", "hybrid"] {
        for top_k in [
            json!(9223372036854775807i64),
            json!(4000000000i64),
            json!(1_000_000_000_000i64),
            json!(6),
        ] {
            let body = json!({"query": "jobs and the economy", "top_k": top_k, "top_n": 9223372036854775807i64, "retriever": retriever});
            let (st, h, v) = post_h(&c, &s.at("/search"), &body).await;
            assert_eq!(st, 200, "{retriever} top_k {top_k}: {v}");
            assert_eq!(v["top_k"], PASSAGES.len(), "{v}");
            assert_eq!(v["top_n"], PASSAGES.len(), "{v}");
            assert_eq!(h.as_deref(), Some("0"));
            let docs = v["documents"].as_array().unwrap();
            // bm25 returns only passages sharing a word with the query.
            assert!(!docs.is_empty() && docs.len() <= PASSAGES.len(), "{v}");
            if retriever != "bm25" {
                assert_eq!(docs.len(), PASSAGES.len(), "{retriever}: {v}");
            }
            for d in docs {
                assert!(d["metadata"]["first_stage_rank"].is_number(), "{d}");
                assert_eq!(d["relevance_score"], d["metadata"]["relevance_score"]);
            }
        }
        health_ok(&c, &s).await;
    }
    // The reranked order of /search is the cross-encoder's: its best is /rerank's best over
    // the same texts.
    let (_, _, v) = post_h(
        &c,
        &s.at("/search"),
        &json!({"query": "jobs and the economy", "top_k": 5, "top_n": 5}),
    )
    .await;
    let docs = v["documents"].as_array().unwrap();
    let texts: Vec<Value> = docs.iter().map(|d| d["text"].clone()).collect();
    let (_, rr) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "jobs and the economy", "texts": texts}),
    )
    .await;
    assert_eq!(rr[0]["index"], 0, "{rr}");
    let scores: Vec<f64> = docs
        .iter()
        .map(|d| d["relevance_score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    s.shutdown().await;
}

/// A copy of tiny-bert-ce whose classifier bias is NaN: every logit is NaN.
fn nan_reranker(dir: &std::path::Path) -> Named<CrossEncoder> {
    let src = model_dir("tiny-bert-ce");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let t = &header["classifier.bias"];
    assert_eq!(t["dtype"], "F32");
    let start = 8 + n + t["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    Named {
        name: "nan".into(),
        model: Arc::new(CrossEncoder::from_dir(dir, Default::default()).unwrap()),
    }
}

/// TEI #91: a NaN score panicked in the server's sort (`partial_cmp(..).unwrap()`). Here a
/// NaN logit is a JSON 424 for that request; the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_91_nan_logit_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        ServerConfig::default(),
        Models {
            reranker: Some(nan_reranker(dir.path())),
            ..Default::default()
        },
    )
    .await;
    let c = client();
    let q = "What is Deep Learning?";
    let docs = json!(["Deep Learning is not...", "Deep learning is..."]);
    for (route, body) in [
        ("/rerank", json!({"query": q, "texts": docs})),
        ("/v1/rerank", json!({"query": q, "documents": docs})),
        ("/v2/rerank", json!({"query": q, "documents": docs})),
        ("/predict", json!({"inputs": [[q, "Deep learning is..."]]})),
    ] {
        for _ in 0..2 {
            let r = post(&c, &s.at(route), &body).await;
            assert_error(&r, 424, "backend", "NaN");
        }
    }
    health_ok(&c, &s).await;
    s.shutdown().await;
}

/// TEI #133 (empty inputs): an empty list is a clear 422 on the TEI routes (200 `[]` on
/// Cohere, as Cohere), and an empty string among the texts is scored like any text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_133_empty_texts() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let r = post(&c, &s.at("/rerank"), &json!({"query": "q", "texts": []})).await;
    assert_error(&r, 422, "validation", "texts");
    let r = post(&c, &s.at("/embed"), &json!({"inputs": []})).await;
    assert_error(&r, 422, "validation", "inputs");
    let r = post(&c, &s.at("/v1/embeddings"), &json!({"input": []})).await;
    assert_error(&r, 422, "validation", "input");
    let r = post(&c, &s.at("/predict"), &json!({"inputs": []})).await;
    assert_eq!(r.0, 422, "{:?}", r.1);
    let (st, v) = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": "q", "documents": []}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"], json!([]));
    // The reference's `empty_document` case: the query with an empty document.
    let case = tiny_ce()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["document"] == "")
        .cloned()
        .expect("a reference case with an empty document");
    let (st, v) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": case["query"], "texts": ["", "x"]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let got = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["index"] == 0)
        .unwrap();
    assert!((got["score"].as_f64().unwrap() - case["score"].as_f64().unwrap()).abs() <= 1e-5);
    let (st, v) = post(&c, &s.at("/embed"), &json!({"inputs": ["", "x"]})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
    s.shutdown().await;
}

/// TEI #50: "Failed to buffer the request body: length limit exceeded" came as a bare 413.
/// Here a body over `--payload-limit` is a JSON 413 naming the limit, a body under it is
/// answered, and one text over `--max-input-chars` is a JSON 413 naming that flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_50_payload_limit() {
    let s = Server::tiny(ServerConfig {
        payload_limit: 100_000,
        max_input_chars: 20_000,
        ..Default::default()
    })
    .await;
    let c = client();
    let over = "word ".repeat(21_000);
    let r = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "q", "texts": [over]}),
    )
    .await;
    assert_error(&r, 413, "payload_too_large", "too large");
    let under = "word ".repeat(3_000);
    let (st, v) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "q", "texts": [under], "truncate": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let long = "w".repeat(20_001);
    for (route, body, field) in [
        (
            "/rerank",
            json!({"query": "q", "texts": ["a", long], "truncate": true}),
            "texts[1]",
        ),
        (
            "/v1/rerank",
            json!({"query": long, "documents": ["a"]}),
            "query",
        ),
        (
            "/embed",
            json!({"inputs": [long], "truncate": true}),
            "inputs[0]",
        ),
        ("/v1/embeddings", json!({"input": long}), "input[0]"),
        ("/predict", json!({"inputs": [["q", long]]}), "inputs[0][1]"),
    ] {
        let r = post(&c, &s.at(route), &body).await;
        assert_error(&r, 413, "payload_too_large", "--max-input-chars");
        assert_error(&r, 413, "payload_too_large", field);
    }
    // Exactly at the limit (in characters, not bytes: 20,000 × 2-byte 'é').
    let at = "é".repeat(20_000);
    let (st, v) = post(
        &c,
        &s.at("/embed"),
        &json!({"inputs": [at], "truncate": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    s.shutdown().await;
}

/// TEI #356: with `truncate` unset an over-long input is refused (as TEI) with a 422 that
/// says how to get it truncated; with `truncate: true` it is answered and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_356_truncate_unset() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let long = tiny_ce()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["document"].as_str().unwrap().len() >= 6000)
        .unwrap()["document"]
        .clone();
    let r = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "q", "texts": ["a", long]}),
    )
    .await;
    assert_error(&r, 422, "validation", "truncate: true");
    assert_error(&r, 422, "validation", "document 1");
    let r = post(&c, &s.at("/embed"), &json!({"inputs": [long]})).await;
    assert_error(&r, 422, "validation", "truncate: true");
    let r = post(&c, &s.at("/predict"), &json!({"inputs": [["q", long]]})).await;
    assert_error(&r, 422, "validation", "truncate: true");
    let (st, h, v) = post_h(
        &c,
        &s.at("/embed"),
        &json!({"inputs": [long, "short"], "truncate": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h.as_deref(), Some("1"));
    s.shutdown().await;
}

/// TEI #77: `/predict` takes a list of `[query, document]` pairs and answers one label list
/// per pair, in order, with the reference scores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_77_predict_pairs() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let cases: Vec<Value> = tiny_ce()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("max_length").is_none() && c["query"] != "")
        .cloned()
        .collect();
    assert!(cases.len() >= 10);
    let inputs: Vec<Value> = cases
        .iter()
        .map(|c| json!([c["query"], c["document"]]))
        .collect();
    let (st, h, v) = post_h(
        &c,
        &s.at("/predict"),
        &json!({"inputs": inputs, "truncate": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let got = v.as_array().unwrap();
    assert_eq!(got.len(), cases.len());
    for (g, e) in got.iter().zip(&cases) {
        assert_eq!(g[0]["label"], "LABEL_0");
        let d = (g[0]["score"].as_f64().unwrap() - e["score"].as_f64().unwrap()).abs();
        assert!(d <= 1e-5, "{}: {g} vs {}", e["name"], e["score"]);
    }
    let truncated = cases
        .iter()
        .filter(|c| c["input_ids"].as_array().unwrap().len() == 512)
        .count();
    assert_eq!(h, Some(truncated.to_string()));
    // An empty query in a pair is refused like an empty query on /rerank.
    let r = post(
        &c,
        &s.at("/predict"),
        &json!({"inputs": [["q", "d"], [" ", "d"]]}),
    )
    .await;
    assert_error(&r, 422, "validation", "inputs[1]");
    s.shutdown().await;
}

/// TEI #378 (and issue 13 item 7): Cohere routes take up to 10,000 documents (Cohere's
/// limit), split internally; TEI routes keep `--max-client-batch-size` (1,001 → 413).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_378_large_batch() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let docs: Vec<String> = (0..10_000)
        .map(|i| format!("passage number {i} about the economy"))
        .collect();
    let (st, v) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": "the economy", "documents": docs, "top_n": 10_000}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 10_000);
    let mut seen: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..10_000).collect::<Vec<u64>>());
    // Spot-check against the model alone (an independent call of the engine).
    let model = reranker("tiny-bert-ce").model;
    for r in results.iter().step_by(997) {
        let i = r["index"].as_u64().unwrap() as usize;
        let alone = model.predict(&[("the economy", docs[i].as_str())]).unwrap();
        let d = (r["relevance_score"].as_f64().unwrap() - alone[0].score as f64).abs();
        assert!(d <= 1e-5, "{r} vs {}", alone[0].score);
    }
    let r = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": "q", "documents": vec!["d"; 10_001]}),
    )
    .await;
    assert_error(&r, 413, "validation", "10000");
    let r = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "q", "texts": vec!["d"; 1001]}),
    )
    .await;
    assert_error(&r, 413, "validation", "--max-client-batch-size");
    // Empty query → 422 on every rerank route.
    for (route, body) in [
        ("/rerank", json!({"query": "", "texts": ["a"]})),
        ("/v1/rerank", json!({"query": "", "documents": ["a"]})),
        ("/v2/rerank", json!({"query": "  ", "documents": []})),
    ] {
        let r = post(&c, &s.at(route), &body).await;
        assert_error(&r, 422, "validation", "query");
    }
    s.shutdown().await;
}

/// FlashRank PR #34: documents were cut silently. Every answer now says which inputs were
/// cut (the reference's input ids are 512 = the model's max length exactly for them), in
/// the body where the API allows an extra field, in `x-truncated-inputs` and in
/// `rerank_truncated_inputs_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashrank_34_truncation_reported() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let cases = tiny_ce()["cases"].as_array().unwrap().clone();
    let long = cases
        .iter()
        .find(|c| {
            c["input_ids"].as_array().unwrap().len() == 512
                && c["document"].as_str().unwrap().len() >= 6000
        })
        .unwrap();
    let short = &cases[0];
    assert!(short["input_ids"].as_array().unwrap().len() < 512);
    let q = long["query"].clone();
    let texts = json!([short["document"], long["document"], short["document"]]);
    // TEI /rerank: `truncated: true` on the cut text only.
    let (st, h, v) = post_h(
        &c,
        &s.at("/rerank"),
        &json!({"query": q, "texts": texts, "truncate": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h.as_deref(), Some("1"));
    for r in v.as_array().unwrap() {
        let cut = r["index"] == 1;
        assert_eq!(r.get("truncated").is_some(), cut, "{r}");
        if cut {
            assert_eq!(r["truncated"], true);
            let d = (r["score"].as_f64().unwrap() - long["score"].as_f64().unwrap()).abs();
            assert!(d <= 1e-5, "{r}");
        }
    }
    // Cohere: per result and in meta.
    let (st, h, v) = post_h(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": q, "documents": texts}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h.as_deref(), Some("1"));
    assert_eq!(v["meta"]["truncated_inputs"], 1, "{v}");
    assert!(v["meta"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("truncated"));
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r.get("truncated").is_some(), r["index"] == 1, "{r}");
    }
    // max_tokens_per_doc 2 cuts every document of more than 2 tokens.
    let (_, h, v) = post_h(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": q, "documents": ["Paris is the capital.", "a"], "max_tokens_per_doc": 2}),
    )
    .await;
    assert_eq!(h.as_deref(), Some("1"), "{v}");
    assert_eq!(v["meta"]["truncated_inputs"], 1, "{v}");
    // No truncation: nothing in the body, header 0.
    let (_, h, v) = post_h(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": "q", "documents": ["a", "b"]}),
    )
    .await;
    assert_eq!(h.as_deref(), Some("0"));
    assert!(v["meta"].get("truncated_inputs").is_none(), "{v}");
    // OpenAI embeddings: per entry and in usage.
    let (st, h, v) = post_h(
        &c,
        &s.at("/v1/embeddings"),
        &json!({"input": [long["document"], "short"]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h.as_deref(), Some("1"));
    assert_eq!(v["data"][0]["truncated"], true);
    assert!(v["data"][1].get("truncated").is_none());
    assert_eq!(v["usage"]["truncated_inputs"], 1);
    // The metric counts every cut input: 1 + 1 + 1 + 1 so far.
    let text = c
        .get(s.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("rerank_truncated_inputs_total 4\n"), "{text}");
    s.shutdown().await;
}

/// Issue 10 item 3: the server's token-budget plan is the only plan. With
/// `--max-batch-tokens 65536`, 64 pairs of ~300 tokens (19,200+ padded tokens, above the
/// engine's old fixed 16,384 cap) go through the model as one batch, and their scores are
/// those of the model alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_batch_tokens_above_16384_is_honoured() {
    let s = Server::tiny(ServerConfig {
        max_batch_tokens: 65_536,
        ..Default::default()
    })
    .await;
    let c = client();
    let texts: Vec<String> = (0..64)
        .map(|i| format!("{i} ") + &"economy jobs inflation ".repeat(100))
        .collect();
    let (st, v) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "the economy", "texts": texts, "truncate": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let text = s.state.metrics.render();
    assert!(text.contains("rerank_batch_size_count 1\n"), "{text}");
    assert!(text.contains("rerank_batch_size_sum 64\n"), "{text}");
    let tokens: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rerank_batch_tokens_sum "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(tokens > 16_384.0, "{text}");
    let model = reranker("tiny-bert-ce").model;
    let pairs: Vec<(&str, &str)> = texts.iter().map(|t| ("the economy", t.as_str())).collect();
    let alone = model.predict(&pairs).unwrap();
    for r in v.as_array().unwrap() {
        let i = r["index"].as_u64().unwrap() as usize;
        let d = (r["score"].as_f64().unwrap() - alone[i].score as f64).abs();
        assert!(d <= 1e-5, "{r} vs {}", alone[i].score);
    }
    s.shutdown().await;
}

/// Issue 13 finding 4: a long `/search` query re-tokenized per candidate on the inference
/// thread made a 2-document `/v1/rerank` behind it wait 31 s. The long query is now
/// tokenized on the blocking pool, so the small request is answered first, within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_search_query_does_not_stall_a_small_rerank() {
    let (s, _dir) = search_server(ServerConfig {
        payload_limit: 8_000_000,
        max_input_chars: 4_000_000,
        ..Default::default()
    })
    .await;
    let c = client();
    let long_query = "economy jobs inflation freedom ".repeat(64_000); // 1.9 MB
    let url = s.at("/search");
    let c2 = c.clone();
    let long = tokio::spawn(async move {
        let (st, v) = post(
            &c2,
            &url,
            &json!({"query": long_query, "top_k": 5, "top_n": 5, "retriever": "hybrid"}),
        )
        .await;
        (st, v, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let (st, v) = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": "the economy", "documents": ["jobs", "roads"]}),
    )
    .await;
    let small_done = Instant::now();
    assert_eq!(st, 200, "{v}");
    let small = small_done - start;
    let (st, v, long_done) = long.await.unwrap();
    assert_eq!(st, 200, "{v}");
    assert!(
        small < Duration::from_secs(1),
        "small request took {small:?}"
    );
    assert!(
        small_done < long_done,
        "the small request finished after the long one"
    );
    s.shutdown().await;
}
