//! `GET /`: the playground page — one static HTML file with its CSS and JavaScript inline
//! (`assets/playground.html`, embedded in the binary with `include_str!`; no CDN, no external
//! font or script), for looking at what the reranker does to a ranking.
//!
//! The page calls only the public routes, with the API key typed into it (sent as
//! `Authorization: Bearer <key>`): `GET /info` (which models and index the server has),
//! `POST /search` over the loaded index (the first stage's list beside the reranked one, from
//! each hit's `first_stage_rank` / `first_stage_score`, and the stages' times from the
//! `Server-Timing` header), or `POST /rerank` over documents pasted one per line (the input
//! order is then the "first stage").
//!
//! `GET /` never needs the API key ([`crate::auth::PUBLIC_PAGES`]): the page is the same for
//! every server and holds no data — a browser that opens it cannot send a bearer token
//! anyway — and each API call it makes carries the key the user typed. Its answer forbids
//! loading anything from another origin (`Content-Security-Policy`), so the page works on an
//! offline machine and cannot leak the key to a third party.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;

/// The page (HTML with inline CSS and JavaScript), as served.
pub const PAGE: &str = include_str!("../../assets/playground.html");

/// The `Content-Security-Policy` of the page: its own inline script and style, requests to
/// this server only, nothing from another origin, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// `GET /` → 200 `text/html`: the playground page (see the module docs). Never needs the API
/// key; the API calls the page makes carry the key typed into it.
#[utoipa::path(
    get,
    path = "/",
    tag = "playground",
    summary = "The playground page (static HTML; no API key needed)",
    security(()),
    responses(
        (status = 200, description = "the playground page", body = String, content_type = "text/html")
    )
)]
pub async fn page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, CSP),
            (CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}
