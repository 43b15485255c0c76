//! `rerank info`: what a model is.

use std::io::Write;

use anyhow::Result;
use rerank_engine::CrossEncoderOptions;

use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// A model folder or a Hugging Face hub id.
    #[arg(long)]
    model: String,
    /// Print the information as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let ce = super::load_cross_encoder(&args.model, CrossEncoderOptions::default())?;
    let info = serde_json::to_value(ce.info())?;
    let mut out = output::stdout();
    if args.json {
        output::json_line(&mut out, &info)?;
    } else {
        writeln!(out, "kind: cross-encoder")?;
        for (k, v) in info.as_object().expect("struct") {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            writeln!(out, "{k}: {v}")?;
        }
    }
    out.flush()?;
    Ok(())
}
