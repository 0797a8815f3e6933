//! Tasks: the unit a worker runs (spec §2.8), and what a finished one hands back to its job.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::define::{PackConf, ShardConf, StepType};
use crate::job::SIMPLE_TASK_INDEX;
use crate::json::{self, ParseError};
use crate::params::{self, Params};
use crate::state::{StepState, TaskState};
use crate::time;
use crate::traits::{self, TraitSet};

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `shardConf` of a SHARD task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskShard {
    /// The step's shard count.
    pub total: i64,
    /// This task's shard.
    pub index: i64,
}

/// `packConf` of a PACK task; bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskPack {
    /// Pack id.
    pub id: i64,
    /// First offset.
    pub start: i64,
    /// Last offset.
    pub end: i64,
}

/// The executor that ran the task, or that it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutorRef {
    /// Component name.
    pub name: String,
    /// Content hash of the component, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// `result` of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// Terminal state; absent while UNDONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TaskState>,
    /// Why it ended so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Last persisted checkpoint, base64 (the bulletin keeps the bytes).
    #[cfg_attr(feature = "openapi", schema(content_encoding = "base64"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Size of the checkpoint in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u64>,
    /// "NN.NN%" reported by the executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progression: Option<String>,
}

impl TaskResult {
    fn is_empty(&self) -> bool {
        *self == TaskResult::default()
    }
}

/// A conf update an executor hands back for a step: `{shardConf, packConf, maxPickTimes}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpdatedConfig {
    /// Merged over a DORMANT SHARD step's conf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_conf: Option<ShardConf>,
    /// Merged over a DORMANT PACK step's conf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_conf: Option<PackConf>,
    /// Kept for TasCreed's shape; never applied (spec §6.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pick_times: Option<i64>,
}

impl UpdatedConfig {
    /// Reads one entry as an executor returns it (JSON text), naming a wrongly typed field.
    pub fn parse(text: &str) -> Result<UpdatedConfig, ParseError> {
        json::from_str(text)
    }
}

/// Reads `updatedConfigs`, also in the form stored before entries were typed (each conf as
/// JSON text). Such a text that is not a conf is dropped: the fold ignored it then anyway, and
/// failing here would make the whole task unreadable.
fn de_updated_configs<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, UpdatedConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Conf(UpdatedConfig),
        Text(String),
    }
    let entries = Option::<BTreeMap<String, Entry>>::deserialize(d)?.unwrap_or_default();
    Ok(entries
        .into_iter()
        .filter_map(|(step, entry)| match entry {
            Entry::Conf(conf) => Some((step, conf)),
            Entry::Text(text) => UpdatedConfig::parse(&text).ok().map(|conf| (step, conf)),
        })
        .collect())
}

/// A task.
// `remote = "Self"` makes the derives inherent functions, so the trait impls below can wrap
// them: a TasCreed record carries its state only as `result.state` (spec §2.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", remote = "Self")]
pub struct Task {
    /// `s`, `s.shard-N` or `s.pack-N`.
    pub task_name: String,
    /// Job define name.
    pub job_name: String,
    /// Job trigger.
    pub trigger: String,
    /// Step name.
    pub step_name: String,
    /// Step mode.
    #[serde(default)]
    pub step_type: StepType,
    /// `result.state`, or UNDONE.
    #[serde(default)]
    pub state: TaskState,
    /// Outcome details.
    #[serde(default, skip_serializing_if = "TaskResult::is_empty")]
    pub result: TaskResult,
    /// SHARD position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_conf: Option<TaskShard>,
    /// PACK range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_conf: Option<TaskPack>,
    /// Merged params (spec §6.1).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient")]
    pub params: Params,
    /// Params published on SUCCESS.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient", skip_serializing_if = "Params::is_empty")]
    pub updated_params: Params,
    /// Step → conf updates, published on SUCCESS.
    #[serde(default, deserialize_with = "de_updated_configs", skip_serializing_if = "BTreeMap::is_empty")]
    pub updated_configs: BTreeMap<String, UpdatedConfig>,
    /// States of the step's dependencies at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent_step_states: Option<BTreeMap<String, StepState>>,
    /// States of the steps of the nearest lower phase at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_phase_step_states: Option<BTreeMap<String, StepState>>,
    /// Job priority at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Picks given up so far.
    #[serde(default, alias = "errorTimes", skip_serializing_if = "is_zero")]
    pub picked_times: u32,
    /// Failed attempts so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tried_times: u32,
    /// Give-up limit; `None` = the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pick_times: Option<i64>,
    /// Not picked before this time (back-off).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[serde(default, with = "time::opt_iso", skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Task traits (ARCHIVE).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeSet<crate::traits::Trait>))]
    #[serde(default, deserialize_with = "traits::de_stored", skip_serializing_if = "TraitSet::is_empty")]
    pub traits: TraitSet,
    /// Affinity rule of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_rule: Option<String>,
    /// Expected duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Fuel per executor call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_limit: Option<i64>,
    /// Wall clock per executor call, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    /// Executor: explicit at creation, else filled when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorRef>,
    /// Node that ran it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Fuel consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock ms of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<i64>,
    /// Peak linear memory, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory: Option<u64>,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::iso")]
    pub create_time: i64,
    /// Start of the last run.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[serde(default, with = "time::opt_iso", skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// End of the run that finished it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[serde(default, with = "time::opt_iso", skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<i64>,
    /// Last change.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::iso")]
    pub modify_time: i64,
    /// Filled by readers that know the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<bool>,
    /// Filled by readers that know the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<i64>,
}

impl Serialize for Task {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Task::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Task {
    /// Task state is `result.state` when present, else the stored `state` (UNDONE if none).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut task = Task::deserialize(d)?;
        if let Some(state) = task.result.state {
            task.state = state;
        }
        Ok(task)
    }
}

/// `<stepName>`, `<stepName>.shard-<i>` or `<stepName>.pack-<id>`.
pub fn task_name(step: &str, kind: StepType, index: i64) -> String {
    match kind {
        StepType::Simple => step.to_string(),
        StepType::Shard => format!("{step}.shard-{index}"),
        StepType::Pack => format!("{step}.pack-{index}"),
    }
}

impl Task {
    /// The step's `taskStates` key: shard index, pack id, or −1.
    pub fn index(&self) -> i64 {
        match (self.shard_conf, self.pack_conf) {
            (Some(s), _) => s.index,
            (_, Some(p)) => p.id,
            _ => SIMPLE_TASK_INDEX,
        }
    }

    /// `jobName:trigger:taskName`, for logs.
    pub fn full_name(&self) -> String {
        format!("{}:{}:{}", self.job_name, self.trigger, self.task_name)
    }

    /// Records a terminal state (or clears it with UNDONE).
    pub fn finish(&mut self, state: TaskState, reason: Option<String>, now_ms: i64) {
        self.state = state;
        self.result.state = state.is_done().then_some(state);
        self.result.reason = reason;
        if state.is_done() {
            self.finish_time = Some(now_ms);
        }
        self.modify_time = now_ms;
    }

    /// Job retry (spec §5.4): back to UNDONE, counters cleared, checkpoint kept.
    pub fn reset_for_retry(&mut self, now_ms: i64) {
        self.state = TaskState::Undone;
        self.result.state = None;
        self.result.reason = None;
        self.result.progression = None;
        self.picked_times = 0;
        self.tried_times = 0;
        self.after = None;
        self.finish_time = None;
        self.modify_time = now_ms;
    }

    /// Has a duration and has existed longer than it (queueing included).
    pub fn is_slow(&self, now_ms: i64) -> bool {
        self.duration.is_some_and(|d| now_ms.saturating_sub(self.create_time) > d)
    }
}

/// What a finished task hands back to its job's fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedTask {
    /// Task name (folds process finished tasks in name order).
    pub task_name: String,
    /// Step name.
    pub step_name: String,
    /// Terminal state.
    pub state: TaskState,
    /// Published params (applied only on SUCCESS).
    pub updated_params: Params,
    /// Step → conf update (applied only on SUCCESS).
    pub updated_configs: Vec<(String, UpdatedConfig)>,
    /// Which task of the step it was.
    pub position: TaskPosition,
}

/// Where a task sits in its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPosition {
    /// The single task of a SIMPLE step.
    Simple,
    /// A shard index.
    Shard(i64),
    /// A pack with its inclusive range.
    Pack {
        /// Pack id.
        id: i64,
        /// First offset.
        start: i64,
        /// Last offset.
        end: i64,
    },
}

impl TaskPosition {
    /// The `taskStates` key.
    pub fn index(self) -> i64 {
        match self {
            TaskPosition::Simple => SIMPLE_TASK_INDEX,
            TaskPosition::Shard(i) => i,
            TaskPosition::Pack { id, .. } => id,
        }
    }
}

impl From<&Task> for FinishedTask {
    fn from(t: &Task) -> Self {
        let position = match (t.shard_conf, t.pack_conf) {
            (Some(s), _) => TaskPosition::Shard(s.index),
            (_, Some(p)) => TaskPosition::Pack { id: p.id, start: p.start, end: p.end },
            _ => TaskPosition::Simple,
        };
        FinishedTask {
            task_name: t.task_name.clone(),
            step_name: t.step_name.clone(),
            state: t.state,
            updated_params: t.updated_params.clone(),
            updated_configs: t.updated_configs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            position,
        }
    }
}
