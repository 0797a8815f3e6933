//! Part E and H of cases.md: step and job state machines, done ranges, progression.

#![allow(clippy::type_complexity)]

mod common;
use StepState::*;
use common::*;
use tascreed_domain::*;

fn chain_with(a_traits: &str, b_traits: &str) -> String {
    format!(
        r#"{{"jobName":"chain","steps":[{{"stepName":"A"{a_traits}}},
         {{"stepName":"B","dependency":{{"steps":["A"]}}{b_traits}}},
         {{"stepName":"C","dependency":{{"steps":["B"]}}}}]}}"#
    )
}

/// TC-35, TC-36, TC-37, TC-38, TC-40: chains, as (define, behaviour of A, tasks, A/B/C, job, progression).
#[test]
fn chains() {
    let can_fail = r#","traits":["canFail"]"#;
    let cases: &[(&str, String, Act, &[&str], [StepState; 3], JobState, &str)] = &[
        (
            "TC-35",
            chain_with("", ""),
            Act::Ok,
            &["A", "B", "C"],
            [Success, Success, Success],
            JobState::Success,
            "100.00%",
        ),
        (
            "TC-36",
            chain_with("", ""),
            Act::Fail,
            &["A"],
            [Failed, SkipByFailed, SkipByFailed],
            JobState::Failed,
            "0.00%",
        ),
        ("TC-37", chain_with("", ""), Act::Err, &["A"], [Error, SkipByError, SkipByError], JobState::Error, "0.00%"),
        (
            "TC-38",
            chain_with(can_fail, ""),
            Act::Fail,
            &["A", "B", "C"],
            [AcceptableFailed, Success, Success],
            JobState::Success,
            "100.00%",
        ),
        (
            "TC-40a",
            chain_with(can_fail, ""),
            Act::Err,
            &["A"],
            [Error, SkipByError, SkipByError],
            JobState::Error,
            "0.00%",
        ),
        (
            "TC-40b",
            chain_with("", can_fail),
            Act::Err,
            &["A"],
            [Error, SkipByError, SkipByError],
            JobState::Error,
            "0.00%",
        ),
    ];
    for (case, define, a, tasks, steps, job, progression) in cases {
        let mut sim = Sim::new(define, &req("chain"));
        sim.act("A", std::slice::from_ref(a));
        sim.run();
        assert_eq!(sim.names(), *tasks, "{case}");
        assert_eq!([sim.state("A"), sim.state("B"), sim.state("C")], *steps, "{case}");
        assert_eq!((sim.job.state, sim.job.progression.as_str()), (*job, *progression), "{case}");
        if sim.job.state != JobState::Success {
            assert!(sim.job.steps.iter().filter(|s| s.state != Success).all(|s| s.progression == "0.00%"), "{case}");
        }
        if *case == "TC-35" {
            assert!(sim.created_in("B") > sim.created_in("A") && sim.created_in("C") > sim.created_in("B"));
            assert_eq!(sim.task("C").unwrap().dependent_step_states, Some(states(&[("B", Success)])));
        }
        if *case == "TC-38" {
            assert_eq!(sim.task("B").unwrap().dependent_step_states, Some(states(&[("A", AcceptableFailed)])));
        }
        assert_eq!(sim.job.state.can_auto_archive(), *job != JobState::Error, "{case}");
    }
}

/// TC-14
#[test]
fn tc14_can_fail_step_absorbs_a_failed_task() {
    let mut sim = Sim::new(SAMPLE, REQ1);
    sim.act("prep.shard-0", &[Act::Fail]);
    sim.advance();
    sim.work();
    sim.advance();
    assert_eq!(sim.state("prep"), Start);
    assert_eq!(sim.passes[1], ["prep.shard-2", "prep.shard-3"], "shard-0 FAILED frees its slot");
    sim.run();
    assert_eq!(sim.state("prep"), AcceptableFailed);
    assert_eq!(sim.task("calc.pack-0").unwrap().dependent_step_states, Some(states(&[("prep", AcceptableFailed)])));
    assert_eq!([sim.state("calc"), sim.state("aggr-1"), sim.state("aggr-2")], [Success; 3]);
    assert_eq!(sim.job.state, JobState::Success);
    assert_eq!(sim.step("prep").shard_done_range.as_ref().unwrap().indexes.to_string(), "[1,5]");
}

/// TC-43
#[test]
fn tc43_error_does_not_stop_independent_branches() {
    let mut sim = Sim::new(
        r#"{"jobName":"br","steps":[{"stepName":"A"},{"stepName":"X"},{"stepName":"Y","dependentStep":"X"}]}"#,
        &req("br"),
    );
    sim.act("A", &[Act::Err]).act("X", &[Act::Block]);
    sim.run();
    assert_eq!((sim.state("A"), sim.job.state), (Error, JobState::Undone));
    sim.release("X", Act::Ok);
    sim.run();
    assert_eq!([sim.state("X"), sim.state("Y")], [Success, Success]);
    assert_eq!(sim.job.state, JobState::Error);
}

/// TC-44
#[test]
fn tc44_ignoring_steps() {
    const IG: &str = r#"{"jobName":"ig","steps":[
     {"stepName":"a"},
     {"stepName":"b","dependentStep":"a","traits":["ignorable"]},
     {"stepName":"c","dependentStep":"b"},
     {"stepName":"d","ignorable":true},
     {"stepName":"e"}]}"#;
    const R: &str = r#"{"jobName":"ig","trigger":"t","steps":[{"stepName":"b","ignore":true},{"stepName":"d","ignore":true},{"stepName":"e","ignore":true}]}"#;
    // (a)
    let mut sim = Sim::new(IG, R);
    sim.advance();
    assert_eq!(sim.state("d"), Ignored);
    assert!(!sim.step("e").ignore);
    sim.run();
    assert_eq!(sim.names(), ["a", "e", "c"]);
    assert_eq!(sim.task("c").unwrap().dependent_step_states, Some(states(&[("b", Ignored)])));
    assert_eq!((sim.step("b").progression.as_str(), sim.step("d").progression.as_str()), ("100.00%", "100.00%"));
    assert_eq!(sim.job.state, JobState::Success);
    // (b)
    let mut sim = Sim::new(IG, R);
    sim.act("a", &[Act::Fail]);
    sim.run();
    let got: Vec<StepState> = ["b", "c", "d", "e"].iter().map(|s| sim.state(s)).collect();
    assert_eq!(got, [SkipByFailed, SkipByFailed, Ignored, Success]);
    assert_eq!(sim.job.state, JobState::Failed);
}

/// TC-45
#[test]
fn tc45_phase_as_finally() {
    const FIN: &str = r#"{"jobName":"fin","steps":[{"stepName":"A"},{"stepName":"B","dependentStep":"A"},{"stepName":"Z","dependency":{"phase":1}}]}"#;
    let cases: &[(&str, Act, [StepState; 2], JobState)] = &[
        ("a", Act::Fail, [Failed, SkipByFailed], JobState::Failed),
        ("b", Act::Err, [Error, SkipByError], JobState::Error),
        ("c", Act::Ok, [Success, Success], JobState::Success),
    ];
    for (case, a, [sa, sb], job) in cases {
        let mut sim = Sim::new(FIN, &req("fin"));
        sim.act("A", &[Act::Block]);
        sim.run();
        assert!(sim.task("Z").is_none(), "({case}) no Z while A runs");
        sim.release("A", a.clone());
        sim.run();
        assert_eq!(sim.task("Z").unwrap().prev_phase_step_states, Some(states(&[("A", *sa), ("B", *sb)])), "({case})");
        assert_eq!((sim.state("Z"), sim.job.state), (Success, *job), "({case})");
    }
}

/// TC-49
#[test]
fn tc49_stuck_from_a_cycle() {
    let d = JobDefine::load(
        r#"{"jobName":"cycle","steps":[{"stepName":"prep"},
          {"stepName":"c1","dependency":{"steps":["prep","c3"]}},{"stepName":"c2","dependency":{"steps":["prep","c1"]}},
          {"stepName":"c3","dependency":{"steps":["prep","c2"]}},{"stepName":"next-1","dependency":{"steps":["c1","c2"]}},
          {"stepName":"next-2","dependency":{"steps":["c2","c3"]}},{"stepName":"other-1"},
          {"stepName":"other-2","dependency":{"steps":["other-1"]}}]}"#,
        ValidateOptions { graph_cycle_check: false },
    )
    .unwrap();
    let mut sim = Sim::with_define(d, &req("cycle"));
    sim.act("other-2", &[Act::Block]);
    sim.run();
    assert_eq!(sim.job.state, JobState::Undone, "not STUCK while other-2 runs");
    sim.release("other-2", Act::Ok);
    sim.run();
    assert_eq!(sim.names(), ["prep", "other-1", "other-2"]);
    assert_eq!(sim.job.state, JobState::Stuck);
    for s in ["c1", "c2", "c3", "next-1", "next-2"] {
        assert_eq!(sim.state(s), Dormant);
    }
    assert!(sim.job.create_tasks(T0 + 1, 100).tasks.is_empty());
    let err = sim.job.retry(&mut [], T0).unwrap_err();
    assert_eq!(err.to_string(), "alive job cycle.t has no error task, no need to retry");
}

/// D3: a phase waits for every lower phase, also for ignore/skip transitions.
#[test]
fn d3_all_lower_phases_gate() {
    let mut sim = Sim::new(
        r#"{"jobName":"ph","steps":[{"stepName":"slow"},
          {"stepName":"mid","ignorable":true,"dependency":{"phase":1}},
          {"stepName":"top","dependency":{"phase":2}},
          {"stepName":"top-ig","ignorable":true,"dependency":{"phase":2}}]}"#,
        r#"{"jobName":"ph","trigger":"t","steps":[{"stepName":"mid","ignore":true},{"stepName":"top-ig","ignore":true}]}"#,
    );
    sim.act("slow", &[Act::Block]);
    sim.run();
    assert_eq!([sim.state("mid"), sim.state("top"), sim.state("top-ig")], [Dormant; 3]);
    assert_eq!(sim.names(), ["slow"]);
    sim.release("slow", Act::Ok);
    sim.run();
    assert_eq!([sim.state("mid"), sim.state("top"), sim.state("top-ig")], [Ignored, Success, Ignored]);
    assert_eq!(sim.task("top").unwrap().prev_phase_step_states, Some(states(&[("mid", Ignored)])));
}

/// D4: `after` times gate creation and skipping but never make a job STUCK.
#[test]
fn d4_after_never_stucks() {
    let later = T0 + 60_000;
    let mut sim = Sim::new(
        r#"{"jobName":"af","steps":[{"stepName":"A"},{"stepName":"B","dependentStep":"A"}]}"#,
        &format!(r#"{{"jobName":"af","trigger":"t","steps":[{{"stepName":"B","after":{{"timestamp":{later}}}}}]}}"#),
    );
    sim.act("A", &[Act::Fail]);
    sim.run();
    assert_eq!((sim.state("B"), sim.job.state), (Dormant, JobState::Undone));
    assert_eq!(sim.job.next_wake_ms(sim.now), Some(later));
    sim.now = later;
    sim.run();
    assert_eq!((sim.state("B"), sim.job.state), (SkipByFailed, JobState::Failed));
    // job-level after: no task before it
    let mut sim = Sim::new(
        r#"{"jobName":"af","steps":[{"stepName":"A"}]}"#,
        &format!(r#"{{"jobName":"af","trigger":"t","after":{{"timestamp":{later}}}}}"#),
    );
    let c = sim.advance();
    assert!(c.tasks.is_empty());
    assert_eq!((c.wake_at_ms, sim.job.state), (Some(later), JobState::Undone));
    sim.now = later;
    sim.run();
    assert_eq!(sim.job.state, JobState::Success);
}

/// TC-64 (a)
#[test]
fn tc64_done_ranges_in_a_job() {
    let mut sim = Sim::new(
        r#"{"jobName":"rng","steps":[{"stepName":"s","stepType":"SHARD","shardConf":{"shard":4}},{"stepName":"p","stepType":"PACK","packConf":{"size":100,"start":0,"end":599}}]}"#,
        &req("rng"),
    );
    sim.act("s.shard-1", &[Act::Fail]).act("p.pack-1", &[Act::Fail]).act("p.pack-4", &[Act::Fail]);
    sim.run();
    assert_eq!(sim.step("s").shard_done_range.as_ref().unwrap().indexes.to_string(), "[0,0];[2,3]");
    assert_eq!(sim.step("p").pack_done_range.as_ref().unwrap().offsets.to_string(), "[0,99];[200,399];[500,599]");
    assert_eq!((sim.state("s"), sim.state("p"), sim.job.state), (Failed, Failed, JobState::Failed));
    let api = sim.job.api_json(sim.now);
    assert_eq!(api["steps"][0]["shardDoneRange"], serde_json::json!({"indexes": "[0,0];[2,3]"}));
    assert_eq!(api["steps"][1]["packDoneRange"], serde_json::json!({"offsets": "[0,99];[200,399];[500,599]"}));
    // exact counting (D8): 3 of 4 shards, 400 of 600 offsets
    assert_eq!((sim.step("s").progression.as_str(), sim.step("p").progression.as_str()), ("75.00%", "66.67%"));
}

/// Spec §18 examples and D8.
#[test]
fn progression_examples() {
    let mut sim =
        Sim::new(r#"{"jobName":"pr","steps":[{"stepName":"a"},{"stepName":"b"},{"stepName":"c"}]}"#, &req("pr"));
    sim.act("b", &[Act::Block]).act("c", &[Act::Block]);
    sim.run();
    assert_eq!(sim.job.progression, "33.33%");
    let mut sim = Sim::new(
        r#"{"jobName":"pr","steps":[{"stepName":"a","effort":3},{"stepName":"b","dependentStep":"a"}]}"#,
        &req("pr"),
    );
    sim.act("b", &[Act::Block]);
    sim.run();
    assert_eq!(sim.job.progression, "75.00%");
    // startShardId shards are not counted as done (D8); partial last pack counted exactly
    let mut sim = Sim::new(
        r#"{"jobName":"pr","steps":[{"stepName":"s","stepType":"SHARD","shardConf":{"shard":4,"startShardId":2}},
           {"stepName":"p","stepType":"PACK","packConf":{"size":4,"start":0,"end":5}}]}"#,
        &req("pr"),
    );
    sim.act("s.shard-3", &[Act::Block]).act("p.pack-0", &[Act::Block]);
    sim.run();
    assert_eq!((sim.step("s").progression.as_str(), sim.step("p").progression.as_str()), ("50.00%", "33.33%"));
}
