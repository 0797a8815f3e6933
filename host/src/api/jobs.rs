//! Jobs: submit, query, list tasks, update, retry (spec §5.1–5.4).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use tascreed_bulletin::JobKey;
use tascreed_domain::{Job, JobRequest, Task};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorKind};
use super::extract::{JsonBody, PathArgs};
use super::{AppState, Shared, job_json, tasks_json};

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(get_job))
        .routes(routes!(job_tasks))
        .routes(routes!(update))
        .routes(routes!(retry))
}

/// (jobName, trigger) of a request; both are needed to name a job.
fn key_of(request: &JobRequest) -> Result<JobKey, ApiError> {
    let name = request.job_name.as_deref().filter(|n| !n.is_empty());
    let trigger = request.trigger.as_deref().filter(|t| !t.is_empty());
    match (name, trigger) {
        (Some(n), Some(t)) => Ok(JobKey::new(n, t)),
        (None, _) => Err(ApiError::validation("job name invalid: null")),
        (_, None) => Err(ApiError::validation("job trigger invalid: null")),
    }
}

fn job_not_found(key: &JobKey) -> ApiError {
    ApiError::not_found(ErrorKind::Job, format!("job {key} does not exist"))
}

/// Submit a job request. A new job is 201; a (jobName, trigger) that exists, alive or archived,
/// returns that job unchanged with 200 (spec §5.1).
#[utoipa::path(post, path = "/api/v1/job", tag = "job",
    request_body(content = JobRequest, description = "the job to create", content_type = "application/json"),
    responses(
        (status = 201, description = "created", body = Job),
        (status = 200, description = "the existing job of this (jobName, trigger)", body = Job),
        (status = 400, description = "bad JSON or validation", body = ErrorBody),
        (status = 403, description = "define banned (JOB_SUBMIT)", body = ErrorBody),
        (status = 404, description = "unknown job define", body = ErrorBody),
        (status = 409, description = "uniqueAliveInstance: another job of the define is alive", body = ErrorBody),
    ))]
async fn submit(
    State(s): Shared,
    JsonBody(request): JsonBody<JobRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    key_of(&request)?;
    let submission = s.node.submit(request).await?;
    let now = s.now_ms().await?;
    let status = if submission.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(job_json(&submission.job, now))))
}

/// The job, alive or archived. Unknown: 404 (TasCreed answers an empty 200).
#[utoipa::path(get, path = "/api/v1/job/{jobName}/{trigger}", tag = "job",
    params(("jobName" = String, Path), ("trigger" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
async fn get_job(
    State(s): Shared,
    PathArgs((name, trigger)): PathArgs<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let key = JobKey::new(name, trigger);
    let k = key.clone();
    let (stored, now) = s.db(move |b| Ok((b.job(&k)?, b.now_ms()?))).await?;
    let stored = stored.ok_or_else(|| job_not_found(&key))?;
    Ok(Json(job_json(&stored.job, now)))
}

/// Every task ever created for the job, also after it was archived.
#[utoipa::path(get, path = "/api/v1/job/{jobName}/{trigger}/tasks", tag = "job",
    params(("jobName" = String, Path), ("trigger" = String, Path)),
    responses((status = 200, body = Vec<Task>), (status = 404, body = ErrorBody)))]
async fn job_tasks(
    State(s): Shared,
    PathArgs((name, trigger)): PathArgs<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let key = JobKey::new(name, trigger);
    let k = key.clone();
    let (stored, tasks, now) = s.db(move |b| Ok((b.job(&k)?, b.job_tasks(&k)?, b.now_ms()?))).await?;
    if stored.is_none() {
        return Err(job_not_found(&key));
    }
    Ok(Json(tasks_json(tasks, now)?))
}

/// Update an alive UNDONE job's step confs: `maxTaskCount`, pack `size`, `maxPickTimes`
/// (spec §5.3); only tasks created afterwards see the change.
#[utoipa::path(post, path = "/api/v1/job/update", tag = "job",
    request_body(content = JobRequest, description = "jobName, trigger and the steps' new confs", content_type = "application/json"),
    responses(
        (status = 200, description = "the updated job", body = Job),
        (status = 400, description = "bad JSON, validation, or nothing to update", body = ErrorBody),
        (status = 404, description = "no such alive job", body = ErrorBody),
    ))]
async fn update(State(s): Shared, JsonBody(request): JsonBody<JobRequest>) -> Result<Json<Value>, ApiError> {
    key_of(&request)?;
    let job = s.node.update(request).await?;
    let now = s.now_ms().await?;
    Ok(Json(job_json(&job, now)))
}

/// Retry an alive ERROR job: its ERROR tasks go back to todo with counters cleared (spec §5.4).
#[utoipa::path(post, path = "/api/v1/job/retry", tag = "job",
    request_body(content = JobRequest, description = "only jobName and trigger are read", content_type = "application/json"),
    responses(
        (status = 200, description = "the job after the reset", body = Job),
        (status = 400, description = "bad JSON, or nothing to retry", body = ErrorBody),
        (status = 404, description = "no such alive job", body = ErrorBody),
    ))]
async fn retry(State(s): Shared, JsonBody(request): JsonBody<JobRequest>) -> Result<Json<Value>, ApiError> {
    let key = key_of(&request)?;
    let job = s.node.retry(key).await?;
    let now = s.now_ms().await?;
    Ok(Json(job_json(&job, now)))
}
