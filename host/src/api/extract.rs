//! Extractors whose rejections are our error body: axum's own answer in plain text, and a JSON
//! client should never have to parse two error shapes.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorKind};

/// A JSON body: `Content-Type: application/json` (or `…+json`), within the route's body limit,
/// parsed with errors that name the offending field.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The raw body, within the route's limit (too large is 413, in our error body).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        body_bytes(req, state).await.map(RawBody)
    }
}

/// The raw body within the route's limit; too large is 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        let status = r.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "request body is larger than this endpoint accepts (JSON: {} MiB, executor uploads: {} MiB)",
                super::JSON_BODY_LIMIT >> 20,
                super::UPLOAD_BODY_LIMIT >> 20
            )
        } else {
            format!("cannot read the request body: {}", r.body_text())
        };
        ApiError::new(status, ErrorKind::Request, message)
    })
}

/// Refuses anything but a JSON content type (400 naming what was sent).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(ApiError::request("expected Content-Type: application/json, got no Content-Type"));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let is_json =
        essence == "application/json" || essence.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::request(format!("expected Content-Type: application/json, got {text:?}")))
    }
}

/// Parses JSON; every failure is 400 `TC_FATAL_VALIDATION_EXCEPTION` "parse json fails: …"
/// (TasCreed's phrase), naming the field when the JSON is well-formed but of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() && path != "." {
            ApiError::validation(format!("parse json fails: {path}: {inner}"))
        } else {
            ApiError::validation(format!("parse json fails: {inner}"))
        }
    })?;
    de.end().map_err(|e| ApiError::validation(format!("parse json fails: {e}")))?;
    Ok(value)
}

/// Query parameters; a value of the wrong type is 400 naming it.
pub struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryArgs(q.0))
            .map_err(|r| ApiError::request(r.body_text()))
    }
}

/// Path segments.
pub struct PathArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathArgs(p.0))
            .map_err(|r| ApiError::new(r.status(), ErrorKind::Request, r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(require_json(&h).is_err());
        for ok in ["application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(require_json(&h).is_ok(), "{ok}");
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(require_json(&h).unwrap_err().message.contains("text/plain"));
    }

    #[test]
    fn parse_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct R {
            priority: Option<i64>,
        }
        let e = parse_json::<R>(br#"{"priority":"high"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert!(e.message.starts_with("parse json fails: priority: invalid type"), "{}", e.message);
        let e = parse_json::<R>(b"{").unwrap_err();
        assert!(e.message.starts_with("parse json fails: EOF"), "{}", e.message);
        assert!(parse_json::<R>(b"{} x").is_err(), "trailing garbage");
    }
}
