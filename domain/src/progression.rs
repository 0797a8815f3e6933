//! Progression of steps and jobs, counted exactly (spec §18, D8).

use crate::define::StepType;
use crate::job::{Job, Step};
use crate::state::{JobState, StepState};

/// `100 × clamp(done, 0, total) / max(total, 1)` as "NN.NN%", rounded half up.
pub fn render(done: i64, total: i64) -> String {
    render_wide(i128::from(done), i128::from(total))
}

fn render_wide(done: i128, total: i128) -> String {
    let mut total = total.max(1);
    let mut done = done.clamp(0, total);
    // Only absurd efforts get here; shrinking both keeps `done * 10_000` in range and changes
    // the ratio by less than 1e-26, invisible in two decimals.
    while total > 10_i128.pow(30) {
        total /= 10_000;
        done /= 10_000;
    }
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
        total = total.saturating_add(w);
        if step.state.is_success() {
            done = done.saturating_add(w);
        } else {
            let (d, t) = step_units(step);
            done = done.saturating_add(share(w, d, t));
        }
    }
    render_wide(done, total)
}

/// `⌊w × d / t⌋` with `d` clamped to `0..=t`, exactly. `w × d` passes `i128::MAX` for huge
/// efforts and offsets, so `w` is split by `t`: `(w / t) × d ≤ w` and `(w mod t) × d < t² < 2¹²⁶`.
fn share(w: i128, d: i64, t: i64) -> i128 {
    let t = i128::from(t.max(1));
    let d = i128::from(d).clamp(0, t);
    (w / t) * d + (w % t) * d / t
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
        assert_eq!(render(i64::MAX, i64::MAX), "100.00%");
        assert_eq!(render_wide(i128::MAX / 3, i128::MAX), "33.33%");
        assert_eq!(render_wide(i128::MAX / 8, i128::MAX), "12.50%");
    }

    #[test]
    fn share_is_exact_without_overflow() {
        assert_eq!(share(30_000, 1, 3), 10_000);
        assert_eq!(share(10_000, 2, 3), 6_666);
        assert_eq!(share(10_000, 5, 4), 10_000, "done is clamped to total");
        assert_eq!(share(10_000, -1, 4), 0);
        let w = 10_000 * i128::from(i64::MAX);
        assert_eq!(share(w, i64::MAX, i64::MAX), w);
        assert_eq!(share(w, 1 << 62, i64::MAX), 10_000 * (1 << 62), "w × d itself would overflow");
    }

    /// Efforts and PACK ranges at the top of `i64` weigh the job without overflowing.
    #[test]
    fn huge_efforts_and_offsets() {
        let define = crate::JobDefine::parse(&format!(
            r#"{{"jobName":"j","steps":[{{"stepName":"p","stepType":"PACK","effort":{max},
                "packConf":{{"size":{max},"start":0,"end":{end}}}}},{{"stepName":"s","effort":{max}}},{{"stepName":"t"}}]}}"#,
            max = i64::MAX,
            end = i64::MAX - 1
        ))
        .unwrap();
        let request = crate::JobRequest::parse(r#"{"jobName":"j","trigger":"t"}"#).unwrap();
        let mut job = crate::build_job(&define, &request, 0).unwrap();
        job.steps[0].state = StepState::Start;
        let mut offsets = crate::RangeSet::new();
        offsets.add(0, (i64::MAX - 1) / 2);
        job.steps[0].pack_done_range = Some(crate::ranges::PackDoneRange { offsets });
        // half of one of two huge steps, the effort-1 step negligible
        assert_eq!(job_progression(&job), "25.00%");
        job.steps[1].state = StepState::Success;
        assert_eq!(job_progression(&job), "75.00%");
        job.steps[0].pack_done_range.as_mut().unwrap().offsets.add(0, i64::MAX - 1);
        assert_eq!(step_progression(&job.steps[0]), "100.00%");
        assert_eq!(job_progression(&job), "100.00%", "within rounding of the effort-1 step");
    }
}
