//! `rerank rank`: order documents by relevance to a query.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::json;

use crate::{input, output};

#[derive(clap::Args)]
pub struct Args {
    /// Cross-encoder: a model folder or a Hugging Face hub id (`--model` is an alias).
    #[arg(long, visible_alias = "model")]
    reranker: String,
    /// The query.
    #[arg(long)]
    query: String,
    /// Keep the best N documents (default: all).
    #[arg(long)]
    top_n: Option<usize>,
    /// Show the raw logit instead of the sigmoid / softmax score.
    #[arg(long)]
    raw_scores: bool,
    /// One JSON line per ranked document: {"rank", "index", "score", "logit", "text"}, plus
    /// "window": {"index", "char_start", "char_end"} (the best window) with
    /// `--long-documents chunk`.
    #[arg(long)]
    json: bool,
    /// Documents: one per line, or JSONL {"text": ...}; stdin when absent or "-".
    file: Option<PathBuf>,
    #[command(flatten)]
    model: super::RerankerFlags,
    #[command(flatten)]
    long: super::long_documents::LongDocumentFlags,
}

pub fn run(args: Args) -> Result<()> {
    if args.top_n == Some(0) {
        bail!("--top-n must be at least 1");
    }
    if args.query.trim().is_empty() {
        // The server answers 422 for the same input.
        bail!("the query is empty");
    }
    let long_documents = args.long.mode()?;
    let docs = input::read_documents(args.file.as_deref())?;
    let ce = args.model.load(&args.reranker)?;
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let top_n = args.top_n.unwrap_or(docs.len()).max(1);
    let ranked = ce.rank_documents(&args.query, &refs, top_n, None, long_documents)?;
    let mut out = output::stdout();
    for (rank, long) in ranked.iter().enumerate() {
        let r = &long.ranked;
        let text = &docs[r.index];
        if args.json {
            let mut line = json!({"rank": rank + 1, "index": r.index, "score": r.score, "logit": r.logit, "logits": r.logits, "text": text});
            if let Some(w) = long.window {
                // Chunk mode only: the window that gave the score.
                line["window"] = json!(w);
            }
            output::json_line(&mut out, &line)?;
        } else {
            let value = if args.raw_scores { r.logit } else { r.score };
            writeln!(
                out,
                "{}\t{value:.4}\t{}",
                rank + 1,
                output::snippet(text, 160)
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
