//! One module per subcommand.

pub mod bench;
pub mod embed;
pub mod eval;
pub mod index;
pub mod info;
pub mod rank;
pub mod score;
pub mod search;
pub mod serve;

use anyhow::{Context, Result};
use rerank_engine::{CrossEncoder, CrossEncoderOptions};

/// Resolves `model` (folder or hub id) and loads it as a cross-encoder.
pub fn load_cross_encoder(model: &str, options: CrossEncoderOptions) -> Result<CrossEncoder> {
    let dir = rerank_engine::resolve::resolve_model(model)?;
    CrossEncoder::from_dir(&dir, options)
        .with_context(|| format!("cannot load cross-encoder {model}"))
}
