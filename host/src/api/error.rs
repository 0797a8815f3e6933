//! The error body of every non-2xx answer, and the mapping from our errors to status codes.
//!
//! Body: `{"errorCode": <id>, "errorType": "<TYPE>", "errorMessage": "[<id>, <TYPE>] <text>"}`,
//! TasCreed's shape (spec §5.7). TasCreed answers 500 for everything; we keep its `errorType`
//! and text but use the status that says what went wrong:
//!
//! | type | id | used for |
//! |---|---|---|
//! | `TC_FATAL_VALIDATION_EXCEPTION` | 400101 | a body that is not JSON or not of the right shape, a rule broken (400); ban level incompatible |
//! | `TC_FATAL_JOB_EXCEPTION` | 400200 | unknown define or job (404), banned (403), unique-alive conflict (409), update/retry refused (400) |
//! | `TC_FATAL_TASK_EXCEPTION` | 400201 | unknown task or adoption (404) |
//! | `TC_FATAL_EXECUTOR_EXCEPTION` | 400300 | new: a rejected component or executor name (400), unknown executor (404), not deletable (409) |
//! | `TC_FATAL_AUTH_EXCEPTION` | 400400 | new: missing or wrong bearer token (401) |
//! | `TC_FATAL_REQUEST_EXCEPTION` | 400500 | new: malformed request: content type, size (413), query or path values, unknown route (404), method (405) |
//! | `TC_UNKNOWN_EXCEPTION` | 500000 | storage failures and bugs (500) |

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tascreed_bulletin::{BulletinError, JobOpFailure};
use tascreed_domain::JobOpError;

use crate::node::NodeError;

/// TasCreed's error enum names (and ours, in the same style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    Job,
    Task,
    Executor,
    Auth,
    Request,
    Unknown,
}

impl ErrorKind {
    pub fn id(self) -> i64 {
        match self {
            Self::Validation => 400101,
            Self::Job => 400200,
            Self::Task => 400201,
            Self::Executor => 400300,
            Self::Auth => 400400,
            Self::Request => 400500,
            Self::Unknown => 500000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Validation => "TC_FATAL_VALIDATION_EXCEPTION",
            Self::Job => "TC_FATAL_JOB_EXCEPTION",
            Self::Task => "TC_FATAL_TASK_EXCEPTION",
            Self::Executor => "TC_FATAL_EXECUTOR_EXCEPTION",
            Self::Auth => "TC_FATAL_AUTH_EXCEPTION",
            Self::Request => "TC_FATAL_REQUEST_EXCEPTION",
            Self::Unknown => "TC_UNKNOWN_EXCEPTION",
        }
    }
}

/// The JSON body of an error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// TasCreed error id, e.g. 400101.
    #[schema(example = 400200)]
    pub error_code: i64,
    /// TasCreed error enum name, e.g. `TC_FATAL_JOB_EXCEPTION`.
    #[schema(example = "TC_FATAL_JOB_EXCEPTION")]
    pub error_type: String,
    /// `[<id>, <TYPE>] <text>`.
    #[schema(example = "[400200, TC_FATAL_JOB_EXCEPTION] create new job fails: job define nope not found")]
    pub error_message: String,
}

/// An error answer: status, kind and text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {message}", kind.name())]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into() }
    }

    /// 400 `TC_FATAL_VALIDATION_EXCEPTION`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::Validation, message)
    }

    /// 400 `TC_FATAL_REQUEST_EXCEPTION`.
    pub fn request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::Request, message)
    }

    /// 404 of the given kind.
    pub fn not_found(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, message)
    }

    /// 500 `TC_UNKNOWN_EXCEPTION`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Unknown, message)
    }

    pub fn body(&self) -> ErrorBody {
        let (id, name) = (self.kind.id(), self.kind.name());
        ErrorBody {
            error_code: id,
            error_type: name.to_string(),
            error_message: format!("[{id}, {name}] {}", self.message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        } else {
            tracing::debug!(status = %self.status, error = %self.message, "request refused");
        }
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<BulletinError> for ApiError {
    fn from(e: BulletinError) -> Self {
        Self::internal(format!("storage failure: {e}"))
    }
}

impl From<JobOpFailure> for ApiError {
    fn from(e: JobOpFailure) -> Self {
        match e {
            JobOpFailure::NotFound(_) => Self::not_found(ErrorKind::Job, e.to_string()),
            // The updated job broke a rule: that is the validator speaking, as in TasCreed.
            JobOpFailure::Refused(JobOpError::Invalid(v)) => Self::validation(v.to_string()),
            JobOpFailure::Refused(r) => Self::new(StatusCode::BAD_REQUEST, ErrorKind::Job, r.to_string()),
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::Validation(_) => Self::validation(message),
            NodeError::DefineNotFound(_) => Self::not_found(ErrorKind::Job, message),
            NodeError::Banned(_) => Self::new(StatusCode::FORBIDDEN, ErrorKind::Job, message),
            NodeError::UniqueAlive(_) => Self::new(StatusCode::CONFLICT, ErrorKind::Job, message),
            NodeError::JobOp(op) => op.into(),
            NodeError::Storage(_) | NodeError::Internal(_) => Self::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_carries_id_and_type() {
        let body = ApiError::not_found(ErrorKind::Job, "job a.t does not exist").body();
        assert_eq!(body.error_code, 400200);
        assert_eq!(body.error_type, "TC_FATAL_JOB_EXCEPTION");
        assert_eq!(body.error_message, "[400200, TC_FATAL_JOB_EXCEPTION] job a.t does not exist");
    }

    #[test]
    fn node_errors_get_their_status() {
        let cases = [
            (NodeError::DefineNotFound("nope".into()), StatusCode::NOT_FOUND),
            (NodeError::Banned("b".into()), StatusCode::FORBIDDEN),
            (NodeError::UniqueAlive(tascreed_bulletin::JobKey::new("u", "t1")), StatusCode::CONFLICT),
            (NodeError::Validation("job trigger invalid: !".into()), StatusCode::BAD_REQUEST),
            (NodeError::Internal("bug".into()), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status, status);
        }
    }
}
