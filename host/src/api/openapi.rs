//! The OpenAPI document, assembled from the handlers' `#[utoipa::path]` annotations while the
//! routes are registered, so every route is in it and none is described twice.

use std::sync::Arc;

use axum::{Extension, Json};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, JSON_BODY_LIMIT, UPLOAD_BODY_LIMIT, bans, defines, executors, jobs, metrics, state};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tascreed",
        description = "Reliable task execution with WebAssembly executors: TasCreed-compatible job API. \
                       Errors: {errorCode, errorType, errorMessage}. With http.token set, every non-GET \
                       request needs `Authorization: Bearer <token>`."
    ),
    components(schemas(super::ErrorBody)),
    tags(
        (name = "job", description = "submit, query, update, retry"),
        (name = "state", description = "state lists and admin deletes"),
        (name = "ban", description = "bans and resumes"),
        (name = "define", description = "job defines"),
        (name = "executor", description = "WASM executor components"),
        (name = "ops", description = "metrics, liveness, this document"),
    )
)]
struct ApiDoc;

/// Every route with its documentation; the JSON routes limited to 1 MiB, uploads to 64 MiB.
pub fn api() -> OpenApiRouter<Arc<AppState>> {
    let json_routes = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::routes())
        .merge(state::routes())
        .merge(bans::routes())
        .merge(defines::routes())
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_LIMIT));
    let uploads = executors::routes().layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    json_routes.merge(uploads).merge(metrics::routes()).routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops", responses((status = 200, body = Object)))]
async fn openapi_json(Extension(doc): Extension<Arc<Value>>) -> Json<Value> {
    Json((*doc).clone())
}
