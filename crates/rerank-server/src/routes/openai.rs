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
use serde::Deserialize;
use serde_json::{json, Value};

use super::tei::{l2_normalize, Inputs};
use super::{
    answer, check_text_chars, count_tokens, count_truncated, embed, tokenize_texts, Truncation,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// The body of `/v1/embeddings`.
#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    /// A string or a list of strings.
    pub input: Inputs,
    #[serde(default)]
    pub model: Option<String>,
    /// `float` (default) or `base64` (little-endian f32 bytes).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Keep the first N dimensions (1 ≤ N ≤ the model's dims).
    #[serde(default)]
    pub dimensions: Option<i64>,
    /// Accepted, ignored.
    #[serde(default)]
    pub user: Option<String>,
}

/// `POST /v1/embeddings` → `{object: "list", data: [{object: "embedding", embedding, index}],
/// model, usage: {prompt_tokens, total_tokens}}`.
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
    let data: Vec<Value> = vectors
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
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            let mut item = json!({"object": "embedding", "embedding": embedding, "index": index});
            if cut.get(index).copied().unwrap_or(false) {
                item["truncated"] = json!(true);
            }
            item
        })
        .collect();
    let mut usage = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    if truncated > 0 {
        usage["truncated_inputs"] = json!(truncated);
    }
    let body = json!({
        "object": "list",
        "data": data,
        "model": name,
        "usage": usage
    });
    Ok(answer(&state, truncated, body))
}
