//! An embedded, persistent passage index in one directory: passages, their vectors, an HNSW
//! graph (usearch) for approximate dense search and a BM25 full-text index (tantivy).
//!
//! # Layout
//!
//! ```text
//! DIR/
//!   CURRENT              "gen-<n>\n": names the live generation
//!   LOCK                 advisory writer lock (flock), held during `create` and `add`
//!   gen-<n>/
//!     manifest.json      embedder, metric, count, HNSW parameters, byte length of each file
//!     passages.jsonl     one `Document` per line; line i = ordinal i
//!     vectors.f32        count × dims little-endian f32, L2-normalised, row i = ordinal i
//!     hnsw.usearch       usearch graph, key = ordinal, inner product on f32
//!     bm25/              tantivy index: ord (u64, stored + fast), text (indexed, freqs)
//! ```
//!
//! # Atomicity
//!
//! Generations are immutable. [`Index::add`] writes generation `n + 1` in full next to `n`
//! (copying the passages and vectors files and appending, extending a copy of the graph,
//! hard-linking tantivy's immutable segment files and committing the new documents), fsyncs it,
//! then replaces `CURRENT` by write-temp + fsync + rename + fsync of `DIR`, and only then
//! removes `gen-<n>`. A process killed at any point leaves `CURRENT` naming a complete
//! generation, old or new; half-written generations are removed by the next writer.
//!
//! Each `add` rewrites O(total size) bytes (vectors, graph), so add passages in large batches.
//!
//! # Concurrency
//!
//! Any number of processes may [`Index::open`] the directory and search; writers take `LOCK`
//! for the duration of `add`, and an `add` fails (`Io`) if another writer holds it or has
//! committed a generation since this `Index` was opened (reopen and retry).
//! [`Index::lock_for_writing`] takes the lock ahead of an `add`, so that a writer that must
//! first embed its passages finds out before doing so. Within a process,
//! `Index` is `Send + Sync`; searches take `&self`.

mod bm25;
mod hnsw;
mod layout;
mod manifest;
mod store;
mod vectors;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use self::bm25::Bm25;
use self::hnsw::Hnsw;
use self::layout::{bad, WriterLock};
use self::manifest::{FileSizes, HnswParams, Manifest, Metric};
use crate::{Document, Result, RetrievalError};

/// Who built the vectors; an index refuses an embedder with another fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedderId {
    /// Human-readable name (e.g. a model id); informational.
    pub name: String,
    /// Identity of the embedding function (e.g. a hash of weights + pooling + normalisation);
    /// two embedders with the same fingerprint produce the same vectors.
    pub fingerprint: String,
    /// Vector length.
    pub dims: usize,
}

/// Points inside [`Index::add_with_hook`] where a test hook runs (fault injection).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddStage {
    /// `gen-<n+1>/passages.jsonl` is written.
    PassagesWritten,
    /// `gen-<n+1>/vectors.f32` is written.
    VectorsWritten,
    /// `gen-<n+1>/hnsw.usearch` is written.
    HnswWritten,
    /// `gen-<n+1>/bm25/` is committed.
    Bm25Written,
    /// `gen-<n+1>/manifest.json` is written and the whole generation fsynced.
    GenerationWritten,
    /// `CURRENT.tmp` names `gen-<n+1>` and is fsynced; `CURRENT` not yet replaced.
    CurrentTempWritten,
    /// `CURRENT` names `gen-<n+1>`; `gen-<n>` not yet removed. An error returned here is ignored.
    Committed,
}

/// A passage index open in memory; see the [module documentation](self).
///
/// Holds all passages, all vectors (one `Vec<f32>`), the HNSW graph and a tantivy reader:
/// about `count × (dims × 8 + passage size)` bytes.
pub struct Index {
    dir: PathBuf,
    generation: u64,
    manifest: Manifest,
    passages: Vec<Document>,
    ids: HashMap<String, usize>,
    vectors: Vec<f32>,
    hnsw: Hnsw,
    bm25: Bm25,
    /// The writers' lock taken ahead of time by [`Index::lock_for_writing`], used (and
    /// released) by the next `add`.
    write_lock: Option<WriterLock>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("embedder", &self.manifest.embedder)
            .field("len", &self.passages.len())
            .finish()
    }
}

/// What a staged (written, fsynced, not yet live) generation holds.
struct Staged {
    manifest: Manifest,
    hnsw: Hnsw,
    bm25: Bm25,
}

impl Index {
    /// Creates an empty index in `dir` (created if missing) for vectors of `embedder`.
    ///
    /// Errors: `InvalidArgument` if `dir` already holds an index or `embedder.dims` is 0;
    /// `Io` if another writer holds the lock or the directory cannot be written.
    pub fn create(dir: &Path, embedder: EmbedderId) -> Result<Index> {
        if embedder.dims == 0 {
            return Err(RetrievalError::InvalidArgument(
                "an embedder with 0 dimensions".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| RetrievalError::io(dir, e))?;
        let _lock = WriterLock::acquire(dir)?;
        if layout::has_index(dir) {
            return Err(RetrievalError::InvalidArgument(format!(
                "{} already holds an index; open it instead",
                dir.display()
            )));
        }
        layout::remove_stale(dir, None);
        let params = HnswParams::default();
        let hnsw = Hnsw::new(embedder.dims, params)?;
        let staged = stage(
            dir,
            None,
            0,
            &embedder,
            params,
            &hnsw,
            &[],
            &[],
            &mut |_| Ok(()),
        )
        .inspect_err(|_| remove_gen(dir, 0))?;
        layout::write_current(dir, 0, || Ok(())).inspect_err(|_| remove_gen(dir, 0))?;
        layout::fsync_dir(dir)?;
        Ok(Index {
            dir: dir.to_path_buf(),
            generation: 0,
            manifest: staged.manifest,
            passages: Vec::new(),
            ids: HashMap::new(),
            vectors: Vec::new(),
            hnsw: staged.hnsw,
            bm25: staged.bm25,
            write_lock: None,
        })
    }

    /// Opens the index in `dir` (the generation `CURRENT` names) and loads it into memory.
    /// If no writer is active, removes leftovers of interrupted writers.
    ///
    /// Errors: `BadIndex` if `dir` holds no index or a missing, truncated or corrupt one;
    /// `Io` on read errors.
    pub fn open(dir: &Path) -> Result<Index> {
        let mut attempt = 0;
        let index = loop {
            let generation = layout::read_current(dir)?;
            match Index::load(dir, generation) {
                Ok(index) => break index,
                // A writer may have replaced the generation (and removed ours) meanwhile.
                Err(e) if attempt < 3 && layout::read_current(dir).ok() != Some(generation) => {
                    tracing::debug!(error = %e, "generation changed while opening; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        if let Some(_lock) = WriterLock::try_acquire(dir) {
            if layout::read_current(dir).ok() == Some(index.generation) {
                layout::remove_stale(dir, Some(index.generation));
            }
        }
        Ok(index)
    }

    /// Opens the index in `dir`, or creates it if `dir` holds none.
    ///
    /// Errors: as [`Index::open`] and [`Index::create`]; `EmbedderMismatch` if the existing
    /// index was built with another fingerprint or dimensions.
    pub fn open_or_create(dir: &Path, embedder: EmbedderId) -> Result<Index> {
        if !layout::has_index(dir) {
            match Index::create(dir, embedder.clone()) {
                Ok(index) => return Ok(index),
                // Another process created it first: fall through to open it.
                Err(_) if layout::has_index(dir) => {}
                Err(e) => return Err(e),
            }
        }
        let index = Index::open(dir)?;
        index.check_embedder(&embedder)?;
        Ok(index)
    }

    /// The embedder the vectors were built with.
    pub fn embedder(&self) -> &EmbedderId {
        &self.manifest.embedder
    }

    /// Checks that `e` produces vectors compatible with this index (same fingerprint and
    /// dimensions; the name is informational).
    ///
    /// Errors: `EmbedderMismatch`.
    pub fn check_embedder(&self, e: &EmbedderId) -> Result<()> {
        let built = &self.manifest.embedder;
        if built.fingerprint == e.fingerprint && built.dims == e.dims {
            return Ok(());
        }
        let given = if e.name == built.name {
            format!(
                "{} (fingerprint {}, {} dims; the index has fingerprint {}, {} dims)",
                e.name, e.fingerprint, e.dims, built.fingerprint, built.dims
            )
        } else {
            e.name.clone()
        };
        Err(RetrievalError::EmbedderMismatch {
            path: self.dir.clone(),
            built_with: built.name.clone(),
            given,
        })
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of passages.
    pub fn len(&self) -> usize {
        self.passages.len()
    }

    /// Whether the index holds no passage.
    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
    }

    /// Whether a passage with this id is stored.
    pub fn contains_id(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// The passage at `ordinal` (0-based insertion order).
    ///
    /// Panics if `ordinal >= self.len()`.
    pub fn passage(&self, ordinal: usize) -> &Document {
        &self.passages[ordinal]
    }

    /// The stored (L2-normalised) vector of the passage at `ordinal`, `dims` long.
    ///
    /// Panics if `ordinal >= self.len()`.
    pub fn vector(&self, ordinal: usize) -> &[f32] {
        let dims = self.manifest.embedder.dims;
        &self.vectors[ordinal * dims..(ordinal + 1) * dims]
    }

    /// Takes the writers' lock now and keeps it until the next [`Index::add`] returns (or
    /// this `Index` is dropped), so that a caller that must do expensive work before adding
    /// (embedding the passages) finds out at once that another writer is active, not after
    /// the work. Calling it again while the lock is held is a no-op.
    ///
    /// Errors: `Io` with kind `WouldBlock` if another writer holds the lock; `Io` if another
    /// writer committed a generation since this index was opened (reopen it and retry).
    pub fn lock_for_writing(&mut self) -> Result<()> {
        if self.write_lock.is_some() {
            return Ok(());
        }
        let lock = WriterLock::acquire(&self.dir)?;
        self.check_not_stale()?;
        self.write_lock = Some(lock);
        Ok(())
    }

    /// `Io` if `CURRENT` names another generation than this index's.
    fn check_not_stale(&self) -> Result<()> {
        let current = layout::read_current(&self.dir)?;
        if current != self.generation {
            return Err(RetrievalError::io(
                self.dir.join(layout::CURRENT),
                io::Error::other(format!(
                    "another writer changed the index (generation {} → {current}) since it was \
                     opened; reopen it and retry",
                    self.generation
                )),
            ));
        }
        Ok(())
    }

    /// Appends passages with their vectors (`[n][dims]`); ids already present (or repeated
    /// within `docs`) are skipped. Returns how many were added.
    ///
    /// Vectors are L2-normalised if they are not already (norm 1 ± 1e-3 is kept as is).
    /// Persists atomically: after it returns `Ok` the new state is durable; if the process
    /// dies at any point during it, `open` afterwards yields either the old or the new state.
    /// On an error the index (in memory and on disk) is unchanged.
    ///
    /// Errors: `InvalidArgument` (`docs` and `vectors` of different lengths, a vector of other
    /// dimensions or with NaN/infinity, an empty id); `Io` (another writer holds the lock or
    /// committed since this index was opened; write errors); `Vector`/`FullText` (index
    /// libraries).
    pub fn add(&mut self, docs: Vec<Document>, vectors: Vec<Vec<f32>>) -> Result<usize> {
        self.add_with_hook(docs, vectors, &mut |_| Ok(()))
    }

    /// [`Index::add`], calling `hook` at each [`AddStage`]; an error from the hook aborts the
    /// add like an I/O error would. For crash and rollback tests.
    #[doc(hidden)]
    pub fn add_with_hook(
        &mut self,
        docs: Vec<Document>,
        vectors: Vec<Vec<f32>>,
        hook: &mut dyn FnMut(AddStage) -> Result<()>,
    ) -> Result<usize> {
        let started = Instant::now();
        let held = self.write_lock.take();
        let (docs, rows) = self.validate(docs, vectors)?;
        if docs.is_empty() {
            return Ok(0);
        }
        let _lock = match held {
            Some(lock) => lock,
            None => WriterLock::acquire(&self.dir)?,
        };
        self.check_not_stale()?;
        let current = self.generation;
        layout::remove_stale(&self.dir, Some(current));

        let next = current + 1;
        let embedder = self.manifest.embedder.clone();
        let src = layout::gen_dir(&self.dir, current);
        let staged = stage(
            &self.dir,
            Some((&src, self.len())),
            next,
            &embedder,
            self.manifest.hnsw,
            &self.hnsw,
            &docs,
            &rows,
            hook,
        )
        .and_then(|staged| {
            layout::write_current(&self.dir, next, || hook(AddStage::CurrentTempWritten))?;
            Ok(staged)
        })
        .inspect_err(|_| remove_gen(&self.dir, next))?;

        // `CURRENT` names the new generation: commit in memory.
        let added = docs.len();
        for doc in docs {
            self.ids.insert(doc.id.clone(), self.passages.len());
            self.passages.push(doc);
        }
        self.vectors.extend_from_slice(&rows);
        self.hnsw = staged.hnsw;
        self.bm25 = staged.bm25;
        self.manifest = staged.manifest;
        self.generation = next;
        // Makes the rename durable; on failure the new state is live but maybe not durable.
        let synced = layout::fsync_dir(&self.dir);
        let _ = hook(AddStage::Committed);

        remove_gen(&self.dir, current);
        tracing::info!(
            added,
            total = self.len(),
            generation = next,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "index: added passages"
        );
        synced.map(|()| added)
    }

    /// Approximate nearest neighbours (HNSW): `(ordinal, cosine similarity)` best first, at
    /// most `k`. The query (length `dims`) is L2-normalised first; scores are exact dot
    /// products with the stored vectors. Empty if the index is empty or `k` is 0.
    ///
    /// `k` is clamped to [`Index::len`] before it reaches usearch (which allocates `k` result
    /// slots and aborts the process on a huge `k`), so any `usize` is accepted.
    ///
    /// Errors: `InvalidArgument` (other dimensions, NaN/infinity); `Vector` (usearch).
    pub fn search_dense(&self, query: &[f32], k: usize) -> Result<Vec<(usize, f32)>> {
        let q = self.prepare_query(query)?;
        let k = self.clamp_k(k);
        if k == 0 {
            return Ok(Vec::new());
        }
        let Some(hits) = self.hnsw.search(&q, k)? else {
            tracing::debug!("all HNSW search contexts busy; searching exactly");
            return Ok(vectors::exact_top_k(&self.vectors, q.len(), &q, k));
        };
        let mut hits: Vec<(usize, f32)> = hits
            .into_iter()
            .filter(|&(ord, _)| ord < self.len())
            .map(|(ord, _)| (ord, vectors::dot(self.vector(ord), &q)))
            .collect();
        hits.sort_unstable_by(vectors::by_score_desc);
        Ok(hits)
    }

    /// Exact brute-force cosine search over all vectors: `(ordinal, cosine similarity)` best
    /// first (ties: lower ordinal), at most `k` (clamped to [`Index::len`]; any `usize` is
    /// accepted). O(count × dims) per query.
    ///
    /// Errors: `InvalidArgument` (other dimensions, NaN/infinity).
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<(usize, f32)>> {
        let q = self.prepare_query(query)?;
        Ok(vectors::exact_top_k(
            &self.vectors,
            q.len(),
            &q,
            self.clamp_k(k),
        ))
    }

    /// BM25 over passage text: `(ordinal, BM25 score)` best first, at most `k`. The query is
    /// tokenized like the passages (words, lowercased) and its words are OR-ed; query syntax
    /// characters are plain text. Empty if the query has no searchable words, the index is
    /// empty or `k` is 0.
    ///
    /// `k` is clamped to [`Index::len`] before it reaches tantivy (whose top-N collector
    /// allocates a heap of `k` entries up front), so any `usize` is accepted.
    ///
    /// Errors: `FullText` (tantivy).
    pub fn search_bm25(&self, query: &str, k: usize) -> Result<Vec<(usize, f32)>> {
        let k = self.clamp_k(k);
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut hits = self.bm25.search(query, k)?;
        hits.retain(|&(ord, _)| ord < self.len());
        Ok(hits)
    }

    /// `k` bounded by the number of passages: no search can return more, and the index
    /// libraries size buffers by `k`.
    fn clamp_k(&self, k: usize) -> usize {
        k.min(self.len())
    }

    /// Checks and normalises a query vector.
    fn prepare_query(&self, query: &[f32]) -> Result<Vec<f32>> {
        vectors::check(query, self.manifest.embedder.dims, || {
            "the query vector".into()
        })?;
        let mut q = query.to_vec();
        vectors::normalize(&mut q);
        Ok(q)
    }

    /// Checks an `add` batch, drops known and repeated ids, normalises the vectors.
    /// Returns the passages to add and their vectors as one row-major buffer.
    fn validate(
        &self,
        docs: Vec<Document>,
        vecs: Vec<Vec<f32>>,
    ) -> Result<(Vec<Document>, Vec<f32>)> {
        if docs.len() != vecs.len() {
            return Err(RetrievalError::InvalidArgument(format!(
                "{} passages but {} vectors",
                docs.len(),
                vecs.len()
            )));
        }
        let dims = self.manifest.embedder.dims;
        for (i, (doc, v)) in docs.iter().zip(&vecs).enumerate() {
            if doc.id.is_empty() {
                return Err(RetrievalError::InvalidArgument(format!(
                    "passage {i} has an empty id"
                )));
            }
            vectors::check(v, dims, || format!("the vector of passage {:?}", doc.id))?;
        }
        let mut seen = HashSet::new();
        let mut kept = Vec::new();
        let mut rows = Vec::new();
        for (doc, mut v) in docs.into_iter().zip(vecs) {
            if self.ids.contains_key(&doc.id) || !seen.insert(doc.id.clone()) {
                continue;
            }
            vectors::normalize(&mut v);
            rows.extend_from_slice(&v);
            kept.push(doc);
        }
        Ok((kept, rows))
    }

    /// Loads generation `generation` of `dir`.
    fn load(dir: &Path, generation: u64) -> Result<Index> {
        let gdir = layout::gen_dir(dir, generation);
        if !gdir.is_dir() {
            return Err(bad(dir, format!("{} is missing", gdir.display())));
        }
        let manifest = Manifest::read(dir, &gdir, generation)?;
        if manifest.bm25_tokenizer != bm25::TOKENIZER {
            return Err(bad(
                dir,
                format!("unsupported BM25 tokenizer {:?}", manifest.bm25_tokenizer),
            ));
        }
        let (count, dims) = (manifest.count, manifest.embedder.dims);
        let passages = store::read_passages(dir, &gdir, count, manifest.files.passages)?;
        let mut ids = HashMap::with_capacity(count);
        for (ord, doc) in passages.iter().enumerate() {
            if ids.insert(doc.id.clone(), ord).is_some() {
                return Err(bad(dir, format!("passage id {:?} appears twice", doc.id)));
            }
        }
        let vectors = store::read_vectors(dir, &gdir, count, dims, manifest.files.vectors)?;
        let hnsw = Hnsw::load(dir, &gdir, dims, manifest.hnsw, count, manifest.files.hnsw)?;
        let bm25 = Bm25::open(dir, &gdir, count)?;
        Ok(Index {
            dir: dir.to_path_buf(),
            generation,
            manifest,
            passages,
            ids,
            vectors,
            hnsw,
            bm25,
            write_lock: None,
        })
    }
}

/// Writes generation `next` of `dir` in full and fsyncs it (it is not live yet): the files of
/// `src` = (generation directory, passage count) if any, plus `docs`/`rows` with ordinals from
/// that count on; the graph is a copy of `base` extended with `rows`.
#[allow(clippy::too_many_arguments)]
fn stage(
    dir: &Path,
    src: Option<(&Path, usize)>,
    next: u64,
    embedder: &EmbedderId,
    params: HnswParams,
    base: &Hnsw,
    docs: &[Document],
    rows: &[f32],
    hook: &mut dyn FnMut(AddStage) -> Result<()>,
) -> Result<Staged> {
    let gdir = layout::gen_dir(dir, next);
    if gdir.exists() {
        std::fs::remove_dir_all(&gdir).map_err(|e| RetrievalError::io(&gdir, e))?;
    }
    std::fs::create_dir(&gdir).map_err(|e| RetrievalError::io(&gdir, e))?;
    let (src_dir, old_count) = match src {
        Some((path, count)) => (Some(path), count),
        None => (None, 0),
    };

    let passages = store::write_passages(src_dir, &gdir, docs)?;
    hook(AddStage::PassagesWritten)?;
    let vectors = store::write_vectors(src_dir, &gdir, rows)?;
    hook(AddStage::VectorsWritten)?;

    let t = Instant::now();
    let hnsw = if base.len() == 0 {
        Hnsw::new(embedder.dims, params)?
    } else {
        base.try_clone()?
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    hnsw.extend(old_count, rows, threads)?;
    let hnsw_bytes = hnsw.save(&gdir)?;
    tracing::debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "index: HNSW extended"
    );
    hook(AddStage::HnswWritten)?;

    let t = Instant::now();
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    let bm25 = Bm25::build(src_dir, &gdir, old_count, &texts)?;
    tracing::debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "index: BM25 extended"
    );
    hook(AddStage::Bm25Written)?;

    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        generation: next,
        embedder: embedder.clone(),
        metric: Metric::Cosine,
        count: old_count + docs.len(),
        hnsw: params,
        bm25_tokenizer: bm25::TOKENIZER.into(),
        files: FileSizes {
            passages,
            vectors,
            hnsw: hnsw_bytes,
        },
        written_by: concat!("rerank-retrieval ", env!("CARGO_PKG_VERSION")).into(),
    };
    manifest.write(&gdir)?;
    layout::fsync_tree(&gdir)?;
    layout::fsync_dir(dir)?;
    hook(AddStage::GenerationWritten)?;
    Ok(Staged {
        manifest,
        hnsw,
        bm25,
    })
}

/// Removes `gen-<n>` of `dir`, logging (not returning) a failure.
fn remove_gen(dir: &Path, n: u64) {
    let path = layout::gen_dir(dir, n);
    if let Err(e) = std::fs::remove_dir_all(&path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove generation");
        }
    }
}
