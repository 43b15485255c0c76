//! First-stage retrievers over an [`Index`]: dense (bi-encoder + HNSW), BM25, and hybrid
//! (reciprocal-rank fusion), behind LangChain's `Retriever` idea.

use std::collections::HashMap;
use std::sync::Arc;

use rerank_engine::Embedder;

use crate::error::{Result, RetrievalError};
use crate::index::Index;
use crate::Document;

/// Anything that returns the top-k documents for a query, best first.
pub trait Retriever: Send + Sync {
    /// At most `k` documents, best first, with `score` set to this retriever's score. Any
    /// `k` is accepted: the retrievers of this crate clamp it to the index size before it
    /// reaches an index library (see [`Index::search_dense`]); `k` = 0 gives no document.
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Document>>;

    /// A short name for logs and output (`dense`, `bm25`, `hybrid`).
    fn name(&self) -> &'static str;
}

fn documents(index: &Index, hits: Vec<(usize, f32)>) -> Vec<Document> {
    hits.into_iter()
        .map(|(ordinal, score)| {
            let mut d = index.passage(ordinal).clone();
            d.score = score;
            d
        })
        .collect()
}

/// How a dense first stage turns the query into a vector. [`DirectQueryEmbedder`] calls
/// [`Embedder::embed_query`] on the calling thread (the CLI, the Python package); the server
/// does the same work spread over its threads (tokenization on its blocking pool, the model on
/// its inference thread).
pub trait QueryEmbedder: Send + Sync {
    /// The query's embedding, as [`Embedder::embed_query`] gives it (query prompt applied, not
    /// normalised: [`DenseRetriever`] normalises it). A caller's own error goes in
    /// [`RetrievalError::QueryEmbedder`].
    fn embed_query(&self, embedder: &Arc<Embedder>, query: &str) -> Result<Vec<f32>>;
}

/// [`Embedder::embed_query`] on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectQueryEmbedder;

impl QueryEmbedder for DirectQueryEmbedder {
    fn embed_query(&self, embedder: &Arc<Embedder>, query: &str) -> Result<Vec<f32>> {
        Ok(embedder.embed_query(query)?)
    }
}

/// Embeds the query with the index's bi-encoder and searches the HNSW graph
/// (or every vector when `exact`). `score` = cosine similarity.
pub struct DenseRetriever {
    pub index: Arc<Index>,
    pub embedder: Arc<Embedder>,
    /// Brute-force search instead of HNSW (small collections, recall checks).
    pub exact: bool,
    /// How the query is embedded; [`DirectQueryEmbedder`] unless told otherwise.
    pub query_embedder: Arc<dyn QueryEmbedder>,
}

impl DenseRetriever {
    /// Errors with [`RetrievalError::EmbedderMismatch`] when `embedder` is not the model that
    /// built `index`.
    pub fn new(index: Arc<Index>, embedder: Arc<Embedder>) -> Result<Self> {
        index.check_embedder(&crate::pipeline::embedder_id(
            &embedder,
            &index.embedder().name,
        )?)?;
        Ok(DenseRetriever {
            index,
            embedder,
            exact: false,
            query_embedder: Arc::new(DirectQueryEmbedder),
        })
    }
}

impl Retriever for DenseRetriever {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Document>> {
        let mut q = self.query_embedder.embed_query(&self.embedder, query)?;
        rerank_engine::pooling::normalize(&mut q);
        let hits = if self.exact {
            self.index.search_exact(&q, k)?
        } else {
            self.index.search_dense(&q, k)?
        };
        Ok(documents(&self.index, hits))
    }

    fn name(&self) -> &'static str {
        "dense"
    }
}

/// BM25 over the passages' text (tantivy). `score` = BM25 score.
pub struct Bm25Retriever {
    pub index: Arc<Index>,
}

impl Retriever for Bm25Retriever {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Document>> {
        let hits = self.index.search_bm25(query, k)?;
        Ok(documents(&self.index, hits))
    }

    fn name(&self) -> &'static str {
        "bm25"
    }
}

/// Reciprocal-rank fusion of several retrievers (as LangChain's `EnsembleRetriever`):
/// `score(d) = Σ_r weight_r / (rrf_k + rank_r(d))` with 1-based ranks; each retriever is asked
/// for `k` documents; ties keep the order of first appearance.
pub struct HybridRetriever {
    pub retrievers: Vec<(Box<dyn Retriever>, f32)>,
    /// The RRF constant (60 in the original paper and in LangChain).
    pub rrf_k: f32,
}

impl HybridRetriever {
    /// Dense + BM25 with equal weights and `rrf_k = 60`.
    pub fn dense_bm25(dense: DenseRetriever, bm25: Bm25Retriever) -> Self {
        HybridRetriever {
            retrievers: vec![(Box::new(dense), 1.0), (Box::new(bm25), 1.0)],
            rrf_k: 60.0,
        }
    }
}

/// Fuses ranked lists by reciprocal rank; documents are identified by `id`.
pub fn reciprocal_rank_fusion(
    lists: Vec<(Vec<Document>, f32)>,
    rrf_k: f32,
    k: usize,
) -> Vec<Document> {
    let mut fused: Vec<Document> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for (list, weight) in lists {
        for (rank, doc) in list.into_iter().enumerate() {
            let add = weight / (rrf_k + rank as f32 + 1.0);
            match position.get(&doc.id) {
                Some(&i) => fused[i].score += add,
                None => {
                    position.insert(doc.id.clone(), fused.len());
                    let mut d = doc;
                    d.score = add;
                    fused.push(d);
                }
            }
        }
    }
    // Stable sort: equal scores keep first-appearance order. Scores are finite sums.
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused.truncate(k);
    fused
}

impl Retriever for HybridRetriever {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Document>> {
        if self.retrievers.is_empty() {
            return Err(RetrievalError::InvalidArgument(
                "hybrid retriever without retrievers".into(),
            ));
        }
        let lists = self
            .retrievers
            .iter()
            .map(|(r, w)| Ok((r.retrieve(query, k)?, *w)))
            .collect::<Result<Vec<_>>>()?;
        Ok(reciprocal_rank_fusion(lists, self.rrf_k, k))
    }

    fn name(&self) -> &'static str {
        "hybrid"
    }
}

/// The first stages [`build_retriever`] builds, by their names in flags and requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetrieverKind {
    /// [`DenseRetriever`]: bi-encoder + HNSW (or exact) cosine search.
    Dense,
    /// [`Bm25Retriever`]: BM25 over the passages' text.
    Bm25,
    /// [`HybridRetriever::dense_bm25`]: reciprocal-rank fusion of both.
    Hybrid,
}

impl RetrieverKind {
    /// `"dense"`, `"bm25"` or `"hybrid"`.
    pub fn name(self) -> &'static str {
        match self {
            RetrieverKind::Dense => "dense",
            RetrieverKind::Bm25 => "bm25",
            RetrieverKind::Hybrid => "hybrid",
        }
    }

    /// Whether this first stage embeds the query (needs the index's embedder).
    pub fn needs_embedder(self) -> bool {
        !matches!(self, RetrieverKind::Bm25)
    }
}

impl std::fmt::Display for RetrieverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RetrieverKind {
    type Err = RetrievalError;

    /// Parses `dense`, `bm25` or `hybrid` (exactly). Errors: `InvalidArgument`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dense" => Ok(RetrieverKind::Dense),
            "bm25" => Ok(RetrieverKind::Bm25),
            "hybrid" => Ok(RetrieverKind::Hybrid),
            other => Err(RetrievalError::InvalidArgument(format!(
                "retriever must be \"dense\", \"bm25\" or \"hybrid\", got {other:?}"
            ))),
        }
    }
}

/// Builds the first stage `kind` over `index` — the one place the CLI, the server and the
/// Python package build it. `embedder` embeds the query for `Dense` and `Hybrid` (it must be
/// the model that built `index`) and is ignored for `Bm25`; `exact` makes the dense search
/// brute force instead of HNSW. `Hybrid` fuses dense and BM25 with equal weights and
/// `rrf_k = 60`.
///
/// Errors: `InvalidArgument` when `kind` needs an embedder and `embedder` is `None`;
/// `EmbedderMismatch` when `embedder` did not build `index`; `Engine` if its fingerprint
/// cannot be computed.
pub fn build_retriever(
    kind: RetrieverKind,
    index: Arc<Index>,
    embedder: Option<Arc<Embedder>>,
    exact: bool,
) -> Result<Box<dyn Retriever>> {
    build_retriever_with(kind, index, embedder, exact, Arc::new(DirectQueryEmbedder))
}

/// [`build_retriever`] with the dense search embedding the query through `query_embedder`
/// (the server's, which runs the model on its inference thread). Errors: as
/// [`build_retriever`].
pub fn build_retriever_with(
    kind: RetrieverKind,
    index: Arc<Index>,
    embedder: Option<Arc<Embedder>>,
    exact: bool,
    query_embedder: Arc<dyn QueryEmbedder>,
) -> Result<Box<dyn Retriever>> {
    if kind == RetrieverKind::Bm25 {
        return Ok(Box::new(Bm25Retriever { index }));
    }
    let embedder = embedder.ok_or_else(|| {
        RetrievalError::InvalidArgument(format!("the {kind} retriever needs the index's embedder"))
    })?;
    let mut dense = DenseRetriever::new(index.clone(), embedder)?;
    dense.exact = exact;
    dense.query_embedder = query_embedder;
    Ok(match kind {
        RetrieverKind::Dense => Box::new(dense),
        _ => Box::new(HybridRetriever::dense_bm25(dense, Bm25Retriever { index })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Document {
        Document {
            id: id.into(),
            text: id.into(),
            metadata: Default::default(),
            score: 0.0,
        }
    }

    #[test]
    fn rrf_rewards_documents_found_by_both() {
        let dense = vec![doc("a"), doc("b"), doc("c")];
        let bm25 = vec![doc("c"), doc("d"), doc("a")];
        let fused = reciprocal_rank_fusion(vec![(dense, 1.0), (bm25, 1.0)], 60.0, 4);
        let ids: Vec<&str> = fused.iter().map(|d| d.id.as_str()).collect();
        // a: 1/61 + 1/63, c: 1/63 + 1/61 (equal: a first by appearance), b: 1/62, d: 1/62.
        assert_eq!(ids, vec!["a", "c", "b", "d"]);
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-7);
    }

    #[test]
    fn retriever_kinds_parse_and_print() {
        for kind in [
            RetrieverKind::Dense,
            RetrieverKind::Bm25,
            RetrieverKind::Hybrid,
        ] {
            assert_eq!(kind.name().parse::<RetrieverKind>().unwrap(), kind);
        }
        let err = "Dense".parse::<RetrieverKind>().unwrap_err().to_string();
        assert!(
            err.contains(r#"retriever must be "dense", "bm25" or "hybrid""#),
            "{err}"
        );
    }

    #[test]
    fn rrf_respects_weights_and_k() {
        let fused =
            reciprocal_rank_fusion(vec![(vec![doc("x")], 1.0), (vec![doc("y")], 2.0)], 60.0, 1);
        assert_eq!(fused.len(), 1);
        assert_eq!(fused[0].id, "y");
    }
}
