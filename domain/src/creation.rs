//! Task creation for SIMPLE, SHARD, PACK and infinite PACK steps (spec §7, D1, D3).

use std::collections::BTreeMap;

use crate::define::{StepType, effective_max_task_count};
use crate::job::{Job, PackCursor, SIMPLE_TASK_INDEX, ShardCursor};
use crate::state::{JobState, StepState, TaskState};
use crate::task::{ExecutorRef, Task, TaskPack, TaskResult, TaskShard, task_name};
use crate::traits::{self, Container};

/// Tasks one job may create in one pass (TasCreed's constant).
pub const CREATION_BUDGET_PER_PASS: usize = 100;

/// What a creation pass produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creation {
    /// New tasks, to be saved with the job in one transaction.
    pub tasks: Vec<Task>,
    /// The job changed (even with no task: a zero-task step finished, a step was skipped).
    pub changed: bool,
    /// Earliest future `after` that blocks progress; wake the job then.
    pub wake_at_ms: Option<i64>,
}

impl Job {
    /// Creates the next batch of tasks (spec §9 B) with at most `budget` tasks in all, and
    /// applies the state rules around it. The caller decides TASK_CREATE bans (a banned job
    /// is simply not asked). Steps unlocked within the pass (a zero-task step that finished,
    /// an ignored or skipped step) are served in the same pass while budget remains.
    pub fn create_tasks(&mut self, now_ms: i64, budget: usize) -> Creation {
        let mut out = Creation { changed: self.settle(now_ms), ..Creation::default() };
        let mut remaining = budget;
        for _ in 0..=self.steps.len() {
            if self.state != JobState::Undone || self.after.is_some_and(|a| a > now_ms) || remaining == 0 {
                break;
            }
            let before: Vec<StepState> = self.steps.iter().map(|s| s.state).collect();
            for i in 0..self.steps.len() {
                if remaining == 0 {
                    break;
                }
                if !self.step_can_create(i) || !self.time_reached(i, now_ms) {
                    continue;
                }
                let made = self.create_for_step(i, now_ms, remaining, &mut out.tasks);
                remaining -= made;
            }
            let settled = self.settle(now_ms);
            let finished_now = self.steps.iter().zip(&before).any(|(s, b)| s.state.is_done() && !b.is_done());
            out.changed |= settled || self.steps.iter().zip(&before).any(|(s, b)| s.state != *b);
            if !finished_now {
                break;
            }
        }
        if !out.tasks.is_empty() {
            out.changed = true;
            self.modify_time = now_ms;
        }
        out.wake_at_ms = self.next_wake_ms(now_ms);
        out
    }

    /// Creates up to `budget` tasks of step `i`; returns how many.
    fn create_for_step(&mut self, i: usize, now_ms: i64, budget: usize, out: &mut Vec<Task>) -> usize {
        let step = &mut self.steps[i];
        if step.state == StepState::Dormant {
            step.state = StepState::Start;
            step.modify_time = Some(now_ms);
            match step.step_type {
                StepType::Simple => {}
                StepType::Shard => {
                    let first = step.shard_conf.as_ref().and_then(|c| c.start_shard_id).unwrap_or(0);
                    step.shard_crt = Some(ShardCursor { last_index: first.saturating_sub(1) });
                }
                StepType::Pack => {
                    let conf = step.pack_conf.clone().unwrap_or_default();
                    step.pack_crt = Some(PackCursor {
                        last_id: conf.start_pack_id.unwrap_or(0).saturating_sub(1),
                        last_offset: conf.start.unwrap_or(0).saturating_sub(1),
                    });
                }
            }
        }
        let mut positions: Vec<(i64, Option<TaskShard>, Option<TaskPack>)> = Vec::new();
        match step.step_type {
            StepType::Simple => {
                if !step.task_states.contains_key(&SIMPLE_TASK_INDEX) && budget > 0 && step.state == StepState::Start {
                    positions.push((SIMPLE_TASK_INDEX, None, None));
                }
            }
            StepType::Shard => {
                let conf = step.shard_conf.clone().unwrap_or_default();
                let shard = conf.shard.unwrap_or(0);
                let slots = (effective_max_task_count(conf.max_task_count) - step.undone_count()).max(0);
                let mut n = usize::try_from(slots).unwrap_or(usize::MAX).min(budget);
                while n > 0 {
                    let Some(cursor) = step.shard_crt.as_mut() else { break };
                    if cursor.last_index >= shard.saturating_sub(1) {
                        break;
                    }
                    cursor.last_index += 1;
                    let index = cursor.last_index;
                    positions.push((index, Some(TaskShard { total: shard, index }), None));
                    n -= 1;
                }
            }
            StepType::Pack => {
                let conf = step.pack_conf.clone().unwrap_or_default();
                let size = conf.size.unwrap_or(1).max(1);
                let slots = (effective_max_task_count(conf.max_task_count) - step.undone_count()).max(0);
                let mut n = usize::try_from(slots).unwrap_or(usize::MAX).min(budget);
                while n > 0 {
                    let Some(cursor) = step.pack_crt.as_mut() else { break };
                    if !conf.is_infinite() && cursor.last_offset >= conf.end.unwrap_or(-1) {
                        break;
                    }
                    let Some(start) = cursor.last_offset.checked_add(1) else { break };
                    let mut end = start.saturating_add(size - 1);
                    if !conf.is_infinite() {
                        end = end.min(conf.end.unwrap_or(-1));
                    }
                    if end < start {
                        break;
                    }
                    cursor.last_id = cursor.last_id.saturating_add(1);
                    cursor.last_offset = end;
                    let id = cursor.last_id;
                    positions.push((id, None, Some(TaskPack { id, start, end })));
                    n -= 1;
                }
            }
        }
        for (index, _, _) in &positions {
            step.task_states.insert(*index, TaskState::Undone);
        }
        if step.creation_complete() {
            // D1: a step whose creation completes with nothing outstanding is done now.
            step.state = if step.task_states.is_empty() { StepState::Success } else { StepState::Ready };
            step.modify_time = Some(now_ms);
        }
        let made = positions.len();
        for (index, shard, pack) in positions {
            let task = self.build_task(i, index, shard, pack, now_ms);
            out.push(task);
        }
        made
    }

    /// A task of step `i` with the fields of spec §7.7.
    fn build_task(&self, i: usize, index: i64, shard: Option<TaskShard>, pack: Option<TaskPack>, now_ms: i64) -> Task {
        let step = &self.steps[i];
        let name = &step.step_name;
        let deps = self.dependencies(name);
        let dependent_step_states = (!deps.is_empty()).then(|| {
            deps.iter().filter_map(|d| self.step(d).map(|s| (d.clone(), s.state))).collect::<BTreeMap<_, _>>()
        });
        let prev_phase_step_states = self.define.previous_phase(self.phase(name)).map(|prev| {
            self.steps
                .iter()
                .filter(|s| self.phase(&s.step_name) == prev)
                .map(|s| (s.step_name.clone(), s.state))
                .collect::<BTreeMap<_, _>>()
        });
        Task {
            task_name: task_name(name, step.step_type, index),
            job_name: self.job_name.clone(),
            trigger: self.trigger.clone(),
            step_name: name.clone(),
            step_type: step.step_type,
            state: TaskState::Undone,
            result: TaskResult::default(),
            shard_conf: shard,
            pack_conf: pack,
            params: self.task_params(name),
            updated_params: Default::default(),
            updated_configs: Default::default(),
            dependent_step_states,
            prev_phase_step_states,
            priority: self.priority,
            picked_times: 0,
            tried_times: 0,
            max_pick_times: step.max_pick_times,
            after: None,
            traits: traits::inherit(&step.traits, None, Container::Task),
            affinity_rule: step.affinity_rule.clone(),
            duration: step.duration,
            fuel_limit: step.fuel_limit,
            timeout_ms: step.timeout_ms,
            executor: step.executor.clone().map(|name| ExecutorRef { name, sha256: None }),
            node: None,
            fuel: None,
            wall_ms: None,
            peak_memory: None,
            create_time: now_ms,
            start_time: None,
            finish_time: None,
            modify_time: now_ms,
            slow: None,
            elapsed_ms: None,
        }
    }
}
