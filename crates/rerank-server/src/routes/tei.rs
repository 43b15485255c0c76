//! text-embeddings-inference routes: `POST /embed`, `POST /predict`, and the TEI shape of
//! `POST /rerank` (routed by [`super::rerank`], which tells the shapes apart).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use rerank_engine::score;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::long_documents::score_documents;
use super::{
    answer, check_finite, check_pair_chars, check_query, check_text_chars, count_truncated, embed,
    predict, tokenize_pair_list, tokenize_texts, Truncation,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::openapi::ModelErrors;
use crate::state::AppState;

/// `POST /rerank` body, as TEI.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RerankRequest {
    /// The query (not empty).
    #[schema(min_length = 1)]
    pub query: String,
    /// The texts to rank against the query (at least one).
    #[schema(min_items = 1)]
    pub texts: Vec<String>,
    /// Return the raw logit as `score` instead of its sigmoid. Default false.
    #[serde(default)]
    pub raw_scores: bool,
    /// Echo each text in the result. Default false.
    #[serde(default)]
    pub return_text: bool,
    /// Truncate over-long pairs instead of answering 422. Default false (as TEI).
    #[serde(default)]
    pub truncate: Option<bool>,
    /// `Right` (default) only; `Left` is refused with 422.
    #[serde(default)]
    #[schema(example = "Right")]
    pub truncation_direction: Option<String>,
    /// Replaces the default instruction of an LLM reranker with a prompt template
    /// (Qwen3-Reranker); 422 for a model without one.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// One entry of the `/rerank` answer (an array sorted by descending score).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Rank {
    /// Position of the text in the request's `texts`.
    pub index: usize,
    /// Sigmoid of the logit (1 label) / softmax\[1\] (2 labels), or the raw logit with
    /// `raw_scores: true`.
    pub score: f32,
    /// The text, with `return_text: true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `true` when the pair was cut to the model's max length (`truncate: true`); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schema(default = false)]
    pub truncated: bool,
    /// With `rerank serve --long-documents chunk`: the window of the text that gave the
    /// score, `{index, char_start, char_end}`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub window: Option<rerank_engine::Window>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn truncation(
    truncate: Option<bool>,
    direction: Option<&str>,
) -> Result<Truncation, ApiError> {
    match direction {
        None => {}
        Some(d) if d.eq_ignore_ascii_case("right") => {}
        Some(d) => {
            return Err(ApiError::Validation(format!(
                "`truncation_direction` {d:?} is not supported; only \"Right\""
            )))
        }
    }
    Ok(if truncate.unwrap_or(false) {
        Truncation::Truncate
    } else {
        Truncation::Refuse
    })
}

/// The TEI shape of `POST /rerank` (a body with `texts`, see [`super::rerank`]) →
/// `[{index, score, text?, truncated?}]` sorted by descending relevance, with the header
/// `x-truncated-inputs: N`.
///
/// Errors: 422 empty query / empty `texts` / over-long pair with `truncate: false` (unset);
/// 413 too many texts (`--max-client-batch-size`) or a text over `--max-input-chars`; 424 no
/// reranker or a non-finite logit; 429 overloaded.
pub(crate) async fn rerank(state: Arc<AppState>, req: RerankRequest) -> Result<Response, ApiError> {
    state.reranker()?;
    check_query(&req.query)?;
    if req.texts.is_empty() {
        return Err(ApiError::Validation("`texts` must not be empty".into()));
    }
    state.check_batch_size(req.texts.len(), "texts")?;
    check_pair_chars(&state, &req.query, &req.texts, "texts")?;
    let trunc = truncation(req.truncate, req.truncation_direction.as_deref())?;
    let _permit = state.admit()?;
    let n = req.texts.len();
    let scored = score_documents(
        &state,
        req.query,
        req.texts.clone(),
        trunc,
        req.instruction.clone(),
        state.config.long_documents,
    )
    .await?;
    let truncated = scored.count_truncated();
    let windows: Vec<_> = (0..n).map(|i| scored.window(i)).collect();
    let cut = scored.truncated;
    let ranked = score::rank(scored.predictions, n)?;
    let body: Vec<Rank> = ranked
        .into_iter()
        .map(|r| Rank {
            index: r.index,
            score: if req.raw_scores { r.logit } else { r.score },
            text: req.return_text.then(|| req.texts[r.index].clone()),
            truncated: cut[r.index],
            window: windows[r.index],
        })
        .collect();
    Ok(answer(&state, truncated, body))
}

/// One text or a list of texts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Inputs {
    /// One text.
    One(String),
    /// A list of texts.
    Many(Vec<String>),
}

impl Inputs {
    /// The texts as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Inputs::One(s) => vec![s],
            Inputs::Many(v) => v,
        }
    }
}

/// `POST /embed` body, as TEI.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    /// The text or texts to embed.
    pub inputs: Inputs,
    /// L2-normalise. Default true. `false` returns what the model's sentence-transformers
    /// pipeline gives (already normalised when the folder has `2_Normalize`).
    #[serde(default)]
    pub normalize: Option<bool>,
    /// Truncate over-long inputs instead of answering 422. Default false.
    #[serde(default)]
    pub truncate: Option<bool>,
    /// `Right` (default) only; `Left` is refused with 422.
    #[serde(default)]
    pub truncation_direction: Option<String>,
}

/// L2-normalises `v` in place (a zero vector stays zero).
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// `POST /embed` → `[[f32]]`, one embedding per input, in input order, with the header
/// `x-truncated-inputs: N` (the body, a bare array, has no room for it).
///
/// Errors: as `/rerank` (`inputs` instead of `texts`).
#[utoipa::path(
    post,
    path = "/embed",
    tag = "text-embeddings-inference",
    summary = "Embed texts (TEI)",
    request_body = EmbedRequest,
    responses(
        (status = 200, description = "one embedding per input, in input order", body = Vec<Vec<f32>>,
            headers(("x-truncated-inputs" = usize, description = "inputs truncated to the model's max length"))),
        ModelErrors
    )
)]
pub async fn embed_route(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<EmbedRequest>,
) -> Result<Response, ApiError> {
    state.embedder()?;
    let texts = req.inputs.into_vec();
    if texts.is_empty() {
        return Err(ApiError::Validation("`inputs` must not be empty".into()));
    }
    state.check_batch_size(texts.len(), "inputs")?;
    check_text_chars(&state, &texts, "inputs")?;
    let trunc = truncation(req.truncate, req.truncation_direction.as_deref())?;
    let _permit = state.admit()?;
    let items = tokenize_texts(&state, texts, trunc).await?;
    let truncated = count_truncated(&items);
    let mut vectors = embed(&state, items).await?;
    if req.normalize.unwrap_or(true) {
        vectors.iter_mut().for_each(|v| l2_normalize(v));
    }
    Ok(answer(&state, truncated, vectors))
}

/// `/predict` input: one `[query, document]` pair or a list of pairs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PredictInputs {
    /// One `[query, document]` pair.
    Pair([String; 2]),
    /// A list of `[query, document]` pairs.
    Pairs(Vec<[String; 2]>),
    /// One text: refused with 422 (the reranker classifies pairs).
    Text(String),
    /// A list of texts: refused with 422.
    Texts(Vec<String>),
}

/// `POST /predict` body (TEI's classifier route, for the reranker's pair classifier).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PredictRequest {
    /// One pair or a list of pairs.
    pub inputs: PredictInputs,
    /// Return the logits instead of their sigmoid / softmax. Default false.
    #[serde(default)]
    pub raw_scores: bool,
    /// Truncate over-long pairs instead of answering 422. Default false.
    #[serde(default)]
    pub truncate: Option<bool>,
    /// `Right` (default) only; `Left` is refused with 422.
    #[serde(default)]
    pub truncation_direction: Option<String>,
}

/// One label's score.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LabelScore {
    /// `LABEL_0`, `LABEL_1`, ...
    pub label: String,
    /// Sigmoid (1 label) or softmax (2 labels) of the logits; the logit with `raw_scores`.
    /// Written as the f64 of the f32 (as this route always has).
    #[serde(serialize_with = "f32_as_f64")]
    pub score: f32,
}

/// Writes an `f32` widened to `f64` (`0.1f32` → `0.10000000149011612`): the digits the JSON
/// bodies built as `serde_json::Value` used to have, kept exactly.
pub(crate) fn f32_as_f64<S: serde::Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(f64::from(*v))
}

/// The `/predict` answer: the labels of one pair, or of each pair of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PredictResponse {
    /// `[{label, score}]` for one pair.
    Single(Vec<LabelScore>),
    /// `[[{label, score}]]` for a list of pairs.
    Batch(Vec<Vec<LabelScore>>),
}

/// `POST /predict` → `[{label, score}]` for one pair, `[[{label, score}]]` for a list of pairs
/// (labels sorted by descending score), with the header `x-truncated-inputs: N`. Single texts
/// are refused (422): the reranker classifies pairs; so is a pair with an empty query.
#[utoipa::path(
    post,
    path = "/predict",
    tag = "text-embeddings-inference",
    summary = "Classify (query, document) pairs with the reranker (TEI)",
    request_body = PredictRequest,
    responses(
        (status = 200, description = "labels by descending score, for the pair or for each pair", body = PredictResponse,
            headers(("x-truncated-inputs" = usize, description = "inputs truncated to the model's max length"))),
        ModelErrors
    )
)]
pub async fn predict_route(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<PredictRequest>,
) -> Result<Response, ApiError> {
    state.reranker()?;
    let (pairs, single) = match req.inputs {
        PredictInputs::Pair(p) => (vec![p], true),
        PredictInputs::Pairs(v) => (v, false),
        PredictInputs::Text(_) | PredictInputs::Texts(_) => {
            return Err(ApiError::Validation(
                "`inputs`: this model classifies (query, document) pairs; send [query, document] or a list of them".into(),
            ))
        }
    };
    if pairs.is_empty() {
        return Err(ApiError::Validation("`inputs` must not be empty".into()));
    }
    state.check_batch_size(pairs.len(), "inputs")?;
    for (i, [q, d]) in pairs.iter().enumerate() {
        if q.trim().is_empty() {
            return Err(ApiError::Validation(format!(
                "`inputs[{i}]`: the query must not be empty"
            )));
        }
        state.check_input_chars(q, &format!("inputs[{i}][0]"))?;
        state.check_input_chars(d, &format!("inputs[{i}][1]"))?;
    }
    let trunc = truncation(req.truncate, req.truncation_direction.as_deref())?;
    let _permit = state.admit()?;
    // One tokenization call for all pairs (each with its own query).
    let pairs: Vec<(String, String)> = pairs.into_iter().map(|[q, d]| (q, d)).collect();
    let items = tokenize_pair_list(&state, pairs, trunc).await?;
    let truncated = count_truncated(&items);
    let predictions = predict(&state, items).await?;
    check_finite(&predictions, "input")?;
    let mut out = Vec::with_capacity(predictions.len());
    for p in predictions {
        let scores: Vec<f32> = if req.raw_scores {
            p.logits.clone()
        } else if p.logits.len() == 1 {
            vec![p.score]
        } else {
            let m = p.logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = p.logits.iter().map(|l| (l - m).exp()).collect();
            let s: f32 = e.iter().sum();
            e.iter().map(|x| x / s).collect()
        };
        let mut labels: Vec<LabelScore> = scores
            .into_iter()
            .enumerate()
            .map(|(k, score)| LabelScore {
                label: format!("LABEL_{k}"),
                score,
            })
            .collect();
        labels.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.push(labels);
    }
    let body = if single {
        PredictResponse::Single(
            out.into_iter()
                .next()
                .ok_or_else(|| ApiError::Internal("the model returned no prediction".into()))?,
        )
    } else {
        PredictResponse::Batch(out)
    };
    Ok(answer(&state, truncated, body))
}
