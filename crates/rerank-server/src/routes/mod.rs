//! Route handlers, one file per API family, and the shared path from a request to the model:
//! admit (429 when full) → tokenize on the blocking pool → queue → inference thread → answer.

pub mod cohere;
pub mod openai;
pub mod ops;
pub mod search;
pub mod tei;

use std::sync::Arc;
use std::time::Instant;

use rerank_engine::score::Prediction;
use rerank_engine::tokenize::Encoded;
use tokio::sync::oneshot;

use crate::batcher::Work;
use crate::error::ApiError;
use crate::metrics::Hist;
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

/// Tokenizes `(query, document)` pairs for the reranker with the given truncation and, for an
/// LLM reranker with a prompt template, the request's `instruction` (`None`: the model's
/// default; 422 when the model has no template).
pub(crate) async fn tokenize_pairs(
    state: &Arc<AppState>,
    query: String,
    documents: Vec<String>,
    truncation: Truncation,
    instruction: Option<String>,
) -> Result<Vec<Encoded>, ApiError> {
    let model = state.reranker()?.model.clone();
    blocking(state, move || {
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
        let pairs: Vec<(&str, &str)> = documents
            .iter()
            .map(|d| (query.as_str(), d.as_str()))
            .collect();
        let encoded =
            model.encode_with_instruction(&pairs, Some(max_length), instruction.as_deref())?;
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

/// Tokenizes texts for the embedder (no prompt).
pub(crate) async fn tokenize_texts(
    state: &Arc<AppState>,
    texts: Vec<String>,
    truncation: Truncation,
) -> Result<Vec<Encoded>, ApiError> {
    let model = state.embedder()?.model.clone();
    blocking(state, move || {
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

async fn wait<T>(rx: oneshot::Receiver<Result<T, ApiError>>) -> Result<T, ApiError> {
    rx.await
        .map_err(|_| ApiError::Internal("the inference thread dropped the request".into()))?
}

/// Scores tokenized pairs through the batcher; one [`Prediction`] per pair, in input order.
pub(crate) async fn predict(
    state: &Arc<AppState>,
    items: Vec<Encoded>,
) -> Result<Vec<Prediction>, ApiError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let (reply, rx) = oneshot::channel();
    state.batcher.submit(Work::Rerank { items, reply })?;
    wait(rx).await
}

/// Embeds tokenized texts through the batcher; `[n][dims]` in input order.
pub(crate) async fn embed(
    state: &Arc<AppState>,
    items: Vec<Encoded>,
) -> Result<Vec<Vec<f32>>, ApiError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let (reply, rx) = oneshot::channel();
    state.batcher.submit(Work::Embed { items, reply })?;
    wait(rx).await
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
                let _ = sender.send(f());
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
