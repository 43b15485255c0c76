//! Cohere-compatible `POST /v1/rerank` and `POST /v2/rerank` (also what Voyage / Jina clients
//! send: `top_k` is accepted as `top_n`).
//!
//! Defaults: `return_documents` is true on v1 and false on v2 (as Cohere); documents are
//! truncated, never refused: the pair to the model's max length (`longest_first`) and, with
//! `max_tokens_per_doc`, the document to about that many tokens. With `max_chunks_per_doc`
//! (or `rerank serve --long-documents chunk`) each document is scored by its best window
//! instead, named by `window` in its result (see `routes/long_documents.rs`). `model` is accepted and
//! ignored (the loaded reranker answers). `relevance_score` is the sigmoid of the logit.
//!
//! Up to `--max-cohere-documents` (default 10,000, as Cohere) documents per request, queued in
//! chunks and cut into model batches by token budget. Truncation is reported: each cut
//! document's result has `truncated: true`, `meta` gets `truncated_inputs: N` and a
//! `warnings` entry, and the response has the header `x-truncated-inputs: N`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::Response;
use rerank_engine::score;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::long_documents::{requested_mode, score_documents};
use super::tei::is_false;
use super::{answer, check_pair_chars, check_query, top_n, Truncation};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::openapi::ModelErrors;
use crate::state::AppState;
use rerank_engine::LongDocuments;

/// A document as Cohere accepts it: a string or an object with a `text` field (other fields
/// are kept and echoed back with `return_documents`).
#[derive(Debug, Deserialize, Clone, ToSchema)]
#[serde(untagged)]
pub enum DocumentInput {
    /// The document's text.
    Text(String),
    /// An object with a string field `text`; other fields are echoed back.
    #[schema(value_type = Object)]
    Object(Map<String, Value>),
}

/// The body of `/v1/rerank` and `/v2/rerank`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CohereRerankRequest {
    /// Accepted, ignored (the loaded reranker answers).
    #[serde(default)]
    pub model: Option<String>,
    /// The query (not empty).
    #[schema(min_length = 1)]
    pub query: String,
    /// The documents to rank (up to `--max-cohere-documents`).
    pub documents: Vec<DocumentInput>,
    /// Results to return (≥ 1); default all. `top_k` is an alias (Voyage, Jina).
    #[serde(default, alias = "top_k")]
    #[schema(minimum = 1)]
    pub top_n: Option<i64>,
    /// Echo each document in its result. Default true on v1, false on v2.
    #[serde(default)]
    pub return_documents: Option<bool>,
    /// Truncate each document to about this many tokens (≥ 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_tokens_per_doc: Option<i64>,
    /// Score each document by its best window, at most this many windows per document
    /// (1–100): the document is split into overlapping token windows that each keep the
    /// whole query, and its score is its best window's (which `window` in its result names).
    /// Absent: the server's `--long-documents` mode (default: truncation). Not together with
    /// `max_tokens_per_doc`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub max_chunks_per_doc: Option<i64>,
    /// Accepted for compatibility; only `text` is ranked.
    #[serde(default)]
    pub rank_fields: Option<Vec<String>>,
    /// Replaces the default instruction of an LLM reranker with a prompt template
    /// (Qwen3-Reranker); 422 for a model without one.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// One ranked result.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereResult {
    /// Position of the document in the request's `documents`.
    pub index: usize,
    /// Sigmoid of the reranker's logit.
    pub relevance_score: f64,
    /// Present only with `return_documents: true` (never `null`): `{text}` for a string
    /// document, the object as sent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub document: Option<Value>,
    /// `true` when the document was cut (to the model's max length or `max_tokens_per_doc`);
    /// absent otherwise.
    #[serde(skip_serializing_if = "is_false")]
    #[schema(default = false)]
    pub truncated: bool,
    /// In chunk mode (`max_chunks_per_doc` or `--long-documents chunk`): the window that gave
    /// the score, `{index, char_start, char_end}` (characters of the document's text);
    /// absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub window: Option<rerank_engine::Window>,
}

/// The answer: `{id, results, meta}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereRerankResponse {
    /// A unique id of this answer.
    pub id: String,
    /// The `top_n` best documents by descending relevance.
    pub results: Vec<CohereResult>,
    /// Version, billing and token counts, and the truncation report.
    pub meta: CohereMeta,
}

/// `meta.api_version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiVersion {
    /// `1` or `2`, the route's version.
    pub version: &'static str,
}

/// `meta.billed_units`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BilledUnits {
    /// Always 1 (as Cohere bills one search unit per request).
    pub search_units: u32,
}

/// `meta.tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetaTokens {
    /// Tokens of all (query, document) pairs, special tokens included.
    pub input_tokens: usize,
    /// Always 0.
    pub output_tokens: usize,
}

/// `meta` of the answer. Fields in alphabetical order, the order this route has always
/// written them in.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohereMeta {
    /// The route's API version.
    pub api_version: ApiVersion,
    /// Billing, as Cohere.
    pub billed_units: BilledUnits,
    /// Token counts.
    pub tokens: MetaTokens,
    /// Documents cut to fit; present only when some were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_inputs: Option<usize>,
    /// One message when documents were cut; present only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

pub(crate) fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:016x}-{n:08x}")
}

fn document_text(i: usize, d: &DocumentInput) -> Result<String, ApiError> {
    match d {
        DocumentInput::Text(s) => Ok(s.clone()),
        DocumentInput::Object(m) => match m.get("text") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(ApiError::Validation(format!(
                "documents[{i}]: an object document needs a string field `text`"
            ))),
        },
    }
}

fn document_value(d: DocumentInput) -> Value {
    match d {
        DocumentInput::Text(s) => json!({ "text": s }),
        DocumentInput::Object(m) => Value::Object(m),
    }
}

async fn rerank(
    state: Arc<AppState>,
    req: CohereRerankRequest,
    version: &'static str,
) -> Result<Response, ApiError> {
    state.reranker()?;
    check_query(&req.query)?;
    let top_n = top_n(req.top_n, req.documents.len())?;
    if req.max_tokens_per_doc.is_some() && req.max_chunks_per_doc.is_some() {
        return Err(ApiError::Validation(
            "send either `max_tokens_per_doc` (truncate) or `max_chunks_per_doc` (best window), not both".into(),
        ));
    }
    let mode = match req.max_tokens_per_doc {
        Some(_) => LongDocuments::Truncate,
        None => requested_mode(req.max_chunks_per_doc, state.config.long_documents)?,
    };
    let truncation = match req.max_tokens_per_doc {
        None => Truncation::Truncate,
        Some(n) if n < 1 => {
            return Err(ApiError::Validation(format!(
                "`max_tokens_per_doc` must be at least 1, got {n}"
            )))
        }
        // Bounded by the model's max length when tokenizing (`min`), whatever the number.
        Some(n) => Truncation::DocumentTokens(usize::try_from(n).unwrap_or(usize::MAX)),
    };
    state.check_cohere_documents(req.documents.len())?;
    let texts: Vec<String> = req
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| document_text(i, d))
        .collect::<Result<_, _>>()?;
    check_pair_chars(&state, &req.query, &texts, "documents")?;
    let return_documents = req.return_documents.unwrap_or(version == "1");
    let meta = |tokens: usize, truncated: usize| CohereMeta {
        api_version: ApiVersion { version },
        billed_units: BilledUnits { search_units: 1 },
        tokens: MetaTokens {
            input_tokens: tokens,
            output_tokens: 0,
        },
        truncated_inputs: (truncated > 0).then_some(truncated),
        warnings: (truncated > 0).then(|| {
            vec![format!(
                "{truncated} of the documents were truncated to fit the model's max length"
            )]
        }),
    };
    if texts.is_empty() {
        let body = CohereRerankResponse {
            id: request_id(),
            results: Vec::new(),
            meta: meta(0, 0),
        };
        return Ok(answer(&state, 0, body));
    }
    let _permit = state.admit()?;
    let scored =
        score_documents(&state, req.query, texts, truncation, req.instruction, mode).await?;
    let tokens = scored.tokens;
    let truncated = scored.count_truncated();
    let windows: Vec<_> = (0..scored.truncated.len())
        .map(|i| scored.window(i))
        .collect();
    let cut = scored.truncated;
    let ranked = score::rank(scored.predictions, top_n)?;
    let mut docs: Vec<Option<DocumentInput>> = req.documents.into_iter().map(Some).collect();
    let results = ranked
        .into_iter()
        .map(|r| CohereResult {
            index: r.index,
            relevance_score: r.score as f64,
            document: if return_documents {
                docs[r.index].take().map(document_value)
            } else {
                None
            },
            truncated: cut[r.index],
            window: windows[r.index],
        })
        .collect();
    let body = CohereRerankResponse {
        id: request_id(),
        results,
        meta: meta(tokens, truncated),
    };
    Ok(answer(&state, truncated, body))
}

/// `POST /v1/rerank` (Cohere v1; `return_documents` defaults to true).
#[utoipa::path(
    post,
    path = "/v1/rerank",
    tag = "cohere",
    summary = "Rerank documents (Cohere v1)",
    request_body = CohereRerankRequest,
    responses(
        (status = 200, description = "the best documents by descending relevance", body = CohereRerankResponse,
            headers(("x-truncated-inputs" = usize, description = "documents truncated to fit"))),
        ModelErrors
    )
)]
pub async fn rerank_v1(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<CohereRerankRequest>,
) -> Result<Response, ApiError> {
    rerank(state, req, "1").await
}

/// `POST /v2/rerank` (Cohere v2; `return_documents` defaults to false).
#[utoipa::path(
    post,
    path = "/v2/rerank",
    tag = "cohere",
    summary = "Rerank documents (Cohere v2)",
    request_body = CohereRerankRequest,
    responses(
        (status = 200, description = "the best documents by descending relevance", body = CohereRerankResponse,
            headers(("x-truncated-inputs" = usize, description = "documents truncated to fit"))),
        ModelErrors
    )
)]
pub async fn rerank_v2(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<CohereRerankRequest>,
) -> Result<Response, ApiError> {
    rerank(state, req, "2").await
}
