//! TasCreed's domain as plain data and pure functions: defines, requests, jobs, steps,
//! tasks, their states and every rule of `spec/behavior.md` that needs no storage, clock or
//! WebAssembly. No I/O, no async; time comes in as epoch milliseconds.
//!
//! # Flow
//!
//! 1. Load defines: [`JobDefine::parse`] then [`JobDefine::validate`] (or [`JobDefine::load`]),
//!    with [`ValidateOptions`] carrying `define.graph.validate.enable`.
//! 2. Submit: [`JobRequest::parse`], then [`build_job`]`(define, request, now)` gives a [`Job`]
//!    (UNDONE, steps DORMANT, no tasks) holding a snapshot of its define.
//! 3. Advance, in one storage transaction: load the job and the tasks that finished since the
//!    last fold, call [`Job::fold`] with them as [`FinishedTask`]s, then
//!    [`Job::create_tasks`]`(now, CREATION_BUDGET_PER_PASS)` unless TASK_CREATE is banned; save
//!    the job and the new [`Task`]s. [`Creation::wake_at_ms`] says when a time gate opens.
//! 4. Workers order candidates by [`PickKey`], resolve executors with [`resolve_executor`]
//!    and settle failed attempts with [`RetryPolicy`].
//! 5. Admin: [`Job::apply_update`] and [`Job::retry`].
//!
//! Stored JSON (jobs with their define snapshot, tasks) is what these types serialize to;
//! [`Job::api_json`] gives the public view.

pub mod admin;
pub mod build;
pub mod creation;
pub mod define;
pub mod fold;
pub mod job;
mod json;
pub mod ordering;
pub mod params;
pub mod progression;
pub mod ranges;
pub mod req_time;
pub mod request;
pub mod retry;
pub mod state;
pub mod task;
pub mod time;
pub mod traits;
pub mod validate;

pub use admin::JobOpError;
pub use build::{Binding, build_job, resolve_executor};
pub use creation::{CREATION_BUDGET_PER_PASS, Creation};
pub use define::{Dependency, JobDefine, PackConf, ShardConf, StepDefine, StepType};
pub use fold::FoldReport;
pub use job::{Job, PackCursor, ShardCursor, Step};
pub use json::ParseError;
pub use ordering::{PickKey, empty_rate};
pub use params::Params;
pub use ranges::RangeSet;
pub use req_time::{ReqTime, TimeError};
pub use request::{JobRequest, StepRequest};
pub use retry::{FailureKind, Next, RetryPolicy, Verdict};
pub use state::{JobState, Outcome, StepState, TaskState};
pub use task::{ExecutorRef, FinishedTask, Task, TaskPack, TaskPosition, TaskResult, TaskShard, UpdatedConfig};
pub use traits::{Trait, TraitSet, TraitsAmend};
pub use validate::{DefineError, Issue, ValidateOptions, ValidationError};
