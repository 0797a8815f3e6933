//! `/metrics` scraped from a running node and parsed as Prometheus would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tascreed_tests::{Server, Workspace};

/// The samples of one scrape: (metric name, sorted labels) → value.
struct Scrape(Vec<(String, HashMap<String, String>, f64)>);

impl Scrape {
    fn take(server: &Server) -> Scrape {
        let text =
            ureq::get(&server.url("/metrics")).call().expect("GET /metrics").body_mut().read_to_string().expect("body");
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
        let samples = parsed
            .samples
            .into_iter()
            .map(|s| {
                let value = match s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => f64::NAN,
                };
                let labels = s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                (s.metric, labels, value)
            })
            .collect();
        Scrape(samples)
    }

    /// Sum of the samples of `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).is_some_and(|x| x == v)))
            .map(|(_, _, v)| *v)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _, _)| n == name)
    }
}

fn wait_metric(server: &Server, secs: u64, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let scrape = Scrape::take(server);
        if ok(&scrape) {
            return scrape;
        }
        assert!(Instant::now() < deadline, "metrics never reached the expected values:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit(server: &Server, body: serde_json::Value) {
    let (status, reply) = server.post("/api/v1/job", &body);
    assert!(status == 201 || status == 200, "submit failed: {status} {reply}");
}

#[test]
fn slow_jobs_and_tasks_show_in_their_own_gauges_while_alive() {
    let ws = Workspace::new();
    ws.define(
        "slow",
        r#"{"jobName":"slow","duration":200,"steps":[{"stepName":"a","executor":"scripted","duration":200}]}"#,
    );
    let server = ws.serve(&["--monitor-ms", "100"]);
    let script = json!({"a": [{"do": "OK", "sleepMs": 1500}]}).to_string();
    submit(&server, json!({"jobName": "slow", "trigger": "t", "params": {"script": script}}));
    // The task is created a little after its job, so it may turn slow a monitor round later.
    // Both gauges at 1 at once is D9: each gets its own count.
    wait_metric(&server, 20, |s| {
        s.value("slow_job_num_gauge", &[]) == 1.0 && s.value("slow_task_num_gauge", &[]) == 1.0
    });
    let (_, tasks) = server.get("/api/v1/job/slow/t/tasks");
    assert_eq!(tasks[0]["slow"], true, "the task JSON says it is slow");
    let (_, job) = server.get("/api/v1/job/slow/t");
    assert_eq!(job["slow"], true, "the job JSON says it is slow too");
    assert!(job["elapsedMs"].as_i64().unwrap() > 200);
    server.wait_job_state("slow", "t", "SUCCESS");
    wait_metric(&server, 20, |s| {
        s.value("slow_job_num_gauge", &[]) == 0.0 && s.value("slow_task_num_gauge", &[]) == 0.0
    });
    let (_, job) = server.get("/api/v1/job/slow/t");
    assert_eq!(job["slow"], false, "a finished job is not slow");
    assert!(server.log().contains("job is slow"), "turning slow logs a warning");
}

#[test]
fn counters_move_as_jobs_run_and_limits_are_counted() {
    let ws = Workspace::new();
    ws.define("sum", r#"{"jobName":"sum","steps":[{"stepName":"p","stepType":"PACK","executor":"range-sum","packConf":{"size":100000,"start":1,"end":400000}}]}"#);
    ws.define("spin", r#"{"jobName":"spin","steps":[{"stepName":"a","executor":"scripted","fuelLimit":20000000}]}"#);
    let server = ws.serve(&["--monitor-ms", "100"]);
    let before = Scrape::take(&server);
    assert!(before.value("job_opr_counter", &[("jobName", "sum")]) == 0.0);

    submit(
        &server,
        json!({"jobName": "sum", "trigger": "small", "steps": [{"stepName": "p", "packConf": {"end": 1000}}]}),
    );
    server.wait_job_state("sum", "small", "SUCCESS");
    let small =
        wait_metric(&server, 10, |s| s.value("job_opr_counter", &[("jobName", "sum"), ("opr", "FINISH")]) == 1.0);
    assert_eq!(small.value("job_opr_counter", &[("jobName", "sum"), ("opr", "CREATE")]), 1.0);
    assert_eq!(small.value("task_opr_counter", &[("jobName", "sum"), ("opr", "CREATE")]), 1.0);
    let fuel_small = small.value("tascreed_task_fuel_sum", &[("executor", "range-sum")]);
    assert!(fuel_small > 0.0);

    submit(&server, json!({"jobName": "sum", "trigger": "big"}));
    server.wait_job_state("sum", "big", "SUCCESS");
    let big = wait_metric(&server, 10, |s| s.value("job_opr_counter", &[("jobName", "sum"), ("opr", "FINISH")]) == 2.0);
    assert_eq!(big.value("task_opr_counter", &[("jobName", "sum"), ("opr", "FINISH"), ("state", "SUCCESS")]), 5.0);
    let fuel_big = big.value("tascreed_task_fuel_sum", &[("executor", "range-sum")]);
    assert!(fuel_big > fuel_small * 100.0, "fuel grows with work: {fuel_small} then {fuel_big}");
    assert_eq!(big.value("tascreed_task_fuel_count", &[("executor", "range-sum")]), 5.0);

    submit(&server, json!({"jobName": "spin", "trigger": "t", "params": {"script": r#"{"a":["SPIN"]}"#}}));
    server.wait_job_state("spin", "t", "ERROR");
    wait_metric(&server, 10, |s| s.value("tascreed_guest_limit_hits_total", &[("kind", "fuel")]) == 1.0);
    // Gauges follow at the next monitor round (monitor.ms = 100 here).
    let spun = wait_metric(&server, 10, |s| s.value("alive_jobs_gauge", &[("state", "ERROR")]) == 1.0);
    assert!(spun.has("alive_tasks_gauge"));
    assert!(spun.has("tascreed_queue_depth"));
}
