//! Optional API key: `Authorization: Bearer <key>` (scheme in any case) on every route except
//! the probes [`OPEN_PATHS`] (`/health`, `/ready`, `/.well-known/ready`), which load balancers
//! and Kubernetes call without credentials, and the static playground page [`PUBLIC_PAGES`]
//! (`/`), which a browser opens without one (the API calls it makes carry the key typed into
//! it).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Paths that never need the API key: liveness and readiness probes.
pub const OPEN_PATHS: [&str; 3] = ["/health", "/ready", "/.well-known/ready"];

/// Static pages that never need the API key: the playground (`GET /`,
/// [`crate::routes::playground`]), the same for every server and holding no data.
pub const PUBLIC_PAGES: [&str; 1] = ["/"];

/// Middleware: passes the request on when no key is configured, the path is a probe
/// ([`OPEN_PATHS`]) or a static page ([`PUBLIC_PAGES`]), or the bearer token equals the key (SHA-256 digests compared in constant time); else 401
/// `unauthorized`.
pub async fn require_api_key(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = state.config.api_key.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if OPEN_PATHS.contains(&path) || PUBLIC_PAGES.contains(&path) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match given {
        Some(token) if keys_equal(token.as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::Unauthorized("invalid API key".into()).into_response(),
        None => {
            ApiError::Unauthorized("missing API key: send `Authorization: Bearer <key>`".into())
                .into_response()
        }
    }
}

/// The token of an `Authorization` value `<scheme> <token>` whose scheme is `Bearer` in any
/// case (RFC 7235 §2.1: the scheme is case-insensitive), surrounding whitespace trimmed.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Compares the SHA-256 digests of `a` and `b` in constant time: the time depends neither on
/// where they differ nor on their lengths.
fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.as_slice().ct_eq(db.as_slice()).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_equal_compares_bytes() {
        assert!(super::keys_equal(b"abc", b"abc"));
        assert!(!super::keys_equal(b"abc", b"abd"));
        assert!(!super::keys_equal(b"abc", b"ab"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in [
            "Bearer k",
            "bearer k",
            "BEARER k",
            "BeArEr   k ",
            "Bearer\tk",
        ] {
            assert_eq!(super::bearer_token(v), Some("k"), "{v:?}");
        }
        assert_eq!(super::bearer_token("Basic k"), None);
        assert_eq!(super::bearer_token("Bearerk"), None);
    }
}
