//! Building a job from a define snapshot and a request (spec §4), and executor resolution
//! (DESIGN.md: request step > define step > manifest binding).

use std::collections::BTreeMap;

use crate::define::{JobDefine, StepDefine, StepType, merge_conf};
use crate::job::{Job, Step, ZERO_PROGRESSION};
use crate::params;
use crate::request::{JobRequest, StepRequest};
use crate::state::{JobState, StepState};
use crate::traits::{self, Container};
use crate::validate::{self, Issue, ValidationError};

/// A negative duration means "none"; a request value, when present, replaces the define's.
fn duration(define: Option<i64>, request: Option<i64>) -> Option<i64> {
    request.or(define).filter(|d| *d >= 0)
}

fn non_blank(s: Option<&String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty()).cloned()
}

/// Builds a new job (state UNDONE, every step DORMANT, no tasks) and validates it.
/// The job keeps `define` as its snapshot (D17); `now_ms` becomes its create time.
pub fn build_job(define: &JobDefine, request: &JobRequest, now_ms: i64) -> Result<Job, ValidationError> {
    let mut issues = Vec::new();
    let after = match request.after.as_ref().map(|a| a.resolve()) {
        Some(Err(e)) => {
            issues.push(Issue { path: "after".into(), message: e.to_string() });
            None
        }
        Some(Ok(t)) => t,
        None => None,
    };
    let mut steps = Vec::with_capacity(define.steps.len());
    for (i, sd) in define.steps.iter().enumerate() {
        let sr = request.step(sd.name());
        let (step, err) = build_step(sd, sr, now_ms);
        if let Some(e) = err {
            // Numbered as the job's steps like check_job's issues; in_request re-points both.
            issues.push(Issue { path: format!("steps[{i}].after"), message: e });
        }
        steps.push(step);
    }
    let job = Job {
        job_name: request.job_name.clone().unwrap_or_else(|| define.name().to_string()),
        trigger: request.trigger.clone().unwrap_or_default(),
        priority: request.priority.or(define.priority),
        params: params::merge(&define.params, [&request.params]),
        updated_params: Default::default(),
        state: JobState::Undone,
        progression: ZERO_PROGRESSION.into(),
        traits: traits::inherit(&define.traits, request.traits.as_ref(), Container::Job),
        after,
        duration: duration(define.duration, request.duration),
        slow: None,
        elapsed_ms: None,
        create_time: now_ms,
        modify_time: now_ms,
        steps,
        define: define.clone(),
    };
    if request.trigger.is_none() {
        issues.push(Issue { path: "trigger".into(), message: "job trigger invalid: null".into() });
    }
    if let Err(e) = validate::check_job(&job) {
        issues.extend(e.issues.into_iter().filter(|i| !(i.path == "trigger" && request.trigger.is_none())));
    }
    if issues.is_empty() { Ok(job) } else { Err(validate::in_request(ValidationError { issues }, &job, request)) }
}

fn build_step(sd: &StepDefine, sr: Option<&StepRequest>, now_ms: i64) -> (Step, Option<String>) {
    let kind = sd.kind();
    let (after, err) = match sr.and_then(|r| r.after.as_ref()).map(|a| a.resolve()) {
        Some(Ok(t)) => (t, None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let step = Step {
        step_name: sd.name().to_string(),
        step_type: kind,
        state: StepState::Dormant,
        progression: ZERO_PROGRESSION.into(),
        executor: non_blank(sr.and_then(|r| r.executor.as_ref())).or_else(|| sd.executor.clone()),
        affinity_rule: non_blank(sr.and_then(|r| r.affinity_rule.as_ref())).or_else(|| sd.affinity_rule.clone()),
        ignore: sd.can_ignore() && sr.and_then(|r| r.ignore) == Some(true),
        traits: traits::inherit(&sd.traits, sr.and_then(|r| r.traits.as_ref()), Container::Step),
        shard_conf: (kind == StepType::Shard)
            .then(|| merge_conf(sd.shard_conf.as_ref(), sr.and_then(|r| r.shard_conf.as_ref())))
            .flatten(),
        pack_conf: (kind == StepType::Pack)
            .then(|| merge_conf(sd.pack_conf.as_ref(), sr.and_then(|r| r.pack_conf.as_ref())))
            .flatten(),
        max_pick_times: sr.and_then(|r| r.max_pick_times).or(sd.max_pick_times),
        params: params::merge(&sd.params, sr.map(|r| &r.params)),
        task_states: BTreeMap::new(),
        shard_done_range: None,
        pack_done_range: None,
        after,
        duration: duration(sd.duration, sr.and_then(|r| r.duration)),
        fuel_limit: sr.and_then(|r| r.fuel_limit).or(sd.fuel_limit),
        timeout_ms: sr.and_then(|r| r.timeout_ms).or(sd.timeout_ms),
        shard_crt: None,
        pack_crt: None,
        modify_time: Some(now_ms),
    };
    (step, err)
}

/// A loaded executor's manifest binding: it serves (`job_name`, `step_name`) by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Executor (component) name.
    pub executor: String,
    /// Job define name.
    pub job_name: String,
    /// Step name.
    pub step_name: String,
}

/// The executor that should run a task: its explicit executor (request step, else define
/// step, already folded into the task) if any, with no fallback; otherwise the last binding
/// for (job, step), as later registrations overwrite earlier ones.
pub fn resolve_executor<'a>(
    explicit: Option<&'a str>,
    job_name: &str,
    step_name: &str,
    bindings: &'a [Binding],
) -> Option<&'a str> {
    if let Some(name) = explicit.filter(|n| !n.trim().is_empty()) {
        return Some(name);
    }
    bindings.iter().rev().find(|b| b.job_name == job_name && b.step_name == step_name).map(|b| b.executor.as_str())
}
