//! What every scenario shares: sizes, guests, a runtime, temporary stores and nodes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tascreed::node::{Node, NodeConfig, StaticDefines, StaticExecutors};
use tascreed_bulletin::{Bulletin, JobKey, SqliteBulletin, SqliteOptions};
use tascreed_domain::{Job, JobDefine, JobRequest, build_job};
use tascreed_runtime::{Runtime, RuntimeConfig};

/// The executors every in-process node has.
const EXECUTORS: [&str; 3] = ["noop", "counter", "scripted"];

pub struct Ctx {
    pub quick: bool,
    pub plugins: PathBuf,
    pub binary: PathBuf,
    pub tmp: tempfile::TempDir,
    pub cache: PathBuf,
}

impl Ctx {
    /// `full` at full size, `quick` with `--quick`.
    pub fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    pub fn guest(&self, name: &str) -> anyhow::Result<Arc<[u8]>> {
        let path = self.plugins.join(format!("{name}.wasm"));
        Ok(std::fs::read(&path).with_context(|| format!("{}: build the guests first", path.display()))?.into())
    }

    pub fn runtime(&self, pooling: bool, fuel: bool) -> anyhow::Result<Runtime> {
        Ok(Runtime::new(RuntimeConfig {
            pooling,
            fuel_metering: fuel,
            cache_dir: Some(self.cache.clone()),
            ..RuntimeConfig::default()
        })?)
    }

    /// A fresh SQLite bulletin in the scenario's temporary folder.
    pub fn bulletin(&self, name: &str) -> anyhow::Result<(Arc<dyn Bulletin>, PathBuf)> {
        let path = self.tmp.path().join(format!("{name}.db"));
        let _ = std::fs::remove_file(&path);
        Ok((Arc::new(SqliteBulletin::open(&SqliteOptions::new(&path))?), path))
    }

    /// The example executors, loaded into one runtime.
    pub async fn executors(&self) -> anyhow::Result<Arc<StaticExecutors>> {
        let rt = self.runtime(true, true)?;
        let all = StaticExecutors::default();
        for name in EXECUTORS {
            all.insert(name, rt.load(self.guest(name)?).await?);
        }
        Ok(Arc::new(all))
    }

    /// The settings of every in-process bench node (recorded in the report).
    pub fn node_config(&self) -> NodeConfig {
        NodeConfig { max_overall: 1_000, sweep_ms: 200, monitor_ms: 60_000, ..NodeConfig::default() }
    }

    /// [`Ctx::node_config`] and the executors' runtime settings, for the report.
    pub fn node_settings(&self) -> serde_json::Value {
        let c = self.node_config();
        serde_json::json!({
            "node_id": c.node_id,
            "workers": c.workers,
            "max_overall": c.max_overall,
            "lease_ms": c.lease_ms,
            "heartbeat_ms": c.heartbeat_ms,
            "sweep_ms": c.sweep_ms,
            "monitor_ms": c.monitor_ms,
            "retry": format!("{:?}", c.retry),
            "fuel_default": c.fuel_default,
            "timeout_ms_default": c.timeout_ms_default,
            "archive_retention_hours": c.archive_retention_hours,
            "graph_validate": c.graph_validate,
            "executors": {"runtime": {"pooling": true, "fuel_metering": true}, "loaded": EXECUTORS},
            "storage": "SQLite, default SqliteOptions, one file per scenario run in a temporary folder",
        })
    }

    /// A node over already loaded executors: starting it compiles nothing, so a timer started
    /// just before measures the node alone.
    pub fn start_node(
        &self,
        bulletin: Arc<dyn Bulletin>,
        defines: &[&str],
        executors: Arc<StaticExecutors>,
    ) -> anyhow::Result<Node> {
        let registry = Arc::new(StaticDefines::default());
        for d in defines {
            registry.insert(JobDefine::load(d, Default::default())?);
        }
        Ok(Node::start(self.node_config(), bulletin, registry, executors)?)
    }

    /// Loads the executors, then starts a node (for scenarios whose timer starts later).
    pub async fn node(&self, bulletin: Arc<dyn Bulletin>, defines: &[&str]) -> anyhow::Result<Node> {
        let executors = self.executors().await?;
        self.start_node(bulletin, defines, executors)
    }
}

pub fn job(define: &str, request: &str, now_ms: i64) -> anyhow::Result<Job> {
    let define = JobDefine::load(define, Default::default())?;
    Ok(build_job(&define, &JobRequest::parse(request)?, now_ms)?)
}

/// Creates every task of a job up front, `budget` per transaction.
pub fn create_all(b: &dyn Bulletin, key: &JobKey, budget: usize) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let out = b.advance(key, &[], budget)?;
        total += out.created;
        if !out.more {
            return Ok(total);
        }
    }
}

/// How often a scenario that measures latency looks at its job: fine enough for millisecond
/// figures, and cheap because those jobs are small.
pub const POLL_FINE: Duration = Duration::from_micros(300);
/// How often a scenario that measures throughput looks: reading a job parses its whole body (a
/// step of 100 000 alive tasks carries as many task states), and polling that every 300 µs
/// would take a core from the node being measured.
pub const POLL_COARSE: Duration = Duration::from_millis(10);

/// Waits until the job is archived, looking every `poll`; returns it.
pub async fn wait_archived(
    b: &Arc<dyn Bulletin>,
    key: &JobKey,
    timeout: Duration,
    poll: Duration,
) -> anyhow::Result<Job> {
    let deadline = Instant::now() + timeout;
    loop {
        let (bb, k) = (b.clone(), key.clone());
        if let Some(stored) = tokio::task::spawn_blocking(move || bb.job(&k)).await??
            && stored.archived
        {
            return Ok(stored.job);
        }
        if Instant::now() > deadline {
            bail!("job {key} did not finish within {timeout:?}");
        }
        tokio::time::sleep(poll).await;
    }
}

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}
