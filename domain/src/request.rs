//! Job and step requests: what a submitter asks for (spec §2.5).

use serde::{Deserialize, Serialize};

use crate::define::{PackConf, ShardConf};
use crate::params::{self, Params};
use crate::req_time::ReqTime;
use crate::traits::TraitsAmend;

/// Body of a job submission (also of update and retry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobRequest {
    /// Define name.
    #[serde(default, alias = "name")]
    pub job_name: Option<String>,
    /// Instance key within the define.
    #[serde(default)]
    pub trigger: Option<String>,
    /// Overrides the define's priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Overwrite the define's params key by key.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient", skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    /// Per-step overrides; unknown step names are ignored.
    #[serde(default, deserialize_with = "null_vec", skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRequest>,
    /// Trait amendments (no user trait fits a job, so they have no effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traits: Option<TraitsAmend>,
    /// Do not create tasks before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ReqTime>,
    /// Expected duration, ms; negative = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
}

fn null_vec<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl JobRequest {
    /// Reads TasCreed's request JSON; a wrongly typed field is an error naming its path.
    pub fn parse(json: &str) -> Result<JobRequest, crate::validate::DefineError> {
        Ok(crate::json::from_str(json)?)
    }

    /// The first step request named `name` (later duplicates are ignored).
    pub fn step(&self, name: &str) -> Option<&StepRequest> {
        self.steps.iter().find(|s| s.step_name.as_deref() == Some(name))
    }
}

/// Overrides for one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepRequest {
    /// Step name within the define.
    #[serde(default, alias = "name")]
    pub step_name: Option<String>,
    /// Executor override, highest precedence (alias `exeClass`).
    #[serde(default, alias = "exeClass", skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// Affinity rule override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_rule: Option<String>,
    /// Ignore the step (only honoured for CAN_IGNORE steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<bool>,
    /// Trait amendments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traits: Option<TraitsAmend>,
    /// Merged over the define's shard conf (SHARD steps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_conf: Option<ShardConf>,
    /// Merged over the define's pack conf (PACK steps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_conf: Option<PackConf>,
    /// Overrides the define's pick limit.
    #[serde(default, alias = "maxErrorTimes", skip_serializing_if = "Option::is_none")]
    pub max_pick_times: Option<i64>,
    /// Overwrite the step define's params key by key.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default, deserialize_with = "params::lenient", skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    /// Do not start the step before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ReqTime>,
    /// Expected task duration, ms; negative = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Fuel per executor call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_limit: Option<i64>,
    /// Wall clock per executor call, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
}
