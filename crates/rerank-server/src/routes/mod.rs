//! Route handlers, one file per API family, and the shared path from a request to the model:
//! admit (429 when full) → check each text against `--max-input-chars` (413) → wait for
//! tokenization budget (`--max-tokenization-bytes`) → tokenize on the blocking pool (never on
//! the inference thread) → queue → inference thread → answer.
//!
//! Every model answer carries the header `x-truncated-inputs: N` (inputs cut to the model's
//! max length or to `max_tokens_per_doc`) and adds N to `rerank_truncated_inputs_total`; the
//! JSON bodies that allow an extra field say it too (see each route).

pub mod cohere;
pub mod infinity;
pub(crate) mod long_documents;
pub mod openai;
pub mod ops;
pub mod playground;
pub mod rerank;
pub mod search;
pub mod tei;
pub mod weaviate;

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rerank_engine::score::Prediction;
use rerank_engine::tokenize::Encoded;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::batcher::Work;
use crate::error::ApiError;
use crate::metrics::Hist;
use crate::score_cache::{PairKey, ScoreCache};
use crate::state::AppState;

/// How over-long inputs are handled.
#[derive(Debug, Clone, Copy)]
pub enum Truncation {
    /// Truncate (`longest_first` for pairs) to the model's max length.
    Truncate,
    /// Refuse with 422 naming the first input that does not fit (TEI's `truncate: false`).
    Refuse,
    /// Truncate each document to at most this many tokens (Cohere's `max_tokens_per_doc`), and
    /// the pair to the model's max length.
    DocumentTokens(usize),
}

/// Runs `f` on tokio's blocking pool (never on the async runtime's workers) and records the
/// tokenization time.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let start = Instant::now();
    let out = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("tokenization task failed: {e}")))?;
    state
        .metrics
        .observe_duration(Hist::Tokenization, start.elapsed());
    out
}

/// Dropped at the end of a tokenization task: after more than 1 MiB of text it hands the heap
/// pages the tokenizer freed back to the OS, which glibc otherwise keeps (measured with
/// `scripts/load_test.py --phases memory`: RSS stayed at 1053 MB 3 s after 32 concurrent
/// 1.9 MB documents without it).
struct ReleaseHeap(usize);

impl Drop for ReleaseHeap {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if self.0 > 1 << 20 {
            // SAFETY: malloc_trim only returns free pages of glibc's arenas to the kernel; it
            // touches no live allocation.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

/// Checks the query and each document against `--max-input-chars` (413 naming
/// `query` / `{field}[i]`).
pub(crate) fn check_pair_chars(
    state: &AppState,
    query: &str,
    documents: &[String],
    field: &str,
) -> Result<(), ApiError> {
    state.check_input_chars(query, "query")?;
    check_text_chars(state, documents, field)
}

/// Checks each text against `--max-input-chars` (413 naming `{field}[i]`).
pub(crate) fn check_text_chars(
    state: &AppState,
    texts: &[String],
    field: &str,
) -> Result<(), ApiError> {
    for (i, t) in texts.iter().enumerate() {
        state.check_input_chars(t, &format!("{field}[{i}]"))?;
    }
    Ok(())
}

/// Tokenizes `(query, document)` pairs for the reranker with the given truncation and, for an
/// LLM reranker with a prompt template, the request's `instruction` (`None`: the model's
/// default; 422 when the model has no template), on the blocking pool, holding the request's
/// bytes of the tokenization budget meanwhile. Without an instruction the query is tokenized
/// once for all its documents. Callers check `--max-input-chars` first ([`check_pair_chars`]).
pub(crate) async fn tokenize_pairs(
    state: &Arc<AppState>,
    query: String,
    documents: Vec<String>,
    truncation: Truncation,
    instruction: Option<String>,
) -> Result<Vec<Encoded>, ApiError> {
    let model = state.reranker()?.model.clone();
    let bytes = query.len() + documents.iter().map(String::len).sum::<usize>();
    let budget = state.tokenization_budget(bytes).await?;
    blocking(state, move || {
        let _heap = ReleaseHeap(bytes);
        let _budget = budget;
        let max = model.info().max_length;
        let max_length = match truncation {
            Truncation::DocumentTokens(n) => {
                let q = model
                    .tokenizer()
                    .inner()
                    .encode(query.as_str(), false)
                    .map(|e| e.len())
                    .map_err(|e| ApiError::Backend(format!("tokenizer error: {e}")))?;
                // Tokens around the two texts: the post-processor's special tokens, or a
                // prompt template's prefix, instruction and suffix.
                let special = match &model.info().prompt_template {
                    Some(t) => model
                        .tokenizer()
                        .inner()
                        .encode(
                            t.prefix.clone()
                                + &t.with_instruction(instruction.as_deref()).render("", "")
                                + &t.suffix,
                            false,
                        )
                        .map(|e| e.len())
                        .map_err(|e| ApiError::Backend(format!("tokenizer error: {e}")))?,
                    None => model.tokenizer().num_special_tokens(true),
                };
                max.min(q.saturating_add(n).saturating_add(special))
            }
            _ => max,
        };
        let encoded = match instruction.as_deref() {
            None => {
                let docs: Vec<&str> = documents.iter().map(String::as_str).collect();
                model.encode_query_documents(query.as_str(), &docs, Some(max_length))?
            }
            Some(instruction) => {
                let pairs: Vec<(&str, &str)> = documents
                    .iter()
                    .map(|d| (query.as_str(), d.as_str()))
                    .collect();
                model.encode_with_instruction(&pairs, Some(max_length), Some(instruction))?
            }
        };
        if let Truncation::Refuse = truncation {
            if let Some(i) = encoded.iter().position(|e| e.truncated) {
                return Err(ApiError::Validation(format!(
                    "document {i}: the query and document exceed the model's max length of {max} tokens; send `truncate: true` to truncate"
                )));
            }
        }
        Ok(encoded)
    })
    .await
}

/// Tokenizes `(query, document)` pairs with their own queries (`/predict`), as
/// [`tokenize_pairs`]; [`Truncation::DocumentTokens`] is treated as [`Truncation::Truncate`].
pub(crate) async fn tokenize_pair_list(
    state: &Arc<AppState>,
    pairs: Vec<(String, String)>,
    truncation: Truncation,
) -> Result<Vec<Encoded>, ApiError> {
    let model = state.reranker()?.model.clone();
    let bytes = pairs.iter().map(|(q, d)| q.len() + d.len()).sum::<usize>();
    let budget = state.tokenization_budget(bytes).await?;
    blocking(state, move || {
        let _heap = ReleaseHeap(bytes);
        let _budget = budget;
        let max = model.info().max_length;
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(q, d)| (q.as_str(), d.as_str())).collect();
        let encoded = model.encode(&refs, None)?;
        if let Truncation::Refuse = truncation {
            if let Some(i) = encoded.iter().position(|e| e.truncated) {
                return Err(ApiError::Validation(format!(
                    "input {i}: the query and document exceed the model's max length of {max} tokens; send `truncate: true` to truncate"
                )));
            }
        }
        Ok(encoded)
    })
    .await
}

/// Tokenizes texts for the embedder (no prompt), as [`tokenize_pairs`] does pairs.
pub(crate) async fn tokenize_texts(
    state: &Arc<AppState>,
    texts: Vec<String>,
    truncation: Truncation,
) -> Result<Vec<Encoded>, ApiError> {
    let model = state.embedder()?.model.clone();
    let bytes = texts.iter().map(String::len).sum::<usize>();
    let budget = state.tokenization_budget(bytes).await?;
    blocking(state, move || {
        let _heap = ReleaseHeap(bytes);
        let _budget = budget;
        let max = model.info().max_length;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encoded = model.tokenizer().encode_texts(&refs, max)?;
        if let Truncation::Refuse = truncation {
            if let Some(i) = encoded.iter().position(|e| e.truncated) {
                return Err(ApiError::Validation(format!(
                    "input {i} exceeds the model's max length of {max} tokens; send `truncate: true` to truncate"
                )));
            }
        }
        Ok(encoded)
    })
    .await
}

/// Tokens of all inputs (special tokens included), for `usage` / `meta`.
pub(crate) fn count_tokens(items: &[Encoded]) -> usize {
    items.iter().map(|e| e.input_ids.len()).sum()
}

/// Inputs that truncation cut.
pub(crate) fn count_truncated(items: &[Encoded]) -> usize {
    items.iter().filter(|e| e.truncated).count()
}

/// The response header naming how many inputs of the request were truncated.
pub const TRUNCATED_HEADER: &str = "x-truncated-inputs";

/// A JSON answer with the `x-truncated-inputs: N` header; adds N to
/// `rerank_truncated_inputs_total`.
pub(crate) fn answer<T: Serialize>(state: &AppState, truncated: usize, body: T) -> Response {
    state.metrics.truncated_inputs(truncated as u64);
    (
        [(
            HeaderName::from_static(TRUNCATED_HEADER),
            HeaderValue::from(truncated),
        )],
        Json(body),
    )
        .into_response()
}

async fn wait<T>(rx: oneshot::Receiver<Result<T, ApiError>>) -> Result<T, ApiError> {
    // The inference thread answers every request it takes, errors included; a dropped reply
    // means it caught a panic while handling this request's round (logged there).
    rx.await.map_err(|_| {
        ApiError::Internal(
            "the inference thread failed while handling this request (see the server log)".into(),
        )
    })?
}

/// Above this many token ids in a request, the score cache keys are hashed on the blocking
/// pool rather than on the async runtime (SHA-256 of 64k ids is about 0.3 ms).
const KEYS_ON_BLOCKING_POOL: usize = 1 << 16;

/// Scores tokenized pairs; one [`Prediction`] per pair, in input order. With the score cache
/// ([`crate::score_cache`], `--score-cache-mb`), the pairs are looked up first (one lock, no
/// await held): hits are answered from it, only the misses are queued for the model (a request
/// whose pairs are all cached never enters the queue), and their predictions are stored and
/// merged back in input order. Misses go through [`predict_uncached`].
pub(crate) async fn predict(
    state: &Arc<AppState>,
    items: Vec<Encoded>,
) -> Result<Vec<Prediction>, ApiError> {
    let Some(cache) = state.score_cache.clone() else {
        return predict_uncached(state, items).await;
    };
    let lookup = |cache: &ScoreCache, items: &[Encoded]| {
        let keys: Vec<PairKey> = items.iter().map(|e| cache.key(e)).collect();
        let found = cache.get_many(&keys);
        (keys, found)
    };
    let (items, keys, mut found) = if count_tokens(&items) > KEYS_ON_BLOCKING_POOL {
        let c = cache.clone();
        tokio::task::spawn_blocking(move || {
            let (keys, found) = lookup(&c, &items);
            (items, keys, found)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("score cache lookup failed: {e}")))?
    } else {
        let (keys, found) = lookup(&cache, &items);
        (items, keys, found)
    };
    let missed_at: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_none()).collect();
    state.metrics.score_cache_lookups(
        (found.len() - missed_at.len()) as u64,
        missed_at.len() as u64,
    );
    if !missed_at.is_empty() {
        let missed: Vec<Encoded> = items
            .into_iter()
            .zip(&found)
            .filter_map(|(e, f)| f.is_none().then_some(e))
            .collect();
        let computed = predict_uncached(state, missed).await?;
        if computed.len() != missed_at.len() {
            return Err(ApiError::Internal("the model lost an output".into()));
        }
        // A non-finite logit is an error of the route; it is not kept.
        let evicted = cache.insert_many(
            missed_at
                .iter()
                .zip(&computed)
                .filter(|(_, p)| p.logits.iter().all(|l| l.is_finite()))
                .map(|(&i, p)| (keys[i], p)),
        );
        for (&i, p) in missed_at.iter().zip(computed) {
            found[i] = Some(p);
        }
        state.metrics.score_cache_state(
            cache.len(),
            cache.bytes(),
            cache.max_bytes(),
            evicted as u64,
        );
    }
    found
        .into_iter()
        .map(|p| p.ok_or_else(|| ApiError::Internal("a pair was left unscored".into())))
        .collect()
}

/// Scores tokenized pairs through the batcher; one [`Prediction`] per pair, in input order.
/// A request of more than `--max-client-batch-size` pairs (a Cohere request of up to 10,000
/// documents) is queued in chunks of that size, one after the other, so that other requests
/// are served between its chunks; the batcher cuts each chunk into model batches.
async fn predict_uncached(
    state: &Arc<AppState>,
    items: Vec<Encoded>,
) -> Result<Vec<Prediction>, ApiError> {
    let chunk = state.config.max_client_batch_size.max(1);
    let mut out = Vec::with_capacity(items.len());
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(chunk));
        let (reply, rx) = oneshot::channel();
        state.batcher.submit(Work::Rerank { items: rest, reply })?;
        out.extend(wait(rx).await?);
        rest = tail;
    }
    Ok(out)
}

/// Embeds tokenized texts through the batcher; `[n][dims]` in input order (chunked as
/// [`predict`]).
pub(crate) async fn embed(
    state: &Arc<AppState>,
    items: Vec<Encoded>,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let chunk = state.config.max_client_batch_size.max(1);
    let mut out = Vec::with_capacity(items.len());
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(chunk));
        let (reply, rx) = oneshot::channel();
        state.batcher.submit(Work::Embed { items: rest, reply })?;
        out.extend(wait(rx).await?);
        rest = tail;
    }
    Ok(out)
}

/// Runs `f` alone on the inference thread (e.g. a two-stage search) and returns its result.
/// Dropped without running when the client goes away before its turn.
pub(crate) async fn on_inference_thread<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel::<Result<T, ApiError>>();
    let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
    let probe = tx.clone();
    state.batcher.submit(Work::Task {
        run: Box::new(move || {
            let sender = tx.lock().ok().and_then(|mut s| s.take());
            if let Some(sender) = sender {
                // A panic of `f` answers this request with an error instead of dropping it.
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(
                    |_| {
                        Err(ApiError::Internal(
                            "the request's task panicked on the inference thread".into(),
                        ))
                    },
                );
                let _ = sender.send(out);
            }
        }),
        is_cancelled: Box::new(move || {
            probe
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|t| t.is_closed()))
                .unwrap_or(true)
        }),
    })?;
    wait(rx).await
}

/// Errors with 422 when the query is empty or blank.
pub(crate) fn check_query(query: &str) -> Result<(), ApiError> {
    if query.trim().is_empty() {
        return Err(ApiError::Validation("`query` must not be empty".into()));
    }
    Ok(())
}

/// The number of results a rerank request asks for: `requested` (`top_n`; absent = all),
/// clamped to the `documents` count (at least 1) so that no user number reaches an allocation;
/// above the count it returns them all, as Cohere does.
///
/// Errors: 422 for `top_n` < 1.
pub(crate) fn top_n(requested: Option<i64>, documents: usize) -> Result<usize, ApiError> {
    match requested {
        None => Ok(documents),
        Some(n) if n < 1 => Err(ApiError::Validation(format!(
            "`top_n` must be at least 1, got {n}"
        ))),
        Some(n) => Ok(usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(documents.max(1))),
    }
}

/// Errors with 424 (`ApiError::Backend`) naming the first prediction with a NaN or infinite
/// logit as "non-finite logit {value} for {what} {index}".
pub(crate) fn check_finite(predictions: &[Prediction], what: &str) -> Result<(), ApiError> {
    for (i, p) in predictions.iter().enumerate() {
        if let Some(bad) = p.logits.iter().find(|l| !l.is_finite()) {
            return Err(ApiError::Backend(format!(
                "non-finite logit {bad} for {what} {i}"
            )));
        }
    }
    Ok(())
}
