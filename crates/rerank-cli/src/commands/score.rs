//! `rerank score`: logits and scores of (query, document) pairs.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use rerank_engine::CrossEncoderOptions;
use serde_json::json;

use crate::{input, output};

#[derive(clap::Args)]
pub struct Args {
    /// Cross-encoder: a model folder or a Hugging Face hub id.
    #[arg(long)]
    model: String,
    /// JSONL file, one {"query": ..., "document": ...} per line ("-" = stdin).
    #[arg(long)]
    pairs: PathBuf,
    /// Truncate pairs to at most N tokens (special tokens included); default: the model's.
    #[arg(long)]
    max_length: Option<usize>,
    /// Instruction for an LLM reranker with a prompt template (Qwen3-Reranker's
    /// `<Instruct>`), replacing the model's default; an error for other models.
    #[arg(long)]
    instruction: Option<String>,
    /// Pairs per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// One JSON line per pair, in input order: {"index", "logits", "score", "input_ids"}.
    #[arg(long)]
    json: bool,
    /// Precision of the cross-encoder's linear layers: `f32` (default, PyTorch parity) or `bf16`
    /// (bf16 inputs, f32 accumulation on AMX / AVX512-BF16; faster, logits move by a few 1e-2).
    #[arg(long, value_enum, default_value_t = super::PrecisionArg::F32)]
    precision: super::PrecisionArg,
}

pub fn run(args: Args) -> Result<()> {
    let pairs = input::read_pairs(Some(&args.pairs))?;
    let ce = super::load_cross_encoder(
        &args.model,
        CrossEncoderOptions {
            max_length: args.max_length,
            instruction: args.instruction.clone(),
            batch_size: args.batch_size,
            precision: args.precision.into(),
            ..Default::default()
        },
    )?;
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();
    let start = Instant::now();
    let encoded = ce.encode(&refs, None)?;
    let predictions = ce.predict_encoded(&encoded, args.batch_size)?;
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
