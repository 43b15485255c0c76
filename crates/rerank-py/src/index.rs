//! `rerank_rs._native.Index`: a persistent rerank index (passages, vectors, HNSW, BM25) and
//! the two-stage search over it (dense / BM25 / hybrid first stage, optional cross-encoder).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use pyo3::prelude::*;
use rerank_engine::Embedder;
use rerank_retrieval::chunk::{RecursiveSplitter, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE};
use rerank_retrieval::compression::mark_first_stage;
use rerank_retrieval::index::Index;
use rerank_retrieval::{
    build_retriever, ingest, pipeline, ContextualCompressionRetriever, CrossEncoderReranker,
    Document, RetrieverKind,
};
use serde_json::{Map, Value};

use crate::cross_encoder::PyCrossEncoder;
use crate::embedder::PyEmbedder;
use crate::errors::{detached, Failure};

/// A document as it crosses into Python: `(id, text, metadata as JSON, score)`.
type PyDocument = (String, String, String, f32);

/// An index directory, opened (the live generation is read into memory).
#[pyclass(frozen, name = "Index", module = "rerank_rs._native")]
pub struct PyIndex {
    dir: PathBuf,
    /// The generation searches use; `add_*` replace it with the new one.
    current: RwLock<Arc<Index>>,
}

fn to_python(docs: Vec<Document>) -> Vec<PyDocument> {
    docs.into_iter()
        .map(|d| {
            let metadata = Value::Object(d.metadata).to_string();
            (d.id, d.text, metadata, d.score)
        })
        .collect()
}

/// The identity an index records for `embedder`: its canonical folder, so that the index finds
/// the model again from any working directory (as `rerank index` does).
fn embedder_id(embedder: &Embedder) -> Result<rerank_retrieval::index::EmbedderId, Failure> {
    let dir = &embedder.info().path;
    let name = std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.clone())
        .display()
        .to_string();
    Ok(pipeline::embedder_id(embedder, &name)?)
}

impl PyIndex {
    fn snapshot(&self) -> Arc<Index> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads the index from disk, adds `passages` (embedding those it lacks), and makes the
    /// result the generation later searches use.
    fn add(
        &self,
        py: Python<'_>,
        embedder: &PyEmbedder,
        passages: Passages,
    ) -> PyResult<(usize, usize, usize)> {
        let dir = self.dir.clone();
        let model = Arc::clone(&embedder.inner);
        let (index, report) = detached(py, move || {
            let mut index = Index::open(&dir)?;
            index.check_embedder(&pipeline::embedder_id(&model, &index.embedder().name)?)?;
            let passages = match passages {
                Passages::Ready(docs) => docs,
                Passages::Files {
                    files,
                    chunk_size,
                    chunk_overlap,
                } => {
                    let splitter = RecursiveSplitter::new(chunk_size, chunk_overlap)?;
                    let sources = ingest::read_paths(&files)?;
                    if sources.is_empty() {
                        return Err(Failure::Invalid(format!("no text found in {files:?}")));
                    }
                    pipeline::passages(&sources, &splitter, model.as_ref())
                }
            };
            let report = pipeline::add_passages(&mut index, &model, passages, &mut |_, _| {})?;
            Ok((index, report))
        })?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        Ok((report.passages, report.added, report.skipped_existing))
    }
}

enum Passages {
    Ready(Vec<Document>),
    Files {
        files: Vec<PathBuf>,
        chunk_size: usize,
        chunk_overlap: usize,
    },
}

#[pymethods]
impl PyIndex {
    /// Opens the index at `path`. Raises `FileNotFoundError` when there is none, `OSError`
    /// when it is incomplete or corrupt.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let dir = path.clone();
        let index = detached(py, move || Ok(Index::open(&dir)?))?;
        Ok(PyIndex {
            dir: path,
            current: RwLock::new(Arc::new(index)),
        })
    }

    /// Opens the index at `path`, or creates an empty one built for `embedder`. An existing
    /// index built with another embedder (another fingerprint) raises `ValueError`.
    #[staticmethod]
    fn open_or_create(py: Python<'_>, path: PathBuf, embedder: &PyEmbedder) -> PyResult<Self> {
        let dir = path.clone();
        let model = Arc::clone(&embedder.inner);
        let index = detached(py, move || {
            Ok(Index::open_or_create(&dir, embedder_id(&model)?)?)
        })?;
        Ok(PyIndex {
            dir: path,
            current: RwLock::new(Arc::new(index)),
        })
    }

    /// The folder of the embedder that built the index.
    #[getter]
    fn embedder_name(&self) -> String {
        self.snapshot().embedder().name.clone()
    }

    /// The index directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.dir.clone()
    }

    fn __len__(&self) -> usize {
        self.snapshot().len()
    }

    /// Reads `.txt` / `.md` / `.jsonl` files or folders (as `rerank index`), splits them into
    /// passages of `chunk_size` embedder tokens with `chunk_overlap` tokens of overlap, embeds
    /// the passages the index lacks and adds them atomically. Returns `(passages, added,
    /// already_present)`.
    #[pyo3(signature = (files, embedder, chunk_size=DEFAULT_CHUNK_SIZE, chunk_overlap=DEFAULT_CHUNK_OVERLAP))]
    fn add_files(
        &self,
        py: Python<'_>,
        files: Vec<PathBuf>,
        embedder: &PyEmbedder,
        chunk_size: usize,
        chunk_overlap: usize,
    ) -> PyResult<(usize, usize, usize)> {
        let passages = Passages::Files {
            files,
            chunk_size,
            chunk_overlap,
        };
        self.add(py, embedder, passages)
    }

    /// Adds passages as given (no chunking): `ids[i]`, `texts[i]` and `metadatas[i]` (a JSON
    /// object). Passages whose id is present are skipped. Returns `(passages, added,
    /// already_present)`.
    fn add_passages(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        texts: Vec<String>,
        metadatas: Vec<String>,
        embedder: &PyEmbedder,
    ) -> PyResult<(usize, usize, usize)> {
        if ids.len() != texts.len() || ids.len() != metadatas.len() {
            return Err(Failure::Invalid(format!(
                "{} ids, {} texts and {} metadatas: give one of each per passage",
                ids.len(),
                texts.len(),
                metadatas.len()
            ))
            .into());
        }
        let mut docs = Vec::with_capacity(ids.len());
        for (i, ((id, text), metadata)) in ids.into_iter().zip(texts).zip(metadatas).enumerate() {
            let metadata: Map<String, Value> = serde_json::from_str(&metadata)
                .map_err(|e| Failure::Invalid(format!("metadata of passage {i}: {e}")))?;
            docs.push(Document {
                id,
                text,
                metadata,
                score: 0.0,
            });
        }
        self.add(py, embedder, Passages::Ready(docs))
    }

    /// Two-stage search: the first stage (`retriever` = `"dense"`, `"bm25"` or `"hybrid"`:
    /// reciprocal-rank fusion of both) returns `top_k` passages; with a `reranker` they are
    /// reranked and the best `top_n` kept, each with `relevance_score` / `relevance_logit` in
    /// its metadata. Every passage carries `first_stage_rank` (1-based) and
    /// `first_stage_score`. `dense` and `hybrid` need the `embedder` that built the index
    /// (`exact`: brute force instead of HNSW). Returns `(id, text, metadata_json, score)`,
    /// best first. The GIL is released while searching.
    ///
    /// Raises `ValueError` for `top_k` or `top_n` < 1, an unknown `retriever`, a missing or
    /// different embedder.
    #[pyo3(signature = (query, top_k=20, retriever="dense", embedder=None, reranker=None, top_n=3, exact=false))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        query: String,
        top_k: i64,
        retriever: &str,
        embedder: Option<&PyEmbedder>,
        reranker: Option<&PyCrossEncoder>,
        top_n: i64,
        exact: bool,
    ) -> PyResult<Vec<PyDocument>> {
        if top_k < 1 {
            return Err(Failure::Invalid(format!("top_k must be at least 1, got {top_k}")).into());
        }
        if top_n < 1 {
            return Err(Failure::Invalid(format!("top_n must be at least 1, got {top_n}")).into());
        }
        let index = self.snapshot();
        let embedder = embedder.map(|e| Arc::clone(&e.inner));
        let reranker = reranker.map(|r| Arc::clone(&r.inner));
        let kind = retriever.to_string();
        let docs = detached(py, move || {
            let kind: RetrieverKind = kind.parse()?;
            let first = build_retriever(kind, Arc::clone(&index), embedder, exact)?;
            let top_k = top_k as usize;
            Ok(match reranker {
                Some(model) => ContextualCompressionRetriever {
                    base_retriever: first,
                    base_compressor: Box::new(CrossEncoderReranker {
                        model,
                        top_n: top_n as usize,
                        fusion: Default::default(),
                        long_documents: rerank_engine::LongDocuments::Truncate,
                    }),
                    top_k,
                }
                .invoke(&query)?,
                None => {
                    let mut docs = first.retrieve(&query, top_k)?;
                    mark_first_stage(&mut docs);
                    docs
                }
            })
        })?;
        Ok(to_python(docs))
    }
}
