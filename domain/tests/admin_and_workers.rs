//! Retry and update of alive jobs (spec §5.3, §5.4; TC-56), the failure arithmetic of
//! §10.6 (TC-52, TC-54) and pick ordering (§10.3; TC-60, TC-62).

#![allow(clippy::type_complexity)]

mod common;
use common::*;
use tascreed_domain::*;

/// TC-56
#[test]
fn tc56_retrying_an_error_job() {
    let mut sim = Sim::new(
        r#"{"jobName":"rty","steps":[{"stepName":"A"},{"stepName":"B","dependentStep":"A"},{"stepName":"X"}]}"#,
        &req("rty"),
    );
    sim.act("A", &[Act::Err]);
    sim.run();
    assert_eq!(
        (sim.state("A"), sim.state("B"), sim.state("X"), sim.job.state),
        (StepState::Error, StepState::SkipByError, StepState::Success, JobState::Error)
    );
    let mut errors = vec![sim.task("A").unwrap().clone()];
    errors[0].picked_times = 2;
    errors[0].tried_times = 3;
    errors[0].result.checkpoint = Some("NA==".into());
    sim.job.retry(&mut errors, T0).unwrap();
    assert_eq!(
        (sim.job.state, sim.state("A"), sim.state("B"), sim.state("X")),
        (JobState::Undone, StepState::Ready, StepState::Dormant, StepState::Success)
    );
    let a = &errors[0];
    assert_eq!((a.state, a.result.state, a.picked_times, a.tried_times), (TaskState::Undone, None, 0, 0));
    assert_eq!(a.result.checkpoint.as_deref(), Some("NA=="), "checkpoint kept");
    let json = serde_json::to_value(a).unwrap();
    assert!(json.get("pickedTimes").is_none() && json["result"].get("state").is_none());
    // put A back to todo, run again
    *sim.task_mut("A").unwrap() = errors[0].clone();
    sim.todo.push("A".into());
    sim.act("A", &[Act::Ok]);
    sim.acts.get_mut("A").unwrap().pop_front();
    sim.run();
    assert_eq!(
        (sim.state("A"), sim.state("B"), sim.job.state),
        (StepState::Success, StepState::Success, JobState::Success)
    );
    // an UNDONE job without error tasks
    let mut fresh = Sim::new(CHAIN, &req("chain"));
    let e = fresh.job.retry(&mut [], T0).unwrap_err();
    assert_eq!(e.to_string(), "alive job chain.t has no error task, no need to retry");
}

/// Spec §5.3 (D12): (request, expected result).
#[test]
fn update_alive_job() {
    const D: &str = r#"{"jobName":"up","steps":[
        {"stepName":"s","stepType":"SHARD","shardConf":{"shard":300,"maxTaskCount":200},"maxPickTimes":1000},
        {"stepName":"p","stepType":"PACK","packConf":{"size":10,"start":0,"end":99}},
        {"stepName":"x"}]}"#;
    let cases: &[(&str, Result<(), &str>)] = &[
        (r#"{"steps":[{"stepName":"s","shardConf":{"maxTaskCount":200}}]}"#, Err("alive job up.t no need to update")),
        (r#"{"steps":[{"stepName":"s","maxPickTimes":1000}]}"#, Err("no need to update")),
        (r#"{"steps":[{"stepName":"s","shardConf":{"shard":5},"params":{"a":"b"}}]}"#, Err("no need to update")),
        (r#"{"steps":[{"stepName":"x","shardConf":{"maxTaskCount":3}}]}"#, Err("no need to update")),
        (r#"{"steps":[{"stepName":"s","shardConf":{"maxTaskCount":201}}]}"#, Ok(())),
        (r#"{"steps":[{"stepName":"p","packConf":{"size":20,"start":50}}]}"#, Ok(())),
        (r#"{"steps":[{"stepName":"p","packConf":{"size":-1}}]}"#, Err("pack size invalid: -1 <= 0")),
        (r#"{"steps":[{"stepName":"x","maxPickTimes":2}]}"#, Ok(())),
    ];
    for (body, want) in cases {
        let mut sim = Sim::new(D, &req("up"));
        let before = sim.job.clone();
        let got = sim.job.apply_update(&JobRequest::parse(body).unwrap(), T0 + 1);
        match (want, got) {
            (Ok(()), Ok(())) => assert_ne!(sim.job, before, "{body}"),
            (Err(phrase), Err(e)) => {
                assert!(e.to_string().contains(phrase), "{body}: {e}");
                assert_eq!(sim.job, before, "{body}: unchanged on error");
            }
            (w, g) => panic!("{body}: want {w:?}, got {g:?}"),
        }
    }
    let mut sim = Sim::new(D, &req("up"));
    sim.job
        .apply_update(
            &JobRequest::parse(r#"{"steps":[{"stepName":"p","packConf":{"size":20,"start":50}}]}"#).unwrap(),
            T0,
        )
        .unwrap();
    let p = sim.step("p").pack_conf.clone().unwrap();
    assert_eq!((p.size, p.start), (Some(20), Some(0)), "pack start is not updatable");

    // only steps whose values changed get a new modify time, in any request order
    for body in [
        r#"{"steps":[{"stepName":"s","maxPickTimes":7},{"stepName":"p","packConf":{"size":10}},{"stepName":"x"}]}"#,
        r#"{"steps":[{"stepName":"x","maxPickTimes":null},{"stepName":"p","packConf":{"size":10}},{"stepName":"s","maxPickTimes":7}]}"#,
    ] {
        let mut sim = Sim::new(D, &req("up"));
        sim.job.apply_update(&JobRequest::parse(body).unwrap(), T0 + 9).unwrap();
        let times: Vec<Option<i64>> = sim.job.steps.iter().map(|s| s.modify_time).collect();
        assert_eq!(times, [Some(T0 + 9), Some(T0), Some(T0)], "{body}");
        assert_eq!(sim.job.modify_time, T0 + 9);
    }

    // an invalid update names the request's step, not the job's
    let mut sim = Sim::new(D, &req("up"));
    let body = r#"{"steps":[{"stepName":"x"},{"stepName":"p","packConf":{"size":0}}]}"#;
    let Err(JobOpError::Invalid(e)) = sim.job.apply_update(&JobRequest::parse(body).unwrap(), T0) else {
        panic!("size 0 accepted");
    };
    assert_eq!(e.issues[0].path, "steps[1].packConf.size", "{e}");
}

/// TC-52, TC-54, §10.6: pick limit and back-off.
#[test]
fn tc52_tc54_failure_arithmetic() {
    let policy = RetryPolicy::default();
    // TC-52: THROW_FATAL with maxPickTimes 2 → 3 executions, then ERROR
    let (mut picked, mut tried, mut runs) = (0, 0, 0);
    let reason = loop {
        runs += 1;
        let next = policy.after_failed_attempt(picked, tried, 1, FailureKind::NonRetry, Some(2), T0);
        (picked, tried) = (next.picked_times, next.tried_times);
        match next.verdict {
            Verdict::EndError { reason } => break reason,
            Verdict::GiveUp { after } => assert_eq!(after, None),
            Verdict::RetryInPlace { .. } => panic!("non-retry is never retried in place"),
        }
    };
    assert_eq!((runs, picked, tried), (3, 3, 3));
    assert_eq!(reason, "picked times 3 exceeds max pick times 2");
    // always-retryable with maxPickTimes m: 5(m+1) attempts, delays 1,2,4,8 s
    let (mut picked, mut tried, mut runs, mut delays) = (0, 0, 0, vec![]);
    'picks: loop {
        for attempt in 1.. {
            runs += 1;
            let next = policy.after_failed_attempt(picked, tried, attempt, FailureKind::Retry, Some(1), T0);
            (picked, tried) = (next.picked_times, next.tried_times);
            match next.verdict {
                Verdict::RetryInPlace { delay_ms } => delays.push(delay_ms),
                Verdict::GiveUp { .. } => continue 'picks,
                Verdict::EndError { .. } => break 'picks,
            }
        }
    }
    assert_eq!((runs, picked, tried), (10, 2, 10));
    assert_eq!(delays[..4], [1000, 2000, 4000, 8000]);
    // TC-54: unlimited, back-off after the k-th give-up
    for (k, want) in [
        (1, None),
        (5, None),
        (6, Some(30_000)),
        (7, Some(60_000)),
        (14, Some(270_000)),
        (15, Some(300_000)),
        (40, Some(300_000)),
    ] {
        let next = policy.after_give_up(k - 1, None, T0);
        assert_eq!((next.picked_times, next.verdict), (k, Verdict::GiveUp { after: want.map(|w| T0 + w) }), "k={k}");
    }
    // configured default limit applies when the task has none
    let strict = RetryPolicy { default_max_pick_times: 0, ..policy };
    assert!(matches!(strict.after_give_up(0, None, T0).verdict, Verdict::EndError { .. }));
    assert!(matches!(strict.after_give_up(0, Some(-1), T0).verdict, Verdict::GiveUp { .. }));
}

fn candidate(job: &str, priority: Option<i64>, step: &str, kind: StepType, index: i64) -> Task {
    let mut sim = Sim::new(r#"{"jobName":"x","steps":[{"stepName":"x"}]}"#, &req("x"));
    sim.advance();
    let mut t = sim.created[0].clone();
    t.job_name = job.into();
    t.priority = priority;
    t.step_name = step.into();
    t.step_type = kind;
    t.shard_conf = None;
    t.pack_conf = (kind == StepType::Pack).then_some(TaskPack { id: index, start: 0, end: 0 });
    t
}

/// TC-60, TC-62
#[test]
fn tc60_tc62_pick_ordering() {
    // empty rates
    assert_eq!([empty_rate(10, 4), empty_rate(20, 7), empty_rate(5, 3)], [600, 650, 400]);
    assert_eq!([empty_rate(1, 0), empty_rate(20, 15), empty_rate(3, 5)], [1000, 250, 0]);
    let first = |c: &[(Task, i64)]| -> usize { (0..c.len()).min_by_key(|&i| PickKey::new(&c[i].0, c[i].1)).unwrap() };
    let pack = |step: &str, id: i64| candidate("j", None, step, StepType::Pack, id);
    let cases: Vec<(&str, Vec<(Task, i64)>, usize)> = vec![
        ("rates 600/650/400", vec![(pack("a", 0), 600), (pack("b", 0), 650), (pack("c", 0), 400)], 1),
        ("rates 1000/250/400", vec![(pack("a", 0), 1000), (pack("b", 0), 250), (pack("c", 0), 400)], 0),
        ("SIMPLE before PACK", vec![(pack("s1", 2), 600), (candidate("j", None, "s1", StepType::Simple, -1), 600)], 1),
        ("step name", vec![(pack("s2", 1), 600), (pack("s1", 2), 600)], 1),
        ("pack id", vec![(pack("s1", 3), 600), (pack("s1", 2), 600)], 1),
        ("rate before id", vec![(pack("s1", 3), 700), (pack("s1", 2), 600)], 0),
        (
            "priority first",
            vec![
                (candidate("j", Some(5), "a", StepType::Simple, -1), 1000),
                (candidate("j", Some(10), "b", StepType::Simple, -1), 0),
            ],
            1,
        ),
    ];
    for (case, c, want) in cases {
        assert_eq!(first(&c), want, "{case}");
    }
    // TC-60: high (5), low (1), none (null = 0)
    let mut todo = [
        candidate("low", Some(1), "a", StepType::Simple, -1),
        candidate("high", Some(5), "a", StepType::Simple, -1),
        candidate("none", None, "a", StepType::Simple, -1),
    ];
    todo.sort_by_key(|t| PickKey::new(t, 1000));
    assert_eq!(todo.iter().map(|t| t.job_name.as_str()).collect::<Vec<_>>(), ["high", "low", "none"]);
}
