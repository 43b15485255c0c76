//! `rerank eval` end to end on a tiny BEIR set with the tiny random models: metrics that do
//! not depend on the models' (random) scores are checked against hand-computed values.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn model(name: &str) -> String {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/models"
    ))
    .join(name)
    .display()
    .to_string()
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

/// Six documents, three judged queries (and one unjudged). BM25 retrieves only documents
/// sharing a word with the query, so its runs are known: q1 "cherry" → [d2]; q2 "grape" → [d4];
/// q3 "kiwi" → [d5].
fn write_set(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let corpus = dir.join("corpus.jsonl");
    std::fs::write(
        &corpus,
        concat!(
            "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"apple banana\"}\n",
            "{\"_id\": \"d2\", \"title\": \"\", \"text\": \"cherry date\"}\n",
            "{\"_id\": \"d3\", \"title\": \"\", \"text\": \"apple apple fig\"}\n",
            "{\"_id\": \"d4\", \"title\": \"Fruit\", \"text\": \"grape\"}\n",
            "{\"_id\": \"d5\", \"title\": \"\", \"text\": \"kiwi lemon\"}\n",
            "{\"_id\": \"d6\", \"title\": \"\", \"text\": \"mango\"}\n",
        ),
    )
    .unwrap();
    let queries = dir.join("queries.jsonl");
    std::fs::write(
        &queries,
        concat!(
            "{\"_id\": \"q1\", \"text\": \"cherry\", \"metadata\": {\"kind\": \"a\"}}\n",
            "{\"_id\": \"q2\", \"text\": \"grape\", \"metadata\": {\"kind\": \"a\"}}\n",
            "{\"_id\": \"q3\", \"text\": \"kiwi\", \"metadata\": {\"kind\": \"b\"}}\n",
            "{\"_id\": \"q4\", \"text\": \"unjudged\"}\n",
        ),
    )
    .unwrap();
    let qrels = dir.join("qrels.tsv");
    // q2: d5 (grade 2) is relevant but not retrieved by BM25; q3 has no relevant document.
    std::fs::write(
        &qrels,
        "query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td4\t1\nq2\td5\t2\nq3\td1\t0\n",
    )
    .unwrap();
    (corpus, queries, qrels)
}

fn close(v: &Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

#[test]
fn eval_on_a_tiny_beir_set() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, queries, qrels) = write_set(dir.path());
    let per_query = dir.path().join("per_query.jsonl");
    let index = dir.path().join("index");
    let (embedder, reranker) = (model("tiny-bert-embedder"), model("tiny-bert-ce"));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
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
            "--index",
            index.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let first = args(&[
        "--retriever",
        "bm25,dense,hybrid",
        "--json",
        "--group-by",
        "kind",
        "--per-query",
        per_query.to_str().unwrap(),
    ]);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let out = rerank(&first);
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        out.stderr.is_empty(),
        "no progress bar with --json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["dataset"]["documents"], 6);
    assert_eq!(report["dataset"]["judged_queries"], 3);
    assert_eq!(report["settings"]["top_k"], 100);
    assert_eq!(report["settings"]["rerank_depth"], 50);
    assert_eq!(report["indexing"]["documents_added"], 6);

    // BM25, hand-computed: q1 [d2] → 1, 1, 1, 1; q2 [d4] with d4=1, d5=2 judged →
    // nDCG 1 / (2 + 1/log2 3), MRR 1, recall 1/2; q3 (no relevant document) → 0.
    let m = &report["metrics"];
    let ndcg_q2 = 1.0 / (2.0 + 1.0 / 3f64.log2());
    for run in ["bm25", "bm25+rerank"] {
        close(&m[run]["nDCG@10"], (1.0 + ndcg_q2) / 3.0);
        close(&m[run]["MRR@10"], 2.0 / 3.0);
        close(&m[run]["Recall@10"], 0.5);
        close(&m[run]["Recall@100"], 0.5);
    }
    // Dense and hybrid retrieve all six documents (top-k 100 > 6): every relevant document
    // is in the top 100 whatever the random scores are.
    for run in ["dense", "dense+rerank", "hybrid", "hybrid+rerank"] {
        close(&m[run]["Recall@100"], 2.0 / 3.0);
        close(&m[run]["Recall@10"], 2.0 / 3.0);
        let ndcg = m[run]["nDCG@10"].as_f64().unwrap();
        assert!((0.0..=2.0 / 3.0).contains(&ndcg), "{run}: {ndcg}");
    }
    // By kind: q1 + q2 are "a", q3 is "b" (all zeros).
    let by = &report["metrics_by_group"];
    close(&by["a"]["bm25"]["nDCG@10"], (1.0 + ndcg_q2) / 2.0);
    close(&by["b"]["bm25+rerank"]["MRR@10"], 0.0);
    assert_eq!(by["a"]["queries"], 2);

    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    // Pairs shared with an earlier first stage are not scored twice.
    let dense = runs.iter().find(|r| r["retriever"] == "dense").unwrap();
    let hybrid = runs.iter().find(|r| r["retriever"] == "hybrid").unwrap();
    assert_eq!(
        dense["timings"]["pairs_scored"],
        18 - 3,
        "bm25 scored 3 pairs"
    );
    assert_eq!(hybrid["timings"]["pairs_scored"], 0);
    assert_eq!(hybrid["timings"]["pairs_reused"], 18);

    // Per-query file: one line per (first stage, query); reranking permutes the candidates.
    let lines: Vec<Value> = std::fs::read_to_string(&per_query)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    let q2 = lines
        .iter()
        .find(|l| l["retriever"] == "bm25" && l["query_id"] == "q2")
        .unwrap();
    assert_eq!(q2["first_stage_top10"], serde_json::json!(["d4"]));
    assert_eq!(q2["reranked_top10"], serde_json::json!(["d4"]));
    close(&q2["first_stage"]["Recall@10"], 0.5);
    for l in lines.iter().filter(|l| l["retriever"] == "dense") {
        let mut a: Vec<String> = serde_json::from_value(l["first_stage_top10"].clone()).unwrap();
        let mut b: Vec<String> = serde_json::from_value(l["reranked_top10"].clone()).unwrap();
        assert_eq!(a.len(), 6);
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    // The index is reused: nothing is embedded again and the metrics are the same.
    let second = args(&["--retriever", "bm25"]);
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let text = ok(&rerank(&second));
    assert!(
        text.contains("reused the index (6 documents present)"),
        "{text}"
    );
    assert!(text.contains("bm25+rerank"), "{text}");
    let want = format!("{:.4}", (1.0 + ndcg_q2) / 3.0);
    assert!(text.contains(&want), "{text}");
}

#[test]
fn eval_reports_bad_input_and_foreign_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, queries, _) = write_set(dir.path());
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "query-id\tcorpus-id\tscore\nq1\td2\tyes\n").unwrap();
    let embedder = model("tiny-bert-embedder");
    let base = [
        "eval",
        "--corpus",
        corpus.to_str().unwrap(),
        "--queries",
        queries.to_str().unwrap(),
        "--embedder",
        &embedder,
        "--no-rerank",
    ];
    let mut a = base.to_vec();
    a.extend(["--qrels", bad.to_str().unwrap()]);
    let out = rerank(&a);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.tsv:2:") && err.contains("not an integer"),
        "{err}"
    );

    // An index of chunked passages (`rerank index`) is refused: its ids are not corpus ids.
    let index = dir.path().join("chunked");
    ok(&rerank(&[
        "index",
        "--index",
        index.to_str().unwrap(),
        "--embedder",
        &embedder,
        corpus.to_str().unwrap(),
    ]));
    let good = dir.path().join("good.tsv");
    std::fs::write(&good, "q1\td2\t1\n").unwrap();
    let mut a = base.to_vec();
    a.extend([
        "--qrels",
        good.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
    ]);
    let out = rerank(&a);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a document of the corpus"), "{err}");
}

/// RRF (k = 60) of two rankings of the same ids, ties by the second ranking: computed here from
/// the lists alone.
fn rrf_of_lists(first: &[String], reranked: &[String]) -> Vec<String> {
    let pos = |list: &[String], id: &str| list.iter().position(|x| x == id).unwrap() + 1;
    let mut fused: Vec<(String, f64, usize)> = reranked
        .iter()
        .map(|id| {
            let (f, r) = (pos(first, id), pos(reranked, id));
            (
                id.clone(),
                1.0 / (60.0 + f as f64) + 1.0 / (60.0 + r as f64),
                r,
            )
        })
        .collect();
    fused.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.2.cmp(&b.2)));
    fused.into_iter().map(|(id, _, _)| id).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn eval_with_fusion_adds_fused_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, queries, qrels) = write_set(dir.path());
    let per_query = dir.path().join("per_query.jsonl");
    let (embedder, reranker) = (model("tiny-bert-embedder"), model("tiny-bert-ce"));
    let base = [
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
    ];
    let mut a = base.to_vec();
    a.extend([
        "--retriever",
        "dense",
        "--fusion",
        "rrf,linear:0,none,linear:1",
        "--json",
        "--group-by",
        "kind",
        "--per-query",
        per_query.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_str(&ok(&rerank(&a))).unwrap();
    assert_eq!(
        report["settings"]["fusion"],
        serde_json::json!(["rrf", "linear:0", "linear:1"]),
        "none adds no run"
    );
    let m = &report["metrics"];
    for run in [
        "dense+rerank+rrf",
        "dense+rerank+linear:0",
        "dense+rerank+linear:1",
    ] {
        assert!(m[run]["nDCG@10"].is_number(), "{run}: {m}");
        assert!(report["metrics_by_group"]["a"][run]["nDCG@10"].is_number());
    }
    // linear:0 is the first stage, linear:1 the reranker's order.
    assert_eq!(m["dense+rerank+linear:0"], m["dense"]);
    assert_eq!(m["dense+rerank+linear:1"], m["dense+rerank"]);
    // Per query, the fused list is the RRF of the first-stage and the reranked lists (the
    // dense stage returns all 6 documents, all reranked).
    let text = std::fs::read_to_string(&per_query).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let q: Value = serde_json::from_str(line).unwrap();
        let first = strings(&q["first_stage_top10"]);
        let reranked = strings(&q["reranked_top10"]);
        assert_eq!(first.len(), 6);
        assert_eq!(q["fused"][0]["fusion"], "rrf");
        assert_eq!(
            strings(&q["fused"][0]["top10"]),
            rrf_of_lists(&first, &reranked),
            "{line}"
        );
        n += 1;
    }
    assert_eq!(n, 3, "one line per judged query");

    // The table names the fused runs.
    let mut a = base.to_vec();
    a.extend(["--retriever", "bm25", "--fusion", "linear:0.5"]);
    let table = ok(&rerank(&a));
    assert!(table.contains("bm25+rerank+linear:0.5"), "{table}");

    // Bad values: a clear error naming the accepted forms, before any work.
    for (bad, says) in [
        ("linear:1.5", "from 0 to 1"),
        ("linear:nan", "from 0 to 1"),
        ("linear:x", "number from 0 to 1"),
        ("max", "linear:ALPHA"),
    ] {
        let mut a = base.to_vec();
        a.extend(["--fusion", bad]);
        let out = rerank(&a);
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--fusion") && err.contains(says),
            "{bad}: {err}"
        );
    }
    let mut a = base.to_vec();
    a.extend(["--fusion", "rrf", "--no-rerank"]);
    let out = rerank(&a);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--fusion combines the reranker"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
