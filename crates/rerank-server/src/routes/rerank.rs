//! `POST /rerank`: one route for every request shape that rerank clients send to that path,
//! told apart by the body's fields (a field set to `null` counts as absent):
//!
//! | shape | recognised by | answer |
//! |---|---|---|
//! | TEI (text-embeddings-inference; Milvus `provider: "tei"`) | `texts` | `[{index, score, text?}]` by descending score ([`super::tei`]) |
//! | Weaviate `reranker-transformers` (`RERANKER_INFERENCE_API`) | `property` (with or without `documents`) | `{query, scores: [{document, score}], property: null, score: null}` in input order; `{query, property}` alone → `{query, scores: null, property, score}` ([`super::weaviate`]) |
//! | infinity (LangChain `InfinityRerank`, `infinity_client`) | `documents` without `property` | `{object: "rerank", results: [{relevance_score, index, document?}], model, usage, id, created}` by descending score ([`super::infinity`]) |
//!
//! A body with both `texts` and `documents` is refused (422 naming both fields). A body that is
//! none of these (no known field, not a JSON object, malformed JSON) is read as TEI, so its
//! errors are exactly the ones TEI's shape always gave (422 naming the field). The TEI shape
//! keeps its content-type rule (415 without `Content-Type: application/json`, as TEI); the
//! Weaviate and infinity shapes are also read without a `Content-Type` header, because
//! Weaviate's Go client sends none (a non-JSON content type is still 415).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::infinity::{InfinityRerankRequest, InfinityRerankResponse};
use super::tei::{Rank, RerankRequest};
use super::weaviate::{WeaviateRerankRequest, WeaviateRerankResponse};
use crate::error::ApiError;
use crate::extract::{map_rejection, ApiJson};
use crate::openapi::ModelErrors;
use crate::state::AppState;

/// Any body `POST /rerank` accepts (for the OpenAPI document: one of the three shapes).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used; the handler tells the shapes apart itself.
pub enum AnyRerankRequest {
    /// TEI: recognised by `texts`.
    Tei(RerankRequest),
    /// Weaviate reranker-transformers: recognised by `property`.
    Weaviate(WeaviateRerankRequest),
    /// infinity: recognised by `documents` without `property`.
    Infinity(InfinityRerankRequest),
}

/// Any answer of `POST /rerank`: the shape of the request's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used.
pub enum AnyRerankResponse {
    /// TEI: `[{index, score, text?, truncated?}]` by descending score.
    Tei(Vec<Rank>),
    /// Weaviate: scores in input order.
    Weaviate(WeaviateRerankResponse),
    /// infinity: results by descending score.
    Infinity(InfinityRerankResponse),
}

/// Which fields the body has, read without building them.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    texts: Option<IgnoredAny>,
    #[serde(default)]
    documents: Option<IgnoredAny>,
    #[serde(default)]
    property: Option<IgnoredAny>,
}

/// The request shape of a `/rerank` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// text-embeddings-inference `{query, texts, ...}`.
    Tei,
    /// Weaviate reranker-transformers `{query, documents?, property}`.
    Weaviate,
    /// infinity `{query, documents, ...}`.
    Infinity,
}

/// Tells the shape of a `/rerank` body by its fields (see the module docs).
///
/// Errors: 422 when both `texts` and `documents` are given.
pub fn shape_of(body: &[u8]) -> Result<Shape, ApiError> {
    // Only an object has fields (serde would also read a struct from an array, by position).
    let is_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    let Some(p) = is_object
        .then(|| serde_json::from_slice::<Probe>(body).ok())
        .flatten()
    else {
        return Ok(Shape::Tei);
    };
    match (p.texts.is_some(), p.documents.is_some(), p.property.is_some()) {
        (true, true, _) => Err(ApiError::Validation(
            "`texts` (the TEI shape) and `documents` (the infinity / Weaviate shapes) cannot both be given to /rerank: send one of them".into(),
        )),
        (true, false, _) | (false, false, false) => Ok(Shape::Tei),
        (false, _, true) => Ok(Shape::Weaviate),
        (false, true, false) => Ok(Shape::Infinity),
    }
}

/// The [`ApiError`] of a body that could not be read (413 over `--payload-limit`), with the
/// message the JSON extractor gives for the same failure.
fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("request body too large: {text}"))
    } else {
        ApiError::Validation(text)
    }
}

/// Parses `bytes` as `T` with the JSON extractor's errors (422 naming the field).
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Json::<T>::from_bytes(bytes)
        .map(|Json(v)| v)
        .map_err(map_rejection)
}

/// `POST /rerank` in the TEI, Weaviate reranker-transformers or infinity shape, told apart by
/// the body's fields: `texts` → TEI, `property` → Weaviate, `documents` → infinity (see the
/// module docs for the table, and each shape's module for its fields and defaults).
///
/// Errors (JSON `{error, error_type}`, the same for every shape): 422 invalid body naming the
/// field, `texts` together with `documents`, an empty query, an empty `texts` (TEI) or
/// `documents` (infinity) list, `top_n` < 1; 413 too many texts / documents
/// (`--max-client-batch-size`) or a text over `--max-input-chars`; 415 a non-JSON content type
/// (TEI also without one); 424 no reranker or a non-finite logit; 429 overloaded.
#[utoipa::path(
    post,
    path = "/rerank",
    tag = "text-embeddings-inference",
    summary = "Rerank texts against a query (TEI, Weaviate reranker-transformers or infinity shape)",
    request_body = AnyRerankRequest,
    responses(
        (status = 200, description = "TEI: the texts by descending relevance; Weaviate: the scores in input order; infinity: the results by descending relevance", body = AnyRerankResponse,
            headers(("x-truncated-inputs" = usize, description = "inputs truncated to the model's max length"))),
        ModelErrors
    )
)]
pub async fn rerank(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    // A content type the JSON extractor refuses (415) keeps its exact answer: the TEI route's.
    // The extractor checks the header before it reads a body, so an empty one is enough here.
    if parts.headers.contains_key(CONTENT_TYPE) {
        let probe = Request::from_parts(parts.clone(), Body::empty());
        if let Err(r) = Json::<IgnoredAny>::from_request(probe, &()).await {
            if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                return Err(map_rejection(r));
            }
        }
    }
    // Read with the route's body limit (`DefaultBodyLimit` travels in the request's parts).
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(|r| body_error(r.status(), r.body_text()))?;
    match shape_of(&bytes)? {
        Shape::Tei => {
            // Exactly the extractor TEI's route always used (content type, errors, fields).
            let ApiJson(req) = ApiJson::<RerankRequest>::from_request(
                Request::from_parts(parts, Body::from(bytes)),
                &(),
            )
            .await?;
            super::tei::rerank(state, req).await
        }
        Shape::Weaviate => super::weaviate::rerank(state, parse(&bytes)?).await,
        Shape::Infinity => super::infinity::rerank(state, parse(&bytes)?).await,
    }
}

#[cfg(test)]
mod tests {
    use super::{shape_of, Shape};

    #[test]
    fn shapes_are_told_apart_by_their_fields() {
        let cases: [(&str, Option<Shape>); 10] = [
            (r#"{"query": "q", "texts": ["a"]}"#, Some(Shape::Tei)),
            (
                r#"{"query": "q", "texts": ["a"], "property": ""}"#,
                Some(Shape::Tei),
            ),
            (
                r#"{"query": "q", "documents": ["a"], "property": ""}"#,
                Some(Shape::Weaviate),
            ),
            (r#"{"query": "q", "property": "a"}"#, Some(Shape::Weaviate)),
            (
                r#"{"query": "q", "documents": ["a"], "top_n": 1}"#,
                Some(Shape::Infinity),
            ),
            (
                r#"{"query": "q", "documents": ["a"], "property": null}"#,
                Some(Shape::Infinity),
            ),
            (
                r#"{"query": "q", "texts": ["a"], "documents": ["a"]}"#,
                None,
            ),
            (r#"{}"#, Some(Shape::Tei)),
            (r#"[1, 2]"#, Some(Shape::Tei)),
            (r#"{"query": "q", "documents": ["#, Some(Shape::Tei)),
        ];
        for (body, want) in cases {
            let got = shape_of(body.as_bytes()).ok();
            assert_eq!(got, want, "{body}");
        }
    }
}
