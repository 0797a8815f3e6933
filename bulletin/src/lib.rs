//! The bulletin: all state shared by tascreed nodes — alive jobs with their define snapshot,
//! one row per task, task leases with fencing epochs, checkpoints, bans, node registrations,
//! uploaded executors and the archive.
//!
//! [`Bulletin`] is the narrow interface the node uses; every method is one transaction, so a
//! crash leaves either the state before or after it. [`SqliteBulletin`] is the embedded
//! implementation; [`conformance`] is the behaviour suite any implementation must pass.
//!
//! Times that decide leases (claim, renewal, expiry) come from the database's clock, so nodes
//! with skewed clocks still agree on who owns a task.

pub mod conformance;
mod error;
mod sqlite;
mod types;

pub use error::BulletinError;
pub use sqlite::{SqliteBulletin, SqliteOptions, Sync};
pub use types::*;

use tascreed_domain::{Binding, Job, JobRequest, Task};

pub type Result<T, E = BulletinError> = std::result::Result<T, E>;

/// The storage interface of a node. Implementations are shared by all of a node's workers.
pub trait Bulletin: Send + std::marker::Sync + 'static {
    /// The database clock, epoch ms.
    fn now_ms(&self) -> Result<i64>;

    // ---- jobs ----

    /// Stores a new job unless (jobName, trigger) exists alive or archived (then returns it),
    /// or `unique_alive` is set and another job of the define is alive. Atomic: racing submits
    /// of the same key or of a unique define create exactly one job.
    fn submit(&self, job: &Job, unique_alive: bool) -> Result<Submitted>;
    /// The job, alive or archived.
    fn job(&self, key: &JobKey) -> Result<Option<StoredJob>>;
    /// Alive jobs, optionally filtered by exact define name and trigger.
    fn alive_jobs(&self, job_name: Option<&str>, trigger: Option<&str>) -> Result<Vec<Job>>;
    /// Folds the job's finished tasks, creates its next tasks (unless TASK_CREATE is banned)
    /// with executors resolved from `bindings`, and archives it once SUCCESS or FAILED.
    fn advance(&self, key: &JobKey, bindings: &[Binding], budget: usize) -> Result<Advanced>;
    /// Alive jobs that may need advancing: UNDONE ones and any with unfolded finished tasks.
    fn jobs_to_advance(&self) -> Result<Vec<JobKey>>;
    /// Deletes an alive job and its tasks; with `archive` the job is archived with DELETED
    /// (so its trigger stays used) and its tasks are kept for queries.
    fn delete_alive_job(&self, key: &JobKey, archive: bool) -> Result<Option<Job>>;
    /// Applies an update request to an alive job (spec §5.3).
    fn update_alive_job(&self, request: &JobRequest) -> Result<Result<Job, JobOpFailure>>;
    /// Retries an alive ERROR job (spec §5.4): folds, resets, puts error tasks back to todo.
    fn retry_job(&self, key: &JobKey) -> Result<Result<Job, JobOpFailure>>;
    /// Deletes archived jobs (and their tasks) archived before `before_ms`.
    fn purge_archive(&self, before_ms: i64) -> Result<usize>;

    // ---- tasks ----

    /// Every task ever created for the job, alive or archived, by task name.
    fn job_tasks(&self, key: &JobKey) -> Result<Vec<Task>>;
    /// One task of the job.
    fn task(&self, key: &TaskKey) -> Result<Option<Task>>;
    /// The state lists of the API (todo / done / error / archived).
    fn tasks(&self, list: TaskList, filter: &TaskFilter) -> Result<Vec<Task>>;
    /// Current task leases as (`job/trigger/task`, `node/worker`).
    fn adoptions(&self, filter: Option<&str>) -> Result<Vec<(String, String)>>;
    /// Deletes a todo task of an alive job: it ends ERROR ("deleted by request") so the step
    /// can finish (D14). Returns the task as it was.
    fn delete_todo_task(&self, key: &TaskKey) -> Result<Option<Task>>;
    /// Drops the lease on a task (the API's "delete adoption"): the holder's next fenced write
    /// fails, so it stops and its result is discarded, and the task can be claimed again.
    /// Returns the `node/worker` that held it, `None` if nobody did.
    fn release_adoption(&self, key: &TaskKey) -> Result<Option<String>>;

    // ---- workers ----

    /// Leases the best claimable task (spec §10.3 order) whose executor is in `executors`,
    /// unless `max_overall` leases exist already. Increments the task's fencing epoch.
    fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>> {
        Ok(self.claim_batch(request, 1)?.pop())
    }
    /// Leases up to `max` tasks in one transaction, best first, within `max_overall`. Short
    /// tasks are claimed in batches so the store's commit rate does not bound throughput.
    fn claim_batch(&self, request: &ClaimRequest, max: usize) -> Result<Vec<Claimed>>;
    /// Extends a lease; `false` when it was lost (expired and taken, job deleted).
    fn renew(&self, lease: &Lease, lease_ms: i64) -> Result<bool>;
    /// Persists a checkpoint and renews the lease in one transaction; `false` when fenced out.
    fn save_checkpoint(&self, lease: &Lease, checkpoint: &[u8], progress: Option<u8>, lease_ms: i64) -> Result<bool>;
    /// Records a failed attempt (`triedTimes`) of a still-held task; `false` when fenced out.
    fn record_attempt(&self, lease: &Lease, tried_times: u32, reason: &str) -> Result<bool>;
    /// Gives the task up: new counters and back-off, lease dropped; `false` when fenced out.
    fn release(&self, lease: &Lease, release: &Release) -> Result<bool>;
    /// Ends the task with a terminal state; `false` when fenced out (the result is discarded).
    fn finish(&self, lease: &Lease, finish: &Finish) -> Result<bool> {
        Ok(self.finish_batch(&[(lease.clone(), finish.clone())])?.first().copied().unwrap_or(false))
    }
    /// Ends several tasks in one transaction; each entry is fenced on its own lease.
    fn finish_batch(&self, finishes: &[(Lease, Finish)]) -> Result<Vec<bool>>;
    /// Drops the lease of a task without counting anything (e.g. picking paused); `false` when
    /// fenced out.
    fn unclaim(&self, lease: &Lease) -> Result<bool>;
    /// Drops every lease a stopping node holds, so other nodes resume its tasks at once rather
    /// than after the lease expires; returns how many.
    fn release_node(&self, node: &str) -> Result<usize>;
    /// Clears expired leases so their tasks can be claimed again; returns how many.
    fn expire_leases(&self) -> Result<usize>;
    /// Gives executor-less todo tasks the executor a binding now names; returns how many.
    fn resolve_waiting(&self, bindings: &[Binding]) -> Result<usize>;
    /// Counts for gauges.
    fn counts(&self) -> Result<Counts>;
    /// Everything a monitor round reports: counts, slow jobs and tasks at `now_ms` (at most
    /// `limit` slow task keys), retry counters, claimable depth and tasks waiting for an
    /// executor. An executor is available when a node seen within `live_ms` advertises it or
    /// it is in `local` (the calling node's own, which it may not have advertised yet).
    fn monitor(&self, now_ms: i64, live_ms: i64, local: &[String], limit: usize) -> Result<MonitorSnapshot>;

    // ---- nodes and executors ----

    /// Records that a node is alive and which executors it has loaded.
    fn heartbeat_node(&self, node: &str, executors: &[NodeExecutor]) -> Result<()>;
    /// Bindings of executors loaded by nodes seen within `live_ms`.
    fn live_bindings(&self, live_ms: i64) -> Result<Vec<Binding>>;
    /// Stores an uploaded component (content-addressed) under `name`.
    fn put_upload(&self, name: &str, sha256: &str, bytes: &[u8]) -> Result<()>;
    /// Uploaded executors (without their bytes).
    fn uploads(&self) -> Result<Vec<Upload>>;
    /// The bytes of an uploaded component.
    fn upload_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    /// Removes an upload name; `false` if there was none.
    fn delete_upload(&self, name: &str) -> Result<bool>;

    // ---- bans ----

    /// Sets a ban at `scope`; replaces any ban there.
    fn set_ban(&self, scope: &BanScope, level: BanLevel) -> Result<()>;
    /// Removes the ban at `scope`.
    fn remove_ban(&self, scope: &BanScope) -> Result<()>;
    /// All bans.
    fn bans(&self) -> Result<Vec<(BanScope, BanLevel)>>;
}
