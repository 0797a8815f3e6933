//! Part C of cases.md: task creation (spec §7).

#![allow(clippy::type_complexity)]

mod common;
use common::*;
use tascreed_domain::*;

/// TC-12 after quiescence.
#[test]
fn tc12_run_req1() {
    let mut sim = Sim::new(SAMPLE, REQ1);
    sim.run();
    let mut want: Vec<String> = (0..6).map(|i| format!("prep.shard-{i}")).collect();
    want.extend((0..11).map(|i| format!("calc.pack-{i}")));
    want.extend(["aggr-1".to_string(), "aggr-2".to_string()]);
    assert_eq!(sim.names(), want);
    assert_eq!((sim.max_undone["prep"], sim.max_undone["calc"]), (2, 6));
    let last_prep = (0..6).map(|i| sim.ran_at(&format!("prep.shard-{i}"))).max().unwrap();
    assert!(sim.created_in("calc.pack-0") > sim.created_in("prep.shard-5"));
    assert!(sim.ran_at("calc.pack-0") > last_prep);
    for t in &sim.created {
        let want = if t.task_name == "aggr-2" {
            params(&[("p1", "2"), ("p2", "4")])
        } else {
            params(&[("p1", "1"), ("p2", "2")])
        };
        assert_eq!((t.params.clone(), t.priority), (want, Some(2)), "{}", t.task_name);
        assert!(t.prev_phase_step_states.is_none());
        let deps = match t.step_name.as_str() {
            "prep" => None,
            "calc" => Some(states(&[("prep", StepState::Success)])),
            _ => Some(states(&[("calc", StepState::Success)])),
        };
        assert_eq!(t.dependent_step_states, deps, "{}", t.task_name);
        if let Some(s) = t.shard_conf {
            assert_eq!((s.total, format!("prep.shard-{}", s.index)), (6, t.task_name.clone()));
        }
    }
    // CALC11
    let packs: Vec<(i64, i64, i64)> =
        sim.created.iter().filter_map(|t| t.pack_conf).map(|p| (p.id, p.start, p.end)).collect();
    let want: Vec<(i64, i64, i64)> = (0..11).map(|i| (i, i * 100, if i == 10 { 1005 } else { i * 100 + 99 })).collect();
    assert_eq!(packs, want);
    assert!(sim.job.steps.iter().all(|s| s.state == StepState::Success));
    assert_eq!(sim.step("prep").shard_done_range.as_ref().unwrap().indexes.to_string(), "[0,5]");
    assert_eq!(sim.step("calc").pack_done_range.as_ref().unwrap().offsets.to_string(), "[0,1005]");
    assert_eq!((sim.job.state, sim.job.progression.as_str()), (JobState::Success, "100.00%"));
    assert!(sim.job.state.can_auto_archive());
}

/// TC-22
#[test]
fn tc22_simple_step() {
    let mut sim = Sim::new(r#"{"jobName":"simple","steps":[{"stepName":"a"}]}"#, &req("simple"));
    sim.advance();
    let a = sim.task("a").unwrap();
    assert!(a.shard_conf.is_none() && a.pack_conf.is_none());
    assert_eq!(sim.step("a").task_states, [(-1, TaskState::Undone)].into());
    assert_eq!(sim.state("a"), StepState::Ready);
    sim.run();
    assert!(sim.step("a").task_states.is_empty());
    assert_eq!(
        (sim.state("a"), sim.step("a").progression.as_str(), sim.job.state),
        (StepState::Success, "100.00%", JobState::Success)
    );
    assert_eq!(sim.names(), ["a"]);
}

/// TC-23
#[test]
fn tc23_shard_step() {
    let mut sim = Sim::new(
        r#"{"jobName":"sh","steps":[{"stepName":"calc","stepType":"SHARD","shardConf":{"shard":5}}]}"#,
        &req("sh"),
    );
    sim.advance();
    assert_eq!(sim.passes[0], (0..5).map(|i| format!("calc.shard-{i}")).collect::<Vec<_>>());
    for (i, t) in sim.created.iter().enumerate() {
        assert_eq!(t.shard_conf, Some(TaskShard { total: 5, index: i as i64 }));
    }
    sim.run();
    assert_eq!(sim.step("calc").shard_done_range.as_ref().unwrap().indexes.to_string(), "[0,4]");
    assert_eq!(sim.job.state, JobState::Success);
}

/// TC-24
#[test]
fn tc24_max_task_count_throttling() {
    const THR: &str =
        r#"{"jobName":"thr","steps":[{"stepName":"s","stepType":"SHARD","shardConf":{"shard":6,"maxTaskCount":2}}]}"#;
    // (a)
    let mut sim = Sim::new(THR, &req("thr"));
    sim.act("s", &[Act::Block]);
    sim.run();
    assert_eq!(sim.names(), ["s.shard-0", "s.shard-1"]);
    assert_eq!(sim.state("s"), StepState::Start);
    sim.release("s.shard-0", Act::Ok);
    sim.run();
    assert_eq!(sim.names().last().unwrap(), "s.shard-2");
    assert_eq!(sim.names().len(), 3);
    for i in 1..6 {
        sim.release(&format!("s.shard-{i}"), Act::Ok);
        sim.run();
        if sim.task("s.shard-5").is_some() && sim.state("s") != StepState::Success {
            assert_eq!(sim.state("s"), StepState::Ready);
        }
    }
    assert_eq!(sim.names().len(), 6);
    assert_eq!(sim.max_undone["s"], 2);
    assert_eq!(sim.state("s"), StepState::Success);
    // (b)
    let mut sim = Sim::new(THR, &req("thr"));
    sim.act("s.shard-0", &[Act::Fail]).act("s", &[Act::Block]);
    sim.advance();
    sim.work();
    sim.advance();
    assert_eq!(sim.passes[1], ["s.shard-2"], "a FAILED task frees its slot");
    sim.acts.remove("s");
    sim.run();
    assert_eq!(sim.names().len(), 6);
    assert_eq!((sim.state("s"), sim.job.state), (StepState::Failed, JobState::Failed));
}

/// TC-27 (D1)
#[test]
fn tc27_zero_task_steps_succeed_at_once() {
    let mut sim = Sim::new(
        r#"{"jobName":"empty","steps":[
         {"stepName":"p","stepType":"PACK","packConf":{"size":10,"start":46,"end":45}},
         {"stepName":"s","stepType":"SHARD","shardConf":{"shard":3,"startShardId":3}},
         {"stepName":"next","dependency":{"steps":["p","s"]}}]}"#,
        &req("empty"),
    );
    sim.advance();
    for s in ["p", "s"] {
        assert_eq!((sim.state(s), sim.step(s).progression.as_str()), (StepState::Success, "100.00%"));
        assert!(sim.step(s).shard_done_range.is_none() && sim.step(s).pack_done_range.is_none());
    }
    sim.run();
    assert_eq!(sim.names(), ["next"]);
    assert_eq!(sim.job.state, JobState::Success);
}

/// TC-28
#[test]
fn tc28_infinite_pack_step() {
    let mut sim = Sim::new(
        r#"{"jobName":"inf","steps":[{"stepName":"c","stepType":"PACK","packConf":{"size":10,"start":15,"infinite":true,"startPackId":2,"maxTaskCount":13}}]}"#,
        &req("inf"),
    );
    sim.act("c", &[Act::Block]);
    sim.run();
    assert_eq!(sim.names(), (2..=14).map(|k| format!("c.pack-{k}")).collect::<Vec<_>>());
    for t in &sim.created {
        let k = t.pack_conf.unwrap().id;
        assert_eq!(t.pack_conf, Some(TaskPack { id: k, start: 15 + 10 * (k - 2), end: 24 + 10 * (k - 2) }));
    }
    sim.release("c.pack-2", Act::Ok);
    sim.run();
    assert_eq!(sim.created.last().unwrap().pack_conf, Some(TaskPack { id: 15, start: 145, end: 154 }));
    assert_eq!(sim.names().len(), 14);
    assert_eq!(sim.step("c").pack_done_range.as_ref().unwrap().offsets.to_string(), "[15,24]");
    sim.release("c.pack-4", Act::Ok);
    sim.run();
    assert_eq!(sim.created.last().unwrap().pack_conf, Some(TaskPack { id: 16, start: 155, end: 164 }));
    assert_eq!(sim.step("c").pack_done_range.as_ref().unwrap().offsets.to_string(), "[15,24];[35,44]");
    assert_eq!(
        (sim.state("c"), sim.step("c").progression.as_str(), sim.job.state),
        (StepState::Start, "0.00%", JobState::Undone)
    );
}

/// TC-30
#[test]
fn tc30_budget_of_100_per_pass() {
    let mut sim = Sim::new(
        r#"{"jobName":"b","steps":[{"stepName":"s","stepType":"SHARD","shardConf":{"shard":250,"maxTaskCount":500}}]}"#,
        &req("b"),
    );
    for _ in 0..3 {
        sim.advance();
    }
    let range = |a: i64, b: i64| (a..=b).map(|i| format!("s.shard-{i}")).collect::<Vec<_>>();
    assert_eq!(sim.passes, [range(0, 99), range(100, 199), range(200, 249)]);
    assert_eq!(sim.state("s"), StepState::Ready);
    let mut sim = Sim::new(
        r#"{"jobName":"b","steps":[{"stepName":"A","stepType":"SHARD","shardConf":{"shard":80,"maxTaskCount":80}},
           {"stepName":"B","stepType":"SHARD","shardConf":{"shard":80,"maxTaskCount":80}}]}"#,
        &req("b"),
    );
    sim.advance();
    sim.advance();
    let named = |s: &str, a: i64, b: i64| (a..=b).map(|i| format!("{s}.shard-{i}")).collect::<Vec<_>>();
    assert_eq!(sim.passes[0], [named("A", 0, 79), named("B", 0, 19)].concat());
    assert_eq!(sim.passes[1], named("B", 20, 79));
}

/// TC-31
#[test]
fn tc31_dependent_and_previous_phase_states() {
    let mut sim = Sim::new(DAG, &req("dag"));
    sim.run();
    assert_eq!(sim.names().len(), 9);
    let c = |n: &str| sim.created_in(n);
    assert!(c("B") > c("A") && c("C") > c("A") && c("D") > c("B").max(c("C")) && c("E") > c("C"));
    let phase0_done = ["A", "B", "C", "D", "E"].iter().map(|n| sim.ran_at(n)).max().unwrap();
    for n in ["F", "G", "H", "I"] {
        assert!(c(n) > c("D") && c(n) > c("E") && sim.ran_at(n) > phase0_done);
    }
    assert!(c("G") > c("E") && c("H") > c("F") && c("I") > c("F").max(c("G")));
    let s = StepState::Success;
    let deps: &[(&str, Option<&[&str]>)] = &[
        ("A", None),
        ("F", None),
        ("B", Some(&["A"])),
        ("C", Some(&["A"])),
        ("D", Some(&["B", "C"])),
        ("E", Some(&["C"])),
        ("G", Some(&["E"])),
        ("H", Some(&["F"])),
        ("I", Some(&["F", "G"])),
    ];
    for (n, want) in deps {
        let want = want.map(|w| w.iter().map(|d| (d.to_string(), s)).collect());
        assert_eq!(sim.task(n).unwrap().dependent_step_states, want, "{n}");
    }
    let prev = states(&[("A", s), ("B", s), ("C", s), ("D", s), ("E", s)]);
    for n in ["A", "B", "C", "D", "E"] {
        assert!(sim.task(n).unwrap().prev_phase_step_states.is_none());
    }
    for n in ["F", "G", "H", "I"] {
        assert_eq!(sim.task(n).unwrap().prev_phase_step_states.as_ref(), Some(&prev), "{n}");
    }
    assert_eq!(sim.job.state, JobState::Success);
}

/// Spec §6.3 + D13: updated configs reach DORMANT steps, validated.
#[test]
fn updated_configs() {
    const D: &str = r#"{"jobName":"cfg","steps":[{"stepName":"a"},
        {"stepName":"s","stepType":"SHARD","shardConf":{"shard":2},"dependentStep":"a"},
        {"stepName":"p","stepType":"PACK","packConf":{"size":10,"start":0,"end":9},"dependentStep":"a"}]}"#;
    let cases: &[(&str, &str, usize, usize)] = &[
        // (step, updated config, shard tasks, pack tasks)
        ("s", r#"{"shardConf":{"shard":4},"maxPickTimes":9}"#, 4, 1),
        ("p", r#"{"packConf":{"size":5,"end":19}}"#, 2, 4),
        ("s", r#"{"shardConf":{"shard":0}}"#, 2, 1),
        ("p", r#"{"packConf":{"size":0}}"#, 2, 1),
        ("ghost", r#"{"shardConf":{"shard":9}}"#, 2, 1),
    ];
    for (step, cfg, shards, packs) in cases {
        let mut sim = Sim::new(D, &req("cfg"));
        sim.act("a", &[Act::OkCfg(step, cfg)]);
        sim.run();
        let count = |s: &str| sim.created.iter().filter(|t| t.step_name == s).count();
        assert_eq!((count("s"), count("p")), (*shards, *packs), "{step} {cfg}");
        assert_eq!(sim.job.state, JobState::Success);
    }
    // a step that is no longer DORMANT ignores updates
    let mut sim = Sim::new(D, &req("cfg"));
    sim.advance();
    let report = sim.job.fold(
        &[FinishedTask {
            task_name: "a".into(),
            step_name: "a".into(),
            state: TaskState::Success,
            updated_params: Params::new(),
            updated_configs: vec![("a".into(), UpdatedConfig::parse(r#"{"shardConf":{"shard":3}}"#).unwrap())],
            position: TaskPosition::Simple,
        }],
        T0,
    );
    assert!(report.warnings.iter().any(|w| w.contains("READY")), "{report:?}");
    // what an executor returns is read where it returns it, naming the bad field
    let e = UpdatedConfig::parse(r#"{"packConf":{"size":"ten"}}"#).unwrap_err();
    assert_eq!(e.path, "packConf.size", "{e}");
    assert!(UpdatedConfig::parse("not json").is_err());
}
