//! The `tascreed serve` service: configuration → bulletin, runtime, catalogs, node, HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tascreed_bulletin::{Bulletin, SqliteBulletin, SqliteOptions, Sync as StorageDurability};
use tascreed_domain::{JobDefine, RetryPolicy};
use tascreed_runtime::{Executor, Runtime};
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::catalog::{DefineCatalog, ExecutorCatalog, Watcher};
use crate::config::{Config, StorageSync};
use crate::node::{DefineSource, ExecutorSource, Node, NodeConfig};

impl DefineSource for DefineCatalog {
    fn define(&self, name: &str) -> Option<Arc<JobDefine>> {
        self.get(name)
    }
}

impl ExecutorSource for ExecutorCatalog {
    fn executor(&self, name: &str) -> Option<Executor> {
        self.get(name)
    }

    fn loaded(&self) -> Vec<(String, Executor)> {
        self.live()
    }
}

/// The path of an embedded store, from `storage.url`.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//");
        if path.is_empty() {
            bail!("storage.url {url:?} names no file");
        }
        return Ok(PathBuf::from(path));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        bail!("storage.url {url:?}: PostgreSQL is not supported by this build yet; use sqlite:FILE");
    }
    bail!("storage.url {url:?} is not understood; expected sqlite:FILE")
}

/// Node settings from the configuration.
pub fn node_config(config: &Config) -> NodeConfig {
    NodeConfig {
        workers: config.worker_max_count_per_host as usize,
        max_overall: i64::from(config.worker_max_count_overall),
        lease_ms: i64::try_from(config.lease_ms).unwrap_or(i64::MAX),
        heartbeat_ms: config.heartbeat_ms,
        sweep_ms: config.sweep_ms,
        monitor_ms: config.monitor_ms,
        retry: RetryPolicy {
            retry_delay_ms: i64::try_from(config.task_retry_delay_ms).unwrap_or(i64::MAX),
            pick_backoff_ms: i64::try_from(config.task_pick_backoff_ms).unwrap_or(i64::MAX),
            default_max_pick_times: config.task_default_max_pick_times,
            ..RetryPolicy::default()
        },
        fuel_default: config.guest_fuel_default,
        timeout_ms_default: config.guest_timeout_ms_default,
        archive_retention_hours: config.archive_retention_hours,
        graph_validate: config.define_graph_validate_enable,
        ..NodeConfig::default()
    }
}

/// A running service.
pub struct Service {
    pub state: Arc<AppState>,
    local_addr: SocketAddr,
    server: JoinHandle<()>,
    uploads: JoinHandle<()>,
    _watchers: Vec<Watcher>,
}

impl Service {
    /// Starts everything and binds the API.
    pub async fn start(config: Config) -> anyhow::Result<Service> {
        if !config.http_bind.ip().is_loopback() && config.http_token.is_none() {
            bail!(
                "refusing to listen on {} without a token: set http.token (or TASCREED_HTTP_TOKEN) to serve beyond loopback",
                config.http_bind
            );
        }
        // Install the recorder before anything records, so no early event is lost.
        crate::metrics::handle();
        let path = sqlite_path(&config.storage_url)?;
        let options = SqliteOptions {
            namespace: config.namespace.clone(),
            sync: match config.storage_sync {
                StorageSync::Normal => StorageDurability::Normal,
                StorageSync::Full => StorageDurability::Full,
            },
            ..SqliteOptions::new(&path)
        };
        let bulletin: Arc<dyn Bulletin> = Arc::new(
            tokio::task::spawn_blocking(move || SqliteBulletin::open(&options))
                .await?
                .with_context(|| format!("cannot open the bulletin at {}", path.display()))?,
        );
        let runtime = Runtime::new(config.runtime_config()).context("cannot start the wasm runtime")?;
        let executors = Arc::new(ExecutorCatalog::new(runtime, config.executor_dirs.clone()));
        let report = executors.reload().await;
        for e in &report.errors {
            tracing::warn!("executor not loaded: {e}");
        }
        let defines = Arc::new(DefineCatalog::new(config.define_dirs.clone(), config.validate_options()));
        let report = defines.reload();
        for e in &report.errors {
            tracing::warn!("define not loaded: {e}");
        }
        let watchers = vec![
            defines.watch().context("cannot watch define.dirs")?,
            executors.watch().context("cannot watch executor.dirs")?,
        ];
        sync_uploads(&bulletin, &executors).await;
        let node = Arc::new(Node::start(node_config(&config), bulletin.clone(), defines.clone(), executors.clone())?);
        let listener = tokio::net::TcpListener::bind(config.http_bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_bind))?;
        let local_addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            node,
            bulletin: bulletin.clone(),
            defines,
            executors: executors.clone(),
            config: Arc::new(config),
        });
        let app = api::router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
        let uploads = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                sync_uploads(&bulletin, &executors).await;
            }
        });
        tracing::info!(%local_addr, "tascreed serving");
        Ok(Service { state, local_addr, server, uploads, _watchers: watchers })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving and stops the node.
    pub async fn shutdown(self) {
        self.server.abort();
        self.uploads.abort();
        self.state.node.shutdown().await;
    }
}

/// Makes executors uploaded through any node live here too (and drops deleted ones).
///
/// Compares the bulletin with the uploads this catalog holds, not with what is live: an upload
/// shadowed by a newer directory file is up to date and must not be installed again (that would
/// make it win over the file).
pub async fn sync_uploads(bulletin: &Arc<dyn Bulletin>, executors: &Arc<ExecutorCatalog>) {
    let mut failed = executors.lock_uploads().await;
    let b = bulletin.clone();
    let uploads = match tokio::task::spawn_blocking(move || b.uploads()).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => return tracing::warn!(error = %e, "cannot list uploaded executors"),
        Err(_) => return,
    };
    for upload in &uploads {
        let pair = (upload.name.clone(), upload.sha256.clone());
        if executors.upload_sha256(&upload.name).as_deref() == Some(upload.sha256.as_str()) || failed.contains(&pair) {
            continue;
        }
        let (b, sha) = (bulletin.clone(), upload.sha256.clone());
        let bytes = match tokio::task::spawn_blocking(move || b.upload_bytes(&sha)).await {
            Ok(Ok(Some(bytes))) => bytes,
            _ => continue,
        };
        match executors.load_upload(&upload.name, bytes.into()).await {
            Ok(executor) => executors.install_upload(&upload.name, executor),
            Err(e) => {
                // Said once per version: the same bytes will not load any better next pass.
                tracing::warn!(executor = %upload.name, sha256 = %upload.sha256, error = %e, "uploaded executor does not load here");
                failed.insert(pair);
            }
        }
    }
    for name in executors.upload_names() {
        if !uploads.iter().any(|u| u.name == name) {
            executors.remove(&name);
        }
    }
    failed.retain(|(name, sha)| uploads.iter().any(|u| &u.name == name && &u.sha256 == sha));
}
