//! The HTTP API (axum): TasCreed-compatible paths and JSON, with status codes that say what
//! went wrong (see [`error`] for the error body and ids).
//!
//! Areas: [`jobs`] (submit, query, update, retry), [`state`] (the state lists and admin
//! deletes), [`bans`], [`defines`], [`executors`], plus `/metrics`, `/healthz` and the OpenAPI
//! document at `/api/openapi.json`, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! Bodies: JSON routes accept [`JSON_BODY_LIMIT`] bytes, executor uploads
//! [`UPLOAD_BODY_LIMIT`]; larger bodies get 413. With `http.token` set, every non-GET request
//! needs the bearer token ([`auth`]).
//!
//! # Where we answer differently from TasCreed
//!
//! - Status codes: TasCreed answers 500 for every error; we answer 400/401/403/404/405/409/413
//!   and keep TasCreed's `errorType` and message text ([`error`] has the table).
//! - Something absent (job, alive job, todo or archived task, adoption, define, executor) is
//!   404 with the error body; TasCreed answers an empty 200 body, which clients cannot tell from
//!   a broken proxy.
//! - Submit: a created job is 201, a duplicate (jobName, trigger) 200 with the existing job.
//! - Bans: unknown define / alive job is 404 (TasCreed's message); a job-scope JOB_SUBMIT is
//!   rejected (400) rather than silently stored; bans act at once (they are read inside the
//!   claim and advance transactions, so `ban.cache.ms` is an upper bound we beat), and a resume
//!   wakes the workers and advances the affected jobs.
//! - `DELETE /state/adoption/…` releases the lease: the holder is fenced out (its result is
//!   discarded) and the task can be picked again.
//! - Body limits are constants: `http.body.max.bytes`-style keys would have to join the
//!   documented configuration table, which no deployment has asked for yet.

pub mod auth;
pub mod bans;
pub mod defines;
pub mod error;
pub mod executors;
pub mod extract;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, Uri};
use serde_json::Value;
use tascreed_bulletin::{Bulletin, BulletinError};
use tascreed_domain::{Job, Task, TaskState};

use crate::catalog::{DefineCatalog, ExecutorCatalog};
use crate::config::Config;
use crate::node::Node;
pub use error::{ApiError, ErrorBody, ErrorKind};

/// Largest JSON body (requests, defines): 1 MiB.
pub const JSON_BODY_LIMIT: usize = 1 << 20;
/// Largest executor upload: 64 MiB.
pub const UPLOAD_BODY_LIMIT: usize = 64 << 20;

/// What every handler can reach.
pub struct AppState {
    pub node: Arc<Node>,
    pub bulletin: Arc<dyn Bulletin>,
    pub defines: Arc<DefineCatalog>,
    pub executors: Arc<ExecutorCatalog>,
    pub config: Arc<Config>,
}

/// The shared state as handlers receive it.
pub type Shared = axum::extract::State<Arc<AppState>>;

impl AppState {
    /// Runs a blocking bulletin call off the async runtime (SQLite calls block).
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Bulletin) -> Result<T, BulletinError> + Send + 'static,
    ) -> Result<T, ApiError> {
        crate::node::db(&self.bulletin, f).await.map_err(ApiError::from)
    }

    /// The bulletin's clock (the one that stamps jobs and tasks), for `slow` and `elapsedMs`.
    pub async fn now_ms(&self) -> Result<i64, ApiError> {
        self.db(|b| b.now_ms()).await
    }
}

/// A job as the API shows it.
pub fn job_json(job: &Job, now_ms: i64) -> Value {
    job.api_json(now_ms)
}

/// A task as the API shows it: `slow` and `elapsedMs` filled as for jobs. Only a todo task can
/// be slow (spec §12, as the monitor counts it); a finished task's `elapsedMs` stays at its
/// finish, like `task_execution_summary`.
pub fn task_json(mut task: Task, now_ms: i64) -> Result<Value, ApiError> {
    let until = if task.state == TaskState::Undone { now_ms } else { task.finish_time.unwrap_or(task.modify_time) };
    task.elapsed_ms = Some(until.saturating_sub(task.create_time).max(0));
    task.slow = Some(task.state == TaskState::Undone && task.is_slow(now_ms));
    serde_json::to_value(&task).map_err(|e| ApiError::internal(format!("cannot render task: {e}")))
}

/// Tasks as the API shows them.
pub fn tasks_json(tasks: Vec<Task>, now_ms: i64) -> Result<Value, ApiError> {
    tasks.into_iter().map(|t| task_json(t, now_ms)).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

/// All routes.
pub fn router(state: Arc<AppState>) -> Router {
    let (router, doc) = openapi::api().split_for_parts();
    let doc = Arc::new(serde_json::to_value(&doc).unwrap_or(Value::Null));
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::Extension(doc))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(ErrorKind::Request, format!("no route for {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Request,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}
