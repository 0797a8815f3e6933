//! Executors: upload (validated by loading it), list, inspect, delete.
//!
//! An upload is stored in the bulletin, content-addressed, so every node's upload sync loads it
//! too. Components from `executor.dirs` are node-local files: they are listed but cannot be
//! deleted over HTTP (409), since the file would bring them back.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::defines::{LoadError, load_error};
use super::error::{ApiError, ErrorBody, ErrorKind};
use super::extract::{PathArgs, RawBody};
use super::{AppState, Shared};
use crate::catalog::{ExecutorInfo, InsertError, Source, is_valid_executor_name};

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(put, get_one, delete)).routes(routes!(list))
}

/// A (job, step) pair an executor serves by default.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingJson {
    pub job_name: String,
    pub step_name: String,
}

/// What `describe()` returned.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ManifestJson {
    pub name: String,
    pub version: String,
    pub bindings: Vec<BindingJson>,
    /// True: the host drives `execute-round` with checkpoints.
    pub checkpoint: bool,
}

/// A live executor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorJson {
    pub name: String,
    pub sha256: String,
    /// Component size in bytes.
    pub size: usize,
    /// `upload` or `dir`.
    pub source: String,
    /// The file, for `dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub manifest: ManifestJson,
    /// Whether this node took its compiled code from the artifact cache.
    pub cache_hit: bool,
    pub compile_ms: u64,
}

/// Live executors and the files of `executor.dirs` that failed to load.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutorList {
    pub executors: Vec<ExecutorJson>,
    pub errors: Vec<LoadError>,
}

fn render(info: ExecutorInfo) -> ExecutorJson {
    let (source, file) = match &info.source {
        Source::Upload => ("upload", None),
        Source::Dir(path) => ("dir", Some(path.display().to_string())),
    };
    let m = info.manifest;
    ExecutorJson {
        name: info.name,
        sha256: info.sha256,
        size: info.size,
        source: source.into(),
        file,
        manifest: ManifestJson {
            name: m.name,
            version: m.version,
            bindings: m.bindings.into_iter().map(|(job_name, step_name)| BindingJson { job_name, step_name }).collect(),
            checkpoint: m.checkpoint,
        },
        cache_hit: info.cache_hit,
        compile_ms: info.compile_ms,
    }
}

fn live(s: &AppState, name: &str) -> Option<ExecutorInfo> {
    s.executors.list().into_iter().find(|i| i.name == name)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if is_valid_executor_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::Executor,
            format!("executor name invalid: {name:?} (expected [a-z0-9][a-z0-9._-]{{0,63}})"),
        ))
    }
}

/// Upload a component (body: its bytes). It must load as a component of world
/// `tascreed:executor/executor`; a rejected upload changes nothing. 201 when the name is new,
/// 200 when it replaced a live executor of that name.
#[utoipa::path(put, path = "/api/v1/executor/{name}", tag = "executor", params(("name" = String, Path)),
    request_body(content = Vec<u8>, description = "the component (.wasm)", content_type = "application/wasm"),
    responses(
        (status = 201, description = "new executor", body = ExecutorJson),
        (status = 200, description = "replaced the executor of this name", body = ExecutorJson),
        (status = 400, description = "invalid name, or the component does not load", body = ErrorBody),
        (status = 413, description = "larger than 64 MiB", body = ErrorBody),
    ))]
async fn put(
    State(s): Shared,
    PathArgs(name): PathArgs<String>,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<ExecutorJson>), ApiError> {
    check_name(&name)?;
    // One upload change at a time on this node, and none while the sync with the bulletin runs.
    let _serial = s.executors.lock_uploads().await;
    let existed = live(&s, &name).is_some();
    let bytes: Arc<[u8]> = Arc::from(bytes.as_ref());
    let executor = s.executors.load_upload(&name, bytes.clone()).await.map_err(|e| {
        let reason = match e {
            InsertError::InvalidName(_) => e.to_string(),
            InsertError::Load(l) => l.to_string(),
        };
        ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::Executor, format!("executor {name} rejected: {reason}"))
    })?;
    let (n, sha) = (name.clone(), executor.sha256().to_string());
    // Shared with every node first, then live here: a failed write changes nothing anywhere.
    s.db(move |b| b.put_upload(&n, &sha, &bytes)).await?;
    s.executors.install_upload(&name, executor);
    let info = live(&s, &name).ok_or_else(|| ApiError::internal(format!("executor {name} vanished after upload")))?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    // Tasks waiting for this executor can now be picked here.
    s.node.wake_workers();
    Ok((status, Json(render(info))))
}

/// Live executors on this node, and the files of `executor.dirs` that failed to load.
#[utoipa::path(get, path = "/api/v1/executor", tag = "executor", responses((status = 200, body = ExecutorList)))]
async fn list(State(s): Shared) -> Json<ExecutorList> {
    let executors = s.executors.list().into_iter().map(render).collect();
    let errors = s.executors.errors().into_iter().map(load_error).collect();
    Json(ExecutorList { executors, errors })
}

/// One live executor.
#[utoipa::path(get, path = "/api/v1/executor/{name}", tag = "executor", params(("name" = String, Path)),
    responses((status = 200, body = ExecutorJson), (status = 404, body = ErrorBody)))]
async fn get_one(State(s): Shared, PathArgs(name): PathArgs<String>) -> Result<Json<ExecutorJson>, ApiError> {
    live(&s, &name)
        .map(|i| Json(render(i)))
        .ok_or_else(|| ApiError::not_found(ErrorKind::Executor, format!("executor {name} not found")))
}

/// Delete an uploaded executor, on every node. A file of `executor.dirs` with the same name, if
/// any, becomes live again. Returns the executor as it was.
#[utoipa::path(delete, path = "/api/v1/executor/{name}", tag = "executor", params(("name" = String, Path)),
    responses(
        (status = 200, description = "the deleted upload", body = ExecutorJson),
        (status = 404, body = ErrorBody),
        (status = 409, description = "provided by a file of executor.dirs", body = ErrorBody),
    ))]
async fn delete(State(s): Shared, PathArgs(name): PathArgs<String>) -> Result<Json<ExecutorJson>, ApiError> {
    let _serial = s.executors.lock_uploads().await;
    let current = live(&s, &name);
    let n = name.clone();
    let upload = s.db(move |b| Ok(b.uploads()?.into_iter().find(|u| u.name == n))).await?;
    let Some(upload) = upload else {
        return Err(match current {
            Some(ExecutorInfo { source: Source::Dir(path), .. }) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorKind::Executor,
                format!(
                    "executor {name} comes from the file {} of executor.dirs and cannot be deleted over HTTP; \
                     remove the file instead",
                    path.display()
                ),
            ),
            _ => ApiError::not_found(ErrorKind::Executor, format!("executor {name} not found")),
        });
    };
    let n = name.clone();
    s.db(move |b| b.delete_upload(&n)).await?;
    s.executors.remove(&name);
    let shown = match current {
        Some(info) if info.source == Source::Upload => render(info),
        // The upload was shadowed here by a newer file of the same name: describe the upload
        // from what the bulletin knew of it.
        _ => ExecutorJson {
            name: upload.name,
            sha256: upload.sha256,
            size: usize::try_from(upload.size).unwrap_or(usize::MAX),
            source: "upload".into(),
            file: None,
            manifest: ManifestJson { name: String::new(), version: String::new(), bindings: vec![], checkpoint: false },
            cache_hit: false,
            compile_ms: 0,
        },
    };
    Ok(Json(shown))
}
