//! Progression of steps and jobs, counted exactly (spec §18, D8).

use crate::define::StepType;
use crate::job::{Job, Step};
use crate::state::{JobState, StepState};

/// `100 × clamp(done, 0, total) / max(total, 1)` as "NN.NN%", rounded half up.
pub fn render(done: i64, total: i64) -> String {
    let total = i128::from(total.max(1));
    let done = i128::from(done).clamp(0, total);
    let scaled = done * 10_000;
    let mut hundredths = scaled / total;
    if (scaled % total) * 2 >= total {
        hundredths += 1;
    }
    format!("{}.{:02}%", hundredths / 100, hundredths % 100)
}

/// (done, total) units of a step.
pub fn step_units(step: &Step) -> (i64, i64) {
    use StepState::*;
    match step.state {
        Dormant | SkipByFailed | SkipByError => return (0, 1),
        Success | Ignored | AcceptableFailed => return (1, 1),
        Start | Ready | Failed | Error => {}
    }
    match step.step_type {
        StepType::Simple => {
            let open = step.task_states.values().filter(|s| s.outcome() != crate::state::Outcome::Success).count();
            (1 - open.min(1) as i64, 1)
        }
        StepType::Shard => {
            let conf = step.shard_conf.clone().unwrap_or_default();
            let total = conf.shard.unwrap_or(0).saturating_sub(conf.start_shard_id.unwrap_or(0));
            let done = step.shard_done_range.as_ref().map_or(0, |r| r.indexes.count());
            (done, total)
        }
        StepType::Pack => {
            let conf = step.pack_conf.clone().unwrap_or_default();
            if conf.is_infinite() {
                return (0, 1);
            }
            let (start, end) = (conf.start.unwrap_or(0), conf.end.unwrap_or(-1));
            let total = end.saturating_sub(start).saturating_add(1);
            let done = step.pack_done_range.as_ref().map_or(0, |r| r.offsets.count());
            (done, total)
        }
    }
}

/// The step's progression text.
pub fn step_progression(step: &Step) -> String {
    let (done, total) = step_units(step);
    render(done, total)
}

/// The job's progression text: steps weighted by effort, unfinished ones pro rata.
pub fn job_progression(job: &Job) -> String {
    if job.steps.is_empty() || job.state == JobState::Success {
        return render(1, 1);
    }
    let (mut done, mut total) = (0i128, 0i128);
    for step in &job.steps {
        let effort = job.step_define(&step.step_name).map_or(1, |d| d.effort()).max(1);
        let w = 10_000 * i128::from(effort);
        total += w;
        if step.state.is_success() {
            done += w;
        } else {
            let (d, t) = step_units(step);
            done += w * i128::from(d.max(0)) / i128::from(t.max(1));
        }
    }
    let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    render(clamp(done), clamp(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_half_up() {
        assert_eq!(render(1, 3), "33.33%");
        assert_eq!(render(2, 3), "66.67%");
        assert_eq!(render(0, 0), "0.00%");
        assert_eq!(render(5, 4), "100.00%");
        assert_eq!(render(1, 8), "12.50%");
        assert_eq!(render(3, 4), "75.00%");
    }
}
