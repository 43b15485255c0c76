//! `rerank rank`: order documents by relevance to a query.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use rerank_engine::CrossEncoderOptions;
use serde_json::json;

use crate::{input, output};

#[derive(clap::Args)]
pub struct Args {
    /// Cross-encoder: a model folder or a Hugging Face hub id.
    #[arg(long)]
    model: String,
    /// The query.
    #[arg(long)]
    query: String,
    /// Keep the best N documents (default: all).
    #[arg(long)]
    top_n: Option<usize>,
    /// Show the raw logit instead of the sigmoid / softmax score.
    #[arg(long)]
    raw_scores: bool,
    /// One JSON line per ranked document: {"rank", "index", "score", "logit", "text"}.
    #[arg(long)]
    json: bool,
    /// Truncate pairs to at most N tokens (special tokens included); default: the model's.
    #[arg(long)]
    max_length: Option<usize>,
    /// Instruction for an LLM reranker with a prompt template (Qwen3-Reranker's
    /// `<Instruct>`), replacing the model's default; an error for other models.
    #[arg(long)]
    instruction: Option<String>,
    /// Documents: one per line, or JSONL {"text": ...}; stdin when absent or "-".
    file: Option<PathBuf>,
    /// Precision of the cross-encoder's linear layers: `f32` (default, PyTorch parity) or `bf16`
    /// (bf16 inputs, f32 accumulation on AMX / AVX512-BF16; faster, logits move by a few 1e-2).
    #[arg(long, value_enum, default_value_t = super::PrecisionArg::F32)]
    precision: super::PrecisionArg,
}

pub fn run(args: Args) -> Result<()> {
    if args.top_n == Some(0) {
        bail!("--top-n must be at least 1");
    }
    let docs = input::read_documents(args.file.as_deref())?;
    let ce = super::load_cross_encoder(
        &args.model,
        CrossEncoderOptions {
            max_length: args.max_length,
            instruction: args.instruction.clone(),
            precision: args.precision.into(),
            ..Default::default()
        },
    )?;
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let top_n = args.top_n.unwrap_or(docs.len()).max(1);
    let ranked = ce.rank(&args.query, &refs, top_n)?;
    let mut out = output::stdout();
    for (rank, r) in ranked.iter().enumerate() {
        let text = &docs[r.index];
        if args.json {
            output::json_line(
                &mut out,
                &json!({"rank": rank + 1, "index": r.index, "score": r.score, "logit": r.logit, "logits": r.logits, "text": text}),
            )?;
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
