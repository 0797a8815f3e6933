//! Job defines: the loaded ones with the files that failed to load, one by name, and offline
//! validation of a define document.
//!
//! `GET /api/v1/define` answers
//! `{"defines": [{"jobName", "file", "define": {…}}], "errors": [{"file", "name", "message"}]}`
//! (`name` is null when the file did not get as far as naming its define); a define whose file
//! broke later stays listed with its last good version, and its file is also in `errors`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use tascreed_domain::JobDefine;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorKind};
use super::extract::{JsonBody, PathArgs};
use super::{AppState, Shared};
use crate::catalog::{DefineInfo, FileError};

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(one)).routes(routes!(validate))
}

/// A loaded define.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefineEntry {
    pub job_name: String,
    /// The file it was loaded from.
    pub file: String,
    /// The define as loaded.
    #[schema(value_type = JobDefine)]
    pub define: Value,
}

/// A file of `define.dirs` that did not load.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoadError {
    pub file: String,
    /// The define it provides or meant to provide, when known.
    pub name: Option<String>,
    pub message: String,
}

/// Loaded defines and load errors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DefineList {
    pub defines: Vec<DefineEntry>,
    pub errors: Vec<LoadError>,
}

/// Answer of a successful validation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Validated {
    pub valid: bool,
    pub job_name: String,
}

fn entry(info: DefineInfo) -> Result<DefineEntry, ApiError> {
    let define = serde_json::to_value(&*info.define)
        .map_err(|e| ApiError::internal(format!("cannot render define {}: {e}", info.name)))?;
    Ok(DefineEntry { job_name: info.name, file: info.file.display().to_string(), define })
}

pub(super) fn load_error(e: FileError) -> LoadError {
    LoadError { file: e.file.display().to_string(), name: e.name, message: e.message }
}

/// Loaded defines, and the files of `define.dirs` that failed to load.
#[utoipa::path(get, path = "/api/v1/define", tag = "define", responses((status = 200, body = DefineList)))]
async fn list(State(s): Shared) -> Result<Json<DefineList>, ApiError> {
    let defines = s.defines.list().into_iter().map(entry).collect::<Result<_, _>>()?;
    let errors = s.defines.errors().into_iter().map(load_error).collect();
    Ok(Json(DefineList { defines, errors }))
}

/// One loaded define.
#[utoipa::path(get, path = "/api/v1/define/{jobName}", tag = "define", params(("jobName" = String, Path)),
    responses((status = 200, body = DefineEntry), (status = 404, body = ErrorBody)))]
async fn one(State(s): Shared, PathArgs(name): PathArgs<String>) -> Result<Json<DefineEntry>, ApiError> {
    let info = s.defines.list().into_iter().find(|d| d.name == name);
    let info = info.ok_or_else(|| ApiError::not_found(ErrorKind::Job, format!("job define {name} not found")))?;
    Ok(Json(entry(info)?))
}

/// Validates a define document as the loader would (graph check per
/// `define.graph.validate.enable`); nothing is stored.
#[utoipa::path(post, path = "/api/v1/define/validate", tag = "define",
    request_body(content = JobDefine, description = "a job define", content_type = "application/json"),
    responses((status = 200, body = Validated), (status = 400, description = "the validation message", body = ErrorBody)))]
async fn validate(State(s): Shared, JsonBody(define): JsonBody<JobDefine>) -> Result<Json<Validated>, ApiError> {
    define.validate(s.config.validate_options()).map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(Json(Validated { valid: true, job_name: define.name().to_string() }))
}
