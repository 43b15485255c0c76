//! The two-stage pipeline on real text: index passages with a bi-encoder, retrieve top-k
//! (dense, BM25, hybrid), rerank to top_n with a cross-encoder, metadata preserved.

use std::path::PathBuf;
use std::sync::Arc;

use rerank_engine::{CrossEncoder, Embedder};
use rerank_retrieval::chunk::RecursiveSplitter;
use rerank_retrieval::index::Index;
use rerank_retrieval::ingest::SourceDocument;
use rerank_retrieval::{
    pipeline, Bm25Retriever, ContextualCompressionRetriever, CrossEncoderReranker, DenseRetriever,
    HybridRetriever, Retriever,
};
use serde_json::json;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn model(name: &str) -> PathBuf {
    shared().join("models").join(name)
}

fn sources() -> Vec<SourceDocument> {
    let texts = [
        ("economy", "We will build the economy from the bottom up and the middle out, cut costs for families, and create good jobs with higher wages."),
        ("ukraine", "We stand with the people of Ukraine. We are sending military, economic and humanitarian assistance to help them defend their freedom."),
        ("health", "Cancer research and the fight against cancer are a priority, with a new agency to drive breakthroughs in health."),
        ("covid", "Vaccines and treatments mean that Covid-19 need no longer control our lives; schools and businesses can stay open."),
        ("infrastructure", "The infrastructure law will rebuild roads, bridges, ports and airports, and bring high-speed internet to every American."),
    ];
    texts
        .iter()
        .map(|(id, text)| {
            let mut metadata = serde_json::Map::new();
            metadata.insert("topic".into(), json!(id));
            metadata.insert("year".into(), json!(2022));
            SourceDocument {
                id: id.to_string(),
                text: text.to_string(),
                metadata,
            }
        })
        .collect()
}

fn build(dir: &std::path::Path, embedder: &Embedder) -> Index {
    let id =
        pipeline::embedder_id(embedder, &model("all-MiniLM-L6-v2").display().to_string()).unwrap();
    let mut index = Index::open_or_create(dir, id).unwrap();
    let splitter = RecursiveSplitter::new(64, 8).unwrap();
    let passages = pipeline::passages(&sources(), &splitter, embedder);
    assert_eq!(passages.len(), 5, "each short text is one passage");
    let report = pipeline::add_passages(&mut index, embedder, passages, &mut |_, _| {}).unwrap();
    assert_eq!(report.added, 5);
    index
}

#[test]
fn contextual_compression_returns_top_n_with_relevance_score_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let embedder =
        Arc::new(Embedder::from_dir(model("all-MiniLM-L6-v2"), Default::default()).unwrap());
    let index = Arc::new(build(dir.path(), &embedder));
    let reranker =
        Arc::new(CrossEncoder::from_dir(model("minilm-l6-sotu-ce"), Default::default()).unwrap());

    let pipeline = ContextualCompressionRetriever {
        base_retriever: Box::new(DenseRetriever::new(index.clone(), embedder.clone()).unwrap()),
        base_compressor: Box::new(CrossEncoderReranker {
            model: reranker.clone(),
            top_n: 2,
            fusion: Default::default(),
            long_documents: rerank_engine::LongDocuments::Truncate,
        }),
        top_k: 4,
    };
    let query = "What is the plan for the economy?";
    let docs = pipeline.invoke(query).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].id, "economy#0", "{docs:#?}");
    for d in &docs {
        let rel = d.metadata["relevance_score"].as_f64().unwrap() as f32;
        assert_eq!(rel, d.score);
        assert!(rel > 0.0 && rel < 1.0);
        // Source metadata and chunk metadata survive both stages.
        assert_eq!(d.metadata["year"], json!(2022));
        assert_eq!(d.metadata["topic"], json!(d.id.trim_end_matches("#0")));
        assert_eq!(d.metadata["chunk"], json!(0));
        assert!(d.metadata["first_stage_rank"].as_u64().unwrap() >= 1);
    }
    assert!(docs[0].score >= docs[1].score);

    // The relevance scores are the cross-encoder's own scores for those pairs.
    let direct = reranker.predict(&[(query, docs[0].text.as_str())]).unwrap();
    assert!((direct[0].score - docs[0].score).abs() < 1e-6);
}

#[test]
fn dense_bm25_and_hybrid_first_stages() {
    let dir = tempfile::tempdir().unwrap();
    let embedder =
        Arc::new(Embedder::from_dir(model("all-MiniLM-L6-v2"), Default::default()).unwrap());
    let index = Arc::new(build(dir.path(), &embedder));

    let dense = DenseRetriever::new(index.clone(), embedder.clone()).unwrap();
    let top: Vec<String> = dense
        .retrieve("bridges and airports", 5)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(top[0], "infrastructure#0");
    assert_eq!(top.len(), 5);

    let bm25 = Bm25Retriever {
        index: index.clone(),
    };
    let top = bm25.retrieve("vaccines", 5).unwrap();
    assert_eq!(top[0].id, "covid#0");
    assert_eq!(top.len(), 1, "only one passage contains the term");

    let hybrid = HybridRetriever::dense_bm25(
        DenseRetriever::new(index.clone(), embedder.clone()).unwrap(),
        Bm25Retriever { index },
    );
    let fused = hybrid.retrieve("vaccines", 3).unwrap();
    // Found first by both retrievers: 1/61 + 1/61.
    assert_eq!(fused[0].id, "covid#0");
    assert!(
        (fused[0].score - 2.0 / 61.0).abs() < 1e-6,
        "{}",
        fused[0].score
    );
}

#[test]
fn a_mismatched_embedder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Embedder::from_dir(model("all-MiniLM-L6-v2"), Default::default()).unwrap();
    let index = Arc::new(build(dir.path(), &embedder));
    let other =
        Arc::new(Embedder::from_dir(model("tiny-bert-embedder"), Default::default()).unwrap());
    let err = DenseRetriever::new(index, other)
        .err()
        .expect("mismatch must be refused");
    let msg = err.to_string();
    assert!(msg.contains("built with"), "{msg}");
}
