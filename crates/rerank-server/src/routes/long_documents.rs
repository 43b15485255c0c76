//! The rerank routes' path from documents to one prediction per document, in either
//! [`LongDocuments`] mode: truncated pairs ([`tokenize_pairs`], today's path) or each
//! document's best window ([`rerank_engine::long_documents`]): every window is one more pair
//! for the batcher (which plans them by token budget like any other pair) and the document
//! gets its best window's prediction.
//!
//! Bounds in chunk mode: a request may ask for at most `--max-cohere-documents` windows
//! (documents × `max_chunks_per_doc`, Cohere's rule for its 10,000 limit), checked before
//! tokenization (422 otherwise); the cap per document is 1..=100.

use std::sync::Arc;

use rerank_engine::score::Prediction;
use rerank_engine::{LongDocuments, Window};

use super::{blocking, count_tokens, predict, tokenize_pairs, ReleaseHeap, Truncation};
use crate::error::ApiError;
use crate::state::AppState;

/// One prediction per document, in input order.
pub(crate) struct ScoredDocuments {
    /// The document's prediction (its best window's in chunk mode).
    pub predictions: Vec<Prediction>,
    /// Per document: it was cut (truncation, or windows beyond the cap in chunk mode).
    pub truncated: Vec<bool>,
    /// Tokens of every pair sent to the model (all windows in chunk mode).
    pub tokens: usize,
    /// The best window of each document; `None` in truncate mode.
    pub windows: Option<Vec<Window>>,
}

impl ScoredDocuments {
    /// Documents that were cut.
    pub fn count_truncated(&self) -> usize {
        self.truncated.iter().filter(|&&t| t).count()
    }

    /// The best window of document `i` (chunk mode).
    pub fn window(&self, i: usize) -> Option<Window> {
        self.windows.as_ref().map(|w| w[i])
    }
}

/// `max_chunks_per_doc` as a request sends it: `None` → `default` (the server's
/// `--long-documents` mode); a number → chunk mode with that cap.
///
/// Errors: 422 unless 1 ≤ n ≤ 100.
pub(crate) fn requested_mode(
    max_chunks_per_doc: Option<i64>,
    default: LongDocuments,
) -> Result<LongDocuments, ApiError> {
    match max_chunks_per_doc {
        None => Ok(default),
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(0);
            Ok(LongDocuments::chunk(n).map_err(|_| {
                ApiError::Validation(format!(
                    "`max_chunks_per_doc` must be between 1 and {}, got {}",
                    rerank_engine::long_documents::MAX_CHUNKS_PER_DOC,
                    max_chunks_per_doc.unwrap_or_default()
                ))
            })?)
        }
    }
}

/// Scores `documents` against `query` as `mode` says. In truncate mode this is exactly
/// [`tokenize_pairs`] then [`predict`]. In chunk mode `truncation` keeps its meaning for
/// what windows cannot cover: [`Truncation::Refuse`] (TEI's `truncate: false`) answers 422
/// when a document needs more windows than the cap; [`Truncation::DocumentTokens`] is not
/// combined with windows (the caller picks one).
///
/// Errors: 422 for more windows than `--max-cohere-documents` allows, a query that leaves
/// no room for a window, or (refuse) a document beyond the cap; 424 for a non-finite logit;
/// and those of [`tokenize_pairs`] / [`predict`].
pub(crate) async fn score_documents(
    state: &Arc<AppState>,
    query: String,
    documents: Vec<String>,
    truncation: Truncation,
    instruction: Option<String>,
    mode: LongDocuments,
) -> Result<ScoredDocuments, ApiError> {
    let max_chunks_per_doc = match mode {
        LongDocuments::Truncate => {
            let items = tokenize_pairs(state, query, documents, truncation, instruction).await?;
            let tokens = count_tokens(&items);
            let truncated = items.iter().map(|e| e.truncated).collect();
            let predictions = predict(state, items).await?;
            return Ok(ScoredDocuments {
                predictions,
                truncated,
                tokens,
                windows: None,
            });
        }
        LongDocuments::Chunk { max_chunks_per_doc } => max_chunks_per_doc,
    };
    let limit = state.config.max_cohere_documents;
    if documents.len().saturating_mul(max_chunks_per_doc) > limit {
        return Err(ApiError::Validation(format!(
            "{} documents × max_chunks_per_doc {max_chunks_per_doc} exceed the {limit} windows a request may score (--max-cohere-documents); send fewer documents or a lower max_chunks_per_doc",
            documents.len()
        )));
    }
    let model = state.reranker()?.model.clone();
    let bytes = query.len() + documents.iter().map(String::len).sum::<usize>();
    let budget = state.tokenization_budget(bytes).await?;
    let windows = blocking(state, move || {
        let _heap = ReleaseHeap(bytes);
        let _budget = budget;
        let docs: Vec<&str> = documents.iter().map(String::as_str).collect();
        Ok(model.encode_windows(
            &query,
            &docs,
            None,
            instruction.as_deref(),
            max_chunks_per_doc,
        )?)
    })
    .await?;
    if let Truncation::Refuse = truncation {
        if let Some(i) = windows.truncated.iter().position(|&t| t) {
            return Err(ApiError::Validation(format!(
                "document {i} needs more than {max_chunks_per_doc} windows; send `truncate: true` to score its first {max_chunks_per_doc}"
            )));
        }
    }
    let mut windows = windows;
    let tokens = count_tokens(&windows.items);
    let predictions = predict(state, std::mem::take(&mut windows.items)).await?;
    let best = windows.best(&predictions)?;
    let (predictions, best): (Vec<Prediction>, Vec<Window>) = best.into_iter().unzip();
    Ok(ScoredDocuments {
        predictions,
        truncated: windows.truncated,
        tokens,
        windows: Some(best),
    })
}
