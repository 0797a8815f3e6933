//! Bans and resumes at global, job-define and job scope (spec §14).
//!
//! Levels TASK_PICK < TASK_CREATE < JOB_SUBMIT; a level covers the ones below it. Level strings
//! are case-insensitive; a missing or unknown level (or NONE) stores nothing and answers
//! `false`. Bans are read inside the claim and advance transactions, so they take effect at
//! once: `ban.cache.ms` is only an upper bound, which we beat. A job-scope JOB_SUBMIT cannot
//! apply (the job exists only after its submission) and is rejected (spec §14 allows reject or
//! ignore; a silent no-op would look like a working ban).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tascreed_bulletin::{BanLevel, BanScope, JobKey};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorKind};
use super::extract::{PathArgs, QueryArgs};
use super::{AppState, Shared};

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(ban_global))
        .routes(routes!(ban_define))
        .routes(routes!(ban_job))
        .routes(routes!(resume_global))
        .routes(routes!(resume_define))
        .routes(routes!(resume_job))
}

/// `level`: TASK_PICK, TASK_CREATE or JOB_SUBMIT, any case.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LevelQuery {
    pub level: Option<String>,
}

/// A job ban level, `None` for NONE / missing / unknown; routine levels are an error.
fn parse_level(level: Option<&str>) -> Result<Option<BanLevel>, ApiError> {
    let upper = level.unwrap_or("").trim().to_ascii_uppercase();
    match upper.as_str() {
        "TASK_PICK" => Ok(Some(BanLevel::TaskPick)),
        "TASK_CREATE" => Ok(Some(BanLevel::TaskCreate)),
        "JOB_SUBMIT" => Ok(Some(BanLevel::JobSubmit)),
        "ROUTINE_EXEC" | "ROUTINE_OCCUPY" => {
            Err(ApiError::validation(format!("ban level {upper} is not compatible with ban target JOB")))
        }
        _ => Ok(None),
    }
}

/// Stores the ban (after the scope's existence check) and answers whether one was stored.
async fn ban(s: &AppState, scope: BanScope, level: Option<&str>) -> Result<Json<bool>, ApiError> {
    let level = parse_level(level)?;
    match &scope {
        BanScope::Global => {}
        BanScope::JobDefine(name) => {
            if s.defines.get(name).is_none() {
                return Err(ApiError::not_found(ErrorKind::Job, format!("job define {name} doesn't exist")));
            }
        }
        BanScope::Job(key) => {
            let k = key.clone();
            let alive = s.db(move |b| b.alive_jobs(Some(&k.job_name), Some(&k.trigger))).await?;
            if alive.is_empty() {
                return Err(ApiError::not_found(
                    ErrorKind::Job,
                    format!("alive job ({}, {}) doesn't exist", key.job_name, key.trigger),
                ));
            }
            if level == Some(BanLevel::JobSubmit) {
                return Err(ApiError::validation(format!(
                    "ban level JOB_SUBMIT is not applicable to a single job ({}, {}): it exists already; \
                     ban its define to stop submissions",
                    key.job_name, key.trigger
                )));
            }
        }
    }
    let Some(level) = level else {
        return Ok(Json(false));
    };
    s.db(move |b| b.set_ban(&scope, level)).await?;
    tracing::info!(?level, "ban set");
    Ok(Json(true))
}

/// Removes the ban and makes the resume felt at once: workers look for tasks again and the
/// affected alive jobs are advanced (a lifted TASK_CREATE lets them create their tasks now).
async fn resume(s: &AppState, scope: BanScope) -> Result<Json<bool>, ApiError> {
    let sc = scope.clone();
    let affected = s
        .db(move |b| {
            b.remove_ban(&sc)?;
            match &sc {
                BanScope::Global => b.alive_jobs(None, None),
                BanScope::JobDefine(name) => b.alive_jobs(Some(name), None),
                BanScope::Job(key) => b.alive_jobs(Some(&key.job_name), Some(&key.trigger)),
            }
        })
        .await?;
    for job in &affected {
        s.node.advance(JobKey::of(job));
    }
    s.node.wake_workers();
    tracing::info!(?scope, jobs = affected.len(), "ban lifted");
    Ok(Json(true))
}

/// Ban every job.
#[utoipa::path(put, path = "/api/v1/state/ban/global", tag = "ban", params(LevelQuery),
    responses((status = 200, description = "whether a ban was stored", body = bool),
              (status = 400, description = "routine level", body = ErrorBody)))]
async fn ban_global(State(s): Shared, QueryArgs(q): QueryArgs<LevelQuery>) -> Result<Json<bool>, ApiError> {
    ban(&s, BanScope::Global, q.level.as_deref()).await
}

/// Ban the jobs of one define.
#[utoipa::path(put, path = "/api/v1/state/ban/jobDefine/{jobDefineName}", tag = "ban",
    params(("jobDefineName" = String, Path), LevelQuery),
    responses((status = 200, description = "whether a ban was stored", body = bool),
              (status = 400, description = "routine level", body = ErrorBody),
              (status = 404, description = "unknown define", body = ErrorBody)))]
async fn ban_define(
    State(s): Shared,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<LevelQuery>,
) -> Result<Json<bool>, ApiError> {
    ban(&s, BanScope::JobDefine(name), q.level.as_deref()).await
}

/// Ban one alive job (TASK_PICK or TASK_CREATE).
#[utoipa::path(put, path = "/api/v1/state/ban/job/{jobName}/{trigger}", tag = "ban",
    params(("jobName" = String, Path), ("trigger" = String, Path), LevelQuery),
    responses((status = 200, description = "whether a ban was stored", body = bool),
              (status = 400, description = "routine level, or JOB_SUBMIT", body = ErrorBody),
              (status = 404, description = "no such alive job", body = ErrorBody)))]
async fn ban_job(
    State(s): Shared,
    PathArgs((name, trigger)): PathArgs<(String, String)>,
    QueryArgs(q): QueryArgs<LevelQuery>,
) -> Result<Json<bool>, ApiError> {
    ban(&s, BanScope::Job(JobKey::new(name, trigger)), q.level.as_deref()).await
}

/// Lift the global ban.
#[utoipa::path(put, path = "/api/v1/state/resume/global", tag = "ban", responses((status = 200, body = bool)))]
async fn resume_global(State(s): Shared) -> Result<Json<bool>, ApiError> {
    resume(&s, BanScope::Global).await
}

/// Lift a define's ban.
#[utoipa::path(put, path = "/api/v1/state/resume/jobDefine/{jobDefineName}", tag = "ban",
    params(("jobDefineName" = String, Path)), responses((status = 200, body = bool)))]
async fn resume_define(State(s): Shared, PathArgs(name): PathArgs<String>) -> Result<Json<bool>, ApiError> {
    resume(&s, BanScope::JobDefine(name)).await
}

/// Lift a job's ban.
#[utoipa::path(put, path = "/api/v1/state/resume/job/{jobName}/{trigger}", tag = "ban",
    params(("jobName" = String, Path), ("trigger" = String, Path)), responses((status = 200, body = bool)))]
async fn resume_job(
    State(s): Shared,
    PathArgs((name, trigger)): PathArgs<(String, String)>,
) -> Result<Json<bool>, ApiError> {
    resume(&s, BanScope::Job(JobKey::new(name, trigger))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(parse_level(Some("task_pick")).unwrap(), Some(BanLevel::TaskPick));
        assert_eq!(parse_level(Some("Task_Create")).unwrap(), Some(BanLevel::TaskCreate));
        assert_eq!(parse_level(Some("JOB_SUBMIT")).unwrap(), Some(BanLevel::JobSubmit));
        assert_eq!(parse_level(None).unwrap(), None);
        assert_eq!(parse_level(Some("bogus")).unwrap(), None);
        assert_eq!(parse_level(Some("NONE")).unwrap(), None);
        let e = parse_level(Some("routine_exec")).unwrap_err();
        assert_eq!(e.message, "ban level ROUTINE_EXEC is not compatible with ban target JOB");
    }
}
