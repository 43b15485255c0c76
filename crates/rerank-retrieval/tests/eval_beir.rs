//! The BEIR loader of `rerank eval`: well-formed sets and bad input (typed errors naming the
//! file and line).

use std::path::{Path, PathBuf};

use rerank_retrieval::eval::beir::{load_corpus, load_qrels, load_queries, BeirDataset};
use rerank_retrieval::RetrievalError;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The file and line of a `BadInput` error, and its reason.
fn bad_input(err: RetrievalError) -> (PathBuf, usize, String) {
    match err {
        RetrievalError::BadInput { path, line, reason } => (path, line, reason),
        other => panic!("expected BadInput, got {other:?}"),
    }
}

#[test]
fn loads_corpus_with_titles_and_numeric_ids() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "corpus.jsonl",
        concat!(
            "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"plain text\", \"metadata\": {\"year\": 1999}}\n",
            "\n",
            "{\"_id\": 7, \"title\": \"A title\", \"text\": \"body\"}\r\n",
            "{\"_id\": \"d3\", \"text\": \"no title field\"}\n",
        ),
    );
    let docs = load_corpus(&corpus).unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].id, "d1");
    assert_eq!(docs[0].text, "plain text");
    assert_eq!(docs[0].metadata["year"], 1999);
    assert!(!docs[0].metadata.contains_key("title"));
    assert_eq!(docs[1].id, "7");
    assert_eq!(docs[1].text, "A title body");
    assert_eq!(docs[1].metadata["title"], "A title");
    assert_eq!(docs[2].text, "no title field");
}

#[test]
fn loads_queries_and_qrels_with_header() {
    let dir = tempfile::tempdir().unwrap();
    let queries = write(
        dir.path(),
        "queries.jsonl",
        "{\"_id\": \"q1\", \"text\": \"first?\", \"metadata\": {\"kind\": \"ict\"}}\n{\"_id\": \"q2\", \"text\": \"second?\"}\n",
    );
    let qrels = write(
        dir.path(),
        "qrels.tsv",
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n\nq2\td3\t1\n",
    );
    let q = load_queries(&queries).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].metadata["kind"], "ict");
    let r = load_qrels(&qrels).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r["q1"]["d1"], 2);
    assert_eq!(r["q1"]["d2"], 0);
    assert_eq!(r["q2"]["d3"], 1);
    // Without a header, space-separated.
    let plain = write(dir.path(), "plain.tsv", "q1 d1 1\n");
    assert_eq!(load_qrels(&plain).unwrap()["q1"]["d1"], 1);
}

#[test]
fn dataset_keeps_judged_queries_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "c.jsonl",
        "{\"_id\": \"d1\", \"text\": \"x\"}\n",
    );
    let queries = write(
        dir.path(),
        "q.jsonl",
        "{\"_id\": \"qa\", \"text\": \"a\"}\n{\"_id\": \"qb\", \"text\": \"b\"}\n{\"_id\": \"qc\", \"text\": \"c\"}\n",
    );
    let qrels = write(
        dir.path(),
        "r.tsv",
        "query-id\tcorpus-id\tscore\nqc\td1\t1\nqa\td1\t1\n",
    );
    let set = BeirDataset::load(&corpus, &queries, &qrels).unwrap();
    let ids: Vec<&str> = set.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["qa", "qc"]);
    assert_eq!(set.corpus.len(), 1);

    // A judged query that the queries file lacks: named, with its qrels line.
    let qrels2 = write(
        dir.path(),
        "r2.tsv",
        "query-id\tcorpus-id\tscore\nqa\td1\t1\nqz\td1\t1\n",
    );
    let (path, line, reason) =
        bad_input(BeirDataset::load(&corpus, &queries, &qrels2).unwrap_err());
    assert_eq!((path, line), (qrels2, 3));
    assert!(reason.contains("\"qz\""), "{reason}");
}

#[test]
fn bad_corpus_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "{\"_id\": \"a\", \"text\": \"x\"}\n{not json\n",
            2,
            "invalid JSON",
        ),
        ("{\"text\": \"x\"}\n", 1, "missing \"_id\""),
        ("{\"_id\": \"a\"}\n", 1, "missing \"text\""),
        (
            "{\"_id\": \"a\", \"text\": 3}\n",
            1,
            "\"text\" must be a string",
        ),
        (
            "{\"_id\": [1], \"text\": \"x\"}\n",
            1,
            "\"_id\" must be a string or a number",
        ),
        ("[1, 2]\n", 1, "expected a JSON object"),
        (
            "{\"_id\": \"a\", \"text\": \"x\"}\n\n{\"_id\": \"a\", \"text\": \"y\"}\n",
            3,
            "duplicate id \"a\" (first seen at line 1)",
        ),
        (
            "{\"_id\": \"a\", \"text\": \"x\", \"metadata\": 3}\n",
            1,
            "\"metadata\" must be an object",
        ),
    ];
    for (i, (text, want_line, want_reason)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("corpus{i}.jsonl"), text);
        let (p, line, reason) = bad_input(load_corpus(&path).unwrap_err());
        assert_eq!(p, path);
        assert_eq!(line, *want_line, "case {i}: {reason}");
        assert!(reason.contains(want_reason), "case {i}: {reason}");
    }
    // Not UTF-8 on line 2.
    let path = dir.path().join("latin1.jsonl");
    std::fs::write(
        &path,
        b"{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\", \"text\": \"caf\xe9\"}\n",
    )
    .unwrap();
    let (_, line, reason) = bad_input(load_corpus(&path).unwrap_err());
    assert_eq!(line, 2);
    assert!(reason.contains("not UTF-8"), "{reason}");
    // A missing file is an I/O error naming it.
    let missing = dir.path().join("nope.jsonl");
    let err = load_corpus(&missing).unwrap_err();
    assert!(matches!(err, RetrievalError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.jsonl"), "{err}");
}

#[test]
fn bad_queries_and_qrels_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let q = write(
        dir.path(),
        "q.jsonl",
        "{\"_id\": \"q1\", \"text\": \"ok\"}\n{\"_id\": \"q2\", \"text\": \"  \"}\n",
    );
    let (_, line, reason) = bad_input(load_queries(&q).unwrap_err());
    assert_eq!(line, 2);
    assert!(reason.contains("empty \"text\""), "{reason}");

    let cases = [
        (
            "query-id\tcorpus-id\tscore\nq1\td1\n",
            2,
            "expected 3 columns",
        ),
        (
            "query-id\tcorpus-id\tscore\nq1\td1\thigh\n",
            2,
            "not an integer",
        ),
        ("q1\td1\t1\nq1\td1\t2\n", 2, "duplicate judgment"),
        (
            "query-id\tcorpus-id\tscore\nq1\td1\t1.5\n",
            2,
            "not an integer",
        ),
    ];
    for (i, (text, want_line, want_reason)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("qrels{i}.tsv"), text);
        let (p, line, reason) = bad_input(load_qrels(&path).unwrap_err());
        assert_eq!(p, path);
        assert_eq!(line, *want_line, "case {i}: {reason}");
        assert!(reason.contains(want_reason), "case {i}: {reason}");
    }
}
