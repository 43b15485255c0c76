//! One module per subcommand.

pub mod bench;
pub mod embed;
pub mod eval;
pub mod index;
pub mod info;
pub mod long_documents;
pub mod rank;
pub mod score;
pub mod search;
pub mod serve;

use anyhow::{bail, Context, Result};
use rerank_engine::batch::DEFAULT_MAX_BATCH_TOKENS;
use rerank_engine::{CrossEncoder, CrossEncoderOptions, Precision};
use rerank_retrieval::RetrieverKind;

/// `--precision` of the cross-encoder: see [`rerank_engine::Precision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// f32 throughout (PyTorch parity).
    F32,
    /// bf16 inputs to the linear layers, f32 accumulation.
    Bf16,
    /// int8 linear layers: per-channel int8 weights, per-token int8 activations, i32
    /// accumulation.
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::Int8 => Precision::Int8,
        }
    }
}

/// How the cross-encoder is loaded and batched: the flags of every command that loads one
/// (`rank`, `score`, `search`, `eval`, `bench`, `serve`), defined once and flattened in. Each
/// also reads its environment variable (`RERANK_PRECISION`, `RERANK_MAX_LENGTH`,
/// `RERANK_BATCH_SIZE`, `RERANK_MAX_BATCH_TOKENS`, `RERANK_INSTRUCTION`) on every one of these
/// commands, for `serve`'s configuration by environment; the command line wins.
#[derive(clap::Args, Clone, Debug)]
pub struct RerankerFlags {
    /// Precision of the cross-encoder's linear layers: `f32` (default, PyTorch parity), `bf16`
    /// (bf16 inputs, f32 accumulation on AMX / AVX512-BF16; faster, logits move by a few 1e-2)
    /// or `int8` (per-channel int8 weights, per-token int8 activations, i32 accumulation on
    /// AMX-INT8 / AVX512-VNNI).
    #[arg(long, env = "RERANK_PRECISION", value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Truncate pairs to at most N tokens (special tokens included); default: the model's.
    /// More than the model's positions is an error.
    #[arg(long, env = "RERANK_MAX_LENGTH")]
    pub max_length: Option<usize>,
    /// Pairs per forward pass (after sorting by length).
    #[arg(long, env = "RERANK_BATCH_SIZE", default_value_t = 32)]
    pub batch_size: usize,
    /// Padded tokens (pairs × longest pair) per forward pass; `serve` merges requests up to
    /// this budget.
    #[arg(long, env = "RERANK_MAX_BATCH_TOKENS", default_value_t = DEFAULT_MAX_BATCH_TOKENS)]
    pub max_batch_tokens: usize,
    /// Instruction for an LLM reranker with a prompt template (Qwen3-Reranker's
    /// `<Instruct>`), replacing the model's default; an error for other models.
    #[arg(long, env = "RERANK_INSTRUCTION")]
    pub instruction: Option<String>,
}

impl RerankerFlags {
    /// The load options these flags say.
    ///
    /// Errors: `--batch-size`, `--max-batch-tokens` or `--max-length` of 0.
    pub fn options(&self) -> Result<CrossEncoderOptions> {
        if self.batch_size == 0 || self.max_batch_tokens == 0 || self.max_length == Some(0) {
            bail!("--batch-size, --max-batch-tokens and --max-length must be at least 1");
        }
        Ok(CrossEncoderOptions {
            max_length: self.max_length,
            batch_size: self.batch_size,
            precision: self.precision.into(),
            max_batch_tokens: self.max_batch_tokens,
            instruction: self.instruction.clone(),
        })
    }

    /// Loads `reranker` (folder or hub id) with these options.
    pub fn load(&self, reranker: &str) -> Result<CrossEncoder> {
        load_cross_encoder(reranker, self.options()?)
    }
}

/// `--retriever`: the first stage, see [`rerank_retrieval::RetrieverKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RetrieverArg {
    /// Bi-encoder + HNSW (or exact) cosine search.
    Dense,
    /// BM25 over the passages' text.
    Bm25,
    /// Reciprocal-rank fusion of dense and BM25.
    Hybrid,
}

impl From<RetrieverArg> for RetrieverKind {
    fn from(r: RetrieverArg) -> Self {
        match r {
            RetrieverArg::Dense => RetrieverKind::Dense,
            RetrieverArg::Bm25 => RetrieverKind::Bm25,
            RetrieverArg::Hybrid => RetrieverKind::Hybrid,
        }
    }
}

/// Resolves `model` (folder or hub id) and loads it as a cross-encoder.
pub fn load_cross_encoder(model: &str, options: CrossEncoderOptions) -> Result<CrossEncoder> {
    let dir = rerank_engine::resolve::resolve_model(model)?;
    CrossEncoder::from_dir(&dir, options)
        .with_context(|| format!("cannot load cross-encoder {model}"))
}
