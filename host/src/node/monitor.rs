//! The monitor: every `monitor.ms`, refresh the gauges and log jobs and tasks that turned slow
//! (spec §12, §20; D9: each gauge gets its own count).
//!
//! Slow is one rule for the gauges, the warnings and the API's `slow`: a job is slow while it is
//! in the bulletin (UNDONE, STUCK or ERROR) and older than its duration; a task while it is todo
//! and older than its step's duration. A warning is logged once per job or task, when it turns
//! slow (again after a node restart, which forgets who was warned about).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tascreed_bulletin::{JobKey, TaskKey};
use tascreed_domain::JobState;

use super::{Shared, db};
use crate::metrics::set_gauge;

/// Slow task keys kept per round, for the one-time warnings.
const SLOW_TASK_LOG_LIMIT: usize = 1_000;

pub(crate) async fn run(shared: Arc<Shared>) {
    let period = Duration::from_millis(shared.config.monitor_ms.max(10));
    let mut slow_jobs: HashSet<JobKey> = HashSet::new();
    let mut slow_tasks: HashSet<TaskKey> = HashSet::new();
    // Steps whose retry gauges were set last round: zeroed once their tasks are gone.
    let mut retry_steps: HashSet<String> = HashSet::new();
    loop {
        if shared.stopping.is_set() {
            return;
        }
        // Executors are available as the advancer sees them: advertised by a live node, or run here.
        let live_ms = shared.config.live_ms();
        let local: Vec<String> = shared.runnable().into_iter().map(|(name, _)| name).collect();
        let read = move |b: &dyn tascreed_bulletin::Bulletin| {
            b.now_ms().and_then(|now| b.monitor(now, live_ms, &local, SLOW_TASK_LOG_LIMIT))
        };
        match db(&shared.bulletin, read).await {
            Ok(snap) => {
                for key in snap.slow_jobs.iter().filter(|k| !slow_jobs.contains(*k)) {
                    tracing::warn!(job = %key, "job is slow: alive longer than its expected duration");
                }
                for key in snap.slow_tasks.iter().filter(|k| !slow_tasks.contains(*k)) {
                    tracing::warn!(task = %key, "task is slow: alive longer than its expected duration");
                }
                slow_jobs = snap.slow_jobs.iter().cloned().collect();
                slow_tasks = snap.slow_tasks.iter().cloned().collect();
                set_gauge("slow_job_num_gauge", vec![], snap.slow_jobs.len() as f64);
                set_gauge("slow_task_num_gauge", vec![], snap.slow_task_count as f64);
                for state in [JobState::Undone, JobState::Stuck, JobState::Success, JobState::Failed, JobState::Error] {
                    let n = snap.counts.alive_jobs.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
                    set_gauge("alive_jobs_gauge", vec![("state", state.as_str().into())], n as f64);
                }
                let c = &snap.counts;
                for (state, n) in [
                    ("PLANNED", c.todo_tasks),
                    ("RUNNING", c.leased_tasks),
                    ("DONE", c.done_tasks),
                    ("ERROR", c.error_tasks),
                ] {
                    set_gauge("alive_tasks_gauge", vec![("state", state.into())], n as f64);
                }
                set_gauge("tascreed_queue_depth", vec![], snap.claimable as f64);
                set_gauge("tascreed_tasks_waiting_for_executor", vec![], snap.waiting_for_executor as f64);
                let (mut picked_tasks, mut tried_tasks, mut picked_max, mut tried_max) = (0, 0, 0, 0);
                let steps: HashSet<String> =
                    snap.retries.iter().map(|r| format!("{}.{}", r.job_name, r.step_name)).collect();
                for gone in retry_steps.difference(&steps) {
                    for kind in ["picked", "tried"] {
                        set_gauge(
                            "alive_task_retry_times_gauge",
                            vec![("type", kind.into()), ("jobStepName", gone.clone())],
                            0.0,
                        );
                    }
                }
                retry_steps = steps;
                for r in &snap.retries {
                    let step = format!("{}.{}", r.job_name, r.step_name);
                    set_gauge(
                        "alive_task_retry_times_gauge",
                        vec![("type", "picked".into()), ("jobStepName", step.clone())],
                        r.picked_sum as f64,
                    );
                    set_gauge(
                        "alive_task_retry_times_gauge",
                        vec![("type", "tried".into()), ("jobStepName", step)],
                        r.tried_sum as f64,
                    );
                    picked_tasks += r.picked_tasks;
                    tried_tasks += r.tried_tasks;
                    picked_max = picked_max.max(r.picked_max);
                    tried_max = tried_max.max(r.tried_max);
                }
                set_gauge("retry_alive_task_num_gauge", vec![("type", "picked".into())], picked_tasks as f64);
                set_gauge("retry_alive_task_num_gauge", vec![("type", "tried".into())], tried_tasks as f64);
                set_gauge("alive_task_max_retry_times_gauge", vec![("type", "picked".into())], picked_max as f64);
                set_gauge("alive_task_max_retry_times_gauge", vec![("type", "tried".into())], tried_max as f64);
            }
            Err(e) => tracing::warn!(error = %e, "monitor round failed"),
        }
        tokio::time::sleep(period).await;
    }
}
