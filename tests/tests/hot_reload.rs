//! Hot reload against the running binary: the define directory and the executor directory are
//! watched, so files written, changed, broken, renamed or deleted show in the API within 2 s;
//! and executor uploads reach every node on the same database.

use serde_json::{Value, json};
use tascreed_tests::{Server, Workspace, assert_error, eventually, plugins_dir, set_flag};

/// "Visible within 2 s" (the watcher's contract).
const VISIBLE_SECS: u64 = 2;

fn guest(name: &str) -> Vec<u8> {
    let path = plugins_dir().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build the guests with `cargo xtask plugins`", path.display()))
}

/// Define `hr`, version `v` (in its params): `a`, then `b` after it.
fn hr(v: &str) -> String {
    format!(
        r#"{{"jobName":"hr","params":{{"v":"{v}"}},"steps":[{{"stepName":"a","executor":"noop"}},
            {{"stepName":"b","executor":"noop","dependentStep":"a"}}]}}"#
    )
}

fn submit(server: &Server, name: &str, trigger: &str) -> (u16, Value) {
    server.post("/api/v1/job", &json!({"jobName": name, "trigger": trigger}))
}

/// The `v` param every task of the job ran with.
fn task_versions(server: &Server, name: &str, trigger: &str) -> Vec<Value> {
    let (_, tasks) = server.get(&format!("/api/v1/job/{name}/{trigger}/tasks"));
    tasks.as_array().expect("tasks").iter().map(|t| t["params"]["v"].clone()).collect()
}

fn file_ends_with(v: &Value, suffix: &str) -> bool {
    v["file"].as_str().is_some_and(|f| f.ends_with(suffix))
}

#[test]
fn define_directory_is_hot_reloaded() {
    let ws = Workspace::new();
    let server = ws.serve(&[]);
    let file = ws.defines().join("hr.json");
    assert_eq!(server.get("/api/v1/define/hr").0, 404);

    // A new file: served within 2 s.
    std::fs::write(&file, hr("1")).expect("write define");
    let one = server.wait("/api/v1/define/hr", VISIBLE_SECS, |d| d["define"]["params"]["v"] == "1");
    assert!(file_ends_with(&one, "hr.json"), "{one}");

    // Changed: the new version is served and used by new jobs.
    std::fs::write(&file, hr("2")).expect("write define");
    server.wait("/api/v1/define/hr", VISIBLE_SECS, |d| d["define"]["params"]["v"] == "2");
    assert_eq!(submit(&server, "hr", "v2").0, 201);
    server.wait_job_state("hr", "v2", "SUCCESS");
    assert_eq!(task_versions(&server, "hr", "v2"), ["2", "2"]);

    // Broken: the list reports the file, the last good version is still served and submittable.
    std::fs::write(&file, r#"{"jobName":"hr","steps":["#).expect("write define");
    let list = server.wait("/api/v1/define", VISIBLE_SECS, |l| {
        l["errors"].as_array().is_some_and(|e| e.iter().any(|e| file_ends_with(e, "hr.json")))
    });
    let error = list["errors"].as_array().unwrap().iter().find(|e| file_ends_with(e, "hr.json")).unwrap();
    assert!(error["message"].as_str().is_some_and(|m| m.contains("parse json fails")), "{list}");
    let defines = list["defines"].as_array().expect("defines");
    assert_eq!(defines.len(), 1, "{list}");
    assert_eq!(defines[0]["define"]["params"]["v"], "2", "last good version listed: {list}");
    assert_eq!(server.get("/api/v1/define/hr").1["define"]["params"]["v"], "2");
    assert_eq!(submit(&server, "hr", "broken").0, 201);
    server.wait_job_state("hr", "broken", "SUCCESS");
    assert_eq!(task_versions(&server, "hr", "broken"), ["2", "2"]);

    // Fixed: the new version, and the error is gone.
    std::fs::write(&file, hr("3")).expect("write define");
    server.wait("/api/v1/define", VISIBLE_SECS, |l| {
        l["errors"] == json!([]) && l["defines"][0]["define"]["params"]["v"] == "3"
    });

    // Renamed (same define inside): served all along, now from the new file.
    let renamed = ws.defines().join("renamed.json");
    std::fs::rename(&file, &renamed).expect("rename define");
    eventually(VISIBLE_SECS, "define hr served from renamed.json", || {
        let (status, d) = server.get("/api/v1/define/hr");
        assert_eq!(status, 200, "hr must stay served across the rename: {d}");
        assert_eq!(d["define"]["params"]["v"], "3", "{d}");
        file_ends_with(&d, "renamed.json").then_some(())
    });
    assert_eq!(server.get("/api/v1/define").1["errors"], json!([]));

    // Deleted: gone for new submissions; a job submitted before runs to the end on its snapshot
    // (its step `b` is created only after the deletion).
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    assert_eq!(submit(&server, "hr", "before").0, 201);
    server
        .wait("/api/v1/state/todoTasks?jobName=hr&trigger=before", 30, |v| v.as_array().is_some_and(|a| a.len() == 1));
    std::fs::remove_file(&renamed).expect("delete define");
    server.wait("/api/v1/define", VISIBLE_SECS, |l| l["defines"] == json!([]) && l["errors"] == json!([]));
    assert_error(&server.get("/api/v1/define/hr"), 404, "TC_FATAL_JOB_EXCEPTION", "job define hr not found");
    assert_error(
        &submit(&server, "hr", "after"),
        404,
        "TC_FATAL_JOB_EXCEPTION",
        "create new job fails: job define hr not found",
    );
    assert_eq!(submit(&server, "hr", "before").0, 200, "dedup still finds the alive job");
    assert_eq!(server.put("/api/v1/state/resume/global"), (200, json!(true)));
    let done = server.wait_job_state("hr", "before", "SUCCESS");
    assert_eq!(done["steps"][1]["state"], "SUCCESS", "{done}");
    assert_eq!(task_versions(&server, "hr", "before"), ["3", "3"]);
    assert_error(&server.get("/api/v1/job/hr/after"), 404, "TC_FATAL_JOB_EXCEPTION", "job hr.after does not exist");
}

/// Define `fx`: one step on executor `fresh`; the scripted guest reports `ran=scripted`, noop
/// reports nothing.
const FX: &str = r#"{"jobName":"fx",
    "params":{"script":"{\"a\":[{\"do\":\"OK\",\"updatedParams\":{\"ran\":\"scripted\"}}]}"},
    "steps":[{"stepName":"a","executor":"fresh"}]}"#;

/// Runs job fx/`trigger` to SUCCESS; returns (the executor its task recorded, `ran`).
fn run_fx(server: &Server, trigger: &str) -> (Value, Value) {
    assert_eq!(submit(server, "fx", trigger).0, 201);
    let job = server.wait_job_state("fx", trigger, "SUCCESS");
    let (_, tasks) = server.get(&format!("/api/v1/job/fx/{trigger}/tasks"));
    assert_eq!(tasks.as_array().map(Vec::len), Some(1), "{tasks}");
    (tasks[0]["executor"].clone(), job["updatedParams"]["ran"].clone())
}

#[test]
fn executor_directory_is_hot_reloaded() {
    let ws = Workspace::new();
    ws.define("fx", FX);
    let server = ws.serve(&[]);
    let file = ws.executors().join("fresh.wasm");
    let noop_sha = server.get("/api/v1/executor/noop").1["sha256"].as_str().expect("noop sha").to_string();
    let scripted_sha = server.get("/api/v1/executor/scripted").1["sha256"].as_str().expect("scripted sha").to_string();
    assert_ne!(noop_sha, scripted_sha);
    assert_eq!(server.get("/api/v1/executor/fresh").0, 404);

    // A new file: live within 2 s, named after the file.
    std::fs::copy(plugins_dir().join("noop.wasm"), &file).expect("copy noop.wasm");
    let info = server.wait("/api/v1/executor/fresh", VISIBLE_SECS, |e| e["sha256"] == noop_sha.as_str());
    assert_eq!(info["source"], "dir");
    assert_eq!(info["manifest"]["name"], "noop");
    assert!(file_ends_with(&info, "fresh.wasm"), "{info}");
    let (executor, ran) = run_fx(&server, "t1");
    assert_eq!(executor, json!({"name": "fresh", "sha256": noop_sha}));
    assert_eq!(ran, Value::Null, "noop reports nothing");

    // Replaced by another guest: a new sha256, recorded by (and running) the next job's task.
    std::fs::write(&file, guest("scripted.wasm")).expect("replace fresh.wasm");
    let info = server.wait("/api/v1/executor/fresh", VISIBLE_SECS, |e| e["sha256"] == scripted_sha.as_str());
    assert_eq!(info["manifest"]["name"], "scripted");
    let (executor, ran) = run_fx(&server, "t2");
    assert_eq!(executor, json!({"name": "fresh", "sha256": scripted_sha}));
    assert_eq!(ran, "scripted", "the new guest ran the task");
    // The earlier job keeps the record of the component that ran it.
    let (_, tasks) = server.get("/api/v1/job/fx/t1/tasks");
    assert_eq!(tasks[0]["executor"]["sha256"], noop_sha.as_str());

    // Half-written: reported in the list, the live version stays and keeps running jobs.
    let noop = guest("noop.wasm");
    std::fs::write(&file, &noop[..noop.len() / 2]).expect("truncate fresh.wasm");
    let list = server.wait("/api/v1/executor", VISIBLE_SECS, |l| {
        l["errors"].as_array().is_some_and(|e| e.iter().any(|e| file_ends_with(e, "fresh.wasm")))
    });
    let error = list["errors"].as_array().unwrap().iter().find(|e| file_ends_with(e, "fresh.wasm")).unwrap();
    assert_eq!(error["name"], "fresh", "{list}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{list}");
    let live = list["executors"].as_array().unwrap().iter().find(|e| e["name"] == "fresh").cloned();
    assert_eq!(live.map(|e| e["sha256"].clone()), Some(json!(scripted_sha)), "{list}");
    assert_eq!(server.get("/api/v1/executor/fresh").1["sha256"], scripted_sha.as_str());
    let (executor, ran) = run_fx(&server, "t3");
    assert_eq!(executor, json!({"name": "fresh", "sha256": scripted_sha}));
    assert_eq!(ran, "scripted");

    // Garbage that is not even a component: the same.
    std::fs::write(&file, b"garbage, not wasm").expect("write garbage");
    server.wait("/api/v1/executor", VISIBLE_SECS, |l| {
        l["errors"].as_array().is_some_and(|e| {
            e.iter().any(|e| file_ends_with(e, "fresh.wasm") && e["message"].as_str() != error["message"].as_str())
        })
    });
    assert_eq!(server.get("/api/v1/executor/fresh").1["sha256"], scripted_sha.as_str());

    // Deleted: gone, and so is its error.
    std::fs::remove_file(&file).expect("delete fresh.wasm");
    server.wait("/api/v1/executor", VISIBLE_SECS, |l| {
        l["errors"] == json!([]) && !l["executors"].as_array().is_some_and(|e| e.iter().any(|e| e["name"] == "fresh"))
    });
    assert_error(&server.get("/api/v1/executor/fresh"), 404, "TC_FATAL_EXECUTOR_EXCEPTION", "executor fresh not found");
}

#[test]
fn uploads_reach_every_node_on_the_database() {
    let ws = Workspace::new();
    // `xn` runs on executor `shared`, which no directory provides.
    ws.define("xn", &FX.replace("\"fx\"", "\"xn\"").replace("\"fresh\"", "\"shared\""));
    let mut a = ws.serve(&[]);
    let b_executors = ws.path().join("executors-b");
    std::fs::create_dir_all(&b_executors).expect("executors-b");
    let mut args = ws.serve_args();
    set_flag(&mut args, "executor-dirs", &b_executors.display().to_string());
    let b = Server::start(&args, &[]);
    assert_eq!(b.get("/api/v1/executor").1["executors"], json!([]), "B's directory is empty");

    let bytes = guest("scripted.wasm");
    let (status, up) = a.put_bytes("/api/v1/executor/shared", &bytes);
    assert_eq!(status, 201, "{up}");
    let sha = up["sha256"].as_str().expect("sha256").to_string();
    let seen = b.wait("/api/v1/executor/shared", 10, |e| e["sha256"] == sha.as_str());
    assert_eq!(seen["source"], "upload");
    assert_eq!(seen["size"], bytes.len());

    // B runs a job on it; A is gone meanwhile, so the run is B's.
    a.kill();
    assert_eq!(b.post("/api/v1/job", &json!({"jobName": "xn", "trigger": "t1"})).0, 201);
    let job = b.wait_job_state("xn", "t1", "SUCCESS");
    assert_eq!(job["updatedParams"]["ran"], "scripted", "{job}");
    let (_, tasks) = b.get("/api/v1/job/xn/t1/tasks");
    assert_eq!(tasks[0]["executor"], json!({"name": "shared", "sha256": sha}));
    assert_eq!(tasks[0]["node"], b.node_id(), "{tasks}");

    // Deleted on A (started again): gone from B.
    let a = ws.serve(&[]);
    assert_eq!(a.get("/api/v1/executor/shared").1["sha256"], sha.as_str(), "A loads the stored upload");
    assert_eq!(a.delete("/api/v1/executor/shared").0, 200);
    b.wait("/api/v1/executor", 10, |l| l["executors"] == json!([]));
    assert_error(&b.get("/api/v1/executor/shared"), 404, "TC_FATAL_EXECUTOR_EXCEPTION", "executor shared not found");
}
