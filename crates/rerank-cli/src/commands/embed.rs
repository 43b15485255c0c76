//! `rerank embed`: bi-encoder embeddings of texts.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use rerank_engine::{Embedder, EmbedderOptions};
use serde_json::json;

use crate::{input, output};

#[derive(clap::Args)]
pub struct Args {
    /// Bi-encoder: a sentence-transformers folder or a Hugging Face hub id.
    #[arg(long)]
    model: String,
    /// One JSON line per text, in input order: {"index", "embedding"}.
    #[arg(long)]
    json: bool,
    /// Embed as queries (with the model's query prompt) instead of as documents.
    #[arg(long, conflicts_with = "prompt")]
    query: bool,
    /// Prefix every text with this prompt (e.g. "query: " for e5 models).
    #[arg(long)]
    prompt: Option<String>,
    /// Truncate texts to at most N tokens (special tokens included); default: the model's.
    #[arg(long)]
    max_length: Option<usize>,
    /// Precision of the bi-encoder's linear layers: `f32` (default, PyTorch parity) or `bf16`.
    #[arg(long, value_enum, default_value_t = super::PrecisionArg::F32)]
    precision: super::PrecisionArg,
    /// Texts: one per line, or JSONL {"text": ...}; stdin when absent or "-".
    file: Option<PathBuf>,
}

/// Resolves `model` (folder or hub id) and loads it as a bi-encoder.
pub fn load_embedder(model: &str, options: EmbedderOptions) -> Result<(Embedder, PathBuf)> {
    let dir = rerank_engine::resolve::resolve_model(model)?;
    let e = Embedder::from_dir(&dir, options)
        .with_context(|| format!("cannot load embedder {model}"))?;
    Ok((e, dir))
}

pub fn run(args: Args) -> Result<()> {
    let texts = input::read_documents(args.file.as_deref())?;
    let (embedder, _) = load_embedder(
        &args.model,
        EmbedderOptions {
            max_length: args.max_length,
            precision: args.precision.into(),
            ..Default::default()
        },
    )?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let prompt = match (&args.prompt, args.query) {
        (Some(p), _) => p.clone(),
        (None, true) => embedder.info().query_prompt.clone(),
        (None, false) => embedder.info().document_prompt.clone(),
    };
    let vectors = embedder.embed_with_prompt(&refs, &prompt)?;
    let mut out = output::stdout();
    for (i, v) in vectors.iter().enumerate() {
        if args.json {
            output::json_line(&mut out, &json!({"index": i, "embedding": v}))?;
        } else {
            let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.4}")).collect();
            writeln!(out, "{i}\t{} dims\t[{}, …]", v.len(), head.join(", "))?;
        }
    }
    out.flush()?;
    Ok(())
}
