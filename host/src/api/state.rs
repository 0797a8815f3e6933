//! The state lists and admin deletes (spec §21 rows 6–17, 28).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tascreed_bulletin::{JobKey, TaskFilter, TaskKey, TaskList};
use tascreed_domain::{Job, Task};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorKind};
use super::extract::{PathArgs, QueryArgs};
use super::{AppState, Shared, job_json, task_json, tasks_json};

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(alive_jobs))
        .routes(routes!(todo_tasks))
        .routes(routes!(done_tasks))
        .routes(routes!(error_tasks))
        .routes(routes!(adoptions))
        .routes(routes!(get_adoption, delete_adoption))
        .routes(routes!(delete_alive_job))
        .routes(routes!(delete_todo_task))
        .routes(routes!(archived_task))
}

/// Exact-match filters of `aliveJobs`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    pub job_name: Option<String>,
    pub trigger: Option<String>,
}

/// Exact-match filters of the task lists.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    pub job_name: Option<String>,
    pub trigger: Option<String>,
    pub step_name: Option<String>,
}

/// Substring filter of `adoptions`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdoptionQuery {
    /// Substring of the key `<jobName>/<trigger>/<taskName>`.
    pub filter: Option<String>,
}

/// `archive=true` keeps the trigger used by archiving the job with trait DELETED.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    pub archive: Option<bool>,
}

/// A lease: `<jobName>/<trigger>/<taskName>` → `<node>/<worker>`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Adoption {
    pub key: String,
    pub value: String,
}

type TaskPath = PathArgs<(String, String, String)>;

/// Alive jobs (not archived or deleted), optionally by exact jobName and trigger.
#[utoipa::path(get, path = "/api/v1/state/aliveJobs", tag = "state", params(JobQuery),
    responses((status = 200, body = Vec<Job>)))]
async fn alive_jobs(State(s): Shared, QueryArgs(q): QueryArgs<JobQuery>) -> Result<Json<Value>, ApiError> {
    let (jobs, now) =
        s.db(move |b| Ok((b.alive_jobs(q.job_name.as_deref(), q.trigger.as_deref())?, b.now_ms()?))).await?;
    Ok(Json(Value::Array(jobs.iter().map(|j| job_json(j, now)).collect())))
}

async fn task_list(s: &AppState, list: TaskList, q: TaskQuery) -> Result<Json<Value>, ApiError> {
    let filter = TaskFilter { job_name: q.job_name, trigger: q.trigger, step_name: q.step_name };
    let (tasks, now) = s.db(move |b| Ok((b.tasks(list, &filter)?, b.now_ms()?))).await?;
    Ok(Json(tasks_json(tasks, now)?))
}

/// Tasks not finished yet.
#[utoipa::path(get, path = "/api/v1/state/todoTasks", tag = "state", params(TaskQuery),
    responses((status = 200, body = Vec<Task>)))]
async fn todo_tasks(State(s): Shared, QueryArgs(q): QueryArgs<TaskQuery>) -> Result<Json<Value>, ApiError> {
    task_list(&s, TaskList::Todo, q).await
}

/// Finished tasks not yet folded into their job.
#[utoipa::path(get, path = "/api/v1/state/doneTasks", tag = "state", params(TaskQuery),
    responses((status = 200, body = Vec<Task>)))]
async fn done_tasks(State(s): Shared, QueryArgs(q): QueryArgs<TaskQuery>) -> Result<Json<Value>, ApiError> {
    task_list(&s, TaskList::Done, q).await
}

/// ERROR tasks of alive jobs (kept for a retry).
#[utoipa::path(get, path = "/api/v1/state/errorTasks", tag = "state", params(TaskQuery),
    responses((status = 200, body = Vec<Task>)))]
async fn error_tasks(State(s): Shared, QueryArgs(q): QueryArgs<TaskQuery>) -> Result<Json<Value>, ApiError> {
    task_list(&s, TaskList::Error, q).await
}

/// Current task leases.
#[utoipa::path(get, path = "/api/v1/state/adoptions", tag = "state", params(AdoptionQuery),
    responses((status = 200, body = Vec<Adoption>)))]
async fn adoptions(State(s): Shared, QueryArgs(q): QueryArgs<AdoptionQuery>) -> Result<Json<Vec<Adoption>>, ApiError> {
    let pairs = s.db(move |b| b.adoptions(q.filter.as_deref())).await?;
    Ok(Json(pairs.into_iter().map(|(key, value)| Adoption { key, value }).collect()))
}

/// The lease on one task.
#[utoipa::path(get, path = "/api/v1/state/adoption/{jobName}/{trigger}/{taskName}", tag = "state",
    params(("jobName" = String, Path), ("trigger" = String, Path), ("taskName" = String, Path)),
    responses((status = 200, body = Adoption), (status = 404, description = "not adopted", body = ErrorBody)))]
async fn get_adoption(State(s): Shared, PathArgs((j, t, n)): TaskPath) -> Result<Json<Adoption>, ApiError> {
    let key = TaskKey::new(j, t, n).to_string();
    let k = key.clone();
    let pairs = s.db(move |b| b.adoptions(Some(&k))).await?;
    pairs
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(key, value)| Json(Adoption { key, value }))
        .ok_or_else(|| ApiError::not_found(ErrorKind::Task, format!("task {key} is not adopted")))
}

/// Releases the lease on one task: its holder is fenced out (its result is discarded) and the
/// task can be picked again. Returns the released pair.
#[utoipa::path(delete, path = "/api/v1/state/adoption/{jobName}/{trigger}/{taskName}", tag = "state",
    params(("jobName" = String, Path), ("trigger" = String, Path), ("taskName" = String, Path)),
    responses((status = 200, body = Adoption), (status = 404, description = "not adopted", body = ErrorBody)))]
async fn delete_adoption(State(s): Shared, PathArgs((j, t, n)): TaskPath) -> Result<Json<Adoption>, ApiError> {
    let task = TaskKey::new(j, t, n);
    let key = task.to_string();
    let owner = s.db(move |b| b.release_adoption(&task)).await?;
    let owner = owner.ok_or_else(|| ApiError::not_found(ErrorKind::Task, format!("task {key} is not adopted")))?;
    s.node.wake_workers();
    Ok(Json(Adoption { key, value: owner }))
}

/// Deletes an alive job and its tasks; with `archive=true` the job is archived with trait
/// DELETED, so its trigger stays used (spec §5.5). Returns the deleted job.
#[utoipa::path(delete, path = "/api/v1/state/aliveJob/{jobName}/{trigger}", tag = "state",
    params(("jobName" = String, Path), ("trigger" = String, Path), DeleteQuery),
    responses((status = 200, body = Job), (status = 404, description = "no such alive job", body = ErrorBody)))]
async fn delete_alive_job(
    State(s): Shared,
    PathArgs((name, trigger)): PathArgs<(String, String)>,
    QueryArgs(q): QueryArgs<DeleteQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = JobKey::new(name, trigger);
    let (k, archive) = (key.clone(), q.archive.unwrap_or(false));
    let (deleted, now) = s.db(move |b| Ok((b.delete_alive_job(&k, archive)?, b.now_ms()?))).await?;
    let job = deleted.ok_or_else(|| ApiError::not_found(ErrorKind::Job, format!("alive job {key} does not exist")))?;
    crate::metrics::job_opr(&job.job_name, job.state.as_str(), "DELETE");
    Ok(Json(job_json(&job, now)))
}

/// Deletes a todo task: it ends ERROR ("deleted by request") so its step can still finish and
/// a job retry can run it again (D14). Returns the task as it was.
#[utoipa::path(delete, path = "/api/v1/state/todoTask/{jobName}/{trigger}/{taskName}", tag = "state",
    params(("jobName" = String, Path), ("trigger" = String, Path), ("taskName" = String, Path)),
    responses((status = 200, body = Task), (status = 404, description = "no such todo task", body = ErrorBody)))]
async fn delete_todo_task(State(s): Shared, PathArgs((j, t, n)): TaskPath) -> Result<Json<Value>, ApiError> {
    let task = TaskKey::new(j, t, n);
    let (k, job) = (task.clone(), task.job.clone());
    let (deleted, now) = s.db(move |b| Ok((b.delete_todo_task(&k)?, b.now_ms()?))).await?;
    let deleted =
        deleted.ok_or_else(|| ApiError::not_found(ErrorKind::Task, format!("todo task {task} does not exist")))?;
    crate::metrics::task_opr(&deleted.job_name, &deleted.step_name, deleted.state.as_str(), "DELETE", 1);
    // Fold the ERROR into its job now rather than at the next sweep.
    s.node.advance(job);
    Ok(Json(task_json(deleted, now)?))
}

/// A task of an archived job.
#[utoipa::path(get, path = "/api/v1/state/archivedTask/{jobName}/{trigger}/{taskName}", tag = "state",
    params(("jobName" = String, Path), ("trigger" = String, Path), ("taskName" = String, Path)),
    responses((status = 200, body = Task), (status = 404, description = "no such archived task", body = ErrorBody)))]
async fn archived_task(State(s): Shared, PathArgs((j, t, n)): TaskPath) -> Result<Json<Value>, ApiError> {
    let task = TaskKey::new(j, t, n);
    let k = task.clone();
    let (found, now) = s
        .db(move |b| {
            let archived = b.job(&k.job)?.is_some_and(|j| j.archived);
            Ok((if archived { b.task(&k)? } else { None }, b.now_ms()?))
        })
        .await?;
    let found =
        found.ok_or_else(|| ApiError::not_found(ErrorKind::Task, format!("archived task {task} does not exist")))?;
    Ok(Json(task_json(found, now)?))
}
