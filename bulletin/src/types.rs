//! Values crossing the [`crate::Bulletin`] interface.

use std::fmt;

use tascreed_domain::{Job, JobOpError, JobState, Params, Task, TaskState};

/// (jobName, trigger).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    pub job_name: String,
    pub trigger: String,
}

impl JobKey {
    pub fn new(job_name: impl Into<String>, trigger: impl Into<String>) -> Self {
        Self { job_name: job_name.into(), trigger: trigger.into() }
    }

    pub fn of(job: &Job) -> Self {
        Self::new(job.job_name.clone(), job.trigger.clone())
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.job_name, self.trigger)
    }
}

/// (jobName, trigger, taskName).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskKey {
    pub job: JobKey,
    pub task_name: String,
}

impl TaskKey {
    pub fn new(job_name: impl Into<String>, trigger: impl Into<String>, task_name: impl Into<String>) -> Self {
        Self { job: JobKey::new(job_name, trigger), task_name: task_name.into() }
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.job.job_name, self.job.trigger, self.task_name)
    }
}

/// What a submit did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// A new job was stored.
    Created(Job),
    /// The key was taken (alive or archived); that job, unchanged.
    Existing(StoredJob),
    /// The define allows one alive job and this one is alive.
    UniqueAliveTaken(JobKey),
}

/// A job as read back, and whether it is archived.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    pub job: Job,
    pub archived: bool,
}

/// What one advance did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advanced {
    /// The job existed alive.
    pub found: bool,
    /// Its state afterwards.
    pub state: Option<JobState>,
    /// Finished tasks folded in.
    pub folded: usize,
    /// Tasks created.
    pub created: usize,
    /// Creation stopped at the budget with more to create: advance again.
    pub more: bool,
    /// When a time gate (`after`) opens, if one blocks progress.
    pub wake_at_ms: Option<i64>,
    /// The job was archived by this advance.
    pub archived: bool,
    /// Finished tasks that were folded (for metrics).
    pub folded_tasks: Vec<FoldedTask>,
    /// Tasks created, per step (for metrics).
    pub created_by_step: Vec<(String, usize)>,
    /// The job's create and last modify time (for metrics when it finishes).
    pub job_times: Option<(i64, i64)>,
    /// Fold warnings (ignored bad configs and the like).
    pub warnings: Vec<String>,
}

/// Why an update or retry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobOpFailure {
    #[error("alive job {0} does not exist")]
    NotFound(JobKey),
    #[error(transparent)]
    Refused(#[from] JobOpError),
}

/// Which API task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskList {
    /// Tasks not finished yet.
    Todo,
    /// Finished tasks not yet folded into their job.
    Done,
    /// ERROR tasks of alive jobs (kept for retry).
    Error,
}

/// Exact-match filters of the state lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub job_name: Option<String>,
    pub trigger: Option<String>,
    pub step_name: Option<String>,
}

/// A worker asking for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Node id; leases read `node/worker`.
    pub node: String,
    pub worker: String,
    /// Names of the executors this node has loaded.
    pub executors: Vec<String>,
    pub lease_ms: i64,
    /// `worker.max.count.overall`: no claim while this many leases exist.
    pub max_overall: i64,
}

/// A task leased to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub task: Task,
    /// Last persisted checkpoint.
    pub checkpoint: Option<Vec<u8>>,
    pub lease: Lease,
}

/// Proof of ownership of a task: every write by its worker is checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub task: TaskKey,
    /// `node/worker`.
    pub owner: String,
    /// Fencing epoch: incremented on every claim of the task.
    pub epoch: i64,
}

/// A give-up (spec §10.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub picked_times: u32,
    pub tried_times: u32,
    /// Not picked again before this time.
    pub after_ms: Option<i64>,
    pub reason: Option<String>,
}

/// A terminal result and what running it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub state: TaskState,
    pub reason: Option<String>,
    pub updated_params: Params,
    /// Step → conf update, stored as TasCreed's `{shardConf, packConf, maxPickTimes}` object.
    pub updated_configs: Vec<(String, tascreed_domain::UpdatedConfig)>,
    pub picked_times: u32,
    pub tried_times: u32,
    pub run: RunStats,
    /// A checkpoint executor's last checkpoint, written with the result so that a crash can
    /// never leave the final checkpoint persisted without the result (and a resumed task
    /// running a round past its end).
    pub checkpoint: Option<Vec<u8>>,
}

/// Cost of the run that finished (or last touched) a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    pub executor_sha256: Option<String>,
    pub fuel: u64,
    pub wall_ms: i64,
    pub peak_memory: u64,
    pub start_ms: i64,
    pub progress: Option<u8>,
}

/// An executor loaded by a node, as other nodes see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeExecutor {
    pub name: String,
    pub sha256: String,
    /// (job, step) pairs it serves by default.
    pub bindings: Vec<(String, String)>,
}

/// An uploaded executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub created_ms: i64,
}

/// Where a ban applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BanScope {
    Global,
    JobDefine(String),
    Job(JobKey),
}

/// Ban levels for jobs; a higher level covers the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BanLevel {
    TaskPick = 1,
    TaskCreate = 2,
    JobSubmit = 3,
}

impl BanLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskPick => "TASK_PICK",
            Self::TaskCreate => "TASK_CREATE",
            Self::JobSubmit => "JOB_SUBMIT",
        }
    }

    pub(crate) fn from_rank(rank: i64) -> Option<Self> {
        match rank {
            1 => Some(Self::TaskPick),
            2 => Some(Self::TaskCreate),
            3 => Some(Self::JobSubmit),
            _ => None,
        }
    }
}

/// Sizes for gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub alive_jobs: Vec<(JobState, u64)>,
    pub todo_tasks: u64,
    pub leased_tasks: u64,
    pub done_tasks: u64,
    pub error_tasks: u64,
    /// Todo tasks with no executor at all (none named, none bound), whoever is alive. Which
    /// tasks no live node can run is [`MonitorSnapshot::waiting_for_executor`].
    pub unresolved: u64,
}

/// What a monitor round reads (spec §12, §20).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorSnapshot {
    pub counts: Counts,
    /// Alive jobs with a `duration` they have outlived.
    pub slow_jobs: Vec<JobKey>,
    /// Todo tasks with a `duration` they have outlived (queueing included); at most `limit`.
    pub slow_tasks: Vec<TaskKey>,
    /// How many todo tasks are slow (not capped).
    pub slow_task_count: u64,
    /// Retry counters of todo tasks, per (job define, step).
    pub retries: Vec<StepRetries>,
    /// Todo tasks a worker could claim now: unleased, their executor available, back-off over
    /// and not banned from picking (`TASK_PICK` or stronger, globally, on the define or on the
    /// job). Disjoint from `waiting_for_executor`.
    pub claimable: u64,
    /// Unleased todo tasks no available executor can run: none named, or one no live node
    /// (nor the caller) has loaded (see [`crate::Bulletin::monitor`]).
    pub waiting_for_executor: u64,
}

/// Retry counters of one step's todo tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepRetries {
    pub job_name: String,
    pub step_name: String,
    pub picked_sum: u64,
    pub tried_sum: u64,
    pub picked_tasks: u64,
    pub tried_tasks: u64,
    pub picked_max: u64,
    pub tried_max: u64,
}

/// A finished task folded into its job, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedTask {
    pub step_name: String,
    pub state: TaskState,
    pub create_ms: i64,
    pub finish_ms: Option<i64>,
}
