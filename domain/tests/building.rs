//! Part B and D of cases.md, spec §4: building jobs from define + request.

#![allow(clippy::type_complexity)]

mod common;
use common::*;
use tascreed_domain::*;

/// TC-12, immediately after submit.
#[test]
fn tc12_build_from_req1() {
    let sim = Sim::new(SAMPLE, REQ1);
    let job = &sim.job;
    assert_eq!((job.priority, job.state), (Some(2), JobState::Undone));
    assert_eq!(job.params, params(&[("p1", "1"), ("p2", "2")]));
    assert!(job.steps.iter().all(|s| s.state == StepState::Dormant));
    let prep = serde_json::to_value(sim.step("prep")).unwrap();
    assert_eq!(prep["shardConf"], serde_json::json!({"shard": 6, "maxTaskCount": 2}));
    assert!(prep.get("packConf").is_none());
    assert!(!sim.step("aggr-2").ignore);
    let api = job.api_json(T0);
    assert_eq!(api["progression"], "0.00%");
    assert_eq!(api["createTime"], "2021-10-12T00:53:20.000Z");
    assert!(api.get("define").is_none());
    assert_eq!(api["steps"][0]["stepName"], "prep");
}

/// REQ2: step trait amendments and the ignore flag.
#[test]
fn req2_traits_and_ignore() {
    let sim = Sim::new(SAMPLE, REQ2);
    assert!(sim.job.traits.is_empty());
    assert_eq!(sim.step("prep").traits, [Trait::Archive].into());
    assert_eq!(sim.step("prep").shard_conf.as_ref().unwrap().max_task_count, Some(20));
    assert_eq!(sim.step("aggr-2").traits, [Trait::Archive].into());
    assert!(sim.step("aggr-2").ignore);
}

/// TC-32: param merge order and updated params.
#[test]
fn tc32_param_merge_and_updated_params() {
    let mut sim = Sim::new(
        r#"{"jobName":"par","params":{"a":"D","b":"D","c":"D"},"steps":[
         {"stepName":"s1","params":{"b":"S","d":"S"}},
         {"stepName":"s2","dependentStep":"s1"},
         {"stepName":"s3"}]}"#,
        r#"{"jobName":"par","trigger":"t","params":{"a":"R","c":"R","e":"R"},"steps":[{"stepName":"s1","params":{"d":"Q","f":"Q"}}]}"#,
    );
    sim.act("s1", &[Act::OkParams(&[("c", "U"), ("g", "U")])]).act("s3", &[Act::FailParams(&[("h", "X")])]);
    assert_eq!(sim.job.params, params(&[("a", "R"), ("b", "D"), ("c", "R"), ("e", "R")]));
    assert_eq!(sim.step("s1").params, params(&[("b", "S"), ("d", "Q"), ("f", "Q")]));
    sim.run();
    let p = |n: &str| sim.task(n).unwrap().params.clone();
    assert_eq!(p("s1"), params(&[("a", "R"), ("b", "S"), ("c", "R"), ("d", "Q"), ("e", "R"), ("f", "Q")]));
    assert_eq!(p("s3"), params(&[("a", "R"), ("b", "D"), ("c", "R"), ("e", "R")]));
    assert_eq!(sim.job.updated_params, params(&[("c", "U"), ("g", "U")]));
    assert_eq!(p("s2"), params(&[("a", "R"), ("b", "D"), ("c", "U"), ("e", "R"), ("g", "U")]));
    let st: Vec<StepState> = ["s1", "s2", "s3"].iter().map(|s| sim.state(s)).collect();
    assert_eq!(st, [StepState::Success, StepState::Success, StepState::Failed]);
    assert_eq!(sim.job.state, JobState::Failed);
}

/// Spec §4 table, field by field: (request, check).
#[test]
fn build_rules() {
    let d = define(
        r#"{"jobName":"b","priority":3,"duration":1000,"steps":[
          {"stepName":"s","exeClass":"def-exec","affinityRule":"lvs","maxPickTimes":4,"duration":500,
           "fuelLimit":10,"timeoutMs":20},
          {"stepName":"p","stepType":"PACK","packConf":{"size":10,"start":0,"end":99}},
          {"stepName":"n","ignorable":false}]}"#,
    );
    let build = |r: &str| build_job(&d, &JobRequest::parse(r).unwrap(), T0);
    let j = build(r#"{"jobName":"b","trigger":"t"}"#).unwrap();
    let s = j.step("s").unwrap();
    assert_eq!((j.priority, j.duration), (Some(3), Some(1000)));
    assert_eq!(
        (s.executor.as_deref(), s.affinity_rule.as_deref(), s.max_pick_times),
        (Some("def-exec"), Some("lvs"), Some(4))
    );
    assert_eq!((s.duration, s.fuel_limit, s.timeout_ms), (Some(500), Some(10), Some(20)));
    let j = build(
        r#"{"name":"b","trigger":"t","priority":9,"duration":-1,"steps":[
          {"name":"s","exeClass":"req-exec","affinityRule":" ","maxErrorTimes":1,"duration":-1,"fuelLimit":7,"shardConf":{"shard":3}},
          {"name":"s","exeClass":"second-ignored"},
          {"name":"p","packConf":{"size":5}},
          {"name":"n","ignore":true},
          {"name":"ghost","ignore":true}]}"#,
    )
    .unwrap();
    let s = j.step("s").unwrap();
    assert_eq!((j.priority, j.duration), (Some(9), None));
    assert_eq!(
        (s.executor.as_deref(), s.affinity_rule.as_deref(), s.max_pick_times),
        (Some("req-exec"), Some("lvs"), Some(1))
    );
    assert_eq!((s.duration, s.fuel_limit, s.shard_conf.is_none()), (None, Some(7), true));
    assert_eq!(j.step("p").unwrap().pack_conf.as_ref().unwrap().size, Some(5));
    assert!(!j.step("n").unwrap().ignore, "ignore of a non-ignorable step is dropped");
    assert_eq!(j.define, d, "the job keeps its define snapshot");
    // validation of the built job
    let e = build(r#"{"jobName":"b","trigger":"-x"}"#).unwrap_err();
    assert!(e.mentions("job trigger invalid: -x"), "{e}");
    let e = build(r#"{"jobName":"b"}"#).unwrap_err();
    assert!(e.mentions("job trigger invalid: null"), "{e}");
    let e = build(r#"{"jobName":"b","trigger":"t","priority":0}"#).unwrap_err();
    assert!(e.mentions("priority invalid: 0 < 0"), "{e}");
    let e = build(r#"{"jobName":"b","trigger":"t","steps":[{"stepName":"p","packConf":{"size":0}}]}"#).unwrap_err();
    assert!(e.mentions("pack size invalid: 0 <= 0") && e.issues[0].path == "steps[0].packConf.size", "{e}");
}

/// Issues of a built job point into the request when the request set the value (its steps are
/// numbered as the submitter wrote them), else into the define.
#[test]
fn build_issues_point_into_the_request() {
    const D: &str = r#"{"jobName":"b","steps":[{"stepName":"s"},
        {"stepName":"p","stepType":"PACK","packConf":{"size":10,"start":0,"end":99}},{"stepName":"n"}]}"#;
    let d = define(D);
    let build = |r: &str| build_job(&d, &JobRequest::parse(r).unwrap(), T0).unwrap_err();
    let e = build(
        r#"{"jobName":"b","trigger":"t","steps":[{"stepName":"n","after":{"timeStr":"soon"}},
          {"stepName":"p","packConf":{"size":0,"end":-5}},{"stepName":"s","fuelLimit":0}]}"#,
    );
    let paths: Vec<&str> = e.issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        ["steps[0].after", "steps[2].fuelLimit", "steps[1].packConf.size", "steps[1].packConf.end"],
        "{e}"
    );
    assert!(e.issues[0].message.starts_with("parse time format fails: "), "{e}");
    assert_eq!(e.issues[3].message, "pack end invalid: -5 < 0");
    // a later duplicate of a request step is ignored, so it is not where a value came from
    let e = build(r#"{"jobName":"b","trigger":"t","steps":[{"stepName":"p","packConf":{"size":0}},{"stepName":"p"}]}"#);
    assert_eq!(e.issues[0].path, "steps[0].packConf.size", "{e}");
    // a value the request did not set came from the define (here one never validated)
    let raw =
        JobDefine::parse(r#"{"jobName":"b","steps":[{"stepName":"s"},{"stepName":"h","stepType":"SHARD"}]}"#).unwrap();
    let req =
        JobRequest::parse(r#"{"jobName":"b","trigger":"t","steps":[{"stepName":"h","maxPickTimes":3}]}"#).unwrap();
    let e = build_job(&raw, &req, T0).unwrap_err();
    assert_eq!(e.issues[0].path, "define.steps[1].shardConf", "{e}");
    assert_eq!(e.issues[0].message, "shardConf is null");
}

/// Spec §2.5 ReqTime and §4 `after`.
#[test]
fn request_after_times() {
    let d = define(r#"{"jobName":"a","steps":[{"stepName":"s"}]}"#);
    let build = |r: &str| build_job(&d, &JobRequest::parse(r).unwrap(), T0);
    let j = build(r#"{"jobName":"a","trigger":"t","after":{"timeString":"2021-10-12 00:53:20","timePattern":"yyyy-MM-dd HH:mm:ss"},
        "steps":[{"stepName":"s","after":{"long":5}}]}"#)
    .unwrap();
    assert_eq!((j.after, j.step("s").unwrap().after), (Some(1_634_000_000_000), Some(5)));
    assert_eq!(j.api_json(T0)["after"], "2021-10-12T00:53:20.000Z");
    let e = build(r#"{"jobName":"a","trigger":"t","after":{"timeStr":"yesterday"}}"#).unwrap_err();
    assert!(e.mentions("parse time format fails") && e.issues[0].path == "after", "{e}");
    // a year of request text beyond any calendar is a validation error, not a panic
    let e = build(
        r#"{"jobName":"a","trigger":"t","after":{"timeString":"999999999999999999-01-01","timePattern":"yyyy-MM-dd"},
        "steps":[{"stepName":"s","after":{"timeString":"300000-01-01 00:00","timePattern":"yyyy-MM-dd HH:mm","timeZone":"CTT"}}]}"#,
    )
    .unwrap_err();
    let got: Vec<(&str, bool)> =
        e.issues.iter().map(|i| (i.path.as_str(), i.message.starts_with("parse time format fails: "))).collect();
    assert_eq!(got, [("after", true), ("steps[0].after", true)], "{e}");
    assert!(e.mentions("year 999999999999999999 out of range") && e.mentions("year 300000 out of range"), "{e}");
    // an absurd epoch ms is taken as given (Java's Date takes any long) and still renders
    let j = build(r#"{"jobName":"a","trigger":"t","after":{"timestamp":9223372036854775807}}"#).unwrap();
    assert_eq!(j.api_json(T0)["after"], "292278994-08-17T07:12:55.807Z");
}

/// TC-76 (durations part).
#[test]
fn tc76_durations() {
    let d = define(r#"{"jobName":"slow","duration":1000,"steps":[{"stepName":"a","duration":500}]}"#);
    let mut sim = Sim::with_define(d.clone(), &req("slow"));
    sim.advance();
    assert_eq!((sim.job.duration, sim.task("a").unwrap().duration), (Some(1000), Some(500)));
    assert!(sim.job.is_slow(T0 + 3000) && sim.task("a").unwrap().is_slow(T0 + 3000));
    assert!(!sim.job.is_slow(T0 + 1000), "strictly longer");
    let job = |r: &str| build_job(&d, &JobRequest::parse(r).unwrap(), T0).unwrap();
    assert_eq!(job(r#"{"jobName":"slow","trigger":"t","duration":-1}"#).duration, None);
    assert!(!job(r#"{"jobName":"slow","trigger":"t","duration":60000}"#).is_slow(T0 + 3000));
    assert_eq!(
        job(r#"{"jobName":"slow","trigger":"t","steps":[{"stepName":"a","duration":-1}]}"#).steps[0].duration,
        None
    );
}

/// DESIGN.md executor precedence: request step > define step > manifest binding.
#[test]
fn executor_resolution() {
    let bindings = [
        Binding { executor: "old".into(), job_name: "j".into(), step_name: "s".into() },
        Binding { executor: "new".into(), job_name: "j".into(), step_name: "s".into() },
    ];
    assert_eq!(resolve_executor(Some("explicit"), "j", "s", &bindings), Some("explicit"));
    assert_eq!(resolve_executor(None, "j", "s", &bindings), Some("new"));
    assert_eq!(resolve_executor(Some(" "), "j", "s", &bindings), Some("new"));
    assert_eq!(resolve_executor(None, "j", "other", &bindings), None);
    let mut sim = Sim::new(
        r#"{"jobName":"j","steps":[{"stepName":"s","exeClass":"d"},{"stepName":"t"}]}"#,
        r#"{"jobName":"j","trigger":"t","steps":[{"stepName":"t","executor":"r"}]}"#,
    );
    sim.advance();
    assert_eq!(sim.task("s").unwrap().executor.as_ref().map(|e| e.name.as_str()), Some("d"));
    assert_eq!(sim.task("t").unwrap().executor.as_ref().map(|e| e.name.as_str()), Some("r"));
}

#[test]
fn stored_job_and_task_round_trip() {
    let mut sim = Sim::new(SAMPLE, REQ1);
    sim.advance();
    let json = sim.job.to_json().unwrap();
    assert_eq!(Job::from_json(&json).unwrap(), sim.job);
    let t = sim.task("prep.shard-0").unwrap();
    let tj = serde_json::to_value(t).unwrap();
    assert_eq!(tj["shardConf"], serde_json::json!({"total": 6, "index": 0}));
    assert_eq!(tj["state"], "UNDONE");
    assert_eq!(tj["createTime"], "2021-10-12T00:53:20.000Z");
    assert_eq!(serde_json::from_value::<Task>(tj).unwrap(), *t);
    // Stored as runs, shown as TasCreed's map; both read back.
    let step = serde_json::to_value(sim.step("prep")).unwrap();
    assert_eq!(step["taskStates"], serde_json::json!([[0, 1, "UNDONE"]]));
    let api = sim.job.api_json(0);
    let prep = api["steps"].as_array().unwrap().iter().find(|s| s["stepName"] == "prep").unwrap();
    assert_eq!(prep["taskStates"], serde_json::json!({"0": "UNDONE", "1": "UNDONE"}));
    let mut from_map = serde_json::to_value(&sim.job).unwrap();
    for s in from_map["steps"].as_array_mut().unwrap() {
        let name = s["stepName"].as_str().unwrap().to_string();
        s["taskStates"] = serde_json::to_value(&sim.step(&name).task_states).unwrap();
    }
    assert_eq!(serde_json::from_value::<Job>(from_map).unwrap(), sim.job, "TasCreed's map form reads too");
}

#[test]
fn task_state_runs_merge_only_consecutive_equal_states() {
    use std::collections::BTreeMap;
    use tascreed_domain::TaskState::{Error, Failed, Undone};
    let mut sim = Sim::new(SAMPLE, REQ1);
    sim.advance();
    let mut job = sim.job.clone();
    let states: BTreeMap<i64, _> =
        [(-1, Undone), (0, Undone), (1, Undone), (2, Failed), (3, Undone), (5, Undone), (6, Error)].into();
    job.steps[0].task_states = states.clone();
    let stored = serde_json::to_value(&job.steps[0]).unwrap();
    assert_eq!(
        stored["taskStates"],
        serde_json::json!([[-1, 1, "UNDONE"], [2, 2, "FAILED"], [3, 3, "UNDONE"], [5, 5, "UNDONE"], [6, 6, "ERROR"]])
    );
    let back = Job::from_json(&job.to_json().unwrap()).unwrap();
    assert_eq!(back.steps[0].task_states, states);
    // A run that is empty or absurdly long is refused, not allocated.
    let mut bad = serde_json::to_value(&job).unwrap();
    bad["steps"][0]["taskStates"] = serde_json::json!([[5, 4, "UNDONE"]]);
    assert!(serde_json::from_value::<Job>(bad.clone()).is_err());
    bad["steps"][0]["taskStates"] = serde_json::json!([[0, i64::MAX, "UNDONE"]]);
    assert!(serde_json::from_value::<Job>(bad).is_err());
}

/// Spec §2.8: TasCreed's task JSON reads as-is — state from `result.state`, updated configs as
/// objects — and is written back in that shape.
#[test]
fn tascreed_shaped_task() {
    let record = serde_json::json!({
        "taskName": "a", "jobName": "j", "trigger": "t", "stepName": "a", "exeClass": "x.Y",
        "createTime": "2021-10-12T00:53:20.000Z", "modifyTime": "2021-10-12T00:53:20.000Z",
        "modifyThread": "w-1",
        "result": {"state": "SUCCESS", "reason": "done"},
        "updatedConfigs": {
            "s": {"shardConf": {"shard": 4}, "maxPickTimes": 3},
            "p": {"packConf": {"size": 5, "end": 19}, "shardConf": null}
        }
    });
    let task: Task = serde_json::from_value(record).unwrap();
    assert_eq!(task.state, TaskState::Success);
    let s = &task.updated_configs["s"];
    assert_eq!((s.shard_conf.as_ref().and_then(|c| c.shard), s.max_pick_times), (Some(4), Some(3)));
    assert_eq!(task.updated_configs["p"].pack_conf.as_ref().and_then(|c| c.end), Some(19));
    let out = serde_json::to_value(&task).unwrap();
    assert_eq!(out["state"], "SUCCESS");
    assert_eq!(
        out["updatedConfigs"],
        serde_json::json!({"p": {"packConf": {"size": 5, "end": 19}}, "s": {"shardConf": {"shard": 4}, "maxPickTimes": 3}})
    );
    assert_eq!(serde_json::from_value::<Task>(out).unwrap(), task);
    // the finished task carries the typed configs to the fold
    let ft = FinishedTask::from(&task);
    assert_eq!(ft.updated_configs.len(), 2);
    assert_eq!(ft.updated_configs[1], ("s".to_string(), s.clone()));

    // a todo record has no result state: UNDONE, whatever else it carries
    let todo: Task = serde_json::from_value(serde_json::json!({
        "taskName": "a", "jobName": "j", "trigger": "t", "stepName": "a",
        "createTime": 0, "modifyTime": 0, "result": {"progression": "50.00%"}
    }))
    .unwrap();
    assert_eq!(todo.state, TaskState::Undone);
    assert!(todo.updated_configs.is_empty());

    // rows stored before configs were typed held each conf as JSON text; text that is no conf
    // was ignored by the fold then and is dropped now
    let legacy: Task = serde_json::from_value(serde_json::json!({
        "taskName": "a", "jobName": "j", "trigger": "t", "stepName": "a", "state": "SUCCESS",
        "createTime": 0, "modifyTime": 0,
        "updatedConfigs": {"s": "{\"shardConf\":{\"shard\":4},\"maxPickTimes\":3}", "x": "not json"}
    }))
    .unwrap();
    assert_eq!(legacy.state, TaskState::Success);
    assert_eq!(legacy.updated_configs.keys().collect::<Vec<_>>(), ["s"]);
    assert_eq!(&legacy.updated_configs["s"], s);
}
