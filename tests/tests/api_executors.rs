//! Black-box API tests of executors (upload, list, get, delete), defines (list, one, validate)
//! and the bearer token.

use serde_json::json;
use tascreed_tests::{Workspace, assert_error, plugins_dir};

fn read(name: &str) -> Vec<u8> {
    let path = plugins_dir().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build the guests with `cargo xtask plugins`", path.display()))
}

#[test]
fn upload_validates_and_serves_executors() {
    let ws = Workspace::new();
    ws.define("up", r#"{"jobName":"up","steps":[{"stepName":"a","executor":"mine"}]}"#);
    let server = ws.serve(&[]);
    let noop = read("noop.wasm");
    let (status, info) = server.put_bytes("/api/v1/executor/mine", &noop);
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], "mine");
    assert_eq!(info["source"], "upload");
    assert_eq!(info["size"], noop.len());
    assert_eq!(info["manifest"]["name"], "noop");
    assert_eq!(info["manifest"]["checkpoint"], false);
    assert!(info["manifest"]["bindings"].is_array());
    let sha = info["sha256"].as_str().expect("sha256").to_string();
    assert_eq!(sha.len(), 64);

    // A job whose step names the upload runs on it.
    assert_eq!(server.post("/api/v1/job", &json!({"jobName": "up", "trigger": "t"})).0, 201);
    server.wait_job_state("up", "t", "SUCCESS");
    let (_, tasks) = server.get("/api/v1/job/up/t/tasks");
    assert_eq!(tasks[0]["executor"], json!({"name": "mine", "sha256": sha}));

    // Same bytes again: replaced (200), same version.
    let (status, again) = server.put_bytes("/api/v1/executor/mine", &noop);
    assert_eq!((status, again["sha256"].as_str()), (200, Some(sha.as_str())));

    // Rejected uploads change nothing.
    let e = "TC_FATAL_EXECUTOR_EXCEPTION";
    let rejected = [
        (b"definitely not wasm".to_vec(), "not a WebAssembly binary"),
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (read("testing/other-world.wasm"), "not a component of world"),
        (read("testing/bad-import.wasm"), "imports something the host does not provide"),
    ];
    for (bytes, reason) in rejected {
        assert_error(&server.put_bytes("/api/v1/executor/mine", &bytes), 400, e, reason);
        assert_eq!(server.get("/api/v1/executor/mine").1["sha256"], sha.as_str(), "previous version untouched");
    }
    assert_error(&server.put_bytes("/api/v1/executor/Bad_Name", &noop), 400, e, "executor name invalid");
    let too_big = vec![0u8; (64 << 20) + 1];
    assert_error(&server.put_bytes("/api/v1/executor/mine", &too_big), 413, "TC_FATAL_REQUEST_EXCEPTION", "64 MiB");
    assert_error(&server.put_bytes(&format!("/api/v1/executor/{}", "x".repeat(65)), &noop), 400, e, "name invalid");

    // Listing and lookup.
    let (status, list) = server.get("/api/v1/executor");
    assert_eq!(status, 200);
    let mut names: Vec<_> = list["executors"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["counter", "mine", "noop", "range-sum", "scripted"]);
    assert_eq!(list["errors"], json!([]));
    let (_, counter) = server.get("/api/v1/executor/counter");
    assert_eq!(counter["source"], "dir");
    assert_eq!(counter["manifest"]["checkpoint"], true);
    assert!(counter["file"].as_str().is_some_and(|f| f.ends_with("counter.wasm")));
    assert_error(&server.get("/api/v1/executor/ghost"), 404, e, "executor ghost not found");

    // An upload may shadow a directory executor; deleting it brings the file's version back.
    let dir_noop = server.get("/api/v1/executor/noop").1["sha256"].clone();
    let (status, shadow) = server.put_bytes("/api/v1/executor/noop", &read("scripted.wasm"));
    assert_eq!((status, shadow["source"].clone()), (200, json!("upload")));
    let (status, deleted) = server.delete("/api/v1/executor/noop");
    assert_eq!((status, deleted["source"].clone()), (200, json!("upload")));
    let (_, back) = server.get("/api/v1/executor/noop");
    assert_eq!((back["source"].clone(), back["sha256"].clone()), (json!("dir"), dir_noop));

    // Deleting: uploads yes, directory files no.
    assert_eq!(server.delete("/api/v1/executor/mine").0, 200);
    assert_error(&server.get("/api/v1/executor/mine"), 404, e, "executor mine not found");
    assert_error(&server.delete("/api/v1/executor/mine"), 404, e, "executor mine not found");
    assert_error(&server.delete("/api/v1/executor/scripted"), 409, e, "cannot be deleted over HTTP");
}

#[test]
fn defines_are_listed_and_validated() {
    let ws = Workspace::new();
    ws.define("good", r#"{"jobName":"good","steps":[{"stepName":"a","executor":"noop"}]}"#);
    ws.define("broken", r#"{"jobName":"broken","steps":[{"stepName":"a","stepType":"SHARD","shardConf":{}}]}"#);
    let server = ws.serve(&[]);
    let (status, list) = server.get("/api/v1/define");
    assert_eq!(status, 200);
    let defines = list["defines"].as_array().expect("defines");
    assert_eq!(defines.len(), 1, "{list}");
    assert_eq!(defines[0]["jobName"], "good");
    assert!(defines[0]["file"].as_str().is_some_and(|f| f.ends_with("good.json")));
    assert_eq!(defines[0]["define"]["steps"][0]["stepName"], "a");
    let errors = list["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{list}");
    assert!(errors[0]["file"].as_str().is_some_and(|f| f.ends_with("broken.json")));
    assert!(errors[0]["message"].as_str().is_some_and(|m| m.contains("shard num invalid")), "{list}");

    let (status, one) = server.get("/api/v1/define/good");
    assert_eq!(status, 200);
    assert_eq!(one["define"]["jobName"], "good");
    assert_error(&server.get("/api/v1/define/broken"), 404, "TC_FATAL_JOB_EXCEPTION", "job define broken not found");

    let v = "TC_FATAL_VALIDATION_EXCEPTION";
    let ok = json!({"jobName": "x", "steps": [{"stepName": "a"}, {"stepName": "b", "dependentStep": "a"}]});
    assert_eq!(server.post("/api/v1/define/validate", &ok), (200, json!({"valid": true, "jobName": "x"})));
    let shard = json!({"jobName": "x", "steps": [{"stepName": "a", "stepType": "SHARD", "shardConf": {}}]});
    assert_error(&server.post("/api/v1/define/validate", &shard), 400, v, "shard num invalid: null <= 0");
    let cycle = json!({"jobName": "x", "steps": [
        {"stepName": "a", "dependency": {"steps": ["b"]}}, {"stepName": "b", "dependency": {"steps": ["a"]}}]});
    assert_error(&server.post("/api/v1/define/validate", &cycle), 400, v, "step graph has cycle");
    assert_error(
        &server.post("/api/v1/define/validate", &json!({"jobName": "x", "steps": 3})),
        400,
        v,
        "steps: invalid type",
    );
    assert_error(&server.post_text("/api/v1/define/validate", "application/json", "nope"), 400, v, "parse json fails");
}

#[test]
fn graph_check_follows_the_config() {
    let ws = Workspace::new();
    let server = ws.serve(&["--define-graph-validate-enable", "false"]);
    let cycle = json!({"jobName": "x", "steps": [
        {"stepName": "a", "dependency": {"steps": ["b"]}}, {"stepName": "b", "dependency": {"steps": ["a"]}}]});
    assert_eq!(server.post("/api/v1/define/validate", &cycle).0, 200);
}

/// Changes without the bearer token, or with a wrong one, are refused with 401 and nothing
/// else; returns what a submit of job `tok` with the right token needs.
fn refused_without_the_token(
    server: &tascreed_tests::Server,
) -> ((&'static str, &'static str), &'static [u8], &'static str) {
    let body: &[u8] = br#"{"jobName":"tok","trigger":"t"}"#;
    let json_type = ("content-type", "application/json");
    let a = "TC_FATAL_AUTH_EXCEPTION";
    assert_error(&server.request("POST", "/api/v1/job", &[json_type], body), 401, a, "missing Authorization");
    assert_error(
        &server.request("POST", "/api/v1/job", &[json_type, ("authorization", "Bearer wrong")], body),
        401,
        a,
        "invalid bearer token",
    );
    assert_error(&server.put("/api/v1/state/ban/global?level=TASK_PICK"), 401, a, "missing");
    (json_type, body, a)
}

#[test]
fn token_guards_every_change_but_not_reads() {
    let ws = Workspace::new();
    ws.define("tok", r#"{"jobName":"tok","steps":[{"stepName":"a","executor":"noop"}]}"#);
    let server = ws.serve(&["--http-token", "s3cret"]);
    let (json_type, body, a) = refused_without_the_token(&server);
    assert_error(&server.delete("/api/v1/executor/noop"), 401, a, "missing");
    assert_error(&server.put_bytes("/api/v1/executor/x", b"..."), 401, a, "missing");
    let (status, job) = server.request("POST", "/api/v1/job", &[json_type, ("authorization", "Bearer s3cret")], body);
    assert_eq!(status, 201, "{job}");
    // Reads stay open.
    assert_eq!(server.get("/api/v1/job/tok/t").0, 200);
    assert_eq!(server.get("/api/v1/state/aliveJobs").0, 200);
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn non_loopback_bind_is_refused_without_a_token() {
    let ws = Workspace::new();
    for extra in [vec![("http-bind", "0.0.0.0:0")], vec![("http-bind", "0.0.0.0:0"), ("http-token", "  ")]] {
        let (status, stderr) = ws.serve_expecting_exit(&extra);
        assert!(!status.success(), "{extra:?}: exit {status}\n{stderr}");
        assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without a token"), "{extra:?}:\n{stderr}");
    }
}

#[test]
fn non_loopback_bind_with_a_token_serves_and_guards_changes() {
    let ws = Workspace::new();
    ws.define("tok", r#"{"jobName":"tok","steps":[{"stepName":"a","executor":"noop"}]}"#);
    let server = ws.serve(&["--http-bind", "0.0.0.0:0", "--http-token", "s3cret"]);
    let (json_type, body, a) = refused_without_the_token(&server);
    assert_error(&server.get("/api/v1/job/tok/t"), 404, "TC_FATAL_JOB_EXCEPTION", "job tok.t does not exist");
    let (status, job) = server.request("POST", "/api/v1/job", &[json_type, ("authorization", "Bearer s3cret")], body);
    assert_eq!(status, 201, "{job}");
    server.wait_job_state("tok", "t", "SUCCESS");

    // DESIGN's environment name for the token works the same.
    let mut args = ws.serve_args();
    tascreed_tests::set_flag(&mut args, "http-bind", "0.0.0.0:0");
    let env_server = tascreed_tests::Server::start(&args, &[("TASCREED_TOKEN", "from-env")]);
    assert_error(&env_server.put("/api/v1/state/ban/global?level=TASK_PICK"), 401, a, "missing");
    let auth = ("authorization", "Bearer from-env");
    assert_eq!(env_server.request("PUT", "/api/v1/state/ban/global?level=TASK_PICK", &[auth], b""), (200, json!(true)));
}
