//! Regression tests of the `rerank` binary, one per finding of issue 13 (hardening) that
//! concerns the CLI; each is named after its finding and failed before its fix.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use common::model;

/// `i64::MAX`: the `top_k` that aborted usearch with "capacity overflow".
const HUGE: &str = "9223372036854775807";

fn rerank(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(args)
        .env_remove("RERANK_MODEL_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failed run: exit code 1 (not 101 = panic, not 134 = abort), one `error:` line.
fn clear_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

const PASSAGES: [&str; 3] = [
    "We will build the economy from the bottom up and the middle out.",
    "We stand with the people of Ukraine and send assistance.",
    "The infrastructure law will rebuild roads, bridges and ports.",
];

/// An index of the three passages (one `.txt` file each), built with the tiny embedder.
fn small_index(dir: &Path) -> PathBuf {
    let mut files = Vec::new();
    for (i, text) in PASSAGES.iter().enumerate() {
        let f = dir.join(format!("p{i}.txt"));
        std::fs::write(&f, text).unwrap();
        files.push(f.display().to_string());
    }
    let index = dir.join("index");
    let embedder = model("tiny-bert-embedder");
    let mut args = vec![
        "index",
        "--index",
        index.to_str().unwrap(),
        "--embedder",
        &embedder,
    ];
    args.extend(files.iter().map(String::as_str));
    ok(&rerank(&args, ""));
    index
}

/// Issue 13 item 1: `rerank search --top-k 9223372036854775807` exited 134 (usearch abort)
/// or 101. `k` is clamped to the index size: every first stage returns the 3 passages, and a
/// huge `--top-n` keeps them all after reranking.
#[test]
fn cli_search_huge_top_k() {
    let dir = tempfile::tempdir().unwrap();
    let index = small_index(dir.path());
    let reranker = model("tiny-bert-ce");
    for retriever in ["dense", "bm25", "hybrid"] {
        for rerank_args in [
            vec!["--no-rerank"],
            vec!["--reranker", &reranker, "--top-n", HUGE],
        ] {
            let mut args = vec![
                "search",
                "--index",
                index.to_str().unwrap(),
                "--retriever",
                retriever,
                "--top-k",
                HUGE,
                "--json",
            ];
            args.extend(rerank_args.iter().copied());
            // Every passage shares a word with this query, so BM25 finds all three too.
            args.push("the economy, the people and the roads");
            let out: Value = serde_json::from_str(&ok(&rerank(&args, ""))).unwrap();
            let docs = out["documents"].as_array().unwrap();
            assert_eq!(
                docs.len(),
                PASSAGES.len(),
                "{retriever} {rerank_args:?}: {out}"
            );
        }
    }
}

/// Issue 13 item 1: `rerank eval` with a huge `--top-k` (and `--rerank-depth`) aborted like
/// `search`. Now each first stage returns the whole corpus.
#[test]
fn cli_eval_huge_top_k() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.jsonl");
    std::fs::write(
        &corpus,
        concat!(
            "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"apple banana\"}\n",
            "{\"_id\": \"d2\", \"title\": \"\", \"text\": \"cherry date\"}\n",
            "{\"_id\": \"d3\", \"title\": \"\", \"text\": \"grape\"}\n",
        ),
    )
    .unwrap();
    let queries = dir.path().join("queries.jsonl");
    std::fs::write(&queries, "{\"_id\": \"q1\", \"text\": \"cherry\"}\n").unwrap();
    let qrels = dir.path().join("qrels.tsv");
    std::fs::write(&qrels, "query-id\tcorpus-id\tscore\nq1\td2\t1\n").unwrap();
    let (embedder, reranker) = (model("tiny-bert-embedder"), model("tiny-bert-ce"));
    let out = rerank(
        &[
            "eval",
            "--corpus",
            corpus.to_str().unwrap(),
            "--queries",
            queries.to_str().unwrap(),
            "--qrels",
            qrels.to_str().unwrap(),
            "--embedder",
            &embedder,
            "--reranker",
            &reranker,
            "--retriever",
            "dense,bm25,hybrid",
            "--top-k",
            HUGE,
            "--rerank-depth",
            HUGE,
            "--json",
        ],
        "",
    );
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(report["settings"]["top_k"].to_string(), HUGE, "{report}");
    // Dense and hybrid retrieve the whole corpus (3 documents) and BM25 ("cherry") finds d2,
    // the one relevant document: Recall@100 = 1 for every run, reranked or not.
    for run in [
        "dense",
        "dense+rerank",
        "bm25",
        "bm25+rerank",
        "hybrid",
        "hybrid+rerank",
    ] {
        let recall = report["metrics"][run]["Recall@100"].as_f64();
        assert_eq!(recall, Some(1.0), "{run}: {report}");
    }
    // The rerank depth is clamped to what the first stage returned: dense scores 3 pairs.
    let runs = report["runs"].as_array().unwrap();
    let dense = runs.iter().find(|r| r["retriever"] == "dense").unwrap();
    assert_eq!(dense["timings"]["pairs_scored"], 3, "{dense}");
}

/// Issue 13 item 7: `rerank rank --query ""` succeeded while the server answers 422.
#[test]
fn cli_rank_empty_query_is_an_error() {
    let ce = model("tiny-bert-ce");
    for query in ["", "   "] {
        let out = rerank(&["rank", "--model", &ce, "--query", query], "a document\n");
        let stderr = clear_error(&out);
        assert!(stderr.contains("query is empty"), "{stderr}");
    }
}

/// Issue 13 item 7: CLI errors repeated their cause ("…(os error 2): No such file or
/// directory (os error 2)"). Each cause is printed once.
#[test]
fn cli_error_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let index = dir.path().join("index");
    let embedder = model("tiny-bert-embedder");
    let runs = [
        vec![
            "index",
            "--index",
            index.to_str().unwrap(),
            "--embedder",
            &embedder,
            missing.to_str().unwrap(),
        ],
        vec![
            "rank",
            "--model",
            &embedder,
            "--query",
            "q",
            missing.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let stderr = clear_error(&rerank(&args, ""));
        assert_eq!(
            stderr.matches("No such file or directory").count(),
            1,
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("missing.txt"), "{stderr}");
    }
}
