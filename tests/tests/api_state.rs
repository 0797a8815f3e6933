//! Black-box API tests of the state lists and admin deletes (spec §5.5, §5.6, §21; cases TC-37,
//! TC-69).

use serde_json::{Value, json};
use tascreed_tests::{Server, Workspace, assert_error};

fn names(list: &Value) -> Vec<&str> {
    list.as_array().expect("array").iter().map(|t| t["taskName"].as_str().unwrap_or_default()).collect()
}

fn keys(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|j| format!("{}/{}", j["jobName"].as_str().unwrap_or_default(), j["trigger"].as_str().unwrap_or_default()))
        .collect()
}

fn submit(server: &Server, name: &str, trigger: &str) -> Value {
    let (status, job) = server.post("/api/v1/job", &json!({"jobName": name, "trigger": trigger}));
    assert_eq!(status, 201, "{job}");
    job
}

#[test]
fn chain_error_shows_in_the_lists() {
    // TC-37: A errs; B and C are skipped; the job stays alive with A in the error list.
    let ws = Workspace::new();
    ws.define(
        "chain",
        r#"{"jobName":"chain","params":{"script":"{\"A\":[\"ERR\"]}"},"steps":[
            {"stepName":"A","executor":"scripted"},
            {"stepName":"B","executor":"scripted","dependency":{"steps":["A"]}},
            {"stepName":"C","executor":"scripted","dependency":{"steps":["B"]}}]}"#,
    );
    ws.define("other", r#"{"jobName":"other","steps":[{"stepName":"s","executor":"noop"}]}"#);
    let server = ws.serve(&[]);
    submit(&server, "chain", "t");
    let job = server.wait_job_state("chain", "t", "ERROR");
    assert_eq!(job["steps"][1]["state"], "SKIP_BY_ERROR");
    assert_eq!(keys(&server.get("/api/v1/state/aliveJobs").1), ["chain/t"]);
    assert_eq!(keys(&server.get("/api/v1/state/aliveJobs?jobName=chain&trigger=t").1), ["chain/t"]);
    assert_eq!(server.get("/api/v1/state/aliveJobs?trigger=zz").1, json!([]));
    let (_, errors) = server.get("/api/v1/state/errorTasks?jobName=chain");
    assert_eq!(names(&errors), ["A"]);
    assert_eq!(errors[0]["result"]["state"], "ERROR");
    assert_eq!(server.get("/api/v1/state/errorTasks?jobName=chain&stepName=B").1, json!([]));
    assert_eq!(server.get("/api/v1/state/doneTasks?jobName=chain").1, json!([]), "done records are folded");
    assert_eq!(server.get("/api/v1/state/todoTasks").1, json!([]));

    // todo tasks with filters, while picking is paused.
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    submit(&server, "other", "t1");
    submit(&server, "other", "t2");
    server.wait("/api/v1/state/todoTasks?jobName=other", 30, |v| v.as_array().is_some_and(|a| a.len() == 2));
    let (_, todo) = server.get("/api/v1/state/todoTasks?jobName=other&trigger=t2&stepName=s");
    assert_eq!(todo.as_array().map(Vec::len), Some(1));
    assert_eq!(todo[0]["trigger"], "t2");
    assert_eq!(todo[0]["slow"], false);
    assert!(todo[0].get("elapsedMs").is_some());
    // A query value of the wrong type is a malformed request.
    assert_error(
        &server.delete("/api/v1/state/aliveJob/other/t1?archive=maybe"),
        400,
        "TC_FATAL_REQUEST_EXCEPTION",
        "archive",
    );
}

#[test]
fn delete_alive_job_with_and_without_archive() {
    // TC-69.
    let ws = Workspace::new();
    ws.define(
        "del",
        r#"{"jobName":"del","params":{"script":"{\"a\":[{\"do\":\"OK\",\"sleepMs\":1500}]}"},
            "steps":[{"stepName":"a","executor":"scripted"}]}"#,
    );
    let server = ws.serve(&[]);
    let first = submit(&server, "del", "t1");
    server.wait("/api/v1/state/adoptions?filter=del/t1", 30, |v| v.as_array().is_some_and(|a| a.len() == 1));
    let (status, deleted) = server.delete("/api/v1/state/aliveJob/del/t1");
    assert_eq!(status, 200, "{deleted}");
    assert_eq!((deleted["jobName"].clone(), deleted["trigger"].clone()), (json!("del"), json!("t1")));
    assert_eq!(server.get("/api/v1/state/aliveJobs?jobName=del").1, json!([]));
    assert_eq!(server.get("/api/v1/state/todoTasks?jobName=del").1, json!([]));
    assert_eq!(server.get("/api/v1/state/adoptions?filter=del/t1").1, json!([]));
    assert_error(&server.get("/api/v1/job/del/t1"), 404, "TC_FATAL_JOB_EXCEPTION", "job del.t1 does not exist");
    // The running task's result is discarded: no done record appears once it returns.
    std::thread::sleep(std::time::Duration::from_millis(1800));
    assert_eq!(server.get("/api/v1/state/doneTasks?jobName=del").1, json!([]));

    // Without archive the trigger is free again: a brand-new job.
    let again = submit(&server, "del", "t1");
    assert_ne!(again["createTime"], first["createTime"]);
    server.wait_job_state("del", "t1", "SUCCESS");

    // With archive the job stays findable, marked DELETED, and its trigger stays used.
    submit(&server, "del", "t2");
    let (status, _) = server.delete("/api/v1/state/aliveJob/del/t2?archive=true");
    assert_eq!(status, 200);
    let (status, archived) = server.get("/api/v1/job/del/t2");
    assert_eq!(status, 200);
    assert_eq!(archived["traits"], json!(["DELETED"]));
    let (status, dup) = server.post("/api/v1/job", &json!({"jobName": "del", "trigger": "t2"}));
    assert_eq!(status, 200, "the archived job answers the duplicate");
    assert_eq!(dup["traits"], json!(["DELETED"]));

    assert_error(
        &server.delete("/api/v1/state/aliveJob/del/none"),
        404,
        "TC_FATAL_JOB_EXCEPTION",
        "alive job del.none does not exist",
    );
}

#[test]
fn delete_todo_task_ends_it_error_and_archived_tasks_answer() {
    let ws = Workspace::new();
    ws.define("dt", r#"{"jobName":"dt","steps":[{"stepName":"a","executor":"noop"},{"stepName":"b","executor":"noop","dependentStep":"a"}]}"#);
    let server = ws.serve(&[]);
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    submit(&server, "dt", "t");
    server.wait("/api/v1/state/todoTasks?jobName=dt", 30, |v| names(v) == ["a"]);
    let (status, task) = server.delete("/api/v1/state/todoTask/dt/t/a");
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["taskName"], "a");
    // D14: the deleted task ends ERROR, so its step and job can finish (ERROR) and be retried.
    let job = server.wait_job_state("dt", "t", "ERROR");
    assert_eq!(job["steps"][0]["state"], "ERROR");
    let (_, errors) = server.get("/api/v1/state/errorTasks?jobName=dt");
    assert_eq!(errors[0]["result"]["reason"], "deleted by request");
    assert_error(
        &server.delete("/api/v1/state/todoTask/dt/t/a"),
        404,
        "TC_FATAL_TASK_EXCEPTION",
        "todo task dt/t/a does not exist",
    );
    assert_error(
        &server.get("/api/v1/state/archivedTask/dt/t/a"),
        404,
        "TC_FATAL_TASK_EXCEPTION",
        "archived task dt/t/a",
    );

    // Retry, let it run, and read its tasks from the archive.
    assert_eq!(server.post("/api/v1/job/retry", &json!({"jobName": "dt", "trigger": "t"})).0, 200);
    server.put("/api/v1/state/resume/global");
    server.wait_job_state("dt", "t", "SUCCESS");
    let (status, archived) = server.get("/api/v1/state/archivedTask/dt/t/b");
    assert_eq!(status, 200, "{archived}");
    assert_eq!(archived["state"], "SUCCESS");
    assert_error(
        &server.get("/api/v1/state/archivedTask/dt/t/zz"),
        404,
        "TC_FATAL_TASK_EXCEPTION",
        "archived task dt/t/zz",
    );
}

#[test]
fn adoptions_list_get_and_release() {
    let ws = Workspace::new();
    ws.define(
        "slow",
        r#"{"jobName":"slow","params":{"script":"{\"*\":[{\"do\":\"OK\",\"sleepMs\":1500}]}"},
            "steps":[{"stepName":"a","executor":"scripted"}]}"#,
    );
    let server = ws.serve(&[]);
    submit(&server, "slow", "t");
    let list = server.wait("/api/v1/state/adoptions", 30, |v| v.as_array().is_some_and(|a| a.len() == 1));
    assert_eq!(list[0]["key"], "slow/t/a");
    let holder = list[0]["value"].as_str().expect("node/worker").to_string();
    assert!(holder.contains('/'), "{holder}");
    assert_eq!(server.get("/api/v1/state/adoptions?filter=nothing").1, json!([]));
    assert_eq!(server.get("/api/v1/state/adoption/slow/t/a"), (200, json!({"key": "slow/t/a", "value": holder})));
    assert_error(
        &server.get("/api/v1/state/adoption/slow/t/zz"),
        404,
        "TC_FATAL_TASK_EXCEPTION",
        "task slow/t/zz is not adopted",
    );

    // Releasing fences the holder out; the task is picked again and still finishes once.
    let (status, released) = server.delete("/api/v1/state/adoption/slow/t/a");
    assert_eq!(status, 200, "{released}");
    assert_eq!(released, json!({"key": "slow/t/a", "value": holder}));
    server.wait_job_state("slow", "t", "SUCCESS");
    assert_error(&server.delete("/api/v1/state/adoption/slow/t/a"), 404, "TC_FATAL_TASK_EXCEPTION", "not adopted");
}
