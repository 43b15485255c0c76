//! Weaviate's `reranker-transformers` module (`RERANKER_INFERENCE_API=http://rerank:3000`):
//! the Weaviate shape of `POST /rerank` (a body with `property`, see [`super::rerank`]),
//! `GET /.well-known/ready` (polled at Weaviate's start) and `GET /meta`.
//!
//! Weaviate's Go client (`modules/reranker-transformers/clients/ranker.go`) POSTs
//! `{"query", "documents", "property": ""}` in chunks of 32 documents, without a
//! `Content-Type` header and without credentials, and reads `scores[i].document` and
//! `scores[i].score` in input order (and `error` when the status is not 200). The answer is the
//! one of Weaviate's own inference container (`weaviate/reranker-transformers`, which runs
//! sentence-transformers' `CrossEncoder.predict`): `{query, scores: [{document, score}],
//! property: null, score: null}`, `score` the sigmoid of the logit (1 label) or softmax\[1\]
//! (2 labels). Without `documents` it scores the pair (query, property) alone:
//! `{query, scores: null, property, score}`. Pairs are truncated to the model's max length.
//! Start the server without `--api-key` for Weaviate (its client sends no key).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::long_documents::score_documents;
use super::ops::Readiness;
use super::{answer, check_finite, check_pair_chars, check_query, Truncation};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The Weaviate `/rerank` body (Weaviate's `RankInput`, the container's `CrossEncoderInput`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct WeaviateRerankRequest {
    /// The query (not empty).
    #[schema(min_length = 1)]
    pub query: String,
    /// Without `documents`: the one text to score. With `documents`: ignored (Weaviate sends
    /// `""`).
    #[serde(default)]
    pub property: Option<String>,
    /// The documents to score, at most `--max-client-batch-size` (Weaviate sends 32 at a
    /// time); an empty list answers `scores: []`.
    #[serde(default)]
    pub documents: Option<Vec<String>>,
    /// Replaces the default instruction of an LLM reranker with a prompt template
    /// (Qwen3-Reranker); 422 for a model without one. Not a Weaviate field.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// One document's score (Weaviate's `DocumentScore`).
#[derive(Debug, Serialize, ToSchema)]
pub struct WeaviateScore {
    /// The document as sent.
    pub document: String,
    /// Sigmoid of the logit (1 label) or softmax\[1\] (2 labels).
    pub score: f64,
    /// With `rerank serve --long-documents chunk`: the window of the document that gave the
    /// score, `{index, char_start, char_end}`; absent otherwise. Not a Weaviate field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub window: Option<rerank_engine::Window>,
}

/// The answer (the container's `CrossEncoderResponse`); every key is always written, `null`
/// when unused.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeaviateRerankResponse {
    /// The query as sent.
    pub query: String,
    /// One score per document, in input order; `null` without `documents`.
    pub scores: Option<Vec<WeaviateScore>>,
    /// The property scored alone; `null` with `documents`.
    pub property: Option<String>,
    /// The score of (query, property); `null` with `documents`.
    pub score: Option<f64>,
}

/// Answers the Weaviate shape (see the module docs).
///
/// Errors: 422 an empty query, or neither `documents` nor a `property`; 413 more documents than
/// `--max-client-batch-size` or a text over `--max-input-chars`; 424 no reranker or a
/// non-finite logit; 429 overloaded.
pub(crate) async fn rerank(
    state: Arc<AppState>,
    req: WeaviateRerankRequest,
) -> Result<Response, ApiError> {
    state.reranker()?;
    check_query(&req.query)?;
    let (documents, single) =
        match (req.documents, req.property) {
            (Some(d), _) => (d, false),
            (None, Some(p)) => (vec![p], true),
            (None, None) => return Err(ApiError::Validation(
                "`documents` or `property`: give the documents to score, or one `property` text"
                    .into(),
            )),
        };
    state.check_batch_size(documents.len(), "documents")?;
    check_pair_chars(&state, &req.query, &documents, "documents")?;
    if documents.is_empty() {
        let body = WeaviateRerankResponse {
            query: req.query,
            scores: Some(Vec::new()),
            property: None,
            score: None,
        };
        return Ok(answer(&state, 0, body));
    }
    let _permit = state.admit()?;
    let scored = score_documents(
        &state,
        req.query.clone(),
        documents.clone(),
        Truncation::Truncate,
        req.instruction,
        state.config.long_documents,
    )
    .await?;
    let truncated = scored.count_truncated();
    let windows: Vec<_> = (0..documents.len()).map(|i| scored.window(i)).collect();
    check_finite(&scored.predictions, "document")?;
    let mut scores: Vec<WeaviateScore> = scored
        .predictions
        .into_iter()
        .zip(documents)
        .zip(windows)
        .map(|((p, document), window)| WeaviateScore {
            document,
            score: f64::from(p.score),
            window,
        })
        .collect();
    let body = if single {
        let one = scores.pop();
        WeaviateRerankResponse {
            query: req.query,
            scores: None,
            score: one.as_ref().map(|s| s.score),
            property: one.map(|s| s.document),
        }
    } else {
        WeaviateRerankResponse {
            query: req.query,
            scores: Some(scores),
            property: None,
            score: None,
        }
    };
    Ok(answer(&state, truncated, body))
}

/// `GET /.well-known/ready` (Weaviate's readiness check of an inference container, which
/// takes any status ≤ 299 as ready): the same answer as `/ready`. Never needs the API key.
#[utoipa::path(
    get,
    path = "/.well-known/ready",
    tag = "weaviate",
    summary = "Readiness, as Weaviate's modules poll it (no API key needed)",
    security(()),
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "not ready: draining, busy, or the inference thread stopped", body = ErrorBody)
    )
)]
pub async fn well_known_ready(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Readiness>, ApiError> {
    super::ops::readiness(&state)
}

/// The `/meta` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Meta {
    /// The reranker's configuration as `/info` shows it (architecture, labels, max_length, ...),
    /// plus its `name`; `null` without a reranker. (Weaviate's container answers the model's
    /// Hugging Face config here; Weaviate only displays it.)
    #[schema(value_type = Object)]
    pub model: Value,
}

/// `GET /meta` (Weaviate's module meta, shown in Weaviate's `/v1/meta`) → `{model}`.
#[utoipa::path(
    get,
    path = "/meta",
    tag = "weaviate",
    summary = "The reranker's configuration, for Weaviate's /v1/meta",
    responses(
        (status = 200, description = "meta", body = Meta),
        (status = 401, description = "missing or wrong API key", body = ErrorBody)
    )
)]
pub async fn meta(State(state): State<Arc<AppState>>) -> Result<Json<Meta>, ApiError> {
    let model = match &state.models.reranker {
        Some(r) => {
            let mut v = serde_json::to_value(r.model.info())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Value::Object(m) = &mut v {
                m.insert("name".into(), Value::String(r.name.clone()));
            }
            v
        }
        None => Value::Null,
    };
    Ok(Json(Meta { model }))
}
