//! `rerank search`: the two-stage job — first stage top-k, cross-encoder top-n.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use rerank_engine::EmbedderOptions;
use rerank_retrieval::compression::{mark_first_stage, StageTimings};
use rerank_retrieval::index::Index;
use rerank_retrieval::{
    build_retriever, ContextualCompressionRetriever, CrossEncoderReranker, Document, Fusion,
    Retriever, RetrieverKind,
};
use serde_json::json;

use super::embed::load_embedder;
use super::{RerankerFlags, RetrieverArg};
use crate::output;

/// The reranker used when `--reranker` is not given.
pub const DEFAULT_RERANKER: &str = "BAAI/bge-reranker-base";

#[derive(clap::Args)]
pub struct Args {
    /// Index directory built by `rerank index`.
    #[arg(long)]
    index: PathBuf,
    /// Cross-encoder: a folder or hub id.
    #[arg(long, default_value = DEFAULT_RERANKER)]
    reranker: String,
    /// Bi-encoder for the query; default: the one that built the index.
    #[arg(long)]
    embedder: Option<String>,
    /// First stage.
    #[arg(long, value_enum, default_value = "dense")]
    retriever: RetrieverArg,
    /// Candidates from the first stage (at most the index size; a larger value is clamped).
    #[arg(long, default_value_t = 20)]
    top_k: usize,
    /// Documents kept after reranking (at most --top-k).
    #[arg(long, default_value_t = 3)]
    top_n: usize,
    /// Print the first stage alone (no reranker), to see what reranking changes.
    #[arg(long)]
    no_rerank: bool,
    /// Exact (brute-force) dense search instead of HNSW.
    #[arg(long)]
    exact: bool,
    /// Combine the reranker's scores with the first stage's after reranking: `none` (the
    /// reranker's order), `rrf` (1/(60 + first-stage rank) + 1/(60 + rerank rank)) or
    /// `linear:ALPHA` (ALPHA·minmax(logit) + (1 − ALPHA)·minmax(first-stage score), 0 ≤ ALPHA ≤ 1).
    #[arg(long, default_value = "none", value_parser = parse_fusion)]
    fusion: Fusion,
    /// One JSON object: query, settings, timings and the documents with metadata.
    #[arg(long)]
    json: bool,
    /// The question.
    query: String,
    #[command(flatten)]
    model: RerankerFlags,
    #[command(flatten)]
    long: super::long_documents::LongDocumentFlags,
}

/// `--fusion`'s parser: [`Fusion`]'s `FromStr`, its message as clap's error.
pub fn parse_fusion(s: &str) -> std::result::Result<Fusion, String> {
    s.parse::<Fusion>().map_err(|e| e.to_string())
}

/// The first stage of `args`, with the index's embedder (or `--embedder`) when it needs one.
fn first_stage(args: &Args, index: Arc<Index>) -> Result<Box<dyn Retriever>> {
    let kind = RetrieverKind::from(args.retriever);
    let embedder = if kind.needs_embedder() {
        let spec = args
            .embedder
            .clone()
            .unwrap_or_else(|| index.embedder().name.clone());
        let (embedder, _) = load_embedder(&spec, EmbedderOptions::default())?;
        Some(Arc::new(embedder))
    } else {
        None
    };
    Ok(build_retriever(kind, index, embedder, args.exact)?)
}

pub fn run(args: Args) -> Result<()> {
    if args.top_k == 0 || args.top_n == 0 {
        bail!("--top-k and --top-n must be at least 1");
    }
    if args.query.trim().is_empty() {
        bail!("the query is empty");
    }
    if args.no_rerank && !args.fusion.is_none() {
        bail!("--fusion combines the reranker with the first stage: it needs reranking (drop --no-rerank)");
    }
    let long_documents = args.long.mode()?;
    let index = Arc::new(Index::open(&args.index)?);
    let retriever = first_stage(&args, index)?;
    let retriever_name = retriever.name();
    let (documents, timings) = if args.no_rerank {
        let start = Instant::now();
        let mut docs = retriever.retrieve(&args.query, args.top_k)?;
        mark_first_stage(&mut docs);
        let t = StageTimings {
            first_stage: start.elapsed(),
            ..Default::default()
        };
        (docs, t)
    } else {
        let model = args.model.load(&args.reranker)?;
        let pipeline = ContextualCompressionRetriever {
            base_retriever: retriever,
            base_compressor: Box::new(CrossEncoderReranker {
                model: Arc::new(model),
                top_n: args.top_n,
                fusion: args.fusion,
                long_documents,
            }),
            top_k: args.top_k,
        };
        pipeline.invoke_timed(&args.query)?
    };
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mut out = output::stdout();
    if args.json {
        let value = json!({
            "query": args.query,
            "retriever": retriever_name,
            "top_k": args.top_k,
            "top_n": if args.no_rerank { serde_json::Value::Null } else { json!(args.top_n) },
            "reranker": if args.no_rerank { serde_json::Value::Null } else { json!(args.reranker) },
            "fusion": args.fusion.to_string(),
            "timings_ms": {"first_stage": ms(timings.first_stage), "rerank": ms(timings.rerank)},
            "documents": documents,
        });
        output::json_line(&mut out, &value)?;
    } else {
        for (rank, d) in documents.iter().enumerate() {
            print_document(&mut out, rank, d, args.no_rerank, retriever_name)?;
        }
    }
    out.flush()?;
    if args.no_rerank {
        eprintln!(
            "first stage ({retriever_name}, top {}): {:.1} ms",
            args.top_k,
            ms(timings.first_stage)
        );
    } else {
        eprintln!(
            "first stage ({retriever_name}, top {}): {:.1} ms; rerank {} → {}: {:.1} ms",
            args.top_k,
            ms(timings.first_stage),
            args.top_k,
            args.top_n,
            ms(timings.rerank)
        );
    }
    Ok(())
}

fn print_document(
    out: &mut impl Write,
    rank: usize,
    d: &Document,
    first_stage_only: bool,
    retriever: &str,
) -> Result<()> {
    let first_rank = d
        .metadata
        .get("first_stage_rank")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let first_score = d
        .metadata
        .get("first_stage_score")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    if first_stage_only {
        writeln!(
            out,
            "{}. {retriever} score {first_score:.4}  [{}]",
            rank + 1,
            d.id
        )?;
    } else if let Some(fused) = d.metadata.get("fusion_score").and_then(|v| v.as_f64()) {
        let relevance = d
            .metadata
            .get("relevance_score")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let rerank_rank = d
            .metadata
            .get("rerank_rank")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        writeln!(
            out,
            "{}. fused {fused:.4}  (relevance {relevance:.4} #{rerank_rank}, first stage #{first_rank}, {retriever} {first_score:.4})  [{}]",
            rank + 1,
            d.id
        )?;
    } else {
        writeln!(
            out,
            "{}. relevance {:.4}  (first stage #{first_rank}, {retriever} {first_score:.4})  [{}]",
            rank + 1,
            d.score,
            d.id
        )?;
    }
    writeln!(out, "   {}\n", output::snippet(&d.text, 300))?;
    Ok(())
}
