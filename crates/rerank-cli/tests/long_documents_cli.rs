//! `--long-documents chunk` on `rank`, `search` and `eval` with the real `minilm-l6-sotu-ce`:
//! a ~3,000-token document whose answer (the 2022 State of the Union's Cancer Moonshot
//! paragraph) is at its end wins once it is scored by its best window, and bad flag values
//! are clear errors.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{model, shared};
use serde_json::Value;

const QUERY: &str = "What is the goal of the Cancer Moonshot?";
const DISTRACTORS: [&str; 2] = [
    "Cancer is one of the diseases that the veterans of our wars suffer from.",
    "The President spoke about the goal of the moonshot program in space.",
];

fn rerank(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(args)
        .env_remove("RERANK_LONG_DOCUMENTS")
        .env_remove("RERANK_MAX_CHUNKS_PER_DOC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut s = child.stdin.take().unwrap();
        // A command that refuses its flags exits before reading stdin: a broken pipe here is
        // not the test's failure (its exit code and stderr are checked).
        if let Err(e) = s.write_all(stdin.unwrap_or("").as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The speech's paragraphs up to about 15,000 characters (~3,000 tokens, none about cancer),
/// then the Cancer Moonshot paragraph, as one line; and the answer's char offset.
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
        doc.push(' ');
        if doc.len() > 15_000 {
            break;
        }
    }
    let at = doc.chars().count();
    doc.push_str(answer);
    (doc, at)
}

fn rank_json(extra: &[&str], docs: &[&str]) -> Vec<Value> {
    let reranker = model("minilm-l6-sotu-ce");
    let mut args = vec!["rank", "--reranker", &reranker, "--query", QUERY, "--json"];
    args.extend_from_slice(extra);
    let input: String = docs
        .iter()
        .map(|d| serde_json::json!({ "text": d }).to_string() + "\n")
        .collect();
    ok(&rerank(&args, Some(&input)))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn rank_chunk_mode_finds_the_answer_at_the_end() {
    let (doc, answer_at) = long_document();
    let docs = [DISTRACTORS[0], doc.as_str(), DISTRACTORS[1]];
    let truncated = rank_json(&[], &docs);
    let chunked = rank_json(
        &["--long-documents", "chunk", "--max-chunks-per-doc", "30"],
        &docs,
    );
    let row = |rows: &[Value], index: u64| -> Value {
        rows.iter().find(|r| r["index"] == index).unwrap().clone()
    };
    // Truncated, the long document (its first 256 tokens are about Ukraine) is last.
    assert_eq!(truncated[2]["index"], 1, "{truncated:?}");
    assert!(truncated.iter().all(|r| r.get("window").is_none()));
    // Chunked, it is first, by its window holding the answer.
    assert_eq!(chunked[0]["index"], 1, "{chunked:?}");
    let long = row(&chunked, 1);
    assert!(long["score"].as_f64().unwrap() > row(&truncated, 1)["score"].as_f64().unwrap());
    let w = &long["window"];
    assert!(w["index"].as_u64().unwrap() > 0);
    let (start, end) = (
        w["char_start"].as_u64().unwrap(),
        w["char_end"].as_u64().unwrap(),
    );
    assert!(
        start as usize <= answer_at && answer_at < end as usize,
        "{w}"
    );
    // Documents that fit: one window, the very same logit as truncation.
    for i in [0, 2] {
        assert_eq!(row(&chunked, i)["logit"], row(&truncated, i)["logit"]);
        assert_eq!(row(&chunked, i)["window"]["index"], 0);
    }
}

#[test]
fn bad_long_document_flags_are_clear_errors() {
    let reranker = model("tiny-bert-ce");
    for (extra, needle) in [
        (
            vec!["--long-documents", "chunk", "--max-chunks-per-doc", "0"],
            "between 1 and 100",
        ),
        (
            vec![
                "--long-documents",
                "chunk",
                "--max-chunks-per-doc",
                "18446744073709551615",
            ],
            "between 1 and 100",
        ),
        (
            vec!["--max-chunks-per-doc", "3"],
            "needs --long-documents chunk",
        ),
        (vec!["--long-documents", "split"], "invalid value"),
    ] {
        let mut args = vec!["rank", "--reranker", &reranker, "--query", "q"];
        args.extend_from_slice(&extra);
        let out = rerank(&args, Some("a document\n"));
        assert!(!out.status.success(), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A query that leaves no room for a window (chunk mode never cuts the query).
    let long_query = "word ".repeat(600);
    let out = rerank(
        &[
            "rank",
            "--reranker",
            &reranker,
            "--query",
            &long_query,
            "--long-documents",
            "chunk",
        ],
        Some("a document\n"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no room for a document window"), "{err}");
}

fn write_set(dir: &Path, doc: &str) -> [String; 3] {
    let corpus = dir.join("corpus.jsonl");
    let mut lines = serde_json::json!({"_id": "long", "title": "", "text": doc}).to_string() + "\n";
    for (i, d) in DISTRACTORS.iter().enumerate() {
        lines += &(serde_json::json!({"_id": format!("d{i}"), "title": "", "text": d}).to_string()
            + "\n");
    }
    std::fs::write(&corpus, lines).unwrap();
    let queries = dir.join("queries.jsonl");
    std::fs::write(
        &queries,
        serde_json::json!({"_id": "q1", "text": QUERY}).to_string() + "\n",
    )
    .unwrap();
    let qrels = dir.join("qrels.tsv");
    std::fs::write(&qrels, "query-id\tcorpus-id\tscore\nq1\tlong\t1\n").unwrap();
    [corpus, queries, qrels].map(|p| p.display().to_string())
}

#[test]
fn eval_and_search_chunk_mode_score_whole_documents() {
    let dir = tempfile::tempdir().unwrap();
    let (doc, _) = long_document();
    let [corpus, queries, qrels] = write_set(dir.path(), &doc);
    let index = dir.path().join("index").display().to_string();
    let (embedder, reranker) = (model("tiny-bert-embedder"), model("minilm-l6-sotu-ce"));
    let eval = |extra: &[&str]| -> Value {
        let mut args = vec![
            "eval",
            "--corpus",
            &corpus,
            "--queries",
            &queries,
            "--qrels",
            &qrels,
            "--embedder",
            &embedder,
            "--reranker",
            &reranker,
            "--index",
            &index,
            "--retriever",
            "bm25",
            "--json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&rerank(&args, None))).unwrap()
    };
    let truncated = eval(&[]);
    let chunked = eval(&["--long-documents", "chunk", "--max-chunks-per-doc", "30"]);
    assert_eq!(truncated["settings"]["long_documents"], "truncate");
    assert_eq!(chunked["settings"]["long_documents"], "chunk");
    assert_eq!(chunked["settings"]["max_chunks_per_doc"], 30);
    // One relevant document: nDCG@10 = 1 / log2(1 + its rank).
    let ndcg = |r: &Value| r["metrics"]["bm25+rerank"]["nDCG@10"].as_f64().unwrap();
    assert!(
        (ndcg(&truncated) - 0.5).abs() < 1e-9,
        "rank 3: {}",
        ndcg(&truncated)
    );
    assert!(
        (ndcg(&chunked) - 1.0).abs() < 1e-9,
        "rank 1: {}",
        ndcg(&chunked)
    );

    // search over the index eval kept: the long document wins with its window named.
    let out = ok(&rerank(
        &[
            "search",
            "--index",
            &index,
            "--reranker",
            &reranker,
            "--retriever",
            "bm25",
            "--top-k",
            "3",
            "--top-n",
            "3",
            "--json",
            "--long-documents",
            "chunk",
            "--max-chunks-per-doc",
            "30",
            QUERY,
        ],
        None,
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    let first = &v["documents"][0];
    assert_eq!(first["id"], "long", "{v}");
    assert!(
        first["metadata"]["best_window"]["index"].as_u64().unwrap() > 0,
        "{first}"
    );
}
