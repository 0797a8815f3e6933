//! A node in-process on a temporary SQLite file, with the real guest components.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tascreed::node::{Node, NodeConfig, StaticDefines, StaticExecutors};
use tascreed::runtime::{Runtime, RuntimeConfig};
use tascreed_bulletin::{Bulletin, JobKey, SqliteBulletin, SqliteOptions, TaskFilter, TaskList};
use tascreed_domain::{Job, JobDefine, JobRequest, JobState, RetryPolicy, Task};

pub fn plugins_dir() -> PathBuf {
    std::env::var_os("TASCREED_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifact-cache");
        Runtime::new(RuntimeConfig { cache_dir: Some(cache), memory_max_bytes: 64 << 20, ..RuntimeConfig::default() })
            .expect("runtime")
    })
}

/// The example executors, loaded once per test process.
pub async fn executors() -> Arc<StaticExecutors> {
    let all = StaticExecutors::default();
    for name in ["noop", "scripted", "counter", "range-sum"] {
        let path = plugins_dir().join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; build the guests with `cargo xtask plugins`", path.display()));
        all.insert(name, runtime().load(bytes.into()).await.expect("guest loads"));
    }
    Arc::new(all)
}

/// Fast settings so retries, sweeps and leases happen within a test's patience.
pub fn fast_config(node_id: &str) -> NodeConfig {
    NodeConfig {
        node_id: node_id.into(),
        workers: 2,
        lease_ms: 2_000,
        heartbeat_ms: 300,
        sweep_ms: 100,
        retry: RetryPolicy { retry_delay_ms: 10, pick_backoff_ms: 60_000, ..RetryPolicy::default() },
        ..NodeConfig::default()
    }
}

pub struct Harness {
    pub node: Option<Node>,
    pub bulletin: Arc<dyn Bulletin>,
    pub defines: Arc<StaticDefines>,
    pub executors: Arc<StaticExecutors>,
    pub db: PathBuf,
}

pub fn open(db: &PathBuf) -> Arc<dyn Bulletin> {
    Arc::new(SqliteBulletin::open(&SqliteOptions::new(db)).expect("bulletin opens"))
}

impl Harness {
    pub async fn new(defines: &[&str]) -> Harness {
        Self::with_config(defines, fast_config("n1")).await
    }

    pub async fn with_config(defines: &[&str], config: NodeConfig) -> Harness {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir").keep();
        let db = dir.join("bulletin.db");
        let bulletin = open(&db);
        let registry = Arc::new(StaticDefines::default());
        for d in defines {
            registry.insert(JobDefine::load(d, Default::default()).expect("define is valid"));
        }
        let executors = executors().await;
        let node = Node::start(config, bulletin.clone(), registry.clone(), executors.clone()).expect("node starts");
        Harness { node: Some(node), bulletin, defines: registry, executors, db }
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node running")
    }

    pub async fn submit(&self, request: &str) -> Job {
        let request = JobRequest::parse(request).expect("request parses");
        self.node().submit(request).await.expect("submit accepted").job
    }

    pub async fn job(&self, name: &str, trigger: &str) -> Option<(Job, bool)> {
        let b = self.bulletin.clone();
        let key = JobKey::new(name, trigger);
        tokio::task::spawn_blocking(move || b.job(&key)).await.unwrap().unwrap().map(|s| (s.job, s.archived))
    }

    pub async fn tasks(&self, name: &str, trigger: &str) -> Vec<Task> {
        let b = self.bulletin.clone();
        let key = JobKey::new(name, trigger);
        tokio::task::spawn_blocking(move || b.job_tasks(&key)).await.unwrap().unwrap()
    }

    pub async fn list(&self, list: TaskList, job_name: &str) -> Vec<Task> {
        let b = self.bulletin.clone();
        let filter = TaskFilter { job_name: Some(job_name.into()), ..TaskFilter::default() };
        tokio::task::spawn_blocking(move || b.tasks(list, &filter)).await.unwrap().unwrap()
    }

    /// Waits until the job satisfies `done`, or fails after `secs`.
    pub async fn wait_job(&self, name: &str, trigger: &str, secs: u64, done: impl Fn(&Job) -> bool) -> Job {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some((job, _)) = self.job(name, trigger).await
                && done(&job)
            {
                return job;
            }
            if Instant::now() > deadline {
                let now = self.job(name, trigger).await.map(|(j, _)| serde_json::to_string(&j).unwrap());
                panic!("job {name}/{trigger} did not reach the expected state in {secs}s: {now:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_state(&self, name: &str, trigger: &str, state: JobState) -> Job {
        self.wait_job(name, trigger, 30, |j| j.state == state).await
    }
}

/// `define` with `"executor": executor` on every step.
pub fn with_executor(define: &str, executor: &str) -> String {
    let mut v: Value = serde_json::from_str(define).expect("define JSON");
    if let Some(steps) = v.get_mut("steps").and_then(Value::as_array_mut) {
        for s in steps {
            s["executor"] = Value::String(executor.into());
        }
    }
    v.to_string()
}

/// A request whose job param `script` drives the scripted executor.
pub fn scripted_request(name: &str, trigger: &str, script: Value) -> String {
    serde_json::json!({"jobName": name, "trigger": trigger, "params": {"script": script.to_string()}}).to_string()
}

pub fn step<'a>(job: &'a Job, name: &str) -> &'a tascreed_domain::Step {
    job.steps.iter().find(|s| s.step_name == name).unwrap_or_else(|| panic!("no step {name}"))
}

// ---- additions for node_cases.rs ----

/// Polls `f` every 10 ms until it yields `Some`, or panics naming `what` after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks `ok` every 10 ms for `window` and panics naming `what` the first time it fails: for
/// "nothing happens" assertions, which need an observation window.
pub async fn holds_for<F, Fut>(window: Duration, what: &str, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(ok().await, "no longer holds: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Harness {
    /// A node on an existing database file (e.g. one a test prepared through the bulletin).
    pub async fn at(db: PathBuf, defines: &[&str], config: NodeConfig) -> Harness {
        let bulletin = open(&db);
        let registry = Arc::new(StaticDefines::default());
        for d in defines {
            registry.insert(JobDefine::load(d, Default::default()).expect("define is valid"));
        }
        let executors = executors().await;
        let node = Node::start(config, bulletin.clone(), registry.clone(), executors.clone()).expect("node starts");
        Harness { node: Some(node), bulletin, defines: registry, executors, db }
    }

    /// Submits and returns the node's answer, errors included.
    pub async fn try_submit(&self, request: &str) -> Result<tascreed::node::Submission, tascreed::node::NodeError> {
        let request = JobRequest::parse(request).expect("request parses");
        self.node().submit(request).await
    }

    /// Runs a bulletin call off the async runtime; storage errors fail the test.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Bulletin) -> tascreed_bulletin::Result<T> + Send + 'static,
    ) -> T {
        let b = self.bulletin.clone();
        tokio::task::spawn_blocking(move || f(&*b)).await.expect("bulletin call completes").expect("bulletin call")
    }

    /// One task of a job.
    pub async fn task(&self, name: &str, trigger: &str, task_name: &str) -> Option<Task> {
        let key = tascreed_bulletin::TaskKey::new(name, trigger, task_name);
        self.call(move |b| b.task(&key)).await
    }

    /// Current leases, `(job/trigger/task, node/worker)`.
    pub async fn adoptions(&self) -> Vec<(String, String)> {
        self.call(|b| b.adoptions(None)).await
    }
}

/// A loaded example executor by its file stem (for swapping implementations under a name).
pub async fn guest(name: &str) -> tascreed::runtime::Executor {
    let path = plugins_dir().join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    runtime().load(bytes.into()).await.expect("guest loads")
}
