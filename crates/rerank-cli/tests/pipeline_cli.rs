//! `rerank index` / `search` / `embed` end to end on the 2022 State of the Union speech with the
//! real bi-encoder and cross-encoder.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use common::{model, shared};

fn speech() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/state_of_the_union.txt")
}

fn rerank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(args)
        .env_remove("RERANK_MODEL_PATH")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn search_json(index: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["search", "--index", index.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    args.push("What is the plan for the economy?");
    serde_json::from_str(&ok(&rerank(&args))).unwrap()
}

#[test]
fn index_and_search_the_2022_speech() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("sotu");
    let embedder = model("all-MiniLM-L6-v2");
    let out = rerank(&[
        "index",
        "--index",
        index.to_str().unwrap(),
        "--embedder",
        &embedder,
        speech().to_str().unwrap(),
    ]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("added"), "{stderr}");

    // Indexing the same file again adds nothing.
    let again = rerank(&[
        "index",
        "--index",
        index.to_str().unwrap(),
        speech().to_str().unwrap(),
    ]);
    ok(&again);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(" 0 added"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The seed's job: dense top-20, reranked to the top 3.
    let reranker = model("minilm-l6-sotu-ce");
    let result = search_json(
        &index,
        &["--reranker", &reranker, "--top-k", "20", "--top-n", "3"],
    );
    let docs = result["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    let mut last = f64::INFINITY;
    for d in docs {
        let score = d["metadata"]["relevance_score"].as_f64().unwrap();
        assert!(score <= last && score > 0.0 && score < 1.0);
        last = score;
        let first_rank = d["metadata"]["first_stage_rank"].as_u64().unwrap();
        assert!((1..=20).contains(&first_rank));
        assert!(d["metadata"]["source"]
            .as_str()
            .unwrap()
            .ends_with("state_of_the_union.txt"));
        let text = d["text"].as_str().unwrap().to_lowercase();
        assert!(
            text.contains("econom"),
            "a top-3 passage is not about the economy: {text}"
        );
    }

    // --no-rerank shows the first stage alone, in its order.
    let first = search_json(&index, &["--no-rerank", "--top-k", "5"]);
    let ranks: Vec<u64> = first["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["metadata"]["first_stage_rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, vec![1, 2, 3, 4, 5]);

    for retriever in ["bm25", "hybrid"] {
        let r = search_json(
            &index,
            &["--no-rerank", "--retriever", retriever, "--top-k", "5"],
        );
        assert_eq!(r["retriever"], retriever);
        assert_eq!(r["documents"].as_array().unwrap().len(), 5);
    }

    // Human output: rank, relevance, first-stage rank and a snippet.
    let human = ok(&rerank(&[
        "search",
        "--index",
        index.to_str().unwrap(),
        "--reranker",
        &reranker,
        "What is the plan for the economy?",
    ]));
    assert!(human.starts_with("1. relevance "), "{human}");
    assert!(human.contains("first stage #"), "{human}");

    // Another embedder is refused for this index.
    let wrong = rerank(&[
        "search",
        "--index",
        index.to_str().unwrap(),
        "--embedder",
        &model("tiny-bert-embedder"),
        "--no-rerank",
        "economy",
    ]);
    assert!(!wrong.status.success());
    let msg = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        msg.starts_with("error: ") && msg.contains("built with"),
        "{msg}"
    );
}

#[test]
fn search_on_a_missing_index_is_a_clear_error() {
    let out = rerank(&["search", "--index", "/no/such/index", "--no-rerank", "q"]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.starts_with("error: ") && msg.contains("/no/such/index") && !msg.contains("panicked"),
        "{msg}"
    );
}

#[test]
fn search_rejects_bad_fusion_values() {
    for (bad, says) in [
        ("linear:2", "from 0 to 1"),
        ("linear:-0.5", "from 0 to 1"),
        ("linear:inf", "from 0 to 1"),
        ("RRF", "linear:ALPHA"),
    ] {
        let out = rerank(&["search", "--index", "/no/such/index", "--fusion", bad, "q"]);
        assert!(!out.status.success(), "{bad}");
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(
            msg.contains("--fusion") && msg.contains(says) && !msg.contains("panicked"),
            "{bad}: {msg}"
        );
    }
    let out = rerank(&[
        "search",
        "--index",
        "/no/such/index",
        "--fusion",
        "rrf",
        "--no-rerank",
        "q",
    ]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("--fusion combines the reranker"), "{msg}");
}

#[test]
fn embed_json_matches_sentence_transformers() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("reference/expected.json")).unwrap(),
    )
    .unwrap();
    let cases = reference["models"]["all-MiniLM-L6-v2"]["cases"]
        .as_array()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("texts.jsonl");
    let lines: Vec<String> = cases[..3]
        .iter()
        .map(|c| serde_json::json!({"text": c["text"]}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = ok(&rerank(&[
        "embed",
        "--model",
        &model("all-MiniLM-L6-v2"),
        "--json",
        file.to_str().unwrap(),
    ]));
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for (i, (row, case)) in rows.iter().zip(cases).enumerate() {
        assert_eq!(row["index"], i);
        let got = row["embedding"].as_array().unwrap();
        let want = case["embedding"].as_array().unwrap();
        assert_eq!(got.len(), 384);
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g.as_f64().unwrap() - w.as_f64().unwrap()).abs() <= 1e-5,
                "case {i}"
            );
        }
    }
}
