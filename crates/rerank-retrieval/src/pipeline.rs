//! Indexing: sources → passages (chunked in the embedder's tokens) → vectors → [`Index`].

use std::time::Instant;

use rerank_engine::Embedder;
use serde_json::Value;

use crate::chunk::RecursiveSplitter;
use crate::error::Result;
use crate::index::{EmbedderId, Index};
use crate::ingest::SourceDocument;
use crate::{Document, TokenCounter};

impl TokenCounter for Embedder {
    fn count_tokens(&self, text: &str) -> usize {
        Embedder::count_tokens(self, text)
    }
}

/// The identity an index records for `embedder`; `name` is how to load it again (a folder or
/// hub id).
pub fn embedder_id(embedder: &Embedder, name: &str) -> Result<EmbedderId> {
    Ok(EmbedderId {
        name: name.to_string(),
        fingerprint: embedder.fingerprint()?,
        dims: embedder.info().dims,
    })
}

/// Splits each source into passages. Passage ids are `<source id>#<chunk>`; metadata is the
/// source's plus `source` (its id, unless set), `chunk`, `start` and `end` (byte offsets).
pub fn passages(
    sources: &[SourceDocument],
    splitter: &RecursiveSplitter,
    counter: &dyn TokenCounter,
) -> Vec<Document> {
    let mut out = Vec::new();
    for src in sources {
        for (n, chunk) in splitter.split(&src.text, counter).into_iter().enumerate() {
            let mut metadata = src.metadata.clone();
            metadata
                .entry("source")
                .or_insert_with(|| Value::from(src.id.clone()));
            metadata.insert("chunk".into(), Value::from(n));
            metadata.insert("start".into(), Value::from(chunk.start));
            metadata.insert("end".into(), Value::from(chunk.end));
            out.push(Document {
                id: format!("{}#{n}", src.id),
                text: chunk.text,
                metadata,
                score: 0.0,
            });
        }
    }
    out
}

/// What [`add_passages`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexingReport {
    /// Passages offered.
    pub passages: usize,
    /// Passages embedded and added.
    pub added: usize,
    /// Passages skipped because their id is already in the index.
    pub skipped_existing: usize,
    /// Seconds spent embedding.
    pub embed_secs: f64,
    /// Seconds spent writing the index (vectors, HNSW, BM25, atomic commit).
    pub write_secs: f64,
}

/// Embeds the passages the index does not hold yet (L2-normalised, for cosine search) and
/// adds them in one atomic write. `progress(done, total)` is called after each embedded block.
///
/// The index's writer lock is taken before embedding ([`Index::lock_for_writing`]): when
/// another writer is active this fails at once (`Io`, kind `WouldBlock`), before any
/// embedding work.
pub fn add_passages(
    index: &mut Index,
    embedder: &Embedder,
    passages: Vec<Document>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<IndexingReport> {
    let offered = passages.len();
    let new: Vec<Document> = passages
        .into_iter()
        .filter(|d| !index.contains_id(&d.id))
        .collect();
    let mut report = IndexingReport {
        passages: offered,
        skipped_existing: offered - new.len(),
        ..Default::default()
    };
    if new.is_empty() {
        return Ok(report);
    }
    index.lock_for_writing()?;
    let start = Instant::now();
    let mut vectors = Vec::with_capacity(new.len());
    const BLOCK: usize = 256;
    for block in new.chunks(BLOCK) {
        let texts: Vec<&str> = block.iter().map(|d| d.text.as_str()).collect();
        for mut v in embedder.embed_documents(&texts)? {
            rerank_engine::pooling::normalize(&mut v);
            vectors.push(v);
        }
        progress(vectors.len(), new.len());
    }
    report.embed_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    report.added = index.add(new, vectors)?;
    report.write_secs = start.elapsed().as_secs_f64();
    Ok(report)
}
