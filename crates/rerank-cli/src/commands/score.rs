//! `rerank score`: logits and scores of (query, document) pairs.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use crate::{input, output};

#[derive(clap::Args)]
pub struct Args {
    /// Cross-encoder: a model folder or a Hugging Face hub id (`--model` is an alias).
    #[arg(long, visible_alias = "model")]
    reranker: String,
    /// JSONL file, one {"query": ..., "document": ...} per line ("-" = stdin).
    #[arg(long)]
    pairs: PathBuf,
    /// One JSON line per pair, in input order: {"index", "logits", "score", "input_ids"}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: super::RerankerFlags,
}

pub fn run(args: Args) -> Result<()> {
    let pairs = input::read_pairs(Some(&args.pairs))?;
    let ce = args.model.load(&args.reranker)?;
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();
    let start = Instant::now();
    let encoded = ce.encode(&refs, None)?;
    let predictions = ce.predict_encoded(&encoded, args.model.batch_size)?;
    let secs = start.elapsed().as_secs_f64();
    let mut out = output::stdout();
    for (i, (p, e)) in predictions.iter().zip(&encoded).enumerate() {
        if args.json {
            output::json_line(
                &mut out,
                &json!({"index": i, "logits": p.logits, "score": p.score, "input_ids": e.input_ids}),
            )?;
        } else {
            let logits: Vec<String> = p.logits.iter().map(|l| format!("{l:.6}")).collect();
            writeln!(out, "{i}\t{:.6}\t[{}]", p.score, logits.join(", "))?;
        }
    }
    out.flush()?;
    if !pairs.is_empty() {
        eprintln!(
            "scored {} pairs in {:.3} s ({:.1} pairs/s)",
            pairs.len(),
            secs,
            pairs.len() as f64 / secs
        );
    }
    Ok(())
}
