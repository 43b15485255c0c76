//! Server configuration and the state shared by all handlers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rerank_engine::{CrossEncoder, Embedder};
use rerank_retrieval::index::Index;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::batcher::{BatchModels, Batcher};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::score_cache::{ModelId, ScoreCache};

/// Limits and switches of the server (the `rerank serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Padded tokens per model batch (and tokens of requests merged in one round).
    /// Default 16384 (TEI's default).
    pub max_batch_tokens: usize,
    /// Requests queued or running at once; one more is answered 429. Default 512.
    pub max_concurrent_requests: usize,
    /// Largest request body in bytes; larger → 413. Default 2 MB (2_000_000).
    pub payload_limit: usize,
    /// Most documents / inputs in one request on the TEI and OpenAI routes (`/rerank`,
    /// `/embed`, `/predict`, `/v1/embeddings`); more → 413. Default 1000.
    pub max_client_batch_size: usize,
    /// Most documents in one request on the Cohere routes (`/v1/rerank`, `/v2/rerank`), which
    /// are split internally into model batches; more → 413. Default 10,000 (Cohere's limit).
    pub max_cohere_documents: usize,
    /// Most characters (Unicode scalar values) of one text — a query, a document or an
    /// input — checked before tokenization; longer → 413 `payload_too_large`. Default
    /// 100,000. Tokenizing costs about 70 bytes of memory per input byte at its peak, so this
    /// bounds the memory of one text (~7 MB at the default).
    pub max_input_chars: usize,
    /// Global budget of text bytes being tokenized at once, over all requests (a request
    /// holds its texts' byte count while tokenizing; others wait for budget). Default 8 MB:
    /// with the ~70× peak cost of tokenization this keeps tokenizer memory below ~600 MB
    /// however many requests arrive. A request larger than the budget takes all of it.
    pub max_tokenization_bytes: usize,
    /// When set, every route but `/health` needs `Authorization: Bearer <api_key>`.
    pub api_key: Option<String>,
    /// The whole request head (request line and headers) must arrive within this time of the
    /// connection opening or of the previous answer; else the connection is closed without an
    /// answer. This also bounds how long an idle keep-alive connection lives. Default 10 s.
    pub header_read_timeout: Duration,
    /// The whole request body must arrive within this time of its head; else 408
    /// `request_timeout` and the connection is closed. Default 30 s.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this time (and
    /// after [`header_read_timeout`](Self::header_read_timeout) at the latest). Default 60 s.
    pub idle_timeout: Duration,
    /// Deadline of one request from its head to its answer (`--request-timeout`); past it the
    /// request is dropped and answered 504 `timeout`. Default 60 s.
    pub request_timeout: Duration,
    /// Open connections at most (`--max-connections`). At the limit a new connection makes the
    /// longest-idle connection (no request in flight) close; when every connection is busy the
    /// new one is answered 503 `overloaded` and closed. Lowered at start to stay 64 below the
    /// process's open-file limit. Default 1024.
    pub max_connections: usize,
    /// After the shutdown signal (SIGTERM), how long the server keeps serving before it stops
    /// accepting connections (`--drain-seconds`): readiness (`/ready`) turns false at once so
    /// that a load balancer stops sending new requests, while in-flight, queued and new
    /// requests are still answered. Then the server stops gracefully. Default 0 (stop at once).
    pub drain: Duration,
    /// Readiness fails (503) while this many requests are queued or running
    /// (`--ready-max-in-flight`); `None`: `max_concurrent_requests` (where new requests get
    /// 429 anyway).
    pub ready_max_in_flight: Option<usize>,
    /// Byte bound of the rerank score cache (`--score-cache-mb` × 2^20, see
    /// [`crate::score_cache`]); 0 disables it. Default 64 MiB (67,108,864), as `rerank serve`.
    pub score_cache_bytes: usize,
    /// Most pairs in the rerank score cache (`--score-cache-entries`), on top of the byte
    /// bound; `None`: as many as the bytes hold.
    pub score_cache_entries: Option<usize>,
    /// What the rerank routes do with a document that does not fit beside the query
    /// (`--long-documents`): truncate (default) or score it by its best window. The Cohere
    /// routes' `max_chunks_per_doc` picks chunk mode per request; `max_tokens_per_doc`
    /// picks truncation.
    pub long_documents: rerank_engine::LongDocuments,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_batch_tokens: 16384,
            max_concurrent_requests: 512,
            payload_limit: 2_000_000,
            max_client_batch_size: 1000,
            max_cohere_documents: 10_000,
            max_input_chars: 100_000,
            max_tokenization_bytes: 8_000_000,
            api_key: None,
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            drain: Duration::ZERO,
            ready_max_in_flight: None,
            score_cache_bytes: 64 << 20,
            score_cache_entries: None,
            long_documents: rerank_engine::LongDocuments::Truncate,
        }
    }
}

/// A loaded model with the name clients see (`model` in responses).
pub struct Named<T> {
    /// The name given on the command line (folder or hub id).
    pub name: String,
    pub model: Arc<T>,
}

/// What the server serves. Each route answers 424 when the model (or index) it needs is absent.
#[derive(Default)]
pub struct Models {
    /// Cross-encoder for `/rerank`, `/v1/rerank`, `/v2/rerank`, `/predict` and `/search`.
    pub reranker: Option<Named<CrossEncoder>>,
    /// Bi-encoder for `/embed`, `/v1/embeddings` and the dense first stage of `/search`.
    pub embedder: Option<Named<Embedder>>,
    /// Index for `/search`.
    pub index: Option<Arc<Index>>,
}

/// State shared by every handler.
pub struct AppState {
    pub config: ServerConfig,
    pub models: Models,
    pub metrics: Arc<Metrics>,
    pub batcher: Batcher,
    /// The rerank score cache; `None` when disabled or without a reranker.
    pub score_cache: Option<Arc<ScoreCache>>,
    permits: Arc<Semaphore>,
    /// Byte budget of in-flight tokenization (`max_tokenization_bytes` permits, one per byte,
    /// capped at `u32::MAX`).
    tokenization: Arc<Semaphore>,
    tokenization_budget: u32,
    /// Set once the shutdown signal arrived: readiness is false from then on.
    draining: AtomicBool,
}

impl AppState {
    /// Starts the inference thread and builds the state.
    pub fn new(config: ServerConfig, models: Models) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        let batcher = Batcher::start(
            BatchModels {
                reranker: models.reranker.as_ref().map(|m| m.model.clone()),
                embedder: models.embedder.as_ref().map(|m| m.model.clone()),
            },
            config.max_batch_tokens,
            metrics.clone(),
        );
        let score_cache = models.reranker.as_ref().and_then(|r| {
            ScoreCache::new(
                ModelId::of(&r.model),
                config.score_cache_bytes,
                config.score_cache_entries,
            )
            .map(Arc::new)
        });
        if let Some(c) = &score_cache {
            metrics.score_cache_state(c.len(), c.bytes(), c.max_bytes(), 0);
        }
        let permits = Arc::new(Semaphore::new(config.max_concurrent_requests.max(1)));
        let tokenization_budget =
            u32::try_from(config.max_tokenization_bytes.max(1)).unwrap_or(u32::MAX);
        let tokenization = Arc::new(Semaphore::new(tokenization_budget as usize));
        Arc::new(AppState {
            config,
            models,
            metrics,
            batcher,
            score_cache,
            permits,
            tokenization,
            tokenization_budget,
            draining: AtomicBool::new(false),
        })
    }

    /// A slot for one model request; [`ApiError::Overloaded`] (429) when
    /// `max_concurrent_requests` are already admitted. Hold it until the answer is ready.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::Overloaded(format!(
                "{} requests are already queued or running",
                self.config.max_concurrent_requests
            ))
        })
    }

    /// Waits until `bytes` of the tokenization budget are free and holds them until the
    /// permit is dropped (a request larger than the whole budget waits for all of it).
    ///
    /// Errors: [`ApiError::Internal`] if the budget was closed (never, in practice).
    pub async fn tokenization_budget(
        &self,
        bytes: usize,
    ) -> Result<OwnedSemaphorePermit, ApiError> {
        let n = u32::try_from(bytes.max(1))
            .unwrap_or(u32::MAX)
            .min(self.tokenization_budget);
        self.tokenization
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| ApiError::Internal("the tokenization budget is closed".into()))
    }

    /// Errors with 413 when `text` has more than `max_input_chars` characters; `what` names
    /// it in the message (`documents[3]`, `query`).
    pub fn check_input_chars(&self, text: &str, what: &str) -> Result<(), ApiError> {
        let max = self.config.max_input_chars;
        // Cheap first: a text of at most `max` bytes has at most `max` characters.
        if text.len() > max {
            let n = text.chars().count();
            if n > max {
                return Err(ApiError::PayloadTooLarge(format!(
                    "`{what}` has {n} characters, more than the limit of {max} (--max-input-chars); split it or send it shorter"
                )));
            }
        }
        Ok(())
    }

    /// Marks the server as draining (the shutdown signal arrived): `/ready` answers 503 from
    /// now on; requests are still served.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether [`start_draining`](Self::start_draining) was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The readiness threshold: requests queued or running at which `/ready` answers 503.
    pub fn ready_threshold(&self) -> usize {
        self.config
            .ready_max_in_flight
            .unwrap_or(self.config.max_concurrent_requests)
            .max(1)
    }

    /// Liveness: `Ok` while the inference thread runs and takes work.
    ///
    /// Errors: [`ApiError::Unavailable`] (503 `unhealthy`) when it has stopped.
    pub fn liveness(&self) -> Result<(), ApiError> {
        if self.batcher.is_alive() {
            Ok(())
        } else {
            Err(ApiError::Unavailable(
                "the inference thread has stopped; restart the server".into(),
            ))
        }
    }

    /// Readiness: `Ok(requests queued or running)` when the models are loaded (always, once
    /// the state exists), the inference thread runs, the server is not draining and fewer
    /// than [`ready_threshold`](Self::ready_threshold) requests are queued or running.
    ///
    /// Errors: [`ApiError::Unavailable`] (503 `unhealthy`) naming the reason.
    pub fn readiness(&self) -> Result<usize, ApiError> {
        self.liveness()?;
        if self.is_draining() {
            return Err(ApiError::Unavailable(
                "draining: the server got its shutdown signal and stops accepting connections after --drain-seconds; send new requests to another replica".into(),
            ));
        }
        let in_flight = self.in_flight();
        let threshold = self.ready_threshold();
        if in_flight >= threshold {
            return Err(ApiError::Unavailable(format!(
                "busy: {in_flight} requests are queued or running, the readiness threshold is {threshold} (--ready-max-in-flight)"
            )));
        }
        Ok(in_flight)
    }

    /// Requests admitted and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.config.max_concurrent_requests.max(1) - self.permits.available_permits()
    }

    /// The reranker, or 424.
    pub fn reranker(&self) -> Result<&Named<CrossEncoder>, ApiError> {
        self.models.reranker.as_ref().ok_or_else(|| {
            ApiError::ModelUnavailable(
                "this server has no reranker (start it with --reranker MODEL)".into(),
            )
        })
    }

    /// The embedder, or 424.
    pub fn embedder(&self) -> Result<&Named<Embedder>, ApiError> {
        self.models.embedder.as_ref().ok_or_else(|| {
            ApiError::ModelUnavailable(
                "this server has no embedder (start it with --embedder MODEL)".into(),
            )
        })
    }

    /// Errors with 413 when a request carries more than `max_client_batch_size` inputs.
    pub fn check_batch_size(&self, n: usize, what: &str) -> Result<(), ApiError> {
        if n > self.config.max_client_batch_size {
            return Err(ApiError::TooManyDocuments(format!(
                "`{what}` has {n} entries, more than the limit of {} (--max-client-batch-size)",
                self.config.max_client_batch_size
            )));
        }
        Ok(())
    }

    /// Errors with 413 when a Cohere request carries more than `max_cohere_documents`
    /// documents.
    pub fn check_cohere_documents(&self, n: usize) -> Result<(), ApiError> {
        if n > self.config.max_cohere_documents {
            return Err(ApiError::TooManyDocuments(format!(
                "`documents` has {n} entries, more than the limit of {} (--max-cohere-documents)",
                self.config.max_cohere_documents
            )));
        }
        Ok(())
    }
}
