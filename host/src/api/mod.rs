//! The HTTP API (axum): TasCreed-compatible paths and JSON.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tascreed_bulletin::Bulletin;

use crate::catalog::{DefineCatalog, ExecutorCatalog};
use crate::config::Config;
use crate::node::Node;

/// What every handler can reach.
pub struct AppState {
    pub node: Arc<Node>,
    pub bulletin: Arc<dyn Bulletin>,
    pub defines: Arc<DefineCatalog>,
    pub executors: Arc<ExecutorCatalog>,
    pub config: Arc<Config>,
}

/// All routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).with_state(state)
}
