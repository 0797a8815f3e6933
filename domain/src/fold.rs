//! Folding finished tasks into their job, and the state rules that follow (spec §6.2, §6.3,
//! §8.2–8.4, §9 A; D3, D4, D13).

use crate::define::{Merge, StepType};
use crate::job::Job;
use crate::progression;
use crate::ranges::{PackDoneRange, ShardDoneRange};
use crate::state::{JobState, Outcome, StepState, TaskState};
use crate::task::{FinishedTask, TaskPosition, UpdatedConfig};
use crate::traits::Trait;
use crate::validate;

/// What a fold did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldReport {
    /// The job changed and must be saved.
    pub changed: bool,
    /// Finished tasks whose state was applied to a step.
    pub applied: Vec<String>,
    /// Finished tasks that matched no created task of a known step (their records can go).
    pub skipped: Vec<String>,
    /// Things ignored on purpose (bad updated configs and the like), for the log.
    pub warnings: Vec<String>,
}

impl Job {
    /// Whether the job's and step `i`'s `after` times have passed.
    pub(crate) fn time_reached(&self, i: usize, now_ms: i64) -> bool {
        self.after.is_none_or(|a| a <= now_ms) && self.steps[i].after.is_none_or(|a| a <= now_ms)
    }

    /// Every step of every lower phase is done (D3).
    pub(crate) fn lower_phases_done(&self, name: &str) -> bool {
        let phase = self.phase(name);
        self.steps.iter().filter(|s| self.phase(&s.step_name) < phase).all(|s| s.state.is_done())
    }

    /// Every resolved dependency finished with a success result.
    pub(crate) fn dependencies_succeeded(&self, name: &str) -> bool {
        self.dependencies(name).iter().all(|d| self.step(d).is_some_and(|s| s.state.is_success()))
    }

    /// Step `i` may create tasks, ignoring time and budget.
    pub(crate) fn step_can_create(&self, i: usize) -> bool {
        let s = &self.steps[i];
        s.state.can_create_task()
            && !(s.state == StepState::Dormant && s.ignore)
            && self.dependencies_succeeded(&s.step_name)
            && self.lower_phases_done(&s.step_name)
    }

    /// The earliest future `after` (job, or a step not yet done) that can change this job.
    pub fn next_wake_ms(&self, now_ms: i64) -> Option<i64> {
        if self.state != JobState::Undone {
            return None;
        }
        let job = self.after.filter(|a| *a > now_ms);
        let steps = self.steps.iter().filter(|s| !s.state.is_done()).filter_map(|s| s.after.filter(|a| *a > now_ms));
        job.into_iter().chain(steps).min()
    }

    /// Applies finished tasks (spec §9 A) and every state rule that follows. Tasks are
    /// taken in task-name order, so on a params key collision the last name wins.
    pub fn fold(&mut self, finished: &[FinishedTask], now_ms: i64) -> FoldReport {
        let mut report = FoldReport::default();
        let mut ordered: Vec<&FinishedTask> = finished.iter().collect();
        ordered.sort_by(|a, b| a.task_name.cmp(&b.task_name));
        for ft in ordered {
            if ft.state == TaskState::Success {
                for (k, v) in &ft.updated_params {
                    if self.updated_params.get(k) != Some(v) {
                        self.updated_params.insert(k.clone(), v.clone());
                        report.changed = true;
                    }
                }
                for (step, conf) in &ft.updated_configs {
                    report.changed |= self.apply_updated_config(step, conf, &mut report.warnings);
                }
            }
            let known = ft.state.is_done() && self.step(&ft.step_name).is_some_and(|s| s.created(ft.position.index()));
            if known {
                report.changed |= self.apply_task_state(ft);
                report.applied.push(ft.task_name.clone());
            } else {
                report.skipped.push(ft.task_name.clone());
            }
        }
        report.changed |= self.settle(now_ms);
        if report.changed {
            self.modify_time = now_ms;
        }
        report
    }

    /// Sets the step's entry for the task; true if it changed.
    fn apply_task_state(&mut self, ft: &FinishedTask) -> bool {
        let Some(step) = self.step_mut(&ft.step_name) else { return false };
        let index = ft.position.index();
        if !ft.state.is_done() || !step.created(index) {
            return false;
        }
        // A missing entry reads as SUCCESS (entries are dropped once successful).
        let previous = step.task_states.get(&index).copied().unwrap_or(TaskState::Success);
        if previous == ft.state {
            return false;
        }
        step.task_states.insert(index, ft.state);
        if ft.state == TaskState::Success {
            match ft.position {
                TaskPosition::Shard(i) if step.step_type == StepType::Shard => {
                    step.shard_done_range.get_or_insert_with(ShardDoneRange::default).indexes.add(i, i)
                }
                TaskPosition::Pack { start, end, .. } if step.step_type == StepType::Pack => {
                    step.pack_done_range.get_or_insert_with(PackDoneRange::default).offsets.add(start, end)
                }
                _ => {}
            }
        }
        true
    }

    /// Merges an executor's conf update into a DORMANT step, keeping the old conf when the
    /// result is invalid (D13); `maxPickTimes` is never applied. True if the step changed.
    fn apply_updated_config(&mut self, name: &str, update: &UpdatedConfig, warnings: &mut Vec<String>) -> bool {
        let Some(step) = self.step_mut(name) else {
            warnings.push(format!("updated config ignored: step {name} not found"));
            return false;
        };
        if step.state != StepState::Dormant {
            warnings.push(format!("updated config of step {name} ignored: step is {}", step.state.as_str()));
            return false;
        }
        match step.step_type {
            StepType::Shard => {
                let Some(upper) = update.shard_conf.as_ref() else { return false };
                let merged = step.shard_conf.as_ref().map_or_else(|| upper.clone(), |b| b.overridden_by(upper));
                if let Err(e) = validate::check_shard_conf(Some(&merged), "shardConf") {
                    warnings.push(format!("updated config of step {name} ignored: {e}"));
                    return false;
                }
                let changed = step.shard_conf.as_ref() != Some(&merged);
                step.shard_conf = Some(merged);
                changed
            }
            StepType::Pack => {
                let Some(upper) = update.pack_conf.as_ref() else { return false };
                let merged = step.pack_conf.as_ref().map_or_else(|| upper.clone(), |b| b.overridden_by(upper));
                if let Err(e) = validate::check_pack_conf(Some(&merged), "packConf") {
                    warnings.push(format!("updated config of step {name} ignored: {e}"));
                    return false;
                }
                let changed = step.pack_conf.as_ref() != Some(&merged);
                step.pack_conf = Some(merged);
                changed
            }
            StepType::Simple => false,
        }
    }

    /// Runs the state rules to a fixed point: READY evaluation, dropping SUCCESS entries,
    /// DORMANT transitions, job evaluation, progressions. True if anything changed.
    pub(crate) fn settle(&mut self, now_ms: i64) -> bool {
        let mut changed = false;
        for step in &mut self.steps {
            let can_fail = step.has_trait(Trait::CanFail);
            if step.state == StepState::Ready
                && let Some(next) = ready_outcome(step.task_states.values().copied(), can_fail)
            {
                step.state = next;
                step.modify_time = Some(now_ms);
                changed = true;
            }
            let before = step.task_states.len();
            step.task_states.retain(|_, s| *s != TaskState::Success);
            changed |= before != step.task_states.len();
        }
        loop {
            let mut moved = false;
            for i in 0..self.steps.len() {
                if let Some(next) = self.dormant_transition(i, now_ms) {
                    self.steps[i].state = next;
                    self.steps[i].modify_time = Some(now_ms);
                    moved = true;
                }
            }
            changed |= moved;
            if !moved {
                break;
            }
        }
        if self.state == JobState::Undone {
            let next = self.evaluate_job(now_ms);
            if next != self.state {
                self.state = next;
                changed = true;
            }
        }
        for step in &mut self.steps {
            let p = progression::step_progression(step);
            if p != step.progression {
                step.progression = p;
                changed = true;
            }
        }
        let p = progression::job_progression(self);
        if p != self.progression {
            self.progression = p;
            changed = true;
        }
        if changed {
            self.modify_time = now_ms;
        }
        changed
    }

    /// Spec §8.2 rule 4, gated by time (D4) and by every lower phase (D3).
    fn dormant_transition(&self, i: usize, now_ms: i64) -> Option<StepState> {
        let step = &self.steps[i];
        if step.state != StepState::Dormant || !self.time_reached(i, now_ms) || !self.lower_phases_done(&step.step_name)
        {
            return None;
        }
        let deps: Vec<StepState> =
            self.dependencies(&step.step_name).iter().filter_map(|d| self.step(d)).map(|s| s.state).collect();
        if !deps.iter().all(|s| s.is_done()) {
            return None;
        }
        if deps.iter().all(|s| s.is_success()) {
            return step.ignore.then_some(StepState::Ignored);
        }
        if deps.iter().any(|s| s.outcome() == Outcome::Error) {
            return Some(StepState::SkipByError);
        }
        Some(if step.has_trait(Trait::CanFail) { StepState::AcceptableFailed } else { StepState::SkipByFailed })
    }

    /// Spec §8.3, with D4: a job waiting for any `after` is never STUCK.
    fn evaluate_job(&self, now_ms: i64) -> JobState {
        let outcomes: Vec<Outcome> = self.steps.iter().map(|s| s.state.outcome()).collect();
        if outcomes.contains(&Outcome::Unknown) {
            let can_create = (0..self.steps.len()).any(|i| self.step_can_create(i));
            let ready = self.steps.iter().any(|s| s.state == StepState::Ready);
            let waiting = self.next_wake_ms(now_ms).is_some();
            let open = self.steps.iter().any(|s| s.state.can_create_task());
            return if !can_create && !ready && !waiting && open { JobState::Stuck } else { JobState::Undone };
        }
        if outcomes.contains(&Outcome::Error) {
            JobState::Error
        } else if outcomes.contains(&Outcome::Failed) {
            JobState::Failed
        } else {
            JobState::Success
        }
    }
}

/// Spec §8.2 rule 3 for a READY step. No entries at all means every task succeeded (their
/// entries were dropped), so the step is SUCCESS rather than stuck in READY (D1).
pub fn ready_outcome(states: impl IntoIterator<Item = TaskState>, can_fail: bool) -> Option<StepState> {
    let (mut undone, mut error, mut failed) = (false, false, false);
    for s in states {
        match s {
            TaskState::Undone => undone = true,
            TaskState::Error => error = true,
            TaskState::Failed => failed = true,
            TaskState::Success => {}
        }
    }
    Some(if undone {
        return None;
    } else if error {
        StepState::Error
    } else if failed {
        if can_fail { StepState::AcceptableFailed } else { StepState::Failed }
    } else {
        StepState::Success
    })
}
