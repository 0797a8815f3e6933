//! Job and step defines: TasCreed's JSON, read as-is (spec §2.1–2.3).

use serde::{Deserialize, Serialize};

use crate::params::{self, Params};
use crate::traits::{self, Trait, TraitSet};

/// How a step splits into tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepType {
    /// One task.
    #[default]
    Simple,
    /// One task per shard index.
    Shard,
    /// One task per pack of offsets.
    Pack,
}

/// Default number of UNDONE tasks a SHARD or PACK step keeps alive.
pub const DEFAULT_MAX_TASK_COUNT: i64 = 50;

/// `maxTaskCount` as applied: the value if positive, else 50.
pub fn effective_max_task_count(v: Option<i64>) -> i64 {
    match v {
        Some(n) if n > 0 => n,
        _ => DEFAULT_MAX_TASK_COUNT,
    }
}

/// SHARD configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ShardConf {
    /// Number of shards.
    #[serde(default, alias = "sharding", skip_serializing_if = "Option::is_none")]
    pub shard: Option<i64>,
    /// First shard index created (the ones below are never run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_shard_id: Option<i64>,
    /// UNDONE tasks kept alive at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_task_count: Option<i64>,
}

/// PACK configuration; `start` and `end` are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PackConf {
    /// Offsets per pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// First offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Last offset; ignored when infinite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    /// Packs are created forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infinite: Option<bool>,
    /// First pack id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_pack_id: Option<i64>,
    /// UNDONE tasks kept alive at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_task_count: Option<i64>,
}

impl PackConf {
    /// `infinite == true`.
    pub fn is_infinite(&self) -> bool {
        self.infinite == Some(true)
    }
}

/// Field-wise merge used by confs: a set field of `upper` wins.
pub trait Merge: Clone {
    /// `self` overridden by `upper`'s set fields.
    fn overridden_by(&self, upper: &Self) -> Self;
}

impl Merge for ShardConf {
    fn overridden_by(&self, u: &Self) -> Self {
        ShardConf {
            shard: u.shard.or(self.shard),
            start_shard_id: u.start_shard_id.or(self.start_shard_id),
            max_task_count: u.max_task_count.or(self.max_task_count),
        }
    }
}

impl Merge for PackConf {
    fn overridden_by(&self, u: &Self) -> Self {
        PackConf {
            size: u.size.or(self.size),
            start: u.start.or(self.start),
            end: u.end.or(self.end),
            infinite: u.infinite.or(self.infinite),
            start_pack_id: u.start_pack_id.or(self.start_pack_id),
            max_task_count: u.max_task_count.or(self.max_task_count),
        }
    }
}

/// `merge(base, upper)` of spec §2.2: one side missing gives a copy of the other.
pub fn merge_conf<T: Merge>(base: Option<&T>, upper: Option<&T>) -> Option<T> {
    match (base, upper) {
        (Some(b), Some(u)) => Some(b.overridden_by(u)),
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (None, None) => None,
    }
}

/// `dependency {steps|doneSteps, phase}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// Steps that must be done with a success result first.
    #[serde(default, alias = "steps", deserialize_with = "null_vec", skip_serializing_if = "Vec::is_empty")]
    pub done_steps: Vec<String>,
    /// Phase number; every lower phase must be done first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<i64>,
}

fn null_vec<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A step of a job define.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepDefine {
    /// Unique within the define.
    #[serde(default, alias = "name")]
    pub step_name: Option<String>,
    /// Executor component override (alias `exeClass`).
    #[serde(default, alias = "exeClass", skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// Mode; SIMPLE when absent.
    #[serde(default, alias = "type", skip_serializing_if = "Option::is_none")]
    pub step_type: Option<StepType>,
    /// SHARD mode configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_conf: Option<ShardConf>,
    /// PACK mode configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_conf: Option<PackConf>,
    /// Give-up limit of each task; negative = unlimited.
    #[serde(default, alias = "maxErrorTimes", skip_serializing_if = "Option::is_none")]
    pub max_pick_times: Option<i64>,
    /// Affinity rule name (affinity is off: kept, not applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_rule: Option<String>,
    /// Weight in job progression; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<i64>,
    /// Traits; unknown or misplaced names are dropped while reading.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeSet<Trait>))]
    #[serde(default, deserialize_with = "traits::de_step_define", skip_serializing_if = "TraitSet::is_empty")]
    pub traits: TraitSet,
    /// Legacy spelling of CAN_IGNORE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignorable: Option<bool>,
    /// Expected duration of each task, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Legacy single dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent_step: Option<String>,
    /// Dependencies and phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency: Option<Dependency>,
    /// Step-level params.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient", skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    /// Fuel per executor call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_limit: Option<i64>,
    /// Wall clock per executor call, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
}

impl StepDefine {
    /// The name, or "" when missing (validation reports a missing name).
    pub fn name(&self) -> &str {
        self.step_name.as_deref().unwrap_or("")
    }

    /// The mode; SIMPLE when absent.
    pub fn kind(&self) -> StepType {
        self.step_type.unwrap_or_default()
    }

    /// `dependency.doneSteps` ∪ {`dependentStep`}, de-duplicated, sorted by name.
    pub fn dependencies(&self) -> Vec<String> {
        let mut deps: Vec<String> = self
            .dependency
            .iter()
            .flat_map(|d| d.done_steps.iter().cloned())
            .chain(self.dependent_step.iter().cloned())
            .collect();
        deps.sort();
        deps.dedup();
        deps
    }

    /// `dependency.phase`, 0 when absent.
    pub fn phase(&self) -> i64 {
        self.dependency.as_ref().and_then(|d| d.phase).unwrap_or(0)
    }

    /// Weight in job progression.
    pub fn effort(&self) -> i64 {
        self.effort.unwrap_or(1)
    }

    /// CAN_IGNORE present or legacy `ignorable: true`.
    pub fn can_ignore(&self) -> bool {
        self.traits.contains(&Trait::CanIgnore) || self.ignorable == Some(true)
    }
}

/// A job define.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobDefine {
    /// Unique define name.
    #[serde(default, alias = "name")]
    pub job_name: Option<String>,
    /// Informative; must be ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Inherited by jobs and tasks; larger is picked first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// At most one alive job of this define.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_alive_instance: Option<bool>,
    /// Job-level params.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient", skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    /// Steps, in graph order.
    #[serde(default, deserialize_with = "null_vec")]
    pub steps: Vec<StepDefine>,
    /// Traits; no user trait fits a job define, so this is empty when read from users.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeSet<Trait>))]
    #[serde(default, deserialize_with = "traits::de_job_define", skip_serializing_if = "TraitSet::is_empty")]
    pub traits: TraitSet,
    /// Expected job duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
}

impl JobDefine {
    /// Reads TasCreed's define JSON. Unknown fields are ignored; an unknown enum value or a
    /// wrongly typed field is an error naming it.
    pub fn parse(json: &str) -> Result<JobDefine, crate::validate::DefineError> {
        Ok(crate::json::from_str(json)?)
    }

    /// The name, or "" when missing.
    pub fn name(&self) -> &str {
        self.job_name.as_deref().unwrap_or("")
    }

    /// The step define called `name`.
    pub fn step(&self, name: &str) -> Option<&StepDefine> {
        self.steps.iter().find(|s| s.name() == name)
    }

    /// `uniqueAliveInstance == true`.
    pub fn unique_alive(&self) -> bool {
        self.unique_alive_instance == Some(true)
    }

    /// Distinct phase numbers, ascending.
    pub fn phases(&self) -> Vec<i64> {
        let mut p: Vec<i64> = self.steps.iter().map(StepDefine::phase).collect();
        p.sort();
        p.dedup();
        p
    }

    /// The largest phase number below `phase`, if any.
    pub fn previous_phase(&self, phase: i64) -> Option<i64> {
        self.phases().into_iter().filter(|p| *p < phase).max()
    }
}
