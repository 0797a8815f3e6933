//! Changing an alive job on request: update its step confs (spec §5.3, D12) and retry its
//! ERROR tasks (spec §5.4).

use crate::job::Job;
use crate::request::JobRequest;
use crate::state::{JobState, StepState, TaskState};
use crate::task::Task;
use crate::validate::{self, ValidationError};

/// Why an update or retry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobOpError {
    /// Nothing the request asks for differs from the job.
    #[error("alive job {0}.{1} no need to update")]
    NoNeedToUpdate(String, String),
    /// A retry with no ERROR task.
    #[error("alive job {0}.{1} has no error task, no need to retry")]
    NoErrorTask(String, String),
    /// A retry that would change nothing.
    #[error("alive job {0}.{1} no state updated, no need to retry")]
    NoStateUpdated(String, String),
    /// STUCK jobs are final.
    #[error("alive job {0}.{1} is STUCK and cannot be retried")]
    Stuck(String, String),
    /// The updated job breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl Job {
    fn key(&self) -> (String, String) {
        (self.job_name.clone(), self.trigger.clone())
    }

    /// Applies an update request: for an UNDONE job, each DORMANT or START step named by the
    /// request may change `maxTaskCount` (of the conf it has), pack `size` and `maxPickTimes`.
    /// Values are compared by value (D12). Affects only tasks created afterwards.
    pub fn apply_update(&mut self, request: &JobRequest, now_ms: i64) -> Result<(), JobOpError> {
        let (name, trigger) = self.key();
        if self.state != JobState::Undone {
            return Err(JobOpError::NoNeedToUpdate(name, trigger));
        }
        let mut next = self.clone();
        let mut changed = false;
        for step in next.steps.iter_mut().filter(|s| matches!(s.state, StepState::Dormant | StepState::Start)) {
            let Some(req) = request.step(&step.step_name) else { continue };
            // Per step, so a step named in the request with unchanged values keeps its time.
            let mut step_changed = false;
            let mut set = |slot: &mut Option<i64>, value: Option<i64>| {
                if let Some(v) = value.filter(|v| *slot != Some(*v)) {
                    *slot = Some(v);
                    step_changed = true;
                }
            };
            if let (Some(conf), Some(upd)) = (step.shard_conf.as_mut(), req.shard_conf.as_ref()) {
                set(&mut conf.max_task_count, upd.max_task_count);
            }
            if let (Some(conf), Some(upd)) = (step.pack_conf.as_mut(), req.pack_conf.as_ref()) {
                set(&mut conf.max_task_count, upd.max_task_count);
                set(&mut conf.size, upd.size);
            }
            set(&mut step.max_pick_times, req.max_pick_times);
            if step_changed {
                step.modify_time = Some(now_ms);
                changed = true;
            }
        }
        if !changed {
            return Err(JobOpError::NoNeedToUpdate(name, trigger));
        }
        validate::check_job(&next).map_err(|e| validate::in_request(e, &next, request))?;
        next.modify_time = now_ms;
        *self = next;
        Ok(())
    }

    /// Resets the job for a retry of `error_tasks` (its ERROR tasks, read from the bulletin;
    /// fold its done tasks first). ERROR steps become READY, SKIP_BY_ERROR steps DORMANT,
    /// ERROR entries UNDONE; the tasks lose result and counters but keep their checkpoint.
    /// The caller then puts the tasks back to todo and drops their done/error records.
    pub fn retry(&mut self, error_tasks: &mut [Task], now_ms: i64) -> Result<(), JobOpError> {
        let (name, trigger) = self.key();
        if error_tasks.is_empty() {
            return Err(JobOpError::NoErrorTask(name, trigger));
        }
        if self.state == JobState::Stuck {
            return Err(JobOpError::Stuck(name, trigger));
        }
        let mut changed = false;
        if self.state == JobState::Error {
            self.state = JobState::Undone;
            changed = true;
        }
        for step in &mut self.steps {
            let next = match step.state {
                StepState::Error => StepState::Ready,
                StepState::SkipByError => StepState::Dormant,
                other => other,
            };
            if next != step.state {
                step.state = next;
                step.modify_time = Some(now_ms);
                changed = true;
            }
            for s in step.task_states.values_mut().filter(|s| **s == TaskState::Error) {
                *s = TaskState::Undone;
                changed = true;
            }
        }
        for task in error_tasks.iter_mut() {
            changed |= task.state != TaskState::Undone || task.picked_times > 0 || task.tried_times > 0;
            task.reset_for_retry(now_ms);
        }
        if !changed {
            return Err(JobOpError::NoStateUpdated(name, trigger));
        }
        self.settle(now_ms);
        self.modify_time = now_ms;
        Ok(())
    }
}
