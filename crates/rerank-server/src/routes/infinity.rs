//! The infinity shape of `POST /rerank` (michaelfeil/infinity `infinity_emb`, its generated
//! `infinity_client`, LangChain's `InfinityRerank`): a body with `documents` and no
//! `property`, see [`super::rerank`].
//!
//! As infinity's server does: the query and each document are stripped of leading and
//! trailing whitespace before scoring (its pydantic `strip_whitespace=True`), documents are
//! strings, at least one; `top_n` ≥ 1 or absent / `null` (all); `relevance_score` is the
//! sigmoid of the logit, the ordering logit with `raw_scores: true`; results are sorted by
//! descending score; `document` (the stripped text) only with `return_documents: true`.
//! `model` is accepted and ignored; the answer names the loaded reranker. Pairs are truncated
//! to the model's max length (cut results carry `truncated: true`, and the answer the header
//! `x-truncated-inputs: N`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::Response;
use rerank_engine::score;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cohere::request_id;
use super::long_documents::score_documents;
use super::tei::is_false;
use super::{answer, check_pair_chars, check_query, top_n, Truncation};
use crate::error::ApiError;
use crate::state::AppState;

/// The infinity `/rerank` body (infinity's `RerankInput`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct InfinityRerankRequest {
    /// The query (not empty after stripping whitespace).
    #[schema(min_length = 1)]
    pub query: String,
    /// The documents to rank: strings, at least one, at most `--max-client-batch-size`.
    #[schema(min_items = 1)]
    pub documents: Vec<String>,
    /// Echo each (stripped) document as `document`. Default false.
    #[serde(default)]
    pub return_documents: bool,
    /// `relevance_score` is the ordering logit instead of its sigmoid (1 label: the logit;
    /// 2 labels: `logits[1] − logits[0]`). Default false.
    #[serde(default)]
    pub raw_scores: bool,
    /// Accepted, ignored (the loaded reranker answers and is named in `model`).
    #[serde(default)]
    pub model: Option<String>,
    /// Results to return (≥ 1); absent or `null`: all.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub top_n: Option<i64>,
    /// Replaces the default instruction of an LLM reranker with a prompt template
    /// (Qwen3-Reranker); 422 for a model without one. Not an infinity field.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// One result (infinity's `_ReRankObject`).
#[derive(Debug, Serialize, ToSchema)]
pub struct InfinityResult {
    /// Sigmoid of the reranker's logit (the logit with `raw_scores`).
    pub relevance_score: f64,
    /// Position of the document in the request's `documents`.
    pub index: usize,
    /// The stripped document, with `return_documents: true` only (the key is absent
    /// otherwise, as infinity answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// `true` when the pair was cut to the model's max length; absent otherwise.
    #[serde(skip_serializing_if = "is_false")]
    #[schema(default = false)]
    pub truncated: bool,
    /// With `rerank serve --long-documents chunk`: the window of the document that gave the
    /// score, `{index, char_start, char_end}`; absent otherwise. Not an infinity field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub window: Option<rerank_engine::Window>,
}

/// `usage` (infinity's `_Usage`): tokens of all (query, document) pairs, special tokens
/// included, in both fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct InfinityUsage {
    /// Tokens of all pairs.
    pub prompt_tokens: usize,
    /// The same number.
    pub total_tokens: usize,
}

/// The answer (infinity's `ReRankResult`).
#[derive(Debug, Serialize, ToSchema)]
pub struct InfinityRerankResponse {
    /// Always `rerank`.
    #[schema(example = "rerank")]
    pub object: &'static str,
    /// The `top_n` best documents by descending score.
    pub results: Vec<InfinityResult>,
    /// The loaded reranker's name.
    pub model: String,
    /// Token counts.
    pub usage: InfinityUsage,
    /// A unique id of this answer (`infinity-…`).
    pub id: String,
    /// Unix time of the answer, in seconds.
    pub created: u64,
}

/// Answers the infinity shape (see the module docs).
///
/// Errors: 422 empty query or `documents`, `top_n` < 1; 413 more documents than
/// `--max-client-batch-size` or a text over `--max-input-chars`; 424 no reranker or a
/// non-finite logit; 429 overloaded.
pub(crate) async fn rerank(
    state: Arc<AppState>,
    req: InfinityRerankRequest,
) -> Result<Response, ApiError> {
    let model_name = state.reranker()?.name.clone();
    let query = req.query.trim().to_string();
    check_query(&query)?;
    if req.documents.is_empty() {
        return Err(ApiError::Validation("`documents` must not be empty".into()));
    }
    state.check_batch_size(req.documents.len(), "documents")?;
    let top_n = top_n(req.top_n, req.documents.len())?;
    let documents: Vec<String> = req.documents.iter().map(|d| d.trim().to_string()).collect();
    check_pair_chars(&state, &query, &documents, "documents")?;
    let _permit = state.admit()?;
    let scored = score_documents(
        &state,
        query,
        documents.clone(),
        Truncation::Truncate,
        req.instruction,
        state.config.long_documents,
    )
    .await?;
    let tokens = scored.tokens;
    let truncated = scored.count_truncated();
    let windows: Vec<_> = (0..documents.len()).map(|i| scored.window(i)).collect();
    let cut = scored.truncated;
    let ranked = score::rank(scored.predictions, top_n)?;
    let results = ranked
        .into_iter()
        .map(|r| InfinityResult {
            relevance_score: f64::from(if req.raw_scores { r.logit } else { r.score }),
            index: r.index,
            document: req.return_documents.then(|| documents[r.index].clone()),
            truncated: cut[r.index],
            window: windows[r.index],
        })
        .collect();
    let body = InfinityRerankResponse {
        object: "rerank",
        results,
        model: model_name,
        usage: InfinityUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
        id: format!("infinity-{}", request_id()),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    Ok(answer(&state, truncated, body))
}
