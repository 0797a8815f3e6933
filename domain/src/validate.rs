//! Validation of defines, built jobs and confs, with TasCreed's messages (spec §3, §5.1)
//! and the Required checks (D5). Every issue carries the path of the offending field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::define::{JobDefine, PackConf, ShardConf, StepDefine, StepType};
use crate::job::Job;
use crate::json::ParseError;
use crate::request::{JobRequest, StepRequest};

/// One problem, at a JSON path such as `steps[1].shardConf.shard`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where, as a JSON path into the submitted document.
    pub path: String,
    /// TasCreed's message.
    pub message: String,
}

/// Everything wrong with a document (one validation stage's worth).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The problems, in document order.
    pub issues: Vec<Issue>,
}

impl ValidationError {
    /// A single issue.
    pub fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError { issues: vec![Issue { path: path.into(), message: message.into() }] }
    }

    /// Whether any message contains `phrase`.
    pub fn mentions(&self, phrase: &str) -> bool {
        self.issues.iter().any(|i| i.message.contains(phrase))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if issue.path.is_empty() {
                write!(f, "{}", issue.message)?;
            } else {
                write!(f, "{} (at {})", issue.message, issue.path)?;
            }
        }
        Ok(())
    }
}

/// Why a define could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefineError {
    /// Not JSON of the right shape (bad syntax, wrong type, unknown enum value), with the
    /// path of the offending field.
    #[error("parse json fails: {0}")]
    Parse(#[from] ParseError),
    /// Parsed but breaks a rule.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
}

/// Switches of define validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidateOptions {
    /// `define.graph.validate.enable`: reject dependency cycles.
    pub graph_cycle_check: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions { graph_cycle_check: true }
    }
}

/// Renders an optional number the way TasCreed prints a null `Long`.
fn show(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_string(), |n| n.to_string())
}

fn show_str(v: Option<&str>) -> String {
    v.map_or_else(|| "null".to_string(), str::to_string)
}

/// `^[_a-zA-Z][_a-zA-Z0-9\-]*$`: job and step names.
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == '-' || c.is_ascii_alphanumeric())
}

/// `^[_a-zA-Z0-9][_a-zA-Z0-9\-]*$`: triggers.
pub fn is_valid_trigger(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphanumeric())
        && chars.all(|c| c == '_' || c == '-' || c.is_ascii_alphanumeric())
}

struct Collector {
    issues: Vec<Issue>,
}

impl Collector {
    fn new() -> Self {
        Collector { issues: Vec::new() }
    }
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue { path: path.into(), message: message.into() });
    }
    fn finish(self) -> Result<(), ValidationError> {
        if self.issues.is_empty() { Ok(()) } else { Err(ValidationError { issues: self.issues }) }
    }
}

/// The shard conf validator (messages of spec §3).
pub fn check_shard_conf(conf: Option<&ShardConf>, path: &str) -> Result<(), ValidationError> {
    let mut c = Collector::new();
    shard_conf_into(&mut c, conf, path);
    c.finish()
}

fn shard_conf_into(c: &mut Collector, conf: Option<&ShardConf>, path: &str) {
    let Some(conf) = conf else {
        c.push(path, "shardConf is null");
        return;
    };
    if conf.shard.is_none_or(|n| n <= 0) {
        c.push(format!("{path}.shard"), format!("shard num invalid: {} <= 0", show(conf.shard)));
    }
    if let Some(id) = conf.start_shard_id.filter(|id| *id < 0) {
        c.push(format!("{path}.startShardId"), format!("start shard id invalid: {id} < 0"));
    }
}

/// The pack conf validator (messages of spec §3).
pub fn check_pack_conf(conf: Option<&PackConf>, path: &str) -> Result<(), ValidationError> {
    let mut c = Collector::new();
    pack_conf_into(&mut c, conf, path);
    c.finish()
}

fn pack_conf_into(c: &mut Collector, conf: Option<&PackConf>, path: &str) {
    let Some(conf) = conf else {
        c.push(path, "packConf is null");
        return;
    };
    if conf.size.is_none_or(|n| n <= 0) {
        c.push(format!("{path}.size"), format!("pack size invalid: {} <= 0", show(conf.size)));
    }
    if conf.start.is_none_or(|n| n < 0) {
        c.push(format!("{path}.start"), format!("pack start invalid: {} < 0", show(conf.start)));
    }
    if !conf.is_infinite() && conf.end.is_none_or(|n| n < 0) {
        c.push(format!("{path}.end"), format!("pack end invalid: {} < 0", show(conf.end)));
    }
    if let Some(id) = conf.start_pack_id.filter(|id| *id < 0) {
        c.push(format!("{path}.startPackId"), format!("start pack id invalid: {id} < 0"));
    }
}

fn conf_of_type(c: &mut Collector, kind: StepType, shard: Option<&ShardConf>, pack: Option<&PackConf>, path: &str) {
    match kind {
        StepType::Simple => {}
        StepType::Shard => shard_conf_into(c, shard, &format!("{path}.shardConf")),
        StepType::Pack => pack_conf_into(c, pack, &format!("{path}.packConf")),
    }
}

fn limits_into(c: &mut Collector, fuel: Option<i64>, timeout: Option<i64>, path: &str) {
    if let Some(f) = fuel.filter(|f| *f <= 0) {
        c.push(format!("{path}.fuelLimit"), format!("fuel limit invalid: {f} <= 0"));
    }
    if let Some(t) = timeout.filter(|t| *t <= 0) {
        c.push(format!("{path}.timeoutMs"), format!("timeout invalid: {t} <= 0"));
    }
}

fn duplicates_into<'a>(c: &mut Collector, names: impl Iterator<Item = Option<&'a str>>) {
    let mut counts: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    let mut order = Vec::new();
    for n in names {
        let e = counts.entry(n).or_insert(0);
        if *e == 0 {
            order.push(n);
        }
        *e += 1;
    }
    for n in order {
        let times = counts[&n];
        if times > 1 {
            c.push("steps", format!("{} duplicate times {times}", show_str(n)));
        }
    }
}

fn step_define_into(c: &mut Collector, s: &StepDefine, path: &str) {
    if !s.step_name.as_deref().is_some_and(is_valid_name) {
        c.push(format!("{path}.stepName"), format!("step define name invalid: {}", show_str(s.step_name.as_deref())));
    }
    if s.phase() < 0 {
        c.push(format!("{path}.dependency.phase"), format!("step phase invalid: {}", s.phase()));
    }
    conf_of_type(c, s.kind(), s.shard_conf.as_ref(), s.pack_conf.as_ref(), path);
    if s.effort() <= 0 {
        c.push(format!("{path}.effort"), format!("effort invalid: {} <= 0", s.effort()));
    }
    limits_into(c, s.fuel_limit, s.timeout_ms, path);
}

impl JobDefine {
    /// Validates in TasCreed's stages, stopping at the first failing one: fields, unknown
    /// dependencies (D5), phase order, then (if enabled) cycles.
    pub fn validate(&self, opts: ValidateOptions) -> Result<(), ValidationError> {
        let mut c = Collector::new();
        if !self.job_name.as_deref().is_some_and(is_valid_name) {
            c.push("jobName", format!("job define name invalid: {}", show_str(self.job_name.as_deref())));
        }
        if let Some(v) = self.version.filter(|v| *v < 0) {
            c.push("version", format!("version invalid: {v} < 0"));
        }
        if let Some(p) = self.priority.filter(|p| *p <= 0) {
            c.push("priority", format!("priority invalid: {p} < 0"));
        }
        if self.steps.is_empty() {
            c.push("steps", "step list is empty");
        }
        for (i, s) in self.steps.iter().enumerate() {
            step_define_into(&mut c, s, &format!("steps[{i}]"));
        }
        duplicates_into(&mut c, self.steps.iter().map(|s| s.step_name.as_deref()));
        c.finish()?;

        self.check_unknown_dependencies()?;
        self.check_phase_order()?;
        if opts.graph_cycle_check {
            self.check_cycles()?;
        }
        Ok(())
    }

    /// Parses and validates in one go.
    pub fn load(json: &str, opts: ValidateOptions) -> Result<JobDefine, DefineError> {
        let define = JobDefine::parse(json)?;
        define.validate(opts)?;
        Ok(define)
    }

    fn check_unknown_dependencies(&self) -> Result<(), ValidationError> {
        let names: BTreeSet<&str> = self.steps.iter().map(StepDefine::name).collect();
        let mut c = Collector::new();
        for (i, s) in self.steps.iter().enumerate() {
            let listed = s.dependency.iter().flat_map(|d| d.done_steps.iter());
            for dep in listed.filter(|d| !names.contains(d.as_str())) {
                c.push(
                    format!("steps[{i}].dependency.steps"),
                    format!("step {} depends on unknown step {dep}", s.name()),
                );
            }
            if let Some(dep) = s.dependent_step.as_deref().filter(|d| !names.contains(d)) {
                c.push(format!("steps[{i}].dependentStep"), format!("step {} depends on unknown step {dep}", s.name()));
            }
        }
        c.finish()
    }

    fn check_phase_order(&self) -> Result<(), ValidationError> {
        let late: Vec<&str> = self
            .steps
            .iter()
            .filter(|s| s.dependencies().iter().any(|d| self.step(d).is_some_and(|dep| dep.phase() > s.phase())))
            .map(StepDefine::name)
            .collect();
        if late.is_empty() {
            return Ok(());
        }
        Err(ValidationError::one("steps", format!("these steps depend on steps in later phase: {}", late.join(", "))))
    }

    fn check_cycles(&self) -> Result<(), ValidationError> {
        let stuck = self.unreachable_steps();
        if stuck.is_empty() {
            return Ok(());
        }
        Err(ValidationError::one(
            "steps",
            format!("step graph has cycle, these steps would stuck: {}", stuck.join(", ")),
        ))
    }

    /// Steps that Kahn-style peeling never reaches (in a cycle or depending on one),
    /// in define order.
    pub fn unreachable_steps(&self) -> Vec<&str> {
        let deps: Vec<Vec<String>> = self
            .steps
            .iter()
            .map(|s| s.dependencies().into_iter().filter(|d| self.step(d).is_some()).collect())
            .collect();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        loop {
            let before = done.len();
            for (s, d) in self.steps.iter().zip(&deps) {
                if !done.contains(s.name()) && d.iter().all(|x| done.contains(x.as_str())) {
                    done.insert(s.name());
                }
            }
            if done.len() == before {
                break;
            }
        }
        self.steps.iter().map(StepDefine::name).filter(|n| !done.contains(n)).collect()
    }
}

/// Validates a job built from a define and a request (spec §5.1 step 6).
pub fn check_job(job: &Job) -> Result<(), ValidationError> {
    let mut c = Collector::new();
    if !is_valid_name(&job.job_name) {
        c.push("jobName", format!("job name invalid: {}", job.job_name));
    }
    if !is_valid_trigger(&job.trigger) {
        c.push("trigger", format!("job trigger invalid: {}", job.trigger));
    }
    if let Some(p) = job.priority.filter(|p| *p <= 0) {
        c.push("priority", format!("priority invalid: {p} < 0"));
    }
    if job.steps.is_empty() {
        c.push("steps", "step list is empty");
    }
    for (i, s) in job.steps.iter().enumerate() {
        let path = format!("steps[{i}]");
        if !is_valid_name(&s.step_name) {
            c.push(format!("{path}.stepName"), format!("step name invalid: {}", s.step_name));
        }
        if job.define.step(&s.step_name).is_none() {
            c.push(path.clone(), "step define is null");
        }
        conf_of_type(&mut c, s.step_type, s.shard_conf.as_ref(), s.pack_conf.as_ref(), &path);
        limits_into(&mut c, s.fuel_limit, s.timeout_ms, &path);
    }
    duplicates_into(&mut c, job.steps.iter().map(|s| Some(s.step_name.as_str())));
    c.finish()
}

/// Re-points issues of a job built from (or updated by) `request` at the document the value
/// came from. [`check_job`] numbers steps as the job (= define) does, which is meaningless to
/// a submitter whose request lists its steps in another order: a value the request step set
/// gets that step's request path, `steps[j].<field>`; anything else came from the define and
/// gets `define.steps[k].<field>`. Paths outside `steps[..]` name the same field in both.
pub(crate) fn in_request(e: ValidationError, job: &Job, request: &JobRequest) -> ValidationError {
    let locate = |path: &str| {
        let (i, field) = step_path(path)?;
        let name = job.steps.get(i).map(|s| s.step_name.as_str());
        // The first request step of a name is the one applied (JobRequest::step).
        let requested =
            request.steps.iter().enumerate().find(|(_, s)| name.is_some() && s.step_name.as_deref() == name);
        Some(match requested.filter(|(_, s)| sets_field(s, field)) {
            Some((j, _)) => format!("steps[{j}]{field}"),
            None => {
                let k = name.and_then(|n| job.define.steps.iter().position(|s| s.name() == n)).unwrap_or(i);
                format!("define.steps[{k}]{field}")
            }
        })
    };
    let issues = e
        .issues
        .into_iter()
        .map(|issue| Issue { path: locate(&issue.path).unwrap_or(issue.path), message: issue.message })
        .collect();
    ValidationError { issues }
}

/// `steps[3].packConf.size` → (3, `.packConf.size`).
fn step_path(path: &str) -> Option<(usize, &str)> {
    let (index, field) = path.strip_prefix("steps[")?.split_once(']')?;
    Some((index.parse().ok()?, field))
}

/// Whether the step request gives a non-null value at `field` (`.packConf.size`); the whole
/// step (an empty `field`) is not a value it set.
fn sets_field(step: &StepRequest, field: &str) -> bool {
    if field.is_empty() {
        return false;
    }
    let pointer = field.replace('.', "/");
    serde_json::to_value(step).is_ok_and(|v| v.pointer(&pointer).is_some_and(|x| !x.is_null()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        for ok in ["abc", "ABC", "a123", "job-1", "job_1", "_"] {
            assert!(is_valid_name(ok), "{ok}");
            assert!(is_valid_trigger(ok), "{ok}");
        }
        for bad in ["", "?", "*", "&^", "---", "123"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_trigger("123"));
        for bad in ["", "---", "-123", "a/b"] {
            assert!(!is_valid_trigger(bad), "{bad}");
        }
    }
}
