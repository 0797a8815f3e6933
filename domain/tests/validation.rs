//! Part A of cases.md and the messages of spec §3: define validation.

#![allow(clippy::type_complexity)]

mod common;
use common::*;
use tascreed_domain::*;

fn step_define(step: &str) -> String {
    format!(r#"{{"jobName":"job","steps":[{step}]}}"#)
}

/// TC-01
#[test]
fn tc01_minimal_define_is_accepted() {
    let d = define(r#"{"jobName":"job","steps":[{"stepName":"step"}]}"#);
    let s = &d.steps[0];
    assert_eq!((s.kind(), s.effort(), s.phase(), s.dependencies().len()), (StepType::Simple, 1, 0, 0));
    let mut sim = Sim::with_define(d, &req("job"));
    sim.run();
    assert_eq!(sim.names(), ["step"]);
    assert_eq!(sim.job.state, JobState::Success);
}

/// TC-03, TC-05, spec §3 messages: (step or define JSON, key phrase or None = accepted).
#[test]
fn tc03_tc05_field_rules() {
    let cases: &[(&str, Option<&str>)] = &[
        // TC-03
        (r#"{"jobName":"job","steps":[]}"#, Some("step list is empty")),
        (r#"{"jobName":"job"}"#, Some("step list is empty")),
        // TC-05
        (&step_define(r#"{"stepName":"s","stepType":"SHARD"}"#), Some("shardConf is null")),
        (&step_define(r#"{"stepName":"s","stepType":"SHARD","shardConf":{}}"#), Some("shard num invalid: null <= 0")),
        (
            &step_define(r#"{"stepName":"s","stepType":"SHARD","shardConf":{"shard":0}}"#),
            Some("shard num invalid: 0 <= 0"),
        ),
        (&step_define(r#"{"stepName":"s","stepType":"SHARD","shardConf":{"shard":12}}"#), None),
        (
            &step_define(r#"{"stepName":"s","stepType":"SHARD","shardConf":{"shard":12,"startShardId":-2}}"#),
            Some("start shard id invalid: -2 < 0"),
        ),
        (&step_define(r#"{"stepName":"s","stepType":"SHARD","shardConf":{"shard":3,"startShardId":5}}"#), None),
        (&step_define(r#"{"stepName":"s","stepType":"SHARD","shardConf":{"shard":5,"maxTaskCount":0}}"#), None),
        // pack conf validator
        (&step_define(r#"{"stepName":"s","stepType":"PACK"}"#), Some("packConf is null")),
        (
            &step_define(r#"{"stepName":"s","stepType":"PACK","packConf":{"start":0,"end":9}}"#),
            Some("pack size invalid: null <= 0"),
        ),
        (
            &step_define(r#"{"stepName":"s","stepType":"PACK","packConf":{"size":-1,"start":0,"end":9}}"#),
            Some("pack size invalid: -1 <= 0"),
        ),
        (
            &step_define(r#"{"stepName":"s","stepType":"PACK","packConf":{"size":1,"end":9}}"#),
            Some("pack start invalid: null < 0"),
        ),
        (
            &step_define(r#"{"stepName":"s","stepType":"PACK","packConf":{"size":1,"start":0}}"#),
            Some("pack end invalid: null < 0"),
        ),
        (&step_define(r#"{"stepName":"s","stepType":"PACK","packConf":{"size":1,"start":0,"infinite":true}}"#), None),
        (
            &step_define(
                r#"{"stepName":"s","stepType":"PACK","packConf":{"size":1,"start":0,"end":3,"startPackId":-1}}"#,
            ),
            Some("start pack id invalid: -1 < 0"),
        ),
        (&step_define(r#"{"stepName":"s","stepType":"PACK","packConf":{"size":10,"start":46,"end":45}}"#), None),
        // job define fields
        (r#"{"jobName":"123","steps":[{"stepName":"s"}]}"#, Some("job define name invalid: 123")),
        (r#"{"steps":[{"stepName":"s"}]}"#, Some("job define name invalid: null")),
        (r#"{"jobName":"j","version":-1,"steps":[{"stepName":"s"}]}"#, Some("version invalid: -1 < 0")),
        (r#"{"jobName":"j","priority":0,"steps":[{"stepName":"s"}]}"#, Some("priority invalid: 0 < 0")),
        (&step_define(r#"{"stepName":"---"}"#), Some("step define name invalid: ---")),
        (&step_define(r#"{"stepName":"s","dependency":{"phase":-1}}"#), Some("step phase invalid: -1")),
        (&step_define(r#"{"stepName":"s","effort":0}"#), Some("effort invalid: 0 <= 0")),
        (&step_define(r#"{"stepName":"s","effort":-3}"#), Some("effort invalid: -3 <= 0")),
        (&step_define(r#"{"stepName":"s","fuelLimit":0}"#), Some("fuel limit invalid: 0 <= 0")),
        (&step_define(r#"{"stepName":"s","timeoutMs":-5}"#), Some("timeout invalid: -5 <= 0")),
        (&step_define(r#"{"stepName":"s"},{"stepName":"s"},{"stepName":"s"}"#), Some("s duplicate times 3")),
        (&step_define(r#"{"name":"x"},{}, {}"#), Some("null duplicate times 2")),
        // stage 3: phase order
        (
            &step_define(r#"{"stepName":"a","dependency":{"phase":1}},{"stepName":"b","dependentStep":"a"}"#),
            Some("these steps depend on steps in later phase: b"),
        ),
    ];
    for (json, want) in cases {
        let got = JobDefine::load(json, ValidateOptions::default());
        match (want, got) {
            (None, Ok(_)) => {}
            (None, Err(e)) => panic!("{json}: rejected: {e}"),
            (Some(phrase), Ok(_)) => panic!("{json}: accepted, wanted {phrase}"),
            (Some(phrase), Err(e)) => assert!(e.to_string().contains(phrase), "{json}: {e} lacks {phrase}"),
        }
    }
}

#[test]
fn errors_carry_field_paths() {
    let e = JobDefine::parse(&step_define(
        r#"{"stepName":"a"},{"stepName":"s","stepType":"SHARD","shardConf":{"shard":-1}}"#,
    ))
    .expect("parses")
    .validate(ValidateOptions::default())
    .unwrap_err();
    assert_eq!(e.issues[0].path, "steps[1].shardConf.shard");
    assert_eq!(e.issues[0].message, "shard num invalid: -1 <= 0");
}

/// Parse errors of defines and requests name the field (alias spellings read the same).
#[test]
fn parse_errors_name_the_path() {
    let path = |r: Result<JobRequest, DefineError>| match r {
        Err(DefineError::Parse(p)) => p.path,
        other => panic!("not a parse error: {other:?}"),
    };
    let req = |body: &str| JobRequest::parse(body);
    assert_eq!(path(req(r#"{"jobName":"j","priority":"high"}"#)), "priority");
    assert_eq!(
        path(req(r#"{"steps":[{"stepName":"a"},{"name":"b","packConf":{"size":"x"}}]}"#)),
        "steps[1].packConf.size"
    );
    assert_eq!(path(req(r#"{"after":{"timestamp":"now"}}"#)), "after.timestamp");
    assert_eq!(path(req(r#"{"steps":[{"stepName":"a","traits":{"enable":[1]}}]}"#)), "steps[0].traits.enable[0]");
    // syntax errors have no field to name
    assert_eq!(path(req(r#"{"jobName":"j""#)), "");
    assert_eq!(path(req(r#"{"jobName":"j"} x"#)), "");
    let e = JobDefine::parse(r#"{"jobName":"j","steps":[{"stepName":"s","shardConf":{"shard":1.5}}]}"#).unwrap_err();
    assert!(e.to_string().starts_with("parse json fails: steps[0].shardConf.shard: "), "{e}");
}

#[test]
fn json_reading_rules() {
    // unknown enum value: a clear parse error naming the value
    let e = JobDefine::parse(&step_define(r#"{"stepName":"r"},{"stepName":"s","stepType":"FOO"}"#)).unwrap_err();
    assert!(matches!(&e, DefineError::Parse(p) if p.path == "steps[1].stepType"), "{e:?}");
    assert!(e.to_string().starts_with("parse json fails: steps[1].stepType: unknown variant `FOO`"), "{e}");
    // unknown fields ignored; aliases accepted
    let d = define(
        r#"{"name":"j","whatever":1,"steps":[{"name":"s","type":"SHARD","exeClass":"x","maxErrorTimes":3,
            "shardConf":{"sharding":4},"extra":{"deep":true}},
           {"name":"t","dependency":{"doneSteps":["s"],"phase":0}},
           {"name":"u","dependency":{"steps":["s"]},"dependentStep":"t"}]}"#,
    );
    let s = &d.steps[0];
    assert_eq!(
        (d.name(), s.kind(), s.executor.as_deref(), s.max_pick_times),
        ("j", StepType::Shard, Some("x"), Some(3))
    );
    assert_eq!(s.shard_conf.as_ref().and_then(|c| c.shard), Some(4));
    assert_eq!(d.steps[2].dependencies(), ["s", "t"]);
    // a define round-trips through its stored form
    let again: JobDefine = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(again, d);
}

/// TC-07
#[test]
fn tc07_cycle_detection() {
    let deps = |s: &[(&str, &[&str])]| -> String {
        let steps: Vec<String> = s
            .iter()
            .map(|(n, d)| {
                format!(r#"{{"stepName":"{n}","dependency":{{"steps":{}}}}}"#, serde_json::to_string(d).unwrap())
            })
            .collect();
        format!(r#"{{"jobName":"g","steps":[{}]}}"#, steps.join(","))
    };
    define(&deps(&[("s1", &[]), ("s2", &["s1"]), ("s3", &["s1"]), ("s4", &["s2", "s3"])]));
    let e =
        reject(&deps(&[("s1", &[]), ("s2", &["s1", "s5"]), ("s3", &["s1"]), ("s4", &["s2", "s3"]), ("s5", &["s4"])]));
    assert!(e.contains("step graph has cycle, these steps would stuck: s2, s4, s5"), "{e}");
    let e = reject(&deps(&[
        ("prep", &[]),
        ("c1", &["prep", "c3"]),
        ("c2", &["prep", "c1"]),
        ("c3", &["prep", "c2"]),
        ("next-1", &["c1", "c2"]),
        ("next-2", &["c2", "c3"]),
        ("other-1", &[]),
        ("other-2", &["other-1"]),
    ]));
    assert!(e.contains("would stuck: c1, c2, c3, next-1, next-2"), "{e}");
    let e = reject(r#"{"jobName":"self","steps":[{"stepName":"A","dependency":{"steps":["A"]}}]}"#);
    assert!(e.contains("would stuck: A"), "{e}");
    // config define.graph.validate.enable = false
    let off = ValidateOptions { graph_cycle_check: false };
    assert!(
        JobDefine::load(r#"{"jobName":"self","steps":[{"stepName":"A","dependency":{"steps":["A"]}}]}"#, off).is_ok()
    );
}

/// TC-09 (D5)
#[test]
fn tc09_unknown_dependency_is_rejected() {
    let e = reject(r#"{"jobName":"unk","steps":[{"stepName":"A"},{"stepName":"B","dependency":{"steps":["nope"]}}]}"#);
    assert!(e.contains("nope") && e.contains("unknown"), "{e}");
    let e = reject(r#"{"jobName":"unk","steps":[{"stepName":"A","dependentStep":"ghost"}]}"#);
    assert!(e.contains("ghost"), "{e}");
}

/// TC-11
#[test]
fn tc11_trait_filtering_by_container() {
    let mut sim = Sim::new(
        SAMPLE,
        r#"{"jobName":"sample","trigger":"tr","traits":{"enable":["canIgnore","deleted","canFail"]}}"#,
    );
    assert!(sim.job.traits.is_empty());
    assert_eq!(sim.step("prep").traits, [Trait::CanFail, Trait::Archive].into());
    let json = serde_json::to_value(sim.step("prep")).unwrap();
    assert_eq!(json["traits"], serde_json::json!(["CAN_FAIL", "ARCHIVE"]));
    assert!(sim.job.api_json(T0).get("traits").is_none());
    sim.run();
    for t in &sim.created {
        let want: TraitSet = if t.step_name == "prep" { [Trait::Archive].into() } else { TraitSet::new() };
        assert_eq!(t.traits, want, "{}", t.task_name);
    }
    let d = define(r#"{"jobName":"j","steps":[{"stepName":"s","traits":["CanFail"]}]}"#);
    assert!(d.steps[0].traits.is_empty());
}
