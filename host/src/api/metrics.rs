//! `GET /metrics` (Prometheus text format 0.0.4) and `GET /healthz`. The metrics themselves are
//! recorded and rendered by [`crate::metrics`]; this file only serves them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(metrics)).routes(routes!(healthz))
}

/// Prometheus text exposition of this node's metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    crate::metrics::catalogs(state.executors.errors().len(), state.defines.errors().len());
    // Rendering walks every series: keep it off the async workers.
    let text = tokio::task::spawn_blocking(crate::metrics::render).await.unwrap_or_default();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}
