//! The order in which candidate tasks are picked (spec §10.3; affinity off: weight 1).

use std::cmp::Reverse;

use crate::define::StepType;
use crate::task::Task;

/// `floor((todo − adopted) × 1000 / todo)` clamped to [0, 1000]: how idle the task's step is.
pub fn empty_rate(todo: u64, adopted: u64) -> i64 {
    if todo == 0 {
        return 0;
    }
    let free = i128::from(todo) - i128::from(adopted);
    (free * 1000 / i128::from(todo)).clamp(0, 1000) as i64
}

/// A candidate's sort key: ascending order is pick order (the first is picked first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PickKey {
    priority: Reverse<i64>,
    affinity_weight: Reverse<i64>,
    empty_rate: Reverse<i64>,
    job_name: String,
    trigger: String,
    step_type: StepType,
    step_name: String,
    index: i64,
}

impl PickKey {
    /// Key of `task`, whose step has the given empty rate ([`empty_rate`]).
    pub fn new(task: &Task, empty_rate: i64) -> PickKey {
        PickKey {
            priority: Reverse(task.priority.unwrap_or(0)),
            affinity_weight: Reverse(1),
            empty_rate: Reverse(empty_rate),
            job_name: task.job_name.clone(),
            trigger: task.trigger.clone(),
            step_type: task.step_type,
            step_name: task.step_name.clone(),
            index: task.index(),
        }
    }
}
