//! The HNSW graph (usearch), file `hnsw.usearch` of a generation.
//!
//! Keys are passage ordinals (`u64`); vectors are stored as `f32` (no quantisation) under the
//! inner-product metric, which on the L2-normalised vectors of the index is cosine:
//! usearch's distance is `1 - cos`, and [`Hnsw::search`] turns it back into similarity.
//!
//! usearch serves concurrent calls from a fixed pool of per-thread contexts that is sized by
//! `reserve`; a call that finds the pool empty fails ("Reserve capacity ahead of searches!").
//! The pool is therefore reserved generously ([`THREAD_SLOTS`]) and [`Hnsw::search`] reports an
//! exhausted pool as `Ok(None)` so that the caller can fall back to exact search.

use std::path::Path;

use usearch::{IndexOptions, MetricKind, ScalarKind};

use super::layout::{bad, write_file_synced};
use super::manifest::HnswParams;
use super::store::read_exact_len;
use crate::{Result, RetrievalError};

/// File name of the graph inside a generation directory.
pub const HNSW_FILE: &str = "hnsw.usearch";

/// Per-thread contexts reserved for concurrent searches (and parallel insertion).
/// Each costs about `dims × 4` bytes plus a visited-set bitmap of `count / 8` bytes.
const THREAD_SLOTS: usize = 32;

/// Rows inserted per worker below which insertion stays on one thread.
const MIN_ROWS_PER_WORKER: usize = 256;

/// An in-memory usearch index over `dims`-wide unit vectors, keyed by ordinal.
pub struct Hnsw {
    index: usearch::Index,
    dims: usize,
    params: HnswParams,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("len", &self.len())
            .field("dims", &self.dims)
            .field("params", &self.params)
            .finish()
    }
}

fn vector_err(context: &str, e: impl std::fmt::Display) -> RetrievalError {
    RetrievalError::Vector(format!("{context}: {e}"))
}

impl Hnsw {
    /// An empty graph.
    ///
    /// Errors: `Vector` if usearch refuses the options (e.g. `dims` = 0).
    pub fn new(dims: usize, params: HnswParams) -> Result<Hnsw> {
        let options = IndexOptions {
            dimensions: dims,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: params.connectivity,
            expansion_add: params.expansion_add,
            expansion_search: params.expansion_search,
            multi: false,
        };
        let index = usearch::Index::new(&options).map_err(|e| vector_err("create", e))?;
        let hnsw = Hnsw {
            index,
            dims,
            params,
        };
        hnsw.reserve(0, THREAD_SLOTS)?;
        Ok(hnsw)
    }

    /// Loads `gen_dir/hnsw.usearch` (`bytes` long) and checks it holds `count` vectors of `dims`
    /// under the inner-product metric, as `f32`.
    ///
    /// Errors: `BadIndex` if the file is missing, of another length or another shape; `Vector` if
    /// usearch cannot load it.
    pub fn load(
        index_dir: &Path,
        gen_dir: &Path,
        dims: usize,
        params: HnswParams,
        count: usize,
        bytes: u64,
    ) -> Result<Hnsw> {
        let path = gen_dir.join(HNSW_FILE);
        let data = read_exact_len(index_dir, &path, bytes)?;
        let head = usearch::Index::metadata_from_buffer(&data)
            .map_err(|e| bad(index_dir, format!("{}: {e}", path.display())))?;
        if head.dimensions != dims as u64
            || head.metric != MetricKind::IP
            || head.quantization != ScalarKind::F32
            || head.multi
            || head.count_present != count as u64
            || head.count_deleted != 0
        {
            return Err(bad(
                index_dir,
                format!(
                    "{} holds {} × {}-d vectors ({:?}, {:?}), expected {count} × {dims}-d (IP, F32)",
                    path.display(),
                    head.count_present,
                    head.dimensions,
                    head.metric,
                    head.quantization
                ),
            ));
        }
        let hnsw = Hnsw::new(dims, params)?;
        hnsw.index
            .load_from_buffer(&data)
            .map_err(|e| vector_err(&path.display().to_string(), e))?;
        if hnsw.index.size() != count {
            return Err(bad(
                index_dir,
                format!("{} did not load {count} vectors", path.display()),
            ));
        }
        hnsw.reserve(count, THREAD_SLOTS)?;
        Ok(hnsw)
    }

    /// An independent copy (serialised and loaded in memory), to extend without touching `self`.
    pub fn try_clone(&self) -> Result<Hnsw> {
        let copy = Hnsw::new(self.dims, self.params)?;
        if self.len() > 0 {
            let buf = self.to_bytes()?;
            copy.index
                .load_from_buffer(&buf)
                .map_err(|e| vector_err("copy", e))?;
            copy.reserve(self.len(), THREAD_SLOTS)?;
        }
        Ok(copy)
    }

    /// Number of vectors in the graph.
    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// Inserts `rows` (row-major, `dims` wide, unit vectors) under keys `first_key`,
    /// `first_key + 1`, …; uses up to `threads` threads (usearch inserts concurrently).
    ///
    /// Errors: `Vector` if usearch fails (out of memory, duplicate key).
    pub fn extend(&self, first_key: usize, rows: &[f32], threads: usize) -> Result<()> {
        let n = rows.len() / self.dims;
        if n == 0 {
            return Ok(());
        }
        let workers = threads
            .clamp(1, THREAD_SLOTS)
            .min(n.div_ceil(MIN_ROWS_PER_WORKER));
        self.reserve(self.len() + n, THREAD_SLOTS)?;
        let per_worker = n.div_ceil(workers);
        let insert = |start: usize, part: &[f32]| -> Result<()> {
            for (i, row) in part.chunks_exact(self.dims).enumerate() {
                let key = (first_key + start + i) as u64;
                self.index.add(key, row).map_err(|e| vector_err("add", e))?;
            }
            Ok(())
        };
        if workers == 1 {
            return insert(0, rows);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = rows
                .chunks(per_worker * self.dims)
                .enumerate()
                .map(|(w, part)| scope.spawn(move || insert(w * per_worker, part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("HNSW insertion thread panicked"))
                .collect::<Result<Vec<()>>>()
        })?;
        Ok(())
    }

    /// Writes the graph to `gen_dir/hnsw.usearch`, fsynced; returns its length in bytes.
    pub fn save(&self, gen_dir: &Path) -> Result<u64> {
        let buf = self.to_bytes()?;
        write_file_synced(&gen_dir.join(HNSW_FILE), &buf)?;
        Ok(buf.len() as u64)
    }

    /// Approximate `k` nearest neighbours of the unit vector `query` (length `dims`):
    /// `(ordinal, cosine similarity)` best first. `Ok(None)` if every usearch thread context is
    /// busy (too many concurrent searches); the caller should then search exactly.
    ///
    /// Errors: `Vector` if usearch fails otherwise.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Option<Vec<(usize, f32)>>> {
        if k == 0 || self.len() == 0 {
            return Ok(Some(Vec::new()));
        }
        match self.index.search(query, k) {
            Ok(m) => Ok(Some(
                m.keys
                    .iter()
                    .zip(&m.distances)
                    .map(|(&key, &d)| (key as usize, 1.0 - d))
                    .collect(),
            )),
            Err(e) if e.what().contains("Reserve capacity") => Ok(None),
            Err(e) => Err(vector_err("search", e)),
        }
    }

    fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut buf)
            .map_err(|e| vector_err("serialise", e))?;
        Ok(buf)
    }

    fn reserve(&self, capacity: usize, threads: usize) -> Result<()> {
        self.index
            .reserve_capacity_and_threads(capacity, threads)
            .map_err(|e| vector_err("reserve", e))
    }
}
