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
use rerank_engine::{CrossEncoder, CrossEncoderOptions, Precision};

/// `--precision` of the cross-encoder: see [`rerank_engine::Precision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// f32 throughout (PyTorch parity).
    F32,
    /// bf16 inputs to the linear layers, f32 accumulation.
    Bf16,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
        }
    }
}

/// Resolves `model` (folder or hub id) and loads it as a cross-encoder.
pub fn load_cross_encoder(model: &str, options: CrossEncoderOptions) -> Result<CrossEncoder> {
    let dir = rerank_engine::resolve::resolve_model(model)?;
    CrossEncoder::from_dir(&dir, options)
        .with_context(|| format!("cannot load cross-encoder {model}"))
}
