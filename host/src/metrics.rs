//! Prometheus metrics: TasCreed's (spec §20, with D9 fixed) under their TasCreed names, and
//! ours (prefixed `tascreed_`) for what WASM execution adds: fuel, wall time, memory, limits,
//! checkpoints, leases. Labels are bounded: job define, step, executor, executor version, state,
//! outcome kind — never a trigger or a task name.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// Wall-time buckets (seconds): sub-millisecond guests to ten-minute ones.
const WALL_BUCKETS: &[f64] = &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];
/// Fuel buckets: a no-op call burns a few thousand units, a CPU-second about 5e9.
const FUEL_BUCKETS: &[f64] = &[1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11];
/// Memory buckets (bytes): 1 MiB to 4 GiB.
const MEMORY_BUCKETS: &[f64] = &[1048576.0, 4194304.0, 16777216.0, 67108864.0, 268435456.0, 1073741824.0, 4294967296.0];

/// Histogram samples wait in lock-free buffers until upkeep (or a scrape) folds them into their
/// buckets; without upkeep a node nobody scrapes would keep every sample it ever recorded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Histogram and gauge series not updated for this long leave the exposition (and memory): the
/// histograms of an executor version no longer loaded, the retry gauges of a step whose tasks
/// are gone (spec §20: dropped an hour after their last change). Every gauge the monitor or a
/// scrape keeps setting stays. Counters never expire: one that vanished and came back would lose
/// increments to `rate()`; their labels (define, step, executor name, state) are bounded anyway.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The exporter as configured here: bucketed histograms for ours, summaries for TasCreed's.
fn builder(idle: Duration) -> PrometheusBuilder {
    let base = || PrometheusBuilder::new().idle_timeout(MetricKindMask::HISTOGRAM | MetricKindMask::GAUGE, Some(idle));
    let buckets = base()
        .set_buckets_for_metric(Matcher::Full("tascreed_task_wall_seconds".into()), WALL_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full("tascreed_task_fuel".into()), FUEL_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full("tascreed_task_peak_memory_bytes".into()), MEMORY_BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full("tascreed_executor_compile_seconds".into()), WALL_BUCKETS)
        });
    match buckets {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "metric buckets rejected; using summaries");
            base()
        }
    }
}

/// The process's recorder, installed on first use, with a thread running its upkeep. One per
/// process: metrics are per node.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder(IDLE_TIMEOUT).build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no metrics upkeep thread; histogram samples wait for a scrape");
        }
        describe();
        handle
    })
}

/// The text exposition.
pub fn render() -> String {
    handle().render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("job_opr_counter", "Job operations: CREATE, UPDATE, RETRY, DELETE, FINISH");
    describe_counter!("task_opr_counter", "Task operations: CREATE, FINISH, DELETE");
    describe_histogram!("job_execution_summary", "Milliseconds from job creation to its last change, at archive");
    describe_histogram!("task_execution_summary", "Milliseconds from task creation to its finish");
    describe_gauge!("alive_jobs_gauge", "Alive jobs by state");
    describe_gauge!("alive_tasks_gauge", "Alive tasks: PLANNED (todo), RUNNING (leased), DONE (unfolded), ERROR");
    describe_gauge!("slow_job_num_gauge", "Bulletin jobs (UNDONE, STUCK, ERROR) older than their duration");
    describe_gauge!("slow_task_num_gauge", "Todo tasks older than their duration");
    describe_gauge!("alive_task_retry_times_gauge", "Sum of picked/tried times of todo tasks per job.step");
    describe_gauge!("retry_alive_task_num_gauge", "Todo tasks with picked/tried times above zero");
    describe_gauge!("alive_task_max_retry_times_gauge", "Largest picked/tried times of a todo task");
    describe_counter!("execution_exception_counter", "Failed executor calls by error type");
    describe_histogram!("tascreed_task_wall_seconds", "Wall time of an executor call");
    describe_histogram!("tascreed_task_fuel", "Fuel consumed by an executor call");
    describe_histogram!("tascreed_task_peak_memory_bytes", "Peak linear memory of an executor call");
    describe_counter!("tascreed_guest_limit_hits_total", "Calls stopped by a sandbox limit (fuel, deadline, memory)");
    describe_counter!("tascreed_checkpoint_writes_total", "Checkpoints persisted");
    describe_counter!("tascreed_lease_losses_total", "Leases lost while a task ran");
    describe_counter!("tascreed_fenced_results_total", "Results rejected because the lease had moved on");
    describe_gauge!("tascreed_executor_load_errors", "Executor files that do not load");
    describe_gauge!("tascreed_define_load_errors", "Define files that do not load");
    describe_histogram!("tascreed_executor_compile_seconds", "Time to compile (or load from cache) an executor");
    describe_gauge!(
        "tascreed_queue_depth",
        "Unleased todo tasks claimable now: executor available, back-off over, not banned from picking"
    );
    describe_gauge!(
        "tascreed_tasks_waiting_for_executor",
        "Unleased todo tasks with no executor, or one no live node has loaded"
    );
}

pub(crate) fn job_opr(job: &str, state: &str, opr: &'static str) {
    counter!("job_opr_counter", "jobName" => job.to_string(), "state" => state.to_string(), "opr" => opr).increment(1);
}

pub(crate) fn task_opr(job: &str, step: &str, state: &str, opr: &'static str, n: u64) {
    counter!("task_opr_counter", "jobName" => job.to_string(), "stepName" => step.to_string(),
        "state" => state.to_string(), "opr" => opr)
    .increment(n);
}

pub(crate) fn job_execution(job: &str, state: &str, ms: i64) {
    histogram!("job_execution_summary", "jobName" => job.to_string(), "state" => state.to_string())
        .record(ms.max(0) as f64);
}

pub(crate) fn task_execution(job: &str, step: &str, state: &str, ms: i64) {
    histogram!("task_execution_summary", "jobName" => job.to_string(), "stepName" => step.to_string(),
        "state" => state.to_string())
    .record(ms.max(0) as f64);
}

/// Labels of an executor: its name and the first 12 hex digits of its sha256.
pub(crate) fn executor_labels(name: &str, sha256: &str) -> [(&'static str, String); 2] {
    [("executor", name.to_string()), ("version", sha256.chars().take(12).collect())]
}

pub(crate) fn call(name: &str, sha256: &str, outcome: &'static str, wall_s: f64, fuel: u64, memory: u64) {
    let [e, v] = executor_labels(name, sha256);
    histogram!("tascreed_task_wall_seconds", e.0 => e.1.clone(), v.0 => v.1.clone(), "outcome" => outcome)
        .record(wall_s);
    histogram!("tascreed_task_fuel", e.0 => e.1.clone(), v.0 => v.1.clone()).record(fuel as f64);
    histogram!("tascreed_task_peak_memory_bytes", e.0 => e.1, v.0 => v.1).record(memory as f64);
}

pub(crate) fn exception(error_type: &'static str) {
    counter!("execution_exception_counter", "type" => error_type).increment(1);
}

pub(crate) fn limit_hit(executor: &str, kind: &'static str) {
    counter!("tascreed_guest_limit_hits_total", "executor" => executor.to_string(), "kind" => kind).increment(1);
}

pub(crate) fn checkpoint_write(executor: &str) {
    counter!("tascreed_checkpoint_writes_total", "executor" => executor.to_string()).increment(1);
}

pub(crate) fn lease_lost() {
    counter!("tascreed_lease_losses_total").increment(1);
}

pub(crate) fn fenced_result() {
    counter!("tascreed_fenced_results_total").increment(1);
}

pub(crate) fn set_gauge(name: &'static str, labels: Vec<(&'static str, String)>, value: f64) {
    gauge!(name, &labels).set(value);
}

/// Catalog health, refreshed at each scrape.
pub fn catalogs(executor_errors: usize, define_errors: usize) {
    gauge!("tascreed_executor_load_errors").set(executor_errors as f64);
    gauge!("tascreed_define_load_errors").set(define_errors as f64);
}

pub fn compile_time(executor: &str, seconds: f64) {
    histogram!("tascreed_executor_compile_seconds", "executor" => executor.to_string()).record(seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders what `record` recorded into a recorder configured as the process's, `idle` apart.
    fn scrape_twice(idle: Duration, record: impl Fn()) -> (String, String) {
        let recorder = builder(idle).build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, record);
        handle.run_upkeep();
        let first = handle.render();
        std::thread::sleep(idle * 3);
        (first, handle.render())
    }

    #[test]
    fn idle_histograms_and_gauges_expire_but_counters_stay() {
        let (first, later) = scrape_twice(Duration::from_millis(50), || {
            call("old-executor", "0123456789abcdef", "ok", 0.002, 50_000, 2_000_000);
            set_gauge(
                "alive_task_retry_times_gauge",
                vec![("type", "picked".into()), ("jobStepName", "j.s".into())],
                0.0,
            );
            checkpoint_write("old-executor");
        });
        for series in [
            r#"tascreed_task_wall_seconds_bucket{executor="old-executor",version="0123456789ab",outcome="ok",le="0.005"} 1"#,
            r#"tascreed_task_fuel_count{executor="old-executor",version="0123456789ab"} 1"#,
            r#"alive_task_retry_times_gauge{type="picked",jobStepName="j.s"} 0"#,
            r#"tascreed_checkpoint_writes_total{executor="old-executor"} 1"#,
        ] {
            assert!(first.contains(series), "{series} missing from\n{first}");
        }
        assert!(!later.contains("tascreed_task_wall_seconds"), "idle histogram kept:\n{later}");
        assert!(!later.contains("tascreed_task_fuel"), "idle histogram kept:\n{later}");
        assert!(!later.contains("alive_task_retry_times_gauge"), "idle gauge kept:\n{later}");
        assert!(
            later.contains(r#"tascreed_checkpoint_writes_total{executor="old-executor"} 1"#),
            "counter expired:\n{later}"
        );
    }

    #[test]
    fn series_in_use_do_not_expire() {
        let recorder = builder(Duration::from_millis(200)).build_recorder();
        let handle = recorder.handle();
        for _ in 0..6 {
            metrics::with_local_recorder(&recorder, || set_gauge("slow_job_num_gauge", vec![], 1.0));
            std::thread::sleep(Duration::from_millis(60));
            handle.run_upkeep();
            assert!(handle.render().contains("slow_job_num_gauge 1"), "a gauge set every round expired");
        }
    }
}
