//! The running node: submits jobs, advances them as tasks finish, and runs tasks on its workers.
//!
//! - The **advancer** (one OS thread) folds finished tasks, creates the next ones and archives
//!   finished jobs, one job at a time; it is woken at once by a submit or a finished task, and
//!   keeps a timer for `after` gates. Advancing in one place per node keeps SQLite's single
//!   writer busy with useful work instead of lock contention.
//! - **Workers** (`worker.max.count.per.host` tokio tasks) claim tasks under a lease, run them in
//!   the wasm runtime with a heartbeat renewing the lease, and record the outcome through fenced
//!   writes: a worker that lost its lease can never overwrite the new owner's state.
//! - The **sweeper** is the safety net: it expires leases of dead nodes, re-advances every job
//!   that may need it, advertises this node's executors, resolves tasks waiting for one, and
//!   purges the archive.

mod advancer;
mod convert;
mod monitor;
mod sources;
mod sweeper;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tascreed_bulletin::{BanLevel, BanScope, Bulletin, BulletinError, JobKey, JobOpFailure, StoredJob, Submitted};
use tascreed_domain::{Job, JobRequest, RetryPolicy, build_job};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::metrics;
pub use sources::{DefineSource, ExecutorSource, StaticDefines, StaticExecutors};

/// How a node behaves; `Default` gives DESIGN.md's defaults.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Unique per running node; leases read `node/worker`.
    pub node_id: String,
    /// `worker.max.count.per.host`.
    pub workers: usize,
    /// `worker.max.count.overall`.
    pub max_overall: i64,
    /// `lease.ms`.
    pub lease_ms: i64,
    /// `heartbeat.ms`.
    pub heartbeat_ms: u64,
    /// `sweep.ms`.
    pub sweep_ms: u64,
    /// `monitor.ms`: slow jobs/tasks and gauges.
    pub monitor_ms: u64,
    /// In-place retries and pick back-off (`task.retry.delay.ms`, `task.pick.backoff.ms`,
    /// `task.default.max.pick.times`).
    pub retry: RetryPolicy,
    /// `guest.fuel.default`.
    pub fuel_default: u64,
    /// `guest.timeout.ms.default`.
    pub timeout_ms_default: u64,
    /// `archive.retention.hours`; negative keeps forever.
    pub archive_retention_hours: i64,
    /// `define.graph.validate.enable` (used when validating built jobs).
    pub graph_validate: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: default_node_id(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_overall: 20,
            lease_ms: 60_000,
            heartbeat_ms: 15_000,
            sweep_ms: 1_000,
            monitor_ms: 5_000,
            retry: RetryPolicy::default(),
            fuel_default: 10_000_000_000,
            timeout_ms_default: 600_000,
            archive_retention_hours: 168,
            graph_validate: true,
        }
    }
}

impl NodeConfig {
    /// How recently a node must have been seen for its executors to count as available: three
    /// heartbeats, and at least a lease. The advancer (bindings) and the monitor (which tasks
    /// wait for an executor) must agree on it.
    pub(crate) fn live_ms(&self) -> i64 {
        i64::try_from(self.heartbeat_ms).unwrap_or(i64::MAX).saturating_mul(3).max(self.lease_ms)
    }
}

/// `<hostname>-<pid>`: distinct for every process, readable in adoption listings.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", std::process::id())
}

/// Why a node operation was refused. Messages are TasCreed's where TasCreed has one.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Validation(String),
    #[error("create new job fails: job define {0} not found")]
    DefineNotFound(String),
    #[error("create new job fails: job define {0} is banned")]
    Banned(String),
    #[error("create new job fails: alive job {0} exists, only one alive job is allowed")]
    UniqueAlive(JobKey),
    #[error(transparent)]
    JobOp(#[from] JobOpFailure),
    #[error("storage failure: {0}")]
    Storage(#[from] BulletinError),
    #[error("internal failure: {0}")]
    Internal(String),
}

/// The result of a submit: the job, and whether this call created it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub job: Job,
    pub created: bool,
    pub archived: bool,
}

impl Shared {
    /// The executors this node runs tasks with: the loaded ones, or none on an API-only node
    /// (no workers), which would claim nothing whatever it has loaded.
    pub(crate) fn runnable(&self) -> Vec<(String, tascreed_runtime::Executor)> {
        if self.config.workers == 0 { Vec::new() } else { self.executors.loaded() }
    }
}

pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    pub(crate) bulletin: Arc<dyn Bulletin>,
    pub(crate) defines: Arc<dyn DefineSource>,
    pub(crate) executors: Arc<dyn ExecutorSource>,
    pub(crate) advancer: advancer::Handle,
    /// Wakes idle workers when tasks were created or released.
    pub(crate) work: Notify,
    pub(crate) stopping: StopFlag,
}

/// A running node. Dropping it without [`Node::shutdown`] stops its tasks abruptly.
pub struct Node {
    shared: Arc<Shared>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    advancer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Runs a blocking bulletin call without stalling the async runtime.
///
/// On a multi-thread runtime the call runs in place (`block_in_place`: the thread's other tasks
/// move to another thread meanwhile); handing every call to the blocking pool cost two thread
/// wake-ups per call, a third of the CPU of a checkpoint task that writes after every round
/// (`cargo xtask bench --only checkpoint`: 7 600 → 17 000 rounds/s). A current-thread runtime
/// cannot do that, so there the call goes to the blocking pool.
pub(crate) async fn db<T: Send + 'static>(
    bulletin: &Arc<dyn Bulletin>,
    f: impl FnOnce(&dyn Bulletin) -> Result<T, BulletinError> + Send + 'static,
) -> Result<T, BulletinError> {
    let b = bulletin.clone();
    let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
    if matches!(flavor, Ok(tokio::runtime::RuntimeFlavor::MultiThread)) {
        return tokio::task::block_in_place(move || f(&*b));
    }
    tokio::task::spawn_blocking(move || f(&*b))
        .await
        .map_err(|e| BulletinError::Invalid(format!("storage call did not complete: {e}")))?
}

impl Node {
    /// Starts the advancer, the workers and the sweeper on the current tokio runtime.
    pub fn start(
        config: NodeConfig,
        bulletin: Arc<dyn Bulletin>,
        defines: Arc<dyn DefineSource>,
        executors: Arc<dyn ExecutorSource>,
    ) -> std::io::Result<Node> {
        let (advancer, receiver) = advancer::channel();
        let shared = Arc::new(Shared {
            config,
            bulletin,
            defines,
            executors,
            advancer,
            work: Notify::new(),
            stopping: StopFlag::default(),
        });
        let advancer_thread = advancer::spawn(shared.clone(), receiver)?;
        let mut tasks = Vec::new();
        // No workers is an API-only node: it submits and advances jobs, others run the tasks.
        for i in 0..shared.config.workers {
            tasks.push(tokio::spawn(worker::run(shared.clone(), format!("w{i}"))));
        }
        tasks.push(tokio::spawn(sweeper::run(shared.clone())));
        tasks.push(tokio::spawn(monitor::run(shared.clone())));
        tracing::info!(node = %shared.config.node_id, workers = shared.config.workers, "node started");
        Ok(Node {
            shared,
            tasks: std::sync::Mutex::new(tasks),
            advancer_thread: std::sync::Mutex::new(Some(advancer_thread)),
        })
    }

    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    pub fn bulletin(&self) -> &Arc<dyn Bulletin> {
        &self.shared.bulletin
    }

    /// Submits a job request (spec §5.1): dedup first, then define, ban, validation, store.
    pub async fn submit(&self, request: JobRequest) -> Result<Submission, NodeError> {
        let name = request.job_name.clone().unwrap_or_default();
        let trigger = request.trigger.clone().unwrap_or_default();
        let key = JobKey::new(name.clone(), trigger);
        let lookup = key.clone();
        // One trip to the store for what the checks need (each trip is a thread hand-off).
        let (existing, bans, now) =
            db(&self.shared.bulletin, move |b| Ok((b.job(&lookup)?, b.bans()?, b.now_ms()?))).await?;
        if let Some(StoredJob { job, archived }) = existing {
            return Ok(Submission { job, created: false, archived });
        }
        let define = self.shared.defines.define(&name).ok_or_else(|| NodeError::DefineNotFound(name.clone()))?;
        let banned = bans.iter().any(|(scope, level)| {
            // Job-scope JOB_SUBMIT bans cannot apply: the job does not exist yet (spec §14).
            *level >= BanLevel::JobSubmit
                && (matches!(scope, BanScope::Global) || matches!(scope, BanScope::JobDefine(n) if *n == name))
        });
        if banned {
            return Err(NodeError::Banned(name));
        }
        let job = build_job(&define, &request, now).map_err(|e| NodeError::Validation(e.to_string()))?;
        let unique = define.unique_alive();
        let stored = job.clone();
        match db(&self.shared.bulletin, move |b| b.submit(&stored, unique)).await? {
            Submitted::Created(job) => {
                metrics::job_opr(&job.job_name, job.state.as_str(), "CREATE");
                self.shared.advancer.advance(key);
                Ok(Submission { job, created: true, archived: false })
            }
            Submitted::Existing(StoredJob { job, archived }) => Ok(Submission { job, created: false, archived }),
            Submitted::UniqueAliveTaken(existing) => Err(NodeError::UniqueAlive(existing)),
        }
    }

    /// Asks the advancer to look at a job now (e.g. after an admin change).
    pub fn advance(&self, key: JobKey) {
        self.shared.advancer.advance(key);
    }

    /// Wakes idle workers (e.g. after a ban was lifted).
    pub fn wake_workers(&self) {
        self.shared.work.notify_waiters();
    }

    /// Retries an alive ERROR job (spec §5.4).
    pub async fn retry(&self, key: JobKey) -> Result<Job, NodeError> {
        let k = key.clone();
        let job = db(&self.shared.bulletin, move |b| b.retry_job(&k)).await??;
        metrics::job_opr(&job.job_name, job.state.as_str(), "RETRY");
        self.shared.advancer.advance(key);
        self.shared.work.notify_waiters();
        Ok(job)
    }

    /// Updates an alive job's step confs (spec §5.3).
    pub async fn update(&self, request: JobRequest) -> Result<Job, NodeError> {
        let job = db(&self.shared.bulletin, move |b| b.update_alive_job(&request)).await??;
        metrics::job_opr(&job.job_name, job.state.as_str(), "UPDATE");
        self.shared.advancer.advance(JobKey::of(&job));
        Ok(job)
    }

    /// Stops workers and the advancer. A running task is abandoned and its lease released, so
    /// another node resumes it from its last checkpoint at once.
    pub async fn shutdown(&self) {
        self.shared.stopping.set();
        self.shared.work.notify_waiters();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        // Hand this node's tasks to the others now instead of after their leases expire: their
        // last checkpoints are kept, and any late write from an aborted run is fenced out.
        let node = self.shared.config.node_id.clone();
        match db(&self.shared.bulletin, move |b| b.release_node(&node)).await {
            Ok(n) if n > 0 => tracing::info!(tasks = n, "released this node's leases"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot release this node's leases; they will expire"),
        }
        self.shared.advancer.stop();
        let thread = self.advancer_thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.stopping.set();
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.abort();
        }
        self.shared.advancer.stop();
    }
}

pub(crate) fn ms(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

/// Set once when the node stops; read by every loop.
#[derive(Default)]
pub(crate) struct StopFlag(std::sync::atomic::AtomicBool);

impl StopFlag {
    pub(crate) fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
