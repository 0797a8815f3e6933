//! Black-box API tests: submit, query, duplicate, update, retry, and every error status of the
//! job routes (spec §5.1–5.4; cases TC-15, TC-16, TC-20, TC-56).

use serde_json::{Value, json};
use tascreed_tests::{Workspace, assert_error};

const SIMPLE: &str = r#"{"jobName":"simple","steps":[{"stepName":"a","executor":"noop"},
    {"stepName":"b","executor":"noop","dependentStep":"a","duration":60000}]}"#;

fn names(tasks: &Value) -> Vec<&str> {
    tasks.as_array().expect("array").iter().map(|t| t["taskName"].as_str().unwrap_or_default()).collect()
}

#[test]
fn submit_runs_to_success_and_lists_tasks_with_costs() {
    let ws = Workspace::new();
    ws.define("simple", SIMPLE);
    let server = ws.serve(&[]);
    let (status, job) = server.post("/api/v1/job", &json!({"jobName": "simple", "trigger": "t", "params": {"k": "v"}}));
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["state"], "UNDONE");
    assert_eq!(job["progression"], "0.00%");
    assert_eq!(job["params"]["k"], "v");
    assert!(job.get("define").is_none(), "the define snapshot is internal");

    let done = server.wait_job_state("simple", "t", "SUCCESS");
    assert_eq!(done["progression"], "100.00%");
    assert_eq!(done["steps"][0]["state"], "SUCCESS");
    assert!(done["elapsedMs"].as_i64().is_some() && done["slow"] == false, "{done}");

    let (status, tasks) = server.get("/api/v1/job/simple/t/tasks");
    assert_eq!(status, 200);
    assert_eq!(names(&tasks), ["a", "b"]);
    let noop_sha = server.get("/api/v1/executor/noop").1["sha256"].clone();
    for task in tasks.as_array().unwrap() {
        assert_eq!(task["state"], "SUCCESS");
        assert_eq!(task["result"]["state"], "SUCCESS");
        assert_eq!(task["executor"]["name"], "noop");
        assert_eq!(task["executor"]["sha256"], noop_sha, "the component that ran it");
        assert!(task["fuel"].as_u64().is_some_and(|f| f > 0), "fuel used: {task}");
        assert!(task["wallMs"].as_i64().is_some(), "wall ms: {task}");
        assert!(task["node"].is_string());
        assert_eq!(task["slow"], false);
        assert!(task["elapsedMs"].as_i64().is_some_and(|e| e >= 0));
    }
    // Archived jobs keep answering, tasks included.
    assert_eq!(server.get("/api/v1/state/aliveJobs?jobName=simple").1, json!([]));
    assert_eq!(server.get("/api/v1/job/simple/t").0, 200);
}

#[test]
fn duplicate_submit_returns_the_existing_job() {
    let ws = Workspace::new();
    ws.define("dup", r#"{"jobName":"dup","steps":[{"stepName":"a","executor":"noop"}]}"#);
    let server = ws.serve(&[]);
    // TC-15: hold picking so the first job is still alive at the second submit.
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    let (s1, first) = server.post("/api/v1/job", &json!({"jobName": "dup", "trigger": "t1", "params": {"x": "1"}}));
    assert_eq!(s1, 201);
    let (s2, again) = server.post("/api/v1/job", &json!({"jobName": "dup", "trigger": "t1", "params": {"x": "2"}}));
    assert_eq!(s2, 200, "{again}");
    assert_eq!(again["params"]["x"], "1");
    assert_eq!(again["createTime"], first["createTime"]);
    server.put("/api/v1/state/resume/global");
    server.wait_job_state("dup", "t1", "SUCCESS");
    let (s3, archived) = server.post("/api/v1/job", &json!({"jobName": "dup", "trigger": "t1"}));
    assert_eq!(s3, 200);
    assert_eq!(archived["state"], "SUCCESS");
    assert_eq!(names(&server.get("/api/v1/job/dup/t1/tasks").1), ["a"], "nothing new ran");
}

#[test]
fn error_statuses_of_submit_and_query() {
    let ws = Workspace::new();
    ws.define("uniq", r#"{"jobName":"uniq","uniqueAliveInstance":true,"steps":[{"stepName":"a","executor":"noop"}]}"#);
    let server = ws.serve(&[]);
    let v = "TC_FATAL_VALIDATION_EXCEPTION";
    let r = "TC_FATAL_REQUEST_EXCEPTION";
    assert_error(&server.post_text("/api/v1/job", "application/json", "{"), 400, v, "parse json fails");
    assert_error(&server.post_text("/api/v1/job", "application/json", "{} {}"), 400, v, "parse json fails");
    assert_error(
        &server.post_text("/api/v1/job", "text/plain", r#"{"jobName":"uniq","trigger":"t"}"#),
        400,
        r,
        "application/json",
    );
    assert_error(&server.request("POST", "/api/v1/job", &[], b"{}"), 400, r, "Content-Type");
    assert_error(
        &server.post("/api/v1/job", &json!({"jobName": "uniq", "trigger": "t", "priority": "high"})),
        400,
        v,
        "priority: invalid type",
    );
    assert_error(
        &server.post("/api/v1/job", &json!({"jobName": "uniq", "trigger": "t", "steps": [{"stepName": 5}]})),
        400,
        v,
        "steps[0].stepName",
    );
    assert_error(
        &server.post("/api/v1/job", &json!({"jobName": "uniq", "trigger": "no.dots"})),
        400,
        v,
        "job trigger invalid: no.dots",
    );
    assert_error(&server.post("/api/v1/job", &json!({"jobName": "uniq"})), 400, v, "job trigger invalid: null");
    assert_error(
        &server.post("/api/v1/job", &json!({"jobName": "uniq", "trigger": "t", "after": {"timeString": "yesterday"}})),
        400,
        v,
        "parse time format fails",
    );
    assert_error(
        &server.post("/api/v1/job", &json!({"jobName": "nope", "trigger": "t"})),
        404,
        "TC_FATAL_JOB_EXCEPTION",
        "create new job fails: job define nope not found",
    );
    assert_error(&server.get("/api/v1/job/nope/t"), 404, "TC_FATAL_JOB_EXCEPTION", "job nope.t does not exist");
    assert_error(&server.get("/api/v1/job/nope/t/tasks"), 404, "TC_FATAL_JOB_EXCEPTION", "job nope.t does not exist");
    // TC-20: a second alive job of a unique define is a conflict naming the alive one.
    server.put("/api/v1/state/ban/global?level=TASK_PICK");
    assert_eq!(server.post("/api/v1/job", &json!({"jobName": "uniq", "trigger": "t1"})).0, 201);
    assert_error(
        &server.post("/api/v1/job", &json!({"jobName": "uniq", "trigger": "t2"})),
        409,
        "TC_FATAL_JOB_EXCEPTION",
        "alive job uniq.t1 exists, only one alive job is allowed",
    );
    assert_eq!(server.post("/api/v1/job", &json!({"jobName": "uniq", "trigger": "t1"})).0, 200, "its own trigger");
    // 413: JSON bodies are limited to 1 MiB.
    let big = format!(r#"{{"jobName":"uniq","trigger":"t3","params":{{"pad":"{}"}}}}"#, "x".repeat(1 << 20));
    assert_error(&server.post_text("/api/v1/job", "application/json", &big), 413, r, "larger");
    // Unknown routes and methods answer in the error shape too.
    assert_error(&server.get("/api/v1/nothing"), 404, r, "no route for GET /api/v1/nothing");
    assert_error(&server.delete("/api/v1/job"), 405, r, "method DELETE is not allowed");
}

#[test]
fn update_changes_an_undone_job() {
    let ws = Workspace::new();
    ws.define("upd", r#"{"jobName":"upd","steps":[{"stepName":"a","executor":"noop","maxPickTimes":2}]}"#);
    let server = ws.serve(&[]);
    // No task creation: the job stays UNDONE with its step DORMANT, so it may be updated.
    assert_eq!(server.put("/api/v1/state/ban/jobDefine/upd?level=TASK_CREATE"), (200, json!(true)));
    assert_eq!(server.post("/api/v1/job", &json!({"jobName": "upd", "trigger": "t"})).0, 201);
    let request = json!({"jobName": "upd", "trigger": "t", "steps": [{"stepName": "a", "maxPickTimes": 7}]});
    let (status, job) = server.post("/api/v1/job/update", &request);
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["steps"][0]["maxPickTimes"], 7);
    assert_error(
        &server.post("/api/v1/job/update", &request),
        400,
        "TC_FATAL_JOB_EXCEPTION",
        "alive job upd.t no need to update",
    );
    assert_error(
        &server.post("/api/v1/job/update", &json!({"jobName": "upd", "trigger": "zz"})),
        404,
        "TC_FATAL_JOB_EXCEPTION",
        "alive job upd.zz does not exist",
    );
    assert_error(
        &server.post_text("/api/v1/job/update", "application/json", "["),
        400,
        "TC_FATAL_VALIDATION_EXCEPTION",
        "parse json fails",
    );
    server.put("/api/v1/state/resume/jobDefine/upd");
    server.wait_job_state("upd", "t", "SUCCESS");
    let (_, tasks) = server.get("/api/v1/job/upd/t/tasks");
    assert_eq!(tasks[0]["maxPickTimes"], 7, "tasks created after the update see it");
}

#[test]
fn retry_resets_an_error_job() {
    // A fails non-retryably on every attempt and may be picked twice more: it runs 3 times,
    // then ends ERROR with pickedTimes = triedTimes = 3 (spec §10.6).
    let ws = Workspace::new();
    ws.define(
        "rty",
        r#"{"jobName":"rty","params":{"script":"{\"A\":[\"NONRETRY\"]}"},"steps":[
            {"stepName":"A","executor":"scripted","maxPickTimes":2},
            {"stepName":"B","executor":"scripted","dependentStep":"A"},
            {"stepName":"X","executor":"scripted"}]}"#,
    );
    let server = ws.serve(&[]);
    assert_eq!(server.post("/api/v1/job", &json!({"jobName": "rty", "trigger": "t"})).0, 201);
    let job = server.wait_job_state("rty", "t", "ERROR");
    let states: Vec<_> = job["steps"].as_array().unwrap().iter().map(|s| s["state"].clone()).collect();
    assert_eq!(states, ["ERROR", "SKIP_BY_ERROR", "SUCCESS"]);
    let (_, errors) = server.get("/api/v1/state/errorTasks?jobName=rty");
    assert_eq!(names(&errors), ["A"]);
    let first = errors[0].clone();
    assert_eq!(first["result"]["state"], "ERROR");
    assert_eq!((first["pickedTimes"].as_u64(), first["triedTimes"].as_u64()), (Some(3), Some(3)), "{first}");
    let reason = first["result"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("picked times 3 exceeds max pick times 2"), "{first}");

    // Retry while picking is paused, so the reset task can be seen before it runs again.
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    let (status, reset) = server.post("/api/v1/job/retry", &json!({"jobName": "rty", "trigger": "t"}));
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["state"], "UNDONE");
    let states: Vec<_> = reset["steps"].as_array().unwrap().iter().map(|s| s["state"].clone()).collect();
    assert_eq!(states, ["READY", "DORMANT", "SUCCESS"]);
    assert_eq!(server.get("/api/v1/state/errorTasks?jobName=rty").1, json!([]));
    let (_, todo) = server.get("/api/v1/state/todoTasks?jobName=rty");
    assert_eq!(names(&todo), ["A"]);
    assert_eq!(todo[0]["pickedTimes"].as_u64().unwrap_or(0), 0, "pickedTimes reset: {todo}");
    assert_eq!(todo[0]["triedTimes"].as_u64().unwrap_or(0), 0, "triedTimes reset: {todo}");
    assert!(todo[0]["result"].get("reason").is_none_or(Value::is_null), "reason cleared: {todo}");

    // A runs its full 3 picks again (without the reset, the first new failure would end it at 4).
    assert_eq!(server.put("/api/v1/state/resume/global"), (200, json!(true)));
    server.wait("/api/v1/state/errorTasks?jobName=rty", 30, |v| names(v) == ["A"]);
    let job = server.wait_job_state("rty", "t", "ERROR");
    assert_eq!(job["steps"][1]["state"], "SKIP_BY_ERROR");
    let (_, errors) = server.get("/api/v1/state/errorTasks?jobName=rty");
    assert_eq!(errors[0]["triedTimes"], 3, "{errors}");
    assert_eq!(errors[0]["pickedTimes"], 3, "{errors}");

    assert_error(
        &server.post("/api/v1/job/retry", &json!({"jobName": "rty", "trigger": "zz"})),
        404,
        "TC_FATAL_JOB_EXCEPTION",
        "alive job rty.zz does not exist",
    );
    // An UNDONE job without error tasks: nothing to retry.
    server.put("/api/v1/state/ban/global?level=TASK_PICK");
    assert_eq!(server.post("/api/v1/job", &json!({"jobName": "rty", "trigger": "u"})).0, 201);
    assert_error(
        &server.post("/api/v1/job/retry", &json!({"jobName": "rty", "trigger": "u"})),
        400,
        "TC_FATAL_JOB_EXCEPTION",
        "alive job rty.u has no error task, no need to retry",
    );
}

#[test]
fn health_metrics_and_openapi() {
    let ws = Workspace::new();
    let server = ws.serve(&[]);
    assert_eq!(server.get("/healthz"), (200, Value::String("ok".into())));
    let resp = ureq::get(&server.url("/metrics")).call().expect("metrics");
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");

    let (status, doc) = server.get("/api/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    let expected = [
        ("post", "/api/v1/job"),
        ("get", "/api/v1/job/{jobName}/{trigger}"),
        ("get", "/api/v1/job/{jobName}/{trigger}/tasks"),
        ("post", "/api/v1/job/update"),
        ("post", "/api/v1/job/retry"),
        ("get", "/api/v1/state/aliveJobs"),
        ("get", "/api/v1/state/todoTasks"),
        ("get", "/api/v1/state/doneTasks"),
        ("get", "/api/v1/state/errorTasks"),
        ("get", "/api/v1/state/adoptions"),
        ("get", "/api/v1/state/adoption/{jobName}/{trigger}/{taskName}"),
        ("delete", "/api/v1/state/adoption/{jobName}/{trigger}/{taskName}"),
        ("delete", "/api/v1/state/aliveJob/{jobName}/{trigger}"),
        ("delete", "/api/v1/state/todoTask/{jobName}/{trigger}/{taskName}"),
        ("get", "/api/v1/state/archivedTask/{jobName}/{trigger}/{taskName}"),
        ("put", "/api/v1/state/ban/global"),
        ("put", "/api/v1/state/ban/jobDefine/{jobDefineName}"),
        ("put", "/api/v1/state/ban/job/{jobName}/{trigger}"),
        ("put", "/api/v1/state/resume/global"),
        ("put", "/api/v1/state/resume/jobDefine/{jobDefineName}"),
        ("put", "/api/v1/state/resume/job/{jobName}/{trigger}"),
        ("get", "/api/v1/define"),
        ("get", "/api/v1/define/{jobName}"),
        ("post", "/api/v1/define/validate"),
        ("get", "/api/v1/executor"),
        ("put", "/api/v1/executor/{name}"),
        ("get", "/api/v1/executor/{name}"),
        ("delete", "/api/v1/executor/{name}"),
        ("get", "/metrics"),
        ("get", "/healthz"),
        ("get", "/api/openapi.json"),
    ];
    for (method, path) in expected {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from the document");
    }
    let listed: usize = paths.values().map(|p| p.as_object().map_or(0, |m| m.len())).sum();
    assert_eq!(listed, expected.len(), "no undocumented extras: {:?}", paths.keys().collect::<Vec<_>>());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    // JSON bodies are typed by the domain's schemas, not a bare `Object`.
    let schemas = &doc["components"]["schemas"];
    let submit = &paths["/api/v1/job"]["post"];
    assert_eq!(
        submit["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/JobRequest"
    );
    assert_eq!(submit["responses"]["201"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Job");
    for (schema, props) in [
        ("JobRequest", &["jobName", "trigger", "params", "steps"][..]),
        ("Job", &["jobName", "trigger", "state", "steps", "createTime"]),
        ("Task", &["taskName", "state", "pickedTimes", "executor"]),
    ] {
        for p in props {
            assert!(schemas[schema]["properties"][p].is_object(), "{schema} lacks {p}: {}", schemas[schema]);
        }
    }
}
