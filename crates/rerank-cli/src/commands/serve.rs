//! `rerank serve`: the HTTP server (TEI-, Cohere- and OpenAI-compatible routes, `/search`).
//! Only parses flags, loads the models and hands them to `rerank_server`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rerank_engine::{CrossEncoderOptions, EmbedderOptions};
use rerank_retrieval::index::Index;
use rerank_server::{AppState, Models, Named, ServerConfig};

use super::embed::load_embedder;

#[derive(clap::Args)]
pub struct Args {
    /// Cross-encoder for /rerank, /v1/rerank, /v2/rerank, /predict and /search.
    #[arg(long)]
    reranker: Option<String>,
    /// Bi-encoder for /embed and /v1/embeddings (and /search's dense first stage; default
    /// there: the one that built --index).
    #[arg(long)]
    embedder: Option<String>,
    /// Index directory built by `rerank index`, for POST /search.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Address to bind; 127.0.0.1 unless told otherwise (use 0.0.0.0 to listen on every interface).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// TCP port (0 = any free port; the bound address is printed on stderr).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on every route but /health.
    #[arg(long, env = "RERANK_API_KEY")]
    api_key: Option<String>,
    /// Padded tokens per model batch; requests are merged up to this budget.
    #[arg(long, default_value_t = 16384)]
    max_batch_tokens: usize,
    /// Requests queued or running at once; more are answered 429.
    #[arg(long, default_value_t = 512)]
    max_concurrent_requests: usize,
    /// Largest request body in bytes (larger → 413).
    #[arg(long, default_value_t = 2_000_000)]
    payload_limit: usize,
    /// Most documents / inputs per request (more → 413).
    #[arg(long, default_value_t = 1000)]
    max_client_batch_size: usize,
    /// Lower the reranker's max length (tokens, special tokens included).
    #[arg(long)]
    max_length: Option<usize>,
    /// Instruction for an LLM reranker with a prompt template (Qwen3-Reranker's
    /// `<Instruct>`), replacing the model's default; an error for other models.
    #[arg(long)]
    instruction: Option<String>,
    /// Precision of the cross-encoder's linear layers: `f32` (default, PyTorch parity) or `bf16`
    /// (bf16 inputs, f32 accumulation on AMX / AVX512-BF16; faster, logits move by a few 1e-2).
    #[arg(long, value_enum, default_value_t = super::PrecisionArg::F32)]
    precision: super::PrecisionArg,
}

pub fn run(args: Args) -> Result<()> {
    if args.reranker.is_none() && args.embedder.is_none() && args.index.is_none() {
        bail!("give at least one of --reranker, --embedder, --index");
    }
    if args.max_batch_tokens == 0 || args.max_concurrent_requests == 0 {
        bail!("--max-batch-tokens and --max-concurrent-requests must be at least 1");
    }
    let reranker = match &args.reranker {
        Some(spec) => {
            let m = super::load_cross_encoder(
                spec,
                CrossEncoderOptions {
                    max_length: args.max_length,
                    instruction: args.instruction.clone(),
                    precision: args.precision.into(),
                    ..Default::default()
                },
            )?;
            Some(Named {
                name: spec.clone(),
                model: Arc::new(m),
            })
        }
        None => None,
    };
    let index = match &args.index {
        Some(dir) => {
            Some(Arc::new(Index::open(dir).with_context(|| {
                format!("cannot open index {}", dir.display())
            })?))
        }
        None => None,
    };
    let embedder_spec = args
        .embedder
        .clone()
        .or_else(|| index.as_ref().map(|i| i.embedder().name.clone()));
    let embedder = match embedder_spec {
        Some(spec) => {
            let (m, _) = load_embedder(&spec, EmbedderOptions::default())?;
            Some(Named {
                name: spec,
                model: Arc::new(m),
            })
        }
        None => None,
    };
    let config = ServerConfig {
        max_batch_tokens: args.max_batch_tokens,
        max_concurrent_requests: args.max_concurrent_requests,
        payload_limit: args.payload_limit,
        max_client_batch_size: args.max_client_batch_size,
        api_key: args.api_key.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let state = AppState::new(
            config,
            Models {
                reranker,
                embedder,
                index,
            },
        );
        eprintln!("rerank serve: listening on http://{local}");
        rerank_server::serve(listener, state, rerank_server::shutdown_signal()).await?;
        eprintln!("rerank serve: stopped");
        Ok(())
    })
}
