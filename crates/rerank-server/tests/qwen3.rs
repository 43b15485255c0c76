//! The rerank routes with the Qwen3 LLM reranker `tiny-qwen3-reranker`: relevance scores
//! within 1e-4 of `../shared/reference/expected-llm.json`, with and without `instruction`; an
//! `instruction` for a model without a prompt template is a JSON 422.

mod common;

use common::*;
use rerank_server::{Models, ServerConfig};
use serde_json::{json, Value};

async fn qwen3_server() -> Server {
    Server::start(
        ServerConfig::default(),
        Models {
            reranker: Some(reranker("tiny-qwen3-reranker")),
            embedder: None,
            index: None,
        },
    )
    .await
}

fn case(name: &str) -> Value {
    let r = load_json("reference/expected-llm.json");
    r["models"]["tiny-qwen3-reranker"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_rerank_with_qwen3_matches_the_reference_with_and_without_instruction() {
    let s = qwen3_server().await;
    let c = client();
    for (name, routes) in [
        ("economy_1", ["/v1/rerank", "/v2/rerank"]),
        ("custom_instruction", ["/v1/rerank", "/v2/rerank"]),
    ] {
        let k = case(name);
        let mut body = json!({"query": k["query"], "documents": [k["document"]]});
        if let Some(i) = k["instruction"].as_str() {
            body["instruction"] = i.into();
        }
        let want = k["score"].as_f64().unwrap();
        for route in routes {
            let (st, v) = post(&c, &s.at(route), &body).await;
            assert_eq!(st, 200, "{route}: {v}");
            let got = v["results"][0]["relevance_score"].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-4,
                "{route} {name}: {got} vs {want}"
            );
        }
        // TEI's /rerank with raw scores: the logit.
        let mut tei = json!({"query": k["query"], "texts": [k["document"]], "raw_scores": true});
        if let Some(i) = k["instruction"].as_str() {
            tei["instruction"] = i.into();
        }
        let (st, v) = post(&c, &s.at("/rerank"), &tei).await;
        assert_eq!(st, 200, "{v}");
        let logit = k["logits"][0].as_f64().unwrap();
        let got = v[0]["score"].as_f64().unwrap();
        assert!(
            (got - logit).abs() <= 1e-4,
            "/rerank {name}: {got} vs {logit}"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instruction_for_a_model_without_template_is_422() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let r = post(
        &c,
        &s.at("/v1/rerank"),
        &json!({"query": "q", "documents": ["d"], "instruction": "Judge"}),
    )
    .await;
    assert_error(&r, 422, "validation", "instruction");
    let r = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": "q", "texts": ["d"], "instruction": "Judge"}),
    )
    .await;
    assert_error(&r, 422, "validation", "instruction");
    s.shutdown().await;
}
