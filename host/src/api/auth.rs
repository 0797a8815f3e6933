//! Bearer-token check: with `http.token` set, every request that can change something (any
//! method but GET and HEAD) needs `Authorization: Bearer <token>`. Reads stay open so dashboards
//! and `tascreed status` need no secret.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{ApiError, ErrorKind};

/// Middleware enforcing the token on non-GET requests.
pub async fn require_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(expected) = state.config.http_token.as_deref() else {
        return next.run(req).await;
    };
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let given = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    let refusal = match given {
        None => "missing Authorization: Bearer <token> header (http.token is set on this node)",
        Some(token) if !token_matches(token, expected) => "invalid bearer token",
        Some(_) => return next.run(req).await,
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, ErrorKind::Auth, refusal).into_response();
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Compares in time independent of where the inputs differ and of their lengths: both sides
/// are hashed to 32 bytes, then every byte pair is folded with xor/or (no early exit). Hashing
/// first means a wrong-length guess teaches nothing either; `black_box` keeps the optimiser
/// from turning the fold back into a short-circuiting comparison. A hand-written fold over
/// fixed-size digests is a few lines, so it does not warrant a crate like `subtle`.
fn token_matches(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header() {
        assert_eq!(bearer("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("bearer  s3cret "), Some("s3cret"));
        assert_eq!(bearer("Basic s3cret"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn tokens_compare() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("s3creT", "s3cret"));
        assert!(!token_matches("", "s3cret"));
    }
}
