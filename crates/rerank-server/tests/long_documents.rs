//! Long documents on the rerank routes with the real `minilm-l6-sotu-ce`: Cohere's
//! `max_chunks_per_doc` and `rerank serve --long-documents chunk` (TEI, infinity, Weaviate)
//! score a ~3,000-token document by its best window and name that window; bad values are
//! JSON 422s.

mod common;

use common::*;
use rerank_engine::{LongDocuments, Window};
use rerank_server::state::{Models, ServerConfig};
use serde_json::{json, Value};

const QUERY: &str = "What is the goal of the Cancer Moonshot?";
const DISTRACTOR: &str = "Cancer is one of the diseases that the veterans of our wars suffer from.";

/// The 2022 speech's first ~15,000 characters (none about cancer), then its Cancer Moonshot
/// paragraph; and the answer's char offset.
fn long_document() -> (String, usize) {
    let text = std::fs::read_to_string(shared().join("data/state_of_the_union.txt")).unwrap();
    let answer = text
        .lines()
        .find(|l| l.starts_with("Last month, I announced the plan to supercharge the Cancer"))
        .unwrap();
    let mut doc = String::new();
    for para in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(!para.to_lowercase().contains("cancer"));
        doc.push_str(para);
        doc.push('\n');
        if doc.len() > 15_000 {
            break;
        }
    }
    let at = doc.chars().count();
    doc.push_str(answer);
    (doc, at)
}

async fn minilm_server(config: ServerConfig) -> Server {
    Server::start(
        config,
        Models {
            reranker: Some(reranker("minilm-l6-sotu-ce")),
            embedder: None,
            index: None,
        },
    )
    .await
}

fn window(v: &Value) -> Window {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_max_chunks_per_doc_scores_the_best_window() {
    let s = minilm_server(ServerConfig::default()).await;
    let c = client();
    let (doc, answer_at) = long_document();
    let docs = [DISTRACTOR, doc.as_str()];
    // The engine's own numbers for the same documents.
    let model = reranker("minilm-l6-sotu-ce").model;
    let chunk = LongDocuments::chunk(30).unwrap();
    let want = model.score_documents(QUERY, &docs, None, chunk).unwrap();
    let truncated = model
        .score_documents(QUERY, &docs, None, LongDocuments::Truncate)
        .unwrap();
    assert!(want[1].prediction.score > truncated[1].prediction.score);
    for route in ["/v1/rerank", "/v2/rerank"] {
        let (status, v) = post(
            &c,
            &s.at(route),
            &json!({"query": QUERY, "documents": docs, "max_chunks_per_doc": 30}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let results = v["results"].as_array().unwrap();
        assert_eq!(results[0]["index"], 1, "{v}");
        let w = window(&results[0]["window"]);
        assert_eq!(Some(w), want[1].window);
        assert!(w.index > 0 && w.char_start <= answer_at && answer_at < w.char_end);
        assert_eq!(
            results[0]["relevance_score"].as_f64().unwrap() as f32,
            want[1].prediction.score,
            "serde_json parses f64 to within an ulp, so compare as the f32 it was"
        );
        assert!(results[0].get("truncated").is_none(), "30 windows cover it");
        assert_eq!(window(&results[1]["window"]).index, 0);
        // Without the field: truncation, as before (no window, the long document cut).
        let (status, v) = post(
            &c,
            &s.at(route),
            &json!({"query": QUERY, "documents": docs}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let long = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["index"] == 1)
            .unwrap();
        assert!(long.get("window").is_none());
        assert_eq!(long["truncated"], true);
        assert_eq!(
            long["relevance_score"].as_f64().unwrap() as f32,
            truncated[1].prediction.score
        );
    }
    // A low cap leaves the tail out: the document is reported truncated.
    let (status, v) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": QUERY, "documents": docs, "max_chunks_per_doc": 2}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["meta"]["truncated_inputs"], 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_max_chunks_per_doc_is_a_json_422() {
    let s = Server::tiny(ServerConfig {
        max_cohere_documents: 20,
        ..Default::default()
    })
    .await;
    let c = client();
    let url = s.at("/v2/rerank");
    for bad in [json!(0), json!(-3), json!(101), json!(1_000_000_000_000i64)] {
        let r = post(
            &c,
            &url,
            &json!({"query": "q", "documents": ["a"], "max_chunks_per_doc": bad}),
        )
        .await;
        assert_error(&r, 422, "validation", "max_chunks_per_doc");
    }
    let r = post(
        &c,
        &url,
        &json!({"query": "q", "documents": ["a"], "max_chunks_per_doc": 2, "max_tokens_per_doc": 5}),
    )
    .await;
    assert_error(&r, 422, "validation", "not both");
    // Documents × windows above --max-cohere-documents.
    let r = post(
        &c,
        &url,
        &json!({"query": "q", "documents": ["a", "b", "c"], "max_chunks_per_doc": 10}),
    )
    .await;
    assert_error(&r, 422, "validation", "--max-cohere-documents");
    // A query that leaves no room for a window.
    let long_query = "word ".repeat(600);
    let r = post(
        &c,
        &url,
        &json!({"query": long_query, "documents": ["a"], "max_chunks_per_doc": 3}),
    )
    .await;
    assert_error(&r, 422, "validation", "no room for a document window");
    // The server is still up.
    let (status, _) = post(
        &c,
        &url,
        &json!({"query": "q", "documents": ["a"], "max_chunks_per_doc": 1}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_wide_chunk_mode_reaches_tei_infinity_and_weaviate() {
    let s = minilm_server(ServerConfig {
        long_documents: LongDocuments::chunk(30).unwrap(),
        ..Default::default()
    })
    .await;
    let c = client();
    let (doc, answer_at) = long_document();
    let docs = [DISTRACTOR, doc.as_str()];
    let check = |w: &Value| {
        let w = window(w);
        assert!(
            w.index > 0 && w.char_start <= answer_at && answer_at < w.char_end,
            "{w:?}"
        );
    };
    // TEI: the long document wins (with truncate unset, as TEI's default: windows cover it).
    let (status, v) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": QUERY, "texts": docs}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0]["index"], 1, "{v}");
    check(&v[0]["window"]);
    // infinity.
    let (status, v) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": QUERY, "documents": docs}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["index"], 1, "{v}");
    check(&v["results"][0]["window"]);
    // Weaviate: scores in input order.
    let (status, v) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": QUERY, "documents": docs, "property": ""}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    check(&v["scores"][1]["window"]);
    assert!(v["scores"][1]["score"].as_f64() > v["scores"][0]["score"].as_f64());
    // Cohere without the field uses the server's mode.
    let (status, v) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": QUERY, "documents": docs}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    check(&v["results"][0]["window"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_truncate_false_refuses_a_document_beyond_the_window_cap() {
    let s = minilm_server(ServerConfig {
        long_documents: LongDocuments::chunk(2).unwrap(),
        ..Default::default()
    })
    .await;
    let c = client();
    let (doc, _) = long_document();
    let r = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": QUERY, "texts": [doc]}),
    )
    .await;
    assert_error(&r, 422, "validation", "needs more than 2 windows");
    let (status, v) = post(
        &c,
        &s.at("/rerank"),
        &json!({"query": QUERY, "texts": [doc], "truncate": true}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0]["truncated"], true);
    assert!(
        window(&v[0]["window"]).index < 2,
        "the best of the first 2 windows"
    );
}
