//! Jobs and their steps: the state the bulletin stores (spec §2.6, §2.7).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::define::{JobDefine, PackConf, ShardConf, StepDefine, StepType};
use crate::params::{self, Params};
use crate::ranges::{PackDoneRange, ShardDoneRange};
use crate::state::{JobState, StepState, TaskState};
use crate::time;
use crate::traits::{self, Trait, TraitSet};

/// `taskStates` key of a SIMPLE step's only task.
pub const SIMPLE_TASK_INDEX: i64 = -1;

/// Progression text at the start.
pub const ZERO_PROGRESSION: &str = "0.00%";

fn zero_progression() -> String {
    ZERO_PROGRESSION.to_string()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A job: one run of a define, keyed by (`jobName`, `trigger`).
// The `openapi` schema is the API view ([`Job::api_json`]): no `define`, no creation cursors,
// `taskStates` as a map; the stored form (this type's serde) differs in those three.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Define name.
    pub job_name: String,
    /// Instance key.
    pub trigger: String,
    /// Copied to tasks; larger is picked first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Define params overwritten by request params.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient")]
    pub params: Params,
    /// Params published by SUCCESS tasks; seen by tasks created later.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient")]
    pub updated_params: Params,
    /// Job state.
    #[serde(default)]
    pub state: JobState,
    /// "NN.NN%".
    #[serde(default = "zero_progression")]
    pub progression: String,
    /// Job traits (only DELETED can ever be here).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeSet<Trait>))]
    #[serde(default, deserialize_with = "traits::de_stored", skip_serializing_if = "TraitSet::is_empty")]
    pub traits: TraitSet,
    /// No task is created before this time.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[serde(default, with = "time::opt_iso", skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Expected duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Filled by readers that know the time (see [`Job::is_slow`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<bool>,
    /// Filled by readers that know the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<i64>,
    /// Submission time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::iso")]
    pub create_time: i64,
    /// Last change.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::iso")]
    pub modify_time: i64,
    /// Steps, in define order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The define as it was at submission (D17): types, dependencies, phases, efforts.
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub define: JobDefine,
}

/// Creation cursor of a SHARD step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardCursor {
    /// Last shard index created.
    pub last_index: i64,
}

/// Creation cursor of a PACK step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackCursor {
    /// Last pack id created.
    pub last_id: i64,
    /// Last offset covered by a created pack.
    pub last_offset: i64,
}

/// A step of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Name, unique within the job.
    pub step_name: String,
    /// Mode, from the define.
    #[serde(default)]
    pub step_type: StepType,
    /// Step state.
    #[serde(default)]
    pub state: StepState,
    /// "NN.NN%".
    #[serde(default = "zero_progression")]
    pub progression: String,
    /// Explicit executor (request step > define step); `None` = resolve by manifest bindings.
    #[serde(default, alias = "exeClass", skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// Affinity rule (kept; affinity is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_rule: Option<String>,
    /// True only when an ignore request was accepted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore: bool,
    /// Step traits (CAN_FAIL, ARCHIVE).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeSet<Trait>))]
    #[serde(default, deserialize_with = "traits::de_stored", skip_serializing_if = "TraitSet::is_empty")]
    pub traits: TraitSet,
    /// Merged shard conf (SHARD steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_conf: Option<ShardConf>,
    /// Merged pack conf (PACK steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_conf: Option<PackConf>,
    /// Copied into each task at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pick_times: Option<i64>,
    /// Step define params overwritten by step request params.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient", skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    /// Task index (shard index, pack id, or -1 for a SIMPLE step's task) → state; a missing
    /// key reads as SUCCESS. The API shows this map, as TasCreed does ([`Job::api_json`]);
    /// it is stored as runs (see [`task_state_runs`]).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, TaskState>))]
    #[serde(default, with = "task_state_runs")]
    pub task_states: BTreeMap<i64, TaskState>,
    /// Successful shard indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_done_range: Option<ShardDoneRange>,
    /// Offsets of successful packs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_done_range: Option<PackDoneRange>,
    /// The step does not start before this time.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[serde(default, with = "time::opt_iso", skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Expected task duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Fuel per executor call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_limit: Option<i64>,
    /// Wall clock per executor call, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    /// SHARD creation cursor; absent until the step starts.
    #[cfg_attr(feature = "openapi", schema(ignore))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_crt: Option<ShardCursor>,
    /// PACK creation cursor; absent until the step starts.
    #[cfg_attr(feature = "openapi", schema(ignore))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_crt: Option<PackCursor>,
    /// Last change.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[serde(default, with = "time::opt_iso", skip_serializing_if = "Option::is_none")]
    pub modify_time: Option<i64>,
}

impl Step {
    /// Whether the step carries `t`.
    pub fn has_trait(&self, t: Trait) -> bool {
        self.traits.contains(&t)
    }

    /// Whether every task the step will ever have has been created.
    pub fn creation_complete(&self) -> bool {
        match self.step_type {
            StepType::Simple => self.state != StepState::Dormant,
            StepType::Shard => {
                let shard = self.shard_conf.as_ref().and_then(|c| c.shard).unwrap_or(0);
                let last = self.shard_crt.map(|c| c.last_index);
                last.is_some_and(|l| l >= shard.saturating_sub(1))
            }
            StepType::Pack => {
                let Some(conf) = self.pack_conf.as_ref() else { return true };
                if conf.is_infinite() {
                    return false;
                }
                let end = conf.end.unwrap_or(-1);
                self.pack_crt.is_some_and(|c| c.last_offset >= end)
            }
        }
    }

    /// Whether a task with this index has been created.
    pub fn created(&self, index: i64) -> bool {
        match self.step_type {
            StepType::Simple => index == SIMPLE_TASK_INDEX && self.state != StepState::Dormant,
            StepType::Shard => self.shard_crt.is_some_and(|c| index <= c.last_index),
            StepType::Pack => self.pack_crt.is_some_and(|c| index <= c.last_id),
        }
    }

    /// Number of UNDONE entries: the tasks occupying creation slots.
    pub fn undone_count(&self) -> i64 {
        self.task_states.values().filter(|s| **s == TaskState::Undone).count() as i64
    }
}

impl Job {
    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.step_name == name)
    }

    /// The step called `name`, mutable.
    pub fn step_mut(&mut self, name: &str) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.step_name == name)
    }

    /// The snapshot define of step `name`.
    pub fn step_define(&self, name: &str) -> Option<&StepDefine> {
        self.define.step(name)
    }

    /// Dependencies of `name` that resolve to steps of this job, sorted by name.
    pub fn dependencies(&self, name: &str) -> Vec<String> {
        self.step_define(name)
            .map(|d| d.dependencies().into_iter().filter(|x| self.step(x).is_some()).collect())
            .unwrap_or_default()
    }

    /// Phase of step `name` (0 when unknown).
    pub fn phase(&self, name: &str) -> i64 {
        self.step_define(name).map_or(0, StepDefine::phase)
    }

    /// Task params of step `name`: job params ← step params ← job `updatedParams` (spec §6.1).
    pub fn task_params(&self, name: &str) -> Params {
        let empty = Params::new();
        let step = self.step(name).map_or(&empty, |s| &s.params);
        params::merge(&self.params, [step, &self.updated_params])
    }

    /// Whether the job has a duration and has run longer than it (strictly).
    pub fn is_slow(&self, now_ms: i64) -> bool {
        self.duration.is_some_and(|d| now_ms.saturating_sub(self.create_time) > d)
    }

    /// Marks the job as deleted (delete with archive, spec §5.5).
    pub fn mark_deleted(&mut self, now_ms: i64) {
        self.traits.insert(Trait::Deleted);
        self.modify_time = now_ms;
    }

    /// The job JSON for API readers: time-dependent fields filled, the define snapshot and
    /// creation cursors left out.
    ///
    /// `slow` is the monitor's rule (spec §12): a job in the bulletin (UNDONE, STUCK or ERROR)
    /// that has outlived its duration. `elapsedMs` runs until the job leaves the bulletin
    /// (SUCCESS, FAILED, or deleted into the archive), then stays at its last change, like
    /// `job_execution_summary`.
    ///
    /// What this removes or reshapes is marked `schema(ignore)` / `value_type` on the fields,
    /// so the OpenAPI schema of [`Job`] describes this view.
    pub fn api_json(&self, now_ms: i64) -> serde_json::Value {
        let mut view = self.clone();
        let gone = self.state.can_auto_archive() || self.traits.contains(&Trait::Deleted);
        let until = if gone { self.modify_time } else { now_ms };
        view.elapsed_ms = Some(until.saturating_sub(self.create_time).max(0));
        view.slow = Some(!gone && self.is_slow(now_ms));
        let mut value = serde_json::to_value(&view).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = value.as_object_mut() {
            obj.remove("define");
            if let Some(steps) = obj.get_mut("steps").and_then(|s| s.as_array_mut()) {
                for (step, source) in steps.iter_mut().filter_map(|s| s.as_object_mut()).zip(&self.steps) {
                    step.remove("shardCrt");
                    step.remove("packCrt");
                    // TasCreed's shape: index → state (spec §2.7), not the stored runs.
                    let map = serde_json::to_value(&source.task_states).unwrap_or(serde_json::Value::Null);
                    step.insert("taskStates".into(), map);
                }
            }
        }
        value
    }

    /// Reads a stored job.
    pub fn from_json(json: &str) -> Result<Job, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Writes the stored form (with the define snapshot and cursors). Every field serializes
    /// today, but an error must reach the caller rather than store an empty body.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// `taskStates` as stored: runs of consecutive indexes in one state, `[[0, 99999, "UNDONE"]]`.
/// A step with many alive tasks (a SHARD step with a large `maxTaskCount`) would otherwise make
/// every write of its job as large as its task count, and advancing it is such a write. Reads
/// TasCreed's map (`{"0": "UNDONE"}`) too.
mod task_state_runs {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::{Deserializer, Serialize, Serializer};

    use crate::state::TaskState;

    /// More entries than any step can hold: a corrupt run cannot make a read allocate without
    /// bound.
    const MAX_ENTRIES: u64 = 100_000_000;

    pub fn serialize<S: Serializer>(map: &BTreeMap<i64, TaskState>, s: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(i64, i64, TaskState)> = Vec::new();
        for (&index, &state) in map {
            match runs.last_mut() {
                Some((_, end, last)) if end.checked_add(1) == Some(index) && *last == state => *end = index,
                _ => runs.push((index, index, state)),
            }
        }
        runs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, TaskState>, D::Error> {
        d.deserialize_any(Either)
    }

    struct Either;

    impl<'de> Visitor<'de> for Either {
        type Value = BTreeMap<i64, TaskState>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of task index to state, or a list of [first, last, state] runs")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((index, state)) = map.next_entry::<i64, TaskState>()? {
                out.insert(index, state);
            }
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries: Vec<(i64, TaskState)> = Vec::new();
            while let Some((first, last, state)) = seq.next_element::<(i64, i64, TaskState)>()? {
                let len = u64::try_from(i128::from(last) - i128::from(first) + 1).unwrap_or(0);
                if len == 0 || entries.len() as u64 + len > MAX_ENTRIES {
                    return Err(de::Error::custom(format!("invalid task state run [{first}, {last}]")));
                }
                entries.extend((first..=last).map(|i| (i, state)));
            }
            // Runs are written in ascending order: the map is built in bulk.
            Ok(entries.into_iter().collect())
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
    }
}
