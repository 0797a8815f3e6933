//! A small blocking client for a node's HTTP API (DESIGN.md "HTTP API"), shared by the client
//! commands. Every failure becomes one readable sentence: the transport problem with the address,
//! or the server's `errorMessage`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use ureq::http::Response;
use ureq::{Body, RequestBuilder};

use super::Remote;

/// Largest response body read (an alive-jobs list of a busy node can be big).
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// The node could not be reached at all (as opposed to answering with an error).
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Talks to one node.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// A successful answer: status and body (JSON, `Null` when empty, a string when not JSON).
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub fn new(remote: &Remote) -> Result<Client> {
        let base = remote.server.trim().trim_end_matches('/').to_string();
        if base.starts_with("https://") {
            bail!("{base}: https is not supported by this client; talk to the node over http:// (it binds loopback)");
        }
        if !base.starts_with("http://") {
            bail!("server address {base:?} must start with http:// (set it with --server or TASCREED_SERVER)");
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        let token = remote.token.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
        Ok(Client { base, token, agent: ureq::Agent::new_with_config(config) })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth<B>(&self, request: RequestBuilder<B>) -> RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// `GET path?query`; an error status is an error.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Reply> {
        let mut request = self.auth(self.agent.get(self.url(path)));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        self.finish("GET", path, request.call())
    }

    /// `POST path` with a JSON body; an error status is an error.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Reply> {
        let request = self.auth(self.agent.post(self.url(path)));
        self.finish("POST", path, request.send_json(body))
    }

    /// `PUT path` with raw bytes; an error status is an error.
    pub fn put_bytes(&self, path: &str, content_type: &str, bytes: &[u8]) -> Result<Reply> {
        let request = self.auth(self.agent.put(self.url(path))).content_type(content_type);
        self.finish("PUT", path, request.send(bytes))
    }

    fn finish(&self, method: &str, path: &str, result: Result<Response<Body>, ureq::Error>) -> Result<Reply> {
        let mut response = result.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| self.transport_error(e))
            .with_context(|| format!("reading the answer to {method} {path}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status >= 400 {
            bail!(api_error(method, path, status, &body));
        }
        Ok(Reply { status, body })
    }

    fn transport_error(&self, e: ureq::Error) -> anyhow::Error {
        let why = match &e {
            // `connection refused`, `timed out`, ... without ureq's "io: " prefix.
            ureq::Error::Io(io) => {
                let kind = io.kind().to_string();
                if kind.contains("other") || kind.contains("uncategorized") { io.to_string() } else { kind }
            }
            other => other.to_string(),
        };
        anyhow::Error::new(Unreachable(format!("cannot reach tascreed at {}: {why}", self.base)))
    }
}

/// The server's own words for an error answer: `errorMessage (errorType, HTTP status)`.
fn api_error(method: &str, path: &str, status: u16, body: &Value) -> String {
    let message = body.get("errorMessage").and_then(Value::as_str);
    let kind = body.get("errorType").and_then(Value::as_str);
    match (message, kind) {
        // TasCreed's messages already start with "[id, TYPE]".
        (Some(m), Some(k)) if m.contains(k) => format!("{m} (HTTP {status})"),
        (Some(m), Some(k)) => format!("{m} ({k}, HTTP {status})"),
        (Some(m), None) => format!("{m} (HTTP {status})"),
        _ => match body {
            Value::Null if status == 404 => {
                format!("{method} {path}: HTTP 404 Not Found (is the server a tascreed with this API?)")
            }
            Value::Null => format!("{method} {path}: HTTP {status}"),
            Value::String(s) => format!("{method} {path}: HTTP {status}: {}", s.trim()),
            other => format!("{method} {path}: HTTP {status}: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_answers_read_as_the_servers_message() {
        let tc = json!({"errorCode": 400200, "errorType": "TC_FATAL_JOB_EXCEPTION",
                        "errorMessage": "[400200, TC_FATAL_JOB_EXCEPTION] create new job fails: job define x not found"});
        assert_eq!(
            api_error("POST", "/api/v1/job", 404, &tc),
            "[400200, TC_FATAL_JOB_EXCEPTION] create new job fails: job define x not found (HTTP 404)"
        );
        let plain = json!({"errorType": "TC_FATAL_EXECUTOR_EXCEPTION", "errorMessage": "executor x rejected"});
        assert_eq!(api_error("PUT", "/p", 400, &plain), "executor x rejected (TC_FATAL_EXECUTOR_EXCEPTION, HTTP 400)");
        assert_eq!(
            api_error("GET", "/nope", 404, &Value::Null),
            "GET /nope: HTTP 404 Not Found (is the server a tascreed with this API?)"
        );
        assert_eq!(api_error("GET", "/x", 502, &json!("bad gateway")), "GET /x: HTTP 502: bad gateway");
    }
}
