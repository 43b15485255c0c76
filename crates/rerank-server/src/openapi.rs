//! The OpenAPI 3.1 document served at `GET /openapi.json`, written by hand next to the routes
//! it describes (a test checks that every route of the router is listed).

use serde_json::{json, Value};

/// Every route the server answers, as `(method, path)`; the router and the document both
/// follow this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/rerank"),
    ("post", "/embed"),
    ("post", "/predict"),
    ("post", "/v1/rerank"),
    ("post", "/v2/rerank"),
    ("post", "/v1/embeddings"),
    ("post", "/search"),
    ("get", "/health"),
    ("get", "/info"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn error_responses() -> Value {
    let e = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let with = |d: &str| {
        let mut v = e.clone();
        v["description"] = json!(d);
        v
    };
    json!({
        "401": with("missing or wrong API key"),
        "413": with("body over --payload-limit or more inputs than --max-client-batch-size"),
        "422": with("validation error naming the field or input index"),
        "424": with("the server has no model for this route, or the model failed"),
        "429": with("overloaded: --max-concurrent-requests reached"),
    })
}

fn op(summary: &str, request: Option<Value>, response: Value) -> Value {
    let mut responses = error_responses();
    responses["200"] =
        json!({"description": "success", "content": {"application/json": {"schema": response}}});
    let mut o = json!({"summary": summary, "responses": responses});
    if let Some(r) = request {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": r}}});
    }
    o
}

fn string_or_list() -> Value {
    json!({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
}

/// Builds the document.
pub fn document() -> Value {
    let floats = json!({"type": "array", "items": {"type": "number"}});
    let cohere_req = json!({
        "type": "object", "required": ["query", "documents"],
        "properties": {
            "model": {"type": "string", "description": "accepted, ignored"},
            "query": {"type": "string", "minLength": 1},
            "documents": {"type": "array", "items": {"oneOf": [
                {"type": "string"},
                {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
            ]}},
            "top_n": {"type": "integer", "minimum": 1, "description": "alias: top_k"},
            "return_documents": {"type": "boolean", "description": "default true on v1, false on v2"},
            "max_tokens_per_doc": {"type": "integer", "minimum": 1}
        }
    });
    let cohere_resp = json!({
        "type": "object", "required": ["id", "results", "meta"],
        "properties": {
            "id": {"type": "string"},
            "results": {"type": "array", "items": {"type": "object", "required": ["index", "relevance_score"],
                "properties": {"index": {"type": "integer"}, "relevance_score": {"type": "number"},
                    "document": {"type": "object", "description": "only with return_documents"}}}},
            "meta": {"type": "object", "properties": {"api_version": {"type": "object"},
                "billed_units": {"type": "object"}, "tokens": {"type": "object"}}}
        }
    });
    let paths = json!({
        "/rerank": {"post": op("Rerank texts against a query (TEI)",
            Some(json!({"type": "object", "required": ["query", "texts"], "properties": {
                "query": {"type": "string", "minLength": 1},
                "texts": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "raw_scores": {"type": "boolean", "default": false},
                "return_text": {"type": "boolean", "default": false},
                "truncate": {"type": "boolean", "default": false},
                "truncation_direction": {"type": "string", "enum": ["Right"]}}})),
            json!({"type": "array", "items": {"type": "object", "required": ["index", "score"], "properties": {
                "index": {"type": "integer"}, "score": {"type": "number"}, "text": {"type": "string"}}}}))},
        "/embed": {"post": op("Embed texts (TEI)",
            Some(json!({"type": "object", "required": ["inputs"], "properties": {
                "inputs": string_or_list(),
                "normalize": {"type": "boolean", "default": true},
                "truncate": {"type": "boolean", "default": false}}})),
            json!({"type": "array", "items": floats}))},
        "/predict": {"post": op("Classify (query, document) pairs with the reranker (TEI)",
            Some(json!({"type": "object", "required": ["inputs"], "properties": {
                "inputs": {"oneOf": [
                    {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
                    {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}}]},
                "raw_scores": {"type": "boolean", "default": false},
                "truncate": {"type": "boolean", "default": false}}})),
            json!({"description": "[{label, score}] for one pair, [[{label, score}]] for a list"}))},
        "/v1/rerank": {"post": op("Rerank documents (Cohere v1)", Some(cohere_req.clone()), cohere_resp.clone())},
        "/v2/rerank": {"post": op("Rerank documents (Cohere v2)", Some(cohere_req), cohere_resp)},
        "/v1/embeddings": {"post": op("Embeddings (OpenAI)",
            Some(json!({"type": "object", "required": ["input"], "properties": {
                "input": string_or_list(), "model": {"type": "string"},
                "encoding_format": {"type": "string", "enum": ["float", "base64"]},
                "dimensions": {"type": "integer", "minimum": 1}}})),
            json!({"type": "object", "properties": {
                "object": {"const": "list"},
                "data": {"type": "array", "items": {"type": "object", "properties": {
                    "object": {"const": "embedding"},
                    "embedding": {"oneOf": [floats, {"type": "string", "contentEncoding": "base64"}]},
                    "index": {"type": "integer"}}}},
                "model": {"type": "string"},
                "usage": {"type": "object", "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}}}}))},
        "/search": {"post": op("Two-stage search over the loaded index",
            Some(json!({"type": "object", "required": ["query"], "properties": {
                "query": {"type": "string", "minLength": 1},
                "top_k": {"type": "integer", "minimum": 1, "default": 20},
                "top_n": {"type": "integer", "minimum": 1, "default": 3},
                "retriever": {"type": "string", "enum": ["dense", "bm25", "hybrid"], "default": "dense"}}})),
            json!({"type": "object", "properties": {"documents": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "text": {"type": "string"}, "relevance_score": {"type": "number"},
                "metadata": {"type": "object"}}}}}}))},
        "/health": {"get": {"summary": "Liveness (no API key needed)", "responses": {"200": {"description": "ok"}}}},
        "/info": {"get": {"summary": "Models, max length, limits and version", "responses": {"200": {"description": "info"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain; version=0.0.4"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    });
    json!({
        "openapi": "3.1.0",
        "info": {"title": "rerank", "version": env!("CARGO_PKG_VERSION"),
            "description": "Cross-encoder reranking, embeddings and two-stage search; TEI-, Cohere- and OpenAI-compatible."},
        "paths": paths,
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error", "error_type"], "properties": {
                "error": {"type": "string"}, "error_type": {"type": "string"}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc = super::document();
        for (method, path) in super::ROUTES {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
    }
}
