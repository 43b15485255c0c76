//! `rerank serve`: the HTTP server (TEI-, Cohere-, Jina-, infinity-, Weaviate- and
//! OpenAI-compatible routes, `/search`, probes). Only parses flags, loads the models and hands
//! them to `rerank_server`. Every flag also reads the environment variable `RERANK_<FLAG>`
//! (`--max-batch-tokens` → `RERANK_MAX_BATCH_TOKENS`), as TEI's flags do, so that a replica is
//! configured by its environment; a flag on the command line wins.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rerank_engine::EmbedderOptions;
use rerank_retrieval::index::Index;
use rerank_server::{AppState, Models, Named, ServerConfig};

use super::embed::load_embedder;

#[derive(clap::Args)]
pub struct Args {
    /// Cross-encoder for /rerank, /v1/rerank, /v2/rerank, /predict and /search.
    #[arg(long, env = "RERANK_RERANKER")]
    reranker: Option<String>,
    /// Bi-encoder for /embed and /v1/embeddings (and /search's dense first stage; default
    /// there: the one that built --index).
    #[arg(long, env = "RERANK_EMBEDDER")]
    embedder: Option<String>,
    /// Index directory built by `rerank index`, for POST /search.
    #[arg(long, env = "RERANK_INDEX")]
    index: Option<PathBuf>,
    /// Address to bind; 127.0.0.1 unless told otherwise (use 0.0.0.0 to listen on every interface).
    #[arg(long, env = "RERANK_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// TCP port (0 = any free port; the bound address is printed on stderr).
    #[arg(long, env = "RERANK_PORT", default_value_t = 3000)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on every route but the probes /health, /ready and
    /// /.well-known/ready.
    #[arg(long, env = "RERANK_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Requests queued or running at once; more are answered 429.
    #[arg(long, env = "RERANK_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    max_concurrent_requests: usize,
    /// Largest request body in bytes (larger → 413).
    #[arg(long, env = "RERANK_PAYLOAD_LIMIT", default_value_t = 2_000_000)]
    payload_limit: usize,
    /// Most documents / inputs per request on the TEI and OpenAI routes (more → 413).
    #[arg(long, env = "RERANK_MAX_CLIENT_BATCH_SIZE", default_value_t = 1000)]
    max_client_batch_size: usize,
    /// Most documents per request on the Cohere routes /v1/rerank, /v2/rerank (more → 413);
    /// they are split internally into model batches.
    #[arg(long, env = "RERANK_MAX_COHERE_DOCUMENTS", default_value_t = 10_000)]
    max_cohere_documents: usize,
    /// Most characters of one text (query, document, input), checked before tokenization
    /// (more → 413). Bounds the tokenizer's memory per text (~70 bytes per input byte).
    #[arg(long, env = "RERANK_MAX_INPUT_CHARS", default_value_t = 100_000)]
    max_input_chars: usize,
    /// Text bytes being tokenized at once over all requests; other requests wait for budget.
    #[arg(
        long,
        env = "RERANK_MAX_TOKENIZATION_BYTES",
        default_value_t = 8_000_000
    )]
    max_tokenization_bytes: usize,
    /// Seconds for a whole request head (request line and headers) to arrive; a connection
    /// that sends none in this time (idle keep-alive included) is closed.
    #[arg(
        long,
        env = "RERANK_HEADER_READ_TIMEOUT",
        default_value_t = 10.0,
        value_name = "SECS"
    )]
    header_read_timeout: f64,
    /// Seconds for a whole request body to arrive after its head (else 408, connection closed).
    #[arg(
        long,
        env = "RERANK_BODY_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECS"
    )]
    body_timeout: f64,
    /// Seconds a keep-alive connection may stay idle (no request in flight).
    #[arg(
        long,
        env = "RERANK_IDLE_TIMEOUT",
        default_value_t = 60.0,
        value_name = "SECS"
    )]
    idle_timeout: f64,
    /// Seconds from a request's head to its answer; later → 504.
    #[arg(
        long,
        env = "RERANK_REQUEST_TIMEOUT",
        default_value_t = 60.0,
        value_name = "SECS"
    )]
    request_timeout: f64,
    /// Open connections at most; at the limit the longest-idle one is closed for a new one
    /// (503 when all are busy). Lowered to fit 64 below the open-file limit.
    #[arg(long, env = "RERANK_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Seconds to keep serving after SIGTERM / Ctrl-C before the listener closes: /ready turns
    /// 503 at once (load balancers stop sending), while in-flight, queued and new requests are
    /// still answered; then the server finishes the requests in flight and exits 0. 0 stops
    /// at once.
    #[arg(
        long,
        env = "RERANK_DRAIN_SECONDS",
        default_value_t = 5.0,
        value_name = "SECS"
    )]
    drain_seconds: f64,
    /// /ready answers 503 while this many requests are queued or running (default:
    /// --max-concurrent-requests, where new requests get 429).
    #[arg(long, env = "RERANK_READY_MAX_IN_FLIGHT")]
    ready_max_in_flight: Option<usize>,
    /// Memory bound of the rerank score cache in MiB (2^20 bytes): a repeated (query,
    /// document) pair is answered from it, bit for bit the computed score, without the model.
    /// LRU; keyed by the model, its precision and the pair's token ids. 0 disables it.
    #[arg(
        long,
        env = "RERANK_SCORE_CACHE_MB",
        default_value_t = 64,
        value_name = "MIB"
    )]
    score_cache_mb: usize,
    /// Most pairs in the rerank score cache, on top of --score-cache-mb (default: as many as
    /// the memory bound holds, 142 bytes a pair). 0 disables it.
    #[arg(long, env = "RERANK_SCORE_CACHE_ENTRIES")]
    score_cache_entries: Option<usize>,
    #[command(flatten)]
    model: super::RerankerFlags,
    /// The rerank routes' mode for documents that do not fit beside the query (TEI
    /// `/rerank`, infinity, Weaviate, and Cohere requests without `max_chunks_per_doc` /
    /// `max_tokens_per_doc`).
    #[command(flatten)]
    long: super::long_documents::LongDocumentFlags,
}

pub fn run(args: Args) -> Result<()> {
    if args.reranker.is_none() && args.embedder.is_none() && args.index.is_none() {
        bail!("give at least one of --reranker, --embedder, --index");
    }
    if args.max_concurrent_requests == 0 {
        bail!("--max-concurrent-requests must be at least 1");
    }
    if args.max_connections == 0 {
        bail!("--max-connections must be at least 1");
    }
    let header_read_timeout = seconds("--header-read-timeout", args.header_read_timeout)?;
    let body_timeout = seconds("--body-timeout", args.body_timeout)?;
    let idle_timeout = seconds("--idle-timeout", args.idle_timeout)?;
    let request_timeout = seconds("--request-timeout", args.request_timeout)?;
    if !(args.drain_seconds >= 0.0 && args.drain_seconds <= 3600.0) {
        bail!(
            "--drain-seconds must be a number of seconds in [0, 3600], not {}",
            args.drain_seconds
        );
    }
    if args.ready_max_in_flight == Some(0) {
        bail!("--ready-max-in-flight must be at least 1");
    }
    // At most 1 TiB: the cache allocates only what it holds, but the product must not wrap.
    if args.score_cache_mb > 1 << 20 {
        bail!(
            "--score-cache-mb must be at most 1048576 (1 TiB), not {}",
            args.score_cache_mb
        );
    }
    // Checks --batch-size, --max-batch-tokens and --max-length even without a reranker.
    let options = args.model.options()?;
    let reranker = match &args.reranker {
        Some(spec) => {
            let m = super::load_cross_encoder(spec, options)?;
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
        max_batch_tokens: args.model.max_batch_tokens,
        max_concurrent_requests: args.max_concurrent_requests,
        payload_limit: args.payload_limit,
        max_client_batch_size: args.max_client_batch_size,
        max_cohere_documents: args.max_cohere_documents,
        max_input_chars: args.max_input_chars,
        max_tokenization_bytes: args.max_tokenization_bytes,
        api_key: args.api_key.clone(),
        header_read_timeout,
        body_timeout,
        idle_timeout,
        request_timeout,
        max_connections: args.max_connections,
        drain: std::time::Duration::from_secs_f64(args.drain_seconds),
        ready_max_in_flight: args.ready_max_in_flight,
        score_cache_bytes: args.score_cache_mb << 20,
        score_cache_entries: args.score_cache_entries,
        long_documents: args.long.mode()?,
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

/// A positive, finite number of seconds as a `Duration` (at most a day).
fn seconds(flag: &str, secs: f64) -> Result<std::time::Duration> {
    if !(secs > 0.0 && secs <= 86_400.0) {
        bail!("{flag} must be a number of seconds in (0, 86400], not {secs}");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
