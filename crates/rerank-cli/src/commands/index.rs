//! `rerank index`: chunk files, embed the passages, add them to a persistent index.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rerank_engine::{Embedder, EmbedderOptions};
use rerank_retrieval::chunk::{RecursiveSplitter, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE};
use rerank_retrieval::index::Index;
use rerank_retrieval::{ingest, pipeline};

use super::embed::load_embedder;

/// The bi-encoder used when `--embedder` is not given.
pub const DEFAULT_EMBEDDER: &str = "sentence-transformers/all-MiniLM-L6-v2";

#[derive(clap::Args)]
pub struct Args {
    /// Index directory (created if absent; added to if present).
    #[arg(long)]
    index: PathBuf,
    /// Bi-encoder: a folder or hub id. Default: the index's own embedder, or all-MiniLM-L6-v2.
    #[arg(long)]
    embedder: Option<String>,
    /// Passage size in the embedder's tokens.
    #[arg(long, default_value_t = DEFAULT_CHUNK_SIZE)]
    chunk_size: usize,
    /// Tokens shared by consecutive passages of one file.
    #[arg(long, default_value_t = DEFAULT_CHUNK_OVERLAP)]
    chunk_overlap: usize,
    /// Files or folders: .txt / .md (one document each), .jsonl ({"id", "text", "metadata"} or
    /// BEIR corpus.jsonl); folders are walked for those.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let splitter = RecursiveSplitter::new(args.chunk_size, args.chunk_overlap)?;
    let sources = ingest::read_paths(&args.files)?;
    if sources.is_empty() {
        bail!("no text found in {:?}", args.files);
    }
    let (mut index, embedder) = open_with_embedder(&args.index, args.embedder.as_deref())?;
    let passages = pipeline::passages(&sources, &splitter, &embedder);
    let bar = ProgressBar::new(passages.len() as u64).with_style(
        ProgressStyle::with_template("embedding {bar:40} {pos}/{len} passages {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let report = pipeline::add_passages(&mut index, &embedder, passages, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "indexed {} sources: {} passages, {} added, {} already present; embedding {:.1} s ({:.1} passages/s), writing {:.1} s, total {:.1} s",
        sources.len(),
        report.passages,
        report.added,
        report.skipped_existing,
        report.embed_secs,
        report.added as f64 / report.embed_secs.max(1e-9),
        report.write_secs,
        secs
    );
    eprintln!(
        "{} now holds {} passages",
        args.index.display(),
        index.len()
    );
    Ok(())
}

/// Opens the index at `dir`, or creates it when `dir` holds none, together with its bi-encoder:
/// `embedder` (a folder or hub id) if given, else the one that built the index, else
/// [`DEFAULT_EMBEDDER`]. The index records the model's absolute folder so that `search` finds
/// it from any directory.
///
/// Errors: the model cannot be loaded, the index cannot be read or created, or the index was
/// built by a different embedder (fingerprint mismatch).
pub fn open_with_embedder(dir: &Path, embedder: Option<&str>) -> Result<(Index, Embedder)> {
    let existing = if dir.join("CURRENT").exists() {
        Some(Index::open(dir)?)
    } else {
        None
    };
    let spec = match (embedder, &existing) {
        (Some(e), _) => e.to_string(),
        (None, Some(index)) => index.embedder().name.clone(),
        (None, None) => DEFAULT_EMBEDDER.to_string(),
    };
    let (embedder, model_dir) = load_embedder(&spec, EmbedderOptions::default())?;
    let name = std::fs::canonicalize(&model_dir)
        .unwrap_or(model_dir)
        .display()
        .to_string();
    let id = pipeline::embedder_id(&embedder, &name)?;
    let index = match existing {
        Some(index) => {
            index.check_embedder(&id)?;
            index
        }
        None => Index::open_or_create(dir, id)
            .with_context(|| format!("cannot create index {}", dir.display()))?,
    };
    Ok((index, embedder))
}
