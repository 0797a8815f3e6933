//! Black-box API tests of bans and resumes (spec §14; cases TC-66, TC-67).

use std::time::Duration;

use serde_json::{Value, json};
use tascreed_tests::{Server, Workspace, assert_error};

const BN: &str = r#"{"jobName":"bn","steps":[{"stepName":"a","executor":"noop"},
    {"stepName":"b","executor":"noop","dependentStep":"a"}]}"#;

fn submit(server: &Server, trigger: &str) -> (u16, Value) {
    server.post("/api/v1/job", &json!({"jobName": "bn", "trigger": trigger}))
}

/// `bs`: one SHARD step of 4 shards, at most 1 undone task at a time.
const BS: &str = r#"{"jobName":"bs","steps":[{"stepName":"s","executor":"noop","stepType":"SHARD",
    "shardConf":{"shard":4,"maxTaskCount":1}}]}"#;

/// "taskName state" of every task of bs/`trigger`, by name.
fn bs_tasks(server: &Server, trigger: &str) -> Vec<String> {
    let (_, tasks) = server.get(&format!("/api/v1/job/bs/{trigger}/tasks"));
    let mut out: Vec<_> = tasks
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| format!("{} {}", t["taskName"].as_str().unwrap_or_default(), t["state"].as_str().unwrap_or_default()))
        .collect();
    out.sort();
    out
}

fn todo(server: &Server, trigger: &str) -> Vec<String> {
    let (_, list) = server.get(&format!("/api/v1/state/todoTasks?jobName=bn&trigger={trigger}"));
    list.as_array().unwrap().iter().map(|t| t["taskName"].as_str().unwrap_or_default().to_string()).collect()
}

fn state(server: &Server, trigger: &str) -> Value {
    server.get(&format!("/api/v1/job/bn/{trigger}")).1["state"].clone()
}

/// Waits a moment and checks that nothing ran: `a` is still todo.
fn stays_todo(server: &Server, trigger: &str) {
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(todo(server, trigger), ["a"], "bn/{trigger} must not be picked");
    assert_eq!(state(server, trigger), "UNDONE");
}

#[test]
fn global_and_define_bans() {
    let ws = Workspace::new();
    ws.define("bn", BN);
    let server = ws.serve(&[]);
    // 1. TASK_PICK globally: tasks are created but not run until the resume.
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    assert_eq!(submit(&server, "t1").0, 201);
    server.wait("/api/v1/state/todoTasks?jobName=bn&trigger=t1", 30, |v| v.as_array().is_some_and(|a| a.len() == 1));
    stays_todo(&server, "t1");
    assert_eq!(server.put("/api/v1/state/resume/global"), (200, json!(true)));
    server.wait_job_state("bn", "t1", "SUCCESS");

    // 2. TASK_CREATE on the define: the job is stored, no task is created until the resume.
    assert_eq!(server.put("/api/v1/state/ban/jobDefine/bn?level=TASK_CREATE"), (200, json!(true)));
    assert_eq!(submit(&server, "t2").0, 201);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(server.get("/api/v1/job/bn/t2/tasks").1, json!([]), "no task created");
    assert_eq!(server.put("/api/v1/state/resume/jobDefine/bn"), (200, json!(true)));
    server.wait_job_state("bn", "t2", "SUCCESS");

    // 3. JOB_SUBMIT on the define: 403 with TasCreed's message; accepted after the resume.
    assert_eq!(server.put("/api/v1/state/ban/jobDefine/bn?level=JOB_SUBMIT"), (200, json!(true)));
    assert_error(
        &submit(&server, "t3"),
        403,
        "TC_FATAL_JOB_EXCEPTION",
        "create new job fails: job define bn is banned",
    );
    assert_eq!(server.put("/api/v1/state/resume/jobDefine/bn"), (200, json!(true)));
    assert_eq!(submit(&server, "t3").0, 201);
    // ... and globally.
    assert_eq!(server.put("/api/v1/state/ban/global?level=job_submit"), (200, json!(true)));
    assert_error(&submit(&server, "t9"), 403, "TC_FATAL_JOB_EXCEPTION", "job define bn is banned");
    assert_eq!(submit(&server, "t3").0, 200, "dedup comes before the ban check");
    assert_eq!(server.put("/api/v1/state/resume/global"), (200, json!(true)));

    // 4. Routine levels do not fit a job target.
    let v = "TC_FATAL_VALIDATION_EXCEPTION";
    assert_error(
        &server.put("/api/v1/state/ban/jobDefine/bn?level=ROUTINE_EXEC"),
        400,
        v,
        "ban level ROUTINE_EXEC is not compatible with ban target JOB",
    );
    assert_error(
        &server.put("/api/v1/state/ban/global?level=routine_occupy"),
        400,
        v,
        "ban level ROUTINE_OCCUPY is not compatible with ban target JOB",
    );
    // 5. No level, or an unknown one: false, nothing banned.
    assert_eq!(server.put("/api/v1/state/ban/jobDefine/bn"), (200, json!(false)));
    assert_eq!(server.put("/api/v1/state/ban/jobDefine/bn?level=bogus"), (200, json!(false)));
    assert_eq!(server.put("/api/v1/state/ban/global?level=NONE"), (200, json!(false)));
    assert_eq!(submit(&server, "t4").0, 201);
    server.wait_job_state("bn", "t4", "SUCCESS");
    // 6. Levels are case-insensitive.
    assert_eq!(server.put("/api/v1/state/ban/jobDefine/bn?level=task_pick"), (200, json!(true)));
    assert_eq!(submit(&server, "t5").0, 201);
    server.wait("/api/v1/state/todoTasks?jobName=bn&trigger=t5", 30, |v| v.as_array().is_some_and(|a| a.len() == 1));
    stays_todo(&server, "t5");
    assert_eq!(server.put("/api/v1/state/resume/jobDefine/bn"), (200, json!(true)));
    server.wait_job_state("bn", "t5", "SUCCESS");
    // 7. Unknown targets.
    assert_error(
        &server.put("/api/v1/state/ban/jobDefine/ghost?level=TASK_PICK"),
        404,
        "TC_FATAL_JOB_EXCEPTION",
        "job define ghost doesn't exist",
    );
    assert_error(
        &server.put("/api/v1/state/ban/job/bn/zzz?level=TASK_PICK"),
        404,
        "TC_FATAL_JOB_EXCEPTION",
        "alive job (bn, zzz) doesn't exist",
    );
}

#[test]
fn job_scope_bans_apply_to_that_job_only() {
    // TC-67 (D2: TasCreed ignores job-scope bans; we apply them).
    let ws = Workspace::new();
    ws.define("bn", BN);
    ws.define("bs", BS);
    let server = ws.serve(&[]);
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    assert_eq!(submit(&server, "t4").0, 201);
    assert_eq!(submit(&server, "t5").0, 201);
    server.wait("/api/v1/state/todoTasks?jobName=bn", 30, |v| v.as_array().is_some_and(|a| a.len() == 2));
    assert_eq!(server.put("/api/v1/state/ban/job/bn/t4?level=TASK_PICK"), (200, json!(true)));
    assert_error(
        &server.put("/api/v1/state/ban/job/bn/t4?level=JOB_SUBMIT"),
        400,
        "TC_FATAL_VALIDATION_EXCEPTION",
        "not applicable",
    );
    assert_eq!(server.put("/api/v1/state/resume/global"), (200, json!(true)));
    server.wait_job_state("bn", "t5", "SUCCESS");
    stays_todo(&server, "t4");
    assert_eq!(server.put("/api/v1/state/resume/job/bn/t4"), (200, json!(true)));
    server.wait_job_state("bn", "t4", "SUCCESS");

    // TASK_CREATE vs TASK_PICK at job scope, told apart by creation: `bs` has 4 shards but
    // creates 1 task at a time; raising maxTaskCount to 4 makes its job create the other 3 at
    // once, unless TASK_CREATE is banned for it. TASK_CREATE covers TASK_PICK (spec §14), so
    // neither banned job runs anything; an unbanned job goes on.
    assert_eq!(server.put("/api/v1/state/ban/global?level=TASK_PICK"), (200, json!(true)));
    for trigger in ["t6", "t7"] {
        assert_eq!(server.post("/api/v1/job", &json!({"jobName": "bs", "trigger": trigger})).0, 201);
    }
    server.wait("/api/v1/state/todoTasks?jobName=bs", 30, |v| v.as_array().is_some_and(|a| a.len() == 2));
    assert_eq!(server.put("/api/v1/state/ban/job/bs/t6?level=TASK_CREATE"), (200, json!(true)));
    assert_eq!(server.put("/api/v1/state/ban/job/bs/t7?level=TASK_PICK"), (200, json!(true)));
    for trigger in ["t6", "t7"] {
        let update = json!({"jobName": "bs", "trigger": trigger,
            "steps": [{"stepName": "s", "shardConf": {"maxTaskCount": 4}}]});
        let (status, job) = server.post("/api/v1/job/update", &update);
        assert_eq!(status, 200, "{job}");
    }
    assert_eq!(server.put("/api/v1/state/resume/global"), (200, json!(true)));
    let shards = |trigger: &str| bs_tasks(&server, trigger);
    // TASK_PICK: the other shards are created, nothing is picked.
    server.wait("/api/v1/state/todoTasks?jobName=bs&trigger=t7", 30, |v| v.as_array().is_some_and(|a| a.len() == 4));
    // An unbanned job of the same define runs meanwhile.
    assert_eq!(server.post("/api/v1/job", &json!({"jobName": "bs", "trigger": "t8"})).0, 201);
    server.wait_job_state("bs", "t8", "SUCCESS");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(shards("t7"), ["s.shard-0 UNDONE", "s.shard-1 UNDONE", "s.shard-2 UNDONE", "s.shard-3 UNDONE"]);
    assert_eq!(server.get("/api/v1/state/todoTasks?jobName=bs&trigger=t7").1.as_array().map(Vec::len), Some(4));
    // TASK_CREATE: no new shard, and the existing one is not picked either.
    assert_eq!(shards("t6"), ["s.shard-0 UNDONE"]);
    assert_eq!(server.get("/api/v1/state/todoTasks?jobName=bs&trigger=t6").1.as_array().map(Vec::len), Some(1));
    assert_eq!(server.get("/api/v1/job/bs/t6").1["state"], "UNDONE");
    // Resumed, each runs to the end; t6 creates its remaining shards now.
    for trigger in ["t6", "t7"] {
        assert_eq!(server.put(&format!("/api/v1/state/resume/job/bs/{trigger}")), (200, json!(true)));
        server.wait_job_state("bs", trigger, "SUCCESS");
        assert_eq!(shards(trigger).len(), 4, "{trigger}");
    }
}
