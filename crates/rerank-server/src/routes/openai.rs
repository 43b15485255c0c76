//! OpenAI-compatible `POST /v1/embeddings`.
//!
//! Inputs longer than the model's max length are truncated (OpenAI refuses them; truncating
//! keeps drop-in clients working). `dimensions` keeps the first N components and
//! re-normalises them when the model normalises (Matryoshka-style, as OpenAI).
//! A truncated input's entry has `truncated: true`, `usage` gets `truncated_inputs: N` when
//! N > 0, and the response has the header `x-truncated-inputs: N`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tei::{is_false, l2_normalize, Inputs};
use super::{
    answer, check_text_chars, count_tokens, count_truncated, embed, tokenize_texts, Truncation,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::openapi::ModelErrors;
use crate::state::AppState;

/// The body of `/v1/embeddings`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// A string or a list of strings.
    pub input: Inputs,
    /// Echoed back as `model`; default the embedder's name.
    #[serde(default)]
    pub model: Option<String>,
    /// `float` (default) or `base64` (little-endian f32 bytes).
    #[serde(default)]
    #[schema(example = "float")]
    pub encoding_format: Option<String>,
    /// Keep the first N dimensions (1 ≤ N ≤ the model's dims).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub dimensions: Option<i64>,
    /// Accepted, ignored.
    #[serde(default)]
    pub user: Option<String>,
}

/// An embedding: floats, or their little-endian f32 bytes in base64.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Embedding {
    /// `encoding_format: float` (each f32 written as its f64, as this route always has).
    Float(Vec<f64>),
    /// `encoding_format: base64`.
    Base64(String),
}

/// One entry of `data`. Fields in alphabetical order, the order this route has always
/// written them in.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingData {
    /// The embedding of the input.
    pub embedding: Embedding,
    /// Position of the input in the request.
    pub index: usize,
    /// Always `embedding`.
    #[schema(example = "embedding")]
    pub object: &'static str,
    /// `true` when the input was cut to the model's max length; absent otherwise.
    #[serde(skip_serializing_if = "is_false")]
    #[schema(default = false)]
    pub truncated: bool,
}

/// `usage` of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    /// Tokens of all inputs, special tokens included.
    pub prompt_tokens: usize,
    /// The same as `prompt_tokens`.
    pub total_tokens: usize,
    /// Inputs cut to the model's max length; present only when some were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_inputs: Option<usize>,
}

/// The answer of `/v1/embeddings`, as OpenAI's. Fields in alphabetical order, the order this
/// route has always written them in.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    /// One entry per input, in input order.
    pub data: Vec<EmbeddingData>,
    /// The request's `model`, else the embedder's name.
    pub model: String,
    /// Always `list`.
    #[schema(example = "list")]
    pub object: &'static str,
    /// Token counts.
    pub usage: Usage,
}

/// `POST /v1/embeddings` → `{object: "list", data: [{object: "embedding", embedding, index}],
/// model, usage: {prompt_tokens, total_tokens}}`.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "openai",
    summary = "Embeddings (OpenAI)",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "one embedding per input", body = EmbeddingsResponse,
            headers(("x-truncated-inputs" = usize, description = "inputs truncated to the model's max length"))),
        ModelErrors
    )
)]
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    let embedder = state.embedder()?;
    let dims = embedder.model.info().dims;
    let normalize = embedder.model.info().normalize;
    let name = req.model.clone().unwrap_or_else(|| embedder.name.clone());
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::Validation(format!(
                "`encoding_format` must be \"float\" or \"base64\", got {other:?}"
            )))
        }
    };
    let keep = match req.dimensions {
        None => dims,
        Some(n) if n >= 1 && (n as usize) <= dims => n as usize,
        Some(n) => {
            return Err(ApiError::Validation(format!(
                "`dimensions` must be between 1 and {dims}, got {n}"
            )))
        }
    };
    let texts = req.input.into_vec();
    if texts.is_empty() {
        return Err(ApiError::Validation("`input` must not be empty".into()));
    }
    state.check_batch_size(texts.len(), "input")?;
    check_text_chars(&state, &texts, "input")?;
    let _permit = state.admit()?;
    let items = tokenize_texts(&state, texts, Truncation::Truncate).await?;
    let tokens = count_tokens(&items);
    let cut: Vec<bool> = items.iter().map(|e| e.truncated).collect();
    let truncated = count_truncated(&items);
    let vectors = embed(&state, items).await?;
    let data: Vec<EmbeddingData> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, mut v)| {
            if keep < v.len() {
                v.truncate(keep);
                if normalize {
                    l2_normalize(&mut v);
                }
            }
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Float(v.into_iter().map(f64::from).collect())
            };
            EmbeddingData {
                embedding,
                index,
                object: "embedding",
                truncated: cut.get(index).copied().unwrap_or(false),
            }
        })
        .collect();
    let body = EmbeddingsResponse {
        data,
        model: name,
        object: "list",
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
            truncated_inputs: (truncated > 0).then_some(truncated),
        },
    };
    Ok(answer(&state, truncated, body))
}
