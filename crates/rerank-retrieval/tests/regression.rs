//! Regression tests, one per finding of issue 13 (hardening) that concerns this crate.
//!
//! Each test is named after the finding it covers and failed before its fix.

use std::path::PathBuf;
use std::sync::Arc;

use rerank_engine::{Embedder, EmbedderOptions};
use rerank_retrieval::index::{EmbedderId, Index};
use rerank_retrieval::Retriever;
use rerank_retrieval::{pipeline, Bm25Retriever, DenseRetriever, Document, HybridRetriever};
use serde_json::Map;

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/models")
        .join(name)
}

fn doc(id: &str, text: &str) -> Document {
    Document {
        id: id.into(),
        text: text.into(),
        metadata: Map::new(),
        score: 0.0,
    }
}

const TEXTS: [(&str, &str); 4] = [
    (
        "economy",
        "We will build the economy from the bottom up and the middle out.",
    ),
    (
        "ukraine",
        "We stand with the people of Ukraine and send assistance.",
    ),
    (
        "health",
        "Cancer research is a priority, with a new agency for health.",
    ),
    (
        "roads",
        "The infrastructure law will rebuild roads, bridges and ports.",
    ),
];

/// A 4-passage index embedded with the tiny test embedder, and that embedder.
fn small_index(dir: &std::path::Path) -> (Arc<Index>, Arc<Embedder>) {
    let embedder = Embedder::from_dir(model("tiny-bert-embedder"), EmbedderOptions::default())
        .expect("tiny-bert-embedder loads");
    let id = pipeline::embedder_id(&embedder, "tiny-bert-embedder").unwrap();
    let mut index = Index::create(dir, id).unwrap();
    let docs: Vec<Document> = TEXTS.iter().map(|(i, t)| doc(i, t)).collect();
    let report = pipeline::add_passages(&mut index, &embedder, docs, &mut |_, _| {}).unwrap();
    assert_eq!(report.added, TEXTS.len());
    (Arc::new(index), Arc::new(embedder))
}

/// Issue 13 item 1: `top_k: 9223372036854775807` aborted the process in usearch ("capacity
/// overflow" in a function that cannot unwind) and `top_k: 4000000000` with BM25 aborted
/// allocating 32 GB in tantivy's top-N heap. `k` is now clamped to the index size: every
/// first stage returns every passage (at most), for `k` = `usize::MAX`, `i64::MAX` and 4e9.
#[test]
fn search_huge_top_k_does_not_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, embedder) = small_index(tmp.path());
    let n = TEXTS.len();
    let huge = [usize::MAX, i64::MAX as usize, 4_000_000_000];
    let mut query = embedder.embed_query("economy").unwrap();
    rerank_engine::pooling::normalize(&mut query);
    for &k in &huge {
        let dense = index.search_dense(&query, k).unwrap();
        assert_eq!(dense.len(), n, "dense, k = {k}");
        let exact = index.search_exact(&query, k).unwrap();
        assert_eq!(exact.len(), n, "exact, k = {k}");
        // HNSW on 4 passages finds them all: the same set as exact search.
        let mut a: Vec<usize> = dense.iter().map(|h| h.0).collect();
        let mut b: Vec<usize> = exact.iter().map(|h| h.0).collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);

        let bm25 = index.search_bm25("economy bottom roads", k).unwrap();
        // Two passages contain one of these words each.
        let ids: Vec<&str> = bm25
            .iter()
            .map(|h| index.passage(h.0).id.as_str())
            .collect();
        assert_eq!(ids.len(), 2, "bm25, k = {k}: {ids:?}");
        assert!(ids.contains(&"economy") && ids.contains(&"roads"));

        let hybrid = HybridRetriever::dense_bm25(
            DenseRetriever::new(index.clone(), embedder.clone()).unwrap(),
            Bm25Retriever {
                index: index.clone(),
            },
        );
        let docs = hybrid.retrieve("economy", k).unwrap();
        assert_eq!(docs.len(), n, "hybrid, k = {k}");
    }
}

/// `k` = 0 gives an empty list, not an error or a library call with 0 slots.
#[test]
fn search_zero_top_k_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, embedder) = small_index(tmp.path());
    let mut query = embedder.embed_query("economy").unwrap();
    rerank_engine::pooling::normalize(&mut query);
    assert!(index.search_dense(&query, 0).unwrap().is_empty());
    assert!(index.search_exact(&query, 0).unwrap().is_empty());
    assert!(index.search_bm25("economy", 0).unwrap().is_empty());
}

/// Huge `k` on an empty index: nothing to return, no library sees the number.
#[test]
fn search_huge_top_k_on_empty_index_does_not_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(
        tmp.path(),
        EmbedderId {
            name: "e".into(),
            fingerprint: "fp".into(),
            dims: 4,
        },
    )
    .unwrap();
    let q = [1.0, 0.0, 0.0, 0.0];
    assert!(index.search_dense(&q, usize::MAX).unwrap().is_empty());
    assert!(index.search_exact(&q, usize::MAX).unwrap().is_empty());
    assert!(index.search_bm25("economy", usize::MAX).unwrap().is_empty());
}

/// Issue 13 item 7: a losing concurrent index writer found out only after embedding all its
/// passages. `pipeline::add_passages` now takes the writer lock first: while another writer
/// holds it, it fails with `WouldBlock` before embedding anything (no progress reported).
#[test]
fn losing_index_writer_fails_before_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, embedder) = small_index(tmp.path());
    drop(index);
    let mut winner = Index::open(tmp.path()).unwrap();
    winner.lock_for_writing().unwrap();
    let mut loser = Index::open(tmp.path()).unwrap();
    let mut embedded = 0;
    let result = pipeline::add_passages(
        &mut loser,
        &embedder,
        vec![doc("new", "A passage the losing writer never embeds.")],
        &mut |done, _| embedded = done,
    );
    match result {
        Err(rerank_retrieval::RetrievalError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock)
        }
        other => panic!("expected a lock error, got {other:?}"),
    }
    assert_eq!(embedded, 0, "the losing writer embedded passages first");

    // The winner's add uses (and releases) the lock it holds.
    let mut q = embedder.embed_documents(&["winner"]).unwrap();
    rerank_engine::pooling::normalize(&mut q[0]);
    assert_eq!(winner.add(vec![doc("winner", "winner")], q).unwrap(), 1);
    // Now the loser is stale: it learns so before embedding too.
    let mut embedded = 0;
    assert!(pipeline::add_passages(
        &mut loser,
        &embedder,
        vec![doc("new", "x")],
        &mut |done, _| embedded = done
    )
    .is_err());
    assert_eq!(embedded, 0);
    let mut reopened = Index::open(tmp.path()).unwrap();
    let report = pipeline::add_passages(
        &mut reopened,
        &embedder,
        vec![doc("new", "x")],
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.added, 1);
    assert_eq!(Index::open(tmp.path()).unwrap().len(), TEXTS.len() + 2);
}
