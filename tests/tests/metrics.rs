//! `/metrics` scraped from a running node and parsed as Prometheus would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tascreed_tests::{Server, Workspace};

/// One sample: metric name, labels, value (NaN for a histogram's or summary's bucket set).
type Sample = (String, HashMap<String, String>, f64);

/// The samples of one scrape.
struct Scrape {
    samples: Vec<Sample>,
    /// `le` → cumulative count of each histogram sample, in the order of `samples`.
    buckets: Vec<Vec<(f64, f64)>>,
}

impl Scrape {
    fn take(server: &Server) -> Scrape {
        let text =
            ureq::get(&server.url("/metrics")).call().expect("GET /metrics").body_mut().read_to_string().expect("body");
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
        let (mut samples, mut buckets) = (Vec::new(), Vec::new());
        for s in parsed.samples {
            let (value, counts) = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => (v, Vec::new()),
                prometheus_parse::Value::Histogram(h) => (f64::NAN, h.iter().map(|b| (b.less_than, b.count)).collect()),
                prometheus_parse::Value::Summary(_) => (f64::NAN, Vec::new()),
            };
            let labels = s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            samples.push((s.metric, labels, value));
            buckets.push(counts);
        }
        Scrape { samples, buckets }
    }

    fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = usize> + 'a {
        self.samples.iter().enumerate().filter_map(move |(i, (n, l, _))| {
            (n == name && labels.iter().all(|(k, v)| l.get(*k).is_some_and(|x| x == v))).then_some(i)
        })
    }

    /// Sum of the samples of `name` whose labels include `labels`; `None` if there is none, so
    /// a missing series never passes for a zero.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for i in self.matching(name, labels) {
            *found.get_or_insert(0.0) += self.samples[i].2;
        }
        found
    }

    /// Like [`Scrape::value`], but the series must exist.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or_else(|| panic!("no series {name} {labels:?} in the scrape"))
    }

    /// The buckets of the one histogram series of `name` with `labels`.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let found: Vec<usize> = self.matching(name, labels).collect();
        assert_eq!(found.len(), 1, "one histogram series {name} {labels:?}");
        self.buckets[found[0]].clone()
    }

    /// Every label value of every series.
    fn label_values(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.samples.iter().flat_map(|(n, l, _)| l.iter().map(move |(k, v)| (n.as_str(), k.as_str(), v.as_str())))
    }

    /// Labels stay bounded: no trigger, no task name (other than a SIMPLE task's, which is its
    /// step's name) is ever a label value.
    fn assert_no_label_value(&self, unbounded: &[String]) {
        assert!(!self.samples.is_empty());
        for (metric, key, value) in self.label_values() {
            assert!(!unbounded.iter().any(|u| u == value), "{metric} has label {key}=\"{value}\"");
        }
    }
}

fn wait_metric(server: &Server, secs: u64, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let scrape = Scrape::take(server);
        if ok(&scrape) {
            return scrape;
        }
        assert!(Instant::now() < deadline, "metrics never showed {what}:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit(server: &Server, body: Value) {
    let (status, reply) = server.post("/api/v1/job", &body);
    assert!(status == 201 || status == 200, "submit failed: {status} {reply}");
}

fn tasks(server: &Server, job: &str, trigger: &str) -> Vec<Value> {
    let (status, tasks) = server.get(&format!("/api/v1/job/{job}/{trigger}/tasks"));
    assert_eq!(status, 200, "{tasks}");
    tasks.as_array().cloned().unwrap_or_default()
}

/// Task names of the job that are not also a step name (SIMPLE tasks are named after their step).
fn task_names(server: &Server, job: &str, trigger: &str) -> Vec<String> {
    let tasks = tasks(server, job, trigger);
    let steps: Vec<&str> = tasks.iter().filter_map(|t| t["stepName"].as_str()).collect();
    tasks.iter().filter_map(|t| t["taskName"].as_str()).filter(|n| !steps.contains(n)).map(str::to_string).collect()
}

fn ms(v: &Value) -> i64 {
    v["elapsedMs"].as_i64().unwrap_or_else(|| panic!("elapsedMs in {v}"))
}

#[test]
fn slow_jobs_and_tasks_are_counted_apart_warned_once_and_frozen_at_finish() {
    let ws = Workspace::new();
    ws.define(
        "slow",
        r#"{"jobName":"slow","duration":200,"steps":[{"stepName":"s","stepType":"SHARD","executor":"scripted",
            "duration":200,"shardConf":{"shard":2}}]}"#,
    );
    let server = ws.serve(&["--monitor-ms", "100"]);
    let script = json!({"s": [{"do": "OK", "sleepMs": 1200}]}).to_string();
    submit(&server, json!({"jobName": "slow", "trigger": "slow-trigger", "params": {"script": script}}));
    // D9: one slow job and two slow tasks, each in its own gauge (swapped or overwritten counts
    // would read 2 and 1, or 2 and 0).
    let alive = wait_metric(&server, 20, "one slow job and two slow tasks", |s| {
        s.value("slow_job_num_gauge", &[]) == Some(1.0) && s.value("slow_task_num_gauge", &[]) == Some(2.0)
    });
    let (_, job) = server.get("/api/v1/job/slow/slow-trigger");
    assert_eq!(job["state"], "UNDONE");
    assert_eq!(job["slow"], true, "the job JSON agrees with the gauge: {job}");
    assert!(ms(&job) > 200, "{job}");
    let running = tasks(&server, "slow", "slow-trigger");
    assert_eq!(running.len(), 2);
    for t in &running {
        assert_eq!(t["slow"], true, "a todo task past its duration is slow: {t}");
        assert!(ms(t) > 200, "{t}");
    }

    server.wait_job_state("slow", "slow-trigger", "SUCCESS");
    let done = wait_metric(&server, 20, "no slow job or task once finished", |s| {
        s.value("slow_job_num_gauge", &[]) == Some(0.0) && s.value("slow_task_num_gauge", &[]) == Some(0.0)
    });
    assert_eq!(done.get("job_execution_summary_count", &[("jobName", "slow"), ("state", "SUCCESS")]), 1.0);
    assert_eq!(done.get("task_execution_summary_count", &[("jobName", "slow"), ("stepName", "s")]), 2.0);
    let (_, job) = server.get("/api/v1/job/slow/slow-trigger");
    assert_eq!(job["slow"], false, "an archived job is not slow: {job}");
    let finished = tasks(&server, "slow", "slow-trigger");
    assert!(finished.iter().all(|t| t["slow"] == false), "finished tasks are not slow");
    // elapsedMs stops at the finish: the job ran both 1.2 s shards, and reads the same later.
    assert!(ms(&job) >= 1200, "{job}");
    std::thread::sleep(Duration::from_millis(300));
    let (_, again) = server.get("/api/v1/job/slow/slow-trigger");
    assert_eq!(ms(&again), ms(&job), "a finished job's elapsedMs is frozen");
    let later = tasks(&server, "slow", "slow-trigger");
    for (t, l) in finished.iter().zip(&later) {
        assert!(ms(t) >= 1200, "{t}");
        assert_eq!(ms(t), ms(l), "a finished task's elapsedMs is frozen: {t} then {l}");
    }

    let log = server.log();
    assert_eq!(log.matches("job is slow").count(), 1, "one warning for the job, however many rounds:\n{log}");
    assert_eq!(log.matches("task is slow").count(), 2, "one warning per task:\n{log}");
    let mut unbounded = task_names(&server, "slow", "slow-trigger");
    assert_eq!(unbounded.len(), 2, "shard tasks have their own names");
    unbounded.push("slow-trigger".into());
    alive.assert_no_label_value(&unbounded);
    done.assert_no_label_value(&unbounded);
}

#[test]
fn counters_histograms_exceptions_limits_and_checkpoints_move_as_jobs_run() {
    let ws = Workspace::new();
    ws.define("sum", r#"{"jobName":"sum","steps":[{"stepName":"p","stepType":"PACK","executor":"range-sum","packConf":{"size":100000,"start":1,"end":400000}}]}"#);
    ws.define("spin", r#"{"jobName":"spin","steps":[{"stepName":"a","executor":"scripted","fuelLimit":20000000}]}"#);
    ws.define("flaky", r#"{"jobName":"flaky","steps":[{"stepName":"a","executor":"scripted"}]}"#);
    ws.define("count", r#"{"jobName":"count","steps":[{"stepName":"c","executor":"counter"}]}"#);
    let server = ws.serve(&["--monitor-ms", "100"]);
    let before = Scrape::take(&server);
    assert_eq!(before.value("job_opr_counter", &[("jobName", "sum")]), None, "a new node has counted nothing");
    assert_eq!(before.value("tascreed_task_wall_seconds_count", &[]), None);

    submit(
        &server,
        json!({"jobName": "sum", "trigger": "small-1", "steps": [{"stepName": "p", "packConf": {"end": 1000}}]}),
    );
    server.wait_job_state("sum", "small-1", "SUCCESS");
    let small = wait_metric(&server, 10, "the small job's FINISH", |s| {
        s.value("job_opr_counter", &[("jobName", "sum"), ("opr", "FINISH")]) == Some(1.0)
    });
    assert_eq!(small.get("job_opr_counter", &[("jobName", "sum"), ("opr", "CREATE")]), 1.0);
    assert_eq!(small.get("task_opr_counter", &[("jobName", "sum"), ("opr", "CREATE")]), 1.0);
    let range_sum = [("executor", "range-sum")];
    let fuel_small = small.get("tascreed_task_fuel_sum", &range_sum);
    let wall_small = small.get("tascreed_task_wall_seconds_sum", &range_sum);
    assert!(fuel_small > 0.0 && wall_small > 0.0);
    assert_eq!(small.get("tascreed_task_wall_seconds_count", &range_sum), 1.0);

    submit(&server, json!({"jobName": "sum", "trigger": "big-2"}));
    server.wait_job_state("sum", "big-2", "SUCCESS");
    let big = wait_metric(&server, 10, "the big job's FINISH", |s| {
        s.value("job_opr_counter", &[("jobName", "sum"), ("opr", "FINISH")]) == Some(2.0)
    });
    assert_eq!(big.get("task_opr_counter", &[("jobName", "sum"), ("opr", "FINISH"), ("state", "SUCCESS")]), 5.0);
    let fuel_big = big.get("tascreed_task_fuel_sum", &range_sum);
    assert!(fuel_big > fuel_small * 100.0, "fuel grows with work: {fuel_small} then {fuel_big}");
    assert_eq!(big.get("tascreed_task_fuel_count", &range_sum), 5.0);
    assert_eq!(big.get("tascreed_task_wall_seconds_count", &range_sum), 5.0);
    assert!(big.get("tascreed_task_wall_seconds_sum", &range_sum) > wall_small);
    // Bucketed, cumulative, ending with +Inf at the count.
    let fuel = big.histogram("tascreed_task_fuel", &range_sum);
    assert!(fuel.len() > 2, "fuel buckets: {fuel:?}");
    assert!(fuel.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "cumulative buckets: {fuel:?}");
    assert_eq!(fuel.last().copied(), Some((f64::INFINITY, 5.0)));
    assert!(fuel[0].1 < 5.0, "the big packs burn more than the first bucket: {fuel:?}");
    let wall = big.histogram("tascreed_task_wall_seconds", &[("executor", "range-sum"), ("outcome", "ok")]);
    assert_eq!(wall.last().map(|b| b.1), Some(5.0), "wall buckets: {wall:?}");

    // A spinning guest is stopped by its fuel limit: a limit hit and a fatal task exception.
    submit(&server, json!({"jobName": "spin", "trigger": "spin-3", "params": {"script": r#"{"a":["SPIN"]}"#}}));
    server.wait_job_state("spin", "spin-3", "ERROR");
    let spun = wait_metric(&server, 10, "the fuel limit hit", |s| {
        s.value("tascreed_guest_limit_hits_total", &[("executor", "scripted"), ("kind", "fuel")]) == Some(1.0)
    });
    assert_eq!(spun.get("execution_exception_counter", &[("type", "TC_FATAL_TASK_EXCEPTION")]), 1.0);
    assert_eq!(spun.value("tascreed_guest_limit_hits_total", &[("kind", "deadline")]), None);
    // Gauges follow at the next monitor round (monitor.ms = 100 here).
    let spun = wait_metric(&server, 10, "the ERROR job alive", |s| {
        s.value("alive_jobs_gauge", &[("state", "ERROR")]) == Some(1.0)
    });
    assert_eq!(spun.get("alive_tasks_gauge", &[("state", "ERROR")]), 1.0);
    assert_eq!(spun.get("alive_jobs_gauge", &[("state", "UNDONE")]), 0.0);
    assert_eq!(spun.get("tascreed_queue_depth", &[]), 0.0);

    // A retryable failure, then success: one retry exception, no more fatal ones.
    submit(&server, json!({"jobName": "flaky", "trigger": "flaky-4", "params": {"script": r#"{"a":["RETRY","OK"]}"#}}));
    server.wait_job_state("flaky", "flaky-4", "SUCCESS");
    let flaky = wait_metric(&server, 10, "the retry exception", |s| {
        s.value("execution_exception_counter", &[("type", "TC_RETRY_EXCEPTION")]) == Some(1.0)
    });
    assert_eq!(flaky.get("execution_exception_counter", &[("type", "TC_FATAL_TASK_EXCEPTION")]), 1.0);

    // A checkpoint executor persists one checkpoint per round.
    submit(&server, json!({"jobName": "count", "trigger": "count-5", "params": {"rounds": "3"}}));
    server.wait_job_state("count", "count-5", "SUCCESS");
    let counted = wait_metric(&server, 10, "three checkpoints", |s| {
        s.value("tascreed_checkpoint_writes_total", &[("executor", "counter")]) == Some(3.0)
    });
    assert_eq!(counted.get("tascreed_task_wall_seconds_count", &[("executor", "counter")]), 3.0, "one call a round");

    let mut unbounded: Vec<String> = ["small-1", "big-2", "spin-3", "flaky-4", "count-5"].map(String::from).to_vec();
    unbounded.extend(task_names(&server, "sum", "big-2"));
    unbounded.extend(task_names(&server, "sum", "small-1"));
    assert_eq!(unbounded.len(), 10, "five triggers and five pack tasks: {unbounded:?}");
    counted.assert_no_label_value(&unbounded);
}

#[test]
fn queue_depth_counts_claimable_tasks_and_waiting_ones_apart() {
    let ws = Workspace::new();
    ws.define("busy", r#"{"jobName":"busy","steps":[{"stepName":"a","executor":"scripted"}]}"#);
    ws.define("ghosted", r#"{"jobName":"ghosted","steps":[{"stepName":"g","executor":"ghost"}]}"#);
    let server = ws.serve(&["--monitor-ms", "100", "--worker-max-count-per-host", "1"]);
    let hold = json!({"a": [{"sleepMs": 2500}]}).to_string();
    submit(&server, json!({"jobName": "busy", "trigger": "hold", "params": {"script": hold}}));
    wait_metric(&server, 20, "the only worker busy", |s| {
        s.value("alive_tasks_gauge", &[("state", "RUNNING")]) == Some(1.0)
    });
    submit(&server, json!({"jobName": "busy", "trigger": "queued"}));
    submit(&server, json!({"jobName": "ghosted", "trigger": "nobody-has-it"}));
    // The queued task could be claimed now; the ghost one waits for an executor nobody has,
    // and is not part of the queue depth.
    let queued = wait_metric(&server, 20, "one claimable task and one waiting", |s| {
        s.value("tascreed_queue_depth", &[]) == Some(1.0)
            && s.value("tascreed_tasks_waiting_for_executor", &[]) == Some(1.0)
    });
    assert_eq!(queued.get("alive_tasks_gauge", &[("state", "PLANNED")]), 3.0, "three todo tasks");

    server.wait_job_state("busy", "queued", "SUCCESS");
    wait_metric(&server, 20, "an empty queue; the ghost task still waiting", |s| {
        s.value("tascreed_queue_depth", &[]) == Some(0.0)
            && s.value("tascreed_tasks_waiting_for_executor", &[]) == Some(1.0)
    });
    let (status, reply) = server.delete("/api/v1/state/aliveJob/ghosted/nobody-has-it");
    assert_eq!(status, 200, "{reply}");
    let after = wait_metric(&server, 20, "nothing waiting", |s| {
        s.value("tascreed_tasks_waiting_for_executor", &[]) == Some(0.0)
    });
    after.assert_no_label_value(&["hold".into(), "queued".into(), "nobody-has-it".into()]);
}
