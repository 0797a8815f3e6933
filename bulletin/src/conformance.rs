//! The behaviour every [`Bulletin`] implementation must show, written once against the trait.
//!
//! An implementation's test file calls [`conformance_tests!`](crate::conformance_tests) with an
//! expression that opens a fresh, empty store (an `Arc<dyn Bulletin>`); each check becomes its
//! own `#[test]`.

use std::sync::Arc;
use std::time::Duration;

use tascreed_domain::{Binding, Job, JobDefine, JobRequest, JobState, Params, StepState, TaskState, build_job};

use crate::{
    BanLevel, BanScope, Bulletin, ClaimRequest, Claimed, Finish, JobKey, JobOpFailure, NodeExecutor, Release, RunStats,
    Submitted, TaskFilter, TaskKey, TaskList,
};

/// Opens a fresh, empty store.
pub type Factory<'a> = &'a dyn Fn() -> Arc<dyn Bulletin>;

/// Expands to one `#[test]` per conformance check.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            submit_dedups_alive_and_archived, unique_alive_is_enforced, racing_submits_create_one_job,
            advance_creates_resolves_and_archives, claim_follows_priority_then_names, leases_fence_stale_workers,
            checkpoints_survive_a_lost_lease, overall_capacity_is_respected, bans_stop_picking_and_creating,
            retry_resets_error_tasks_and_keeps_checkpoints, delete_with_and_without_archive,
            waiting_tasks_resolve_when_a_binding_appears, release_applies_backoff_and_counters,
            deleting_a_todo_task_ends_it_error, uploads_and_node_bindings, update_changes_future_tasks_only,
            monitor_reports_slow_work_and_retries, batches_claim_in_order_and_fence_each_finish,
            releasing_an_adoption_fences_the_holder, a_stopping_node_releases_its_leases,
            claims_prefer_the_emptier_step, monitor_counts_claimable_and_waiting_tasks);
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$factory);
            }
        )*
    };
}

fn job_of(define: &str, request: &str, bulletin: &dyn Bulletin) -> Job {
    let define = JobDefine::parse(define).expect("define parses");
    let request = JobRequest::parse(request).expect("request parses");
    build_job(&define, &request, bulletin.now_ms().expect("clock")).expect("job builds")
}

fn simple_job(bulletin: &dyn Bulletin, name: &str, trigger: &str) -> Job {
    job_of(
        &format!(r#"{{"jobName":"{name}","steps":[{{"stepName":"a","executor":"x"}}]}}"#),
        &format!(r#"{{"jobName":"{name}","trigger":"{trigger}"}}"#),
        bulletin,
    )
}

pub(crate) fn claim(b: &dyn Bulletin, worker: &str) -> Option<Claimed> {
    b.claim(&ClaimRequest {
        node: "n1".into(),
        worker: worker.into(),
        executors: vec!["x".into()],
        lease_ms: 60_000,
        max_overall: 100,
    })
    .expect("claim")
}

pub(crate) fn finish(state: TaskState) -> Finish {
    Finish {
        state,
        reason: None,
        updated_params: Params::new(),
        updated_configs: vec![],
        picked_times: 0,
        tried_times: 0,
        run: RunStats { fuel: 10, wall_ms: 1, ..RunStats::default() },
        checkpoint: None,
    }
}

fn advance(b: &dyn Bulletin, key: &JobKey) -> crate::Advanced {
    b.advance(key, &[], 100).expect("advance")
}

/// Runs every task of a job to `state` until the job leaves UNDONE.
fn run_all(b: &dyn Bulletin, key: &JobKey, state: TaskState) {
    for _ in 0..100 {
        let out = advance(b, key);
        if out.archived || out.state != Some(JobState::Undone) {
            return;
        }
        while let Some(c) = claim(b, "w") {
            assert!(b.finish(&c.lease, &finish(state)).expect("finish"));
        }
    }
    panic!("job {key} did not finish");
}

pub fn submit_dedups_alive_and_archived(make: Factory<'_>) {
    let b = make();
    let job = simple_job(&*b, "j", "t");
    assert!(matches!(b.submit(&job, false).unwrap(), Submitted::Created(_)));
    let again = simple_job(&*b, "j", "t");
    match b.submit(&again, false).unwrap() {
        Submitted::Existing(s) => {
            assert!(!s.archived);
            assert_eq!(s.job.create_time, job.create_time);
        }
        other => panic!("expected the existing job, got {other:?}"),
    }
    let key = JobKey::of(&job);
    run_all(&*b, &key, TaskState::Success);
    let stored = b.job(&key).unwrap().expect("archived job readable");
    assert!(stored.archived);
    assert_eq!(stored.job.state, JobState::Success);
    assert!(b.alive_jobs(Some("j"), None).unwrap().is_empty());
    match b.submit(&simple_job(&*b, "j", "t"), false).unwrap() {
        Submitted::Existing(s) => assert!(s.archived && s.job.state == JobState::Success),
        other => panic!("an archived trigger stays used: {other:?}"),
    }
    assert_eq!(b.job_tasks(&key).unwrap().len(), 1, "tasks stay listed after archiving");
}

pub fn unique_alive_is_enforced(make: Factory<'_>) {
    let b = make();
    assert!(matches!(b.submit(&simple_job(&*b, "u", "t1"), true).unwrap(), Submitted::Created(_)));
    match b.submit(&simple_job(&*b, "u", "t2"), true).unwrap() {
        Submitted::UniqueAliveTaken(k) => assert_eq!(k, JobKey::new("u", "t1"), "names the alive job"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(b.submit(&simple_job(&*b, "u", "t1"), true).unwrap(), Submitted::Existing(_)));
    b.delete_alive_job(&JobKey::new("u", "t1"), false).unwrap();
    assert!(matches!(b.submit(&simple_job(&*b, "u", "t2"), true).unwrap(), Submitted::Created(_)));
}

pub fn racing_submits_create_one_job(make: Factory<'_>) {
    let b = make();
    for unique in [false, true] {
        let name = if unique { "race-u" } else { "race" };
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let b = b.clone();
                let trigger = if unique { format!("t{i}") } else { "t".to_string() };
                let job = simple_job(&*b, name, &trigger);
                std::thread::spawn(move || matches!(b.submit(&job, unique).expect("submit"), Submitted::Created(_)))
            })
            .collect();
        let created = handles.into_iter().map(|h| h.join().expect("thread")).filter(|c| *c).count();
        assert_eq!(created, 1, "exactly one job created (unique = {unique})");
        assert_eq!(b.alive_jobs(Some(name), None).unwrap().len(), 1);
    }
}

pub fn advance_creates_resolves_and_archives(make: Factory<'_>) {
    let b = make();
    let job = job_of(
        r#"{"jobName":"sh","steps":[{"stepName":"s","stepType":"SHARD","shardConf":{"shard":3}},
            {"stepName":"n","dependentStep":"s"}]}"#,
        r#"{"jobName":"sh","trigger":"t"}"#,
        &*b,
    );
    b.submit(&job, false).unwrap();
    let key = JobKey::of(&job);
    let bindings = [
        Binding { executor: "x".into(), job_name: "sh".into(), step_name: "s".into() },
        Binding { executor: "x".into(), job_name: "sh".into(), step_name: "n".into() },
    ];
    let out = b.advance(&key, &bindings, 100).unwrap();
    assert_eq!(out.created, 3);
    let todo = b.tasks(TaskList::Todo, &TaskFilter { job_name: Some("sh".into()), ..TaskFilter::default() }).unwrap();
    let names: Vec<_> = todo.iter().map(|t| t.task_name.as_str()).collect();
    assert_eq!(names, ["s.shard-0", "s.shard-1", "s.shard-2"]);
    assert!(todo.iter().all(|t| t.executor.as_ref().is_some_and(|e| e.name == "x")));
    for _ in 0..3 {
        let c = claim(&*b, "w").expect("a shard is claimable");
        assert!(b.finish(&c.lease, &finish(TaskState::Success)).unwrap());
    }
    assert_eq!(b.tasks(TaskList::Done, &TaskFilter::default()).unwrap().len(), 3, "finished, not yet folded");
    let out = b.advance(&key, &bindings, 100).unwrap();
    assert_eq!((out.folded, out.created), (3, 1));
    assert!(b.tasks(TaskList::Done, &TaskFilter::default()).unwrap().is_empty(), "folding consumes done records");
    let c = claim(&*b, "w").expect("n is claimable");
    assert_eq!(c.task.task_name, "n");
    assert_eq!(c.task.dependent_step_states.as_ref().and_then(|d| d.get("s")).copied(), Some(StepState::Success));
    assert!(b.finish(&c.lease, &finish(TaskState::Success)).unwrap());
    let out = b.advance(&key, &bindings, 100).unwrap();
    assert!(out.archived);
    assert_eq!(out.state, Some(JobState::Success));
    let archived = b.job(&key).unwrap().unwrap();
    assert_eq!(archived.job.progression, "100.00%");
    assert_eq!(b.job_tasks(&key).unwrap().len(), 4);
}

pub fn claim_follows_priority_then_names(make: Factory<'_>) {
    let b = make();
    // Names sort against priority, so an order by name alone fails.
    for (name, priority) in [("m-low", 1), ("z-high", 5), ("a-none", 0)] {
        let p = if priority > 0 { format!(r#","priority":{priority}"#) } else { String::new() };
        let job = job_of(
            &format!(r#"{{"jobName":"{name}","steps":[{{"stepName":"a","executor":"x"}}]}}"#),
            &format!(r#"{{"jobName":"{name}","trigger":"t"{p}}}"#),
            &*b,
        );
        b.submit(&job, false).unwrap();
        advance(&*b, &JobKey::of(&job));
    }
    let order: Vec<String> = std::iter::from_fn(|| claim(&*b, "w")).map(|c| c.task.job_name).collect();
    assert_eq!(order, ["z-high", "m-low", "a-none"]);
}

pub fn leases_fence_stale_workers(make: Factory<'_>) {
    let b = make();
    let job = simple_job(&*b, "f", "t");
    b.submit(&job, false).unwrap();
    advance(&*b, &JobKey::of(&job));
    let request = |worker: &str, lease_ms| ClaimRequest {
        node: "n".into(),
        worker: worker.into(),
        executors: vec!["x".into()],
        lease_ms,
        max_overall: 10,
    };
    let first = b.claim(&request("w1", 50)).unwrap().expect("claimable");
    assert!(b.claim(&request("w2", 50)).unwrap().is_none(), "a leased task is not claimed twice");
    assert_eq!(b.adoptions(None).unwrap(), vec![("f/t/a".to_string(), "n/w1".to_string())]);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(b.expire_leases().unwrap(), 1);
    let second = b.claim(&request("w2", 60_000)).unwrap().expect("claimable again after expiry");
    assert!(second.lease.epoch > first.lease.epoch, "the epoch moves on every claim");
    assert!(!b.renew(&first.lease, 60_000).unwrap(), "the old owner cannot renew");
    assert!(!b.save_checkpoint(&first.lease, b"x", None, 60_000).unwrap());
    assert!(!b.finish(&first.lease, &finish(TaskState::Failed)).unwrap(), "a fenced-out result is rejected");
    assert!(b.renew(&second.lease, 60_000).unwrap());
    assert!(b.finish(&second.lease, &finish(TaskState::Success)).unwrap());
    let task = b.task(&second.lease.task).unwrap().unwrap();
    assert_eq!(task.state, TaskState::Success, "only the lease holder's result is written");
}

pub fn checkpoints_survive_a_lost_lease(make: Factory<'_>) {
    let b = make();
    let job = simple_job(&*b, "cp", "t");
    b.submit(&job, false).unwrap();
    advance(&*b, &JobKey::of(&job));
    let first = claim(&*b, "w1").unwrap();
    assert_eq!(first.checkpoint, None);
    for round in 1..=4u8 {
        assert!(b.save_checkpoint(&first.lease, round.to_string().as_bytes(), Some(round * 10), 60_000).unwrap());
    }
    assert!(b.unclaim(&first.lease).unwrap());
    let second = claim(&*b, "w2").unwrap();
    assert_eq!(second.checkpoint.as_deref(), Some(&b"4"[..]), "resumes from the last persisted checkpoint");
    assert_eq!(second.task.result.checkpoint_size, Some(1));
    assert_eq!(second.task.result.progression.as_deref(), Some("40.00%"));
    assert_eq!((second.task.picked_times, second.task.tried_times), (0, 0), "a lost lease counts nothing");
    // The final checkpoint travels with the result: one write, fenced like it.
    let last = Finish { checkpoint: Some(b"final".to_vec()), ..finish(TaskState::Success) };
    assert!(!b.finish(&first.lease, &last).unwrap(), "a stale holder writes neither result nor checkpoint");
    assert_eq!(b.task(&second.lease.task).unwrap().unwrap().result.checkpoint_size, Some(1));
    assert!(b.finish(&second.lease, &last).unwrap());
    let done = b.task(&second.lease.task).unwrap().unwrap();
    assert_eq!((done.state, done.result.checkpoint_size), (TaskState::Success, Some(5)));
}

pub fn overall_capacity_is_respected(make: Factory<'_>) {
    let b = make();
    let job = job_of(
        r#"{"jobName":"cap","steps":[{"stepName":"s","stepType":"SHARD","executor":"x","shardConf":{"shard":5}}]}"#,
        r#"{"jobName":"cap","trigger":"t"}"#,
        &*b,
    );
    b.submit(&job, false).unwrap();
    advance(&*b, &JobKey::of(&job));
    let req = |w: &str| ClaimRequest {
        node: "n".into(),
        worker: w.into(),
        executors: vec!["x".into()],
        lease_ms: 60_000,
        max_overall: 2,
    };
    let a = b.claim(&req("1")).unwrap().expect("first");
    assert!(b.claim(&req("2")).unwrap().is_some());
    assert!(b.claim(&req("3")).unwrap().is_none(), "no third lease with max_overall 2");
    assert!(b.finish(&a.lease, &finish(TaskState::Success)).unwrap());
    assert!(b.claim(&req("3")).unwrap().is_some(), "a finished task frees its slot");
    assert!(
        b.claim(&ClaimRequest { executors: vec!["other".into()], max_overall: 100, ..req("4") }).unwrap().is_none(),
        "only tasks of loaded executors are claimed"
    );
}

pub fn bans_stop_picking_and_creating(make: Factory<'_>) {
    let b = make();
    let (k1, k2) = (JobKey::new("bn", "t1"), JobKey::new("bn", "t2"));
    for k in [&k1, &k2] {
        b.submit(&simple_job(&*b, "bn", &k.trigger), false).unwrap();
    }
    b.set_ban(&BanScope::Job(k2.clone()), BanLevel::TaskCreate).unwrap();
    assert_eq!(advance(&*b, &k1).created, 1);
    assert_eq!(advance(&*b, &k2).created, 0, "job-scope TASK_CREATE stops creation of that job only");
    b.set_ban(&BanScope::Global, BanLevel::TaskPick).unwrap();
    assert!(claim(&*b, "w").is_none(), "global TASK_PICK stops all picking");
    b.remove_ban(&BanScope::Global).unwrap();
    b.remove_ban(&BanScope::Job(k2.clone())).unwrap();
    assert_eq!(advance(&*b, &k2).created, 1);
    b.set_ban(&BanScope::Job(k1.clone()), BanLevel::TaskPick).unwrap();
    let c = claim(&*b, "w").expect("t2 is still pickable");
    assert_eq!(c.lease.task.job, k2);
    assert!(claim(&*b, "w").is_none(), "t1 is banned at job scope");
    b.set_ban(&BanScope::JobDefine("bn".into()), BanLevel::JobSubmit).unwrap();
    assert_eq!(b.bans().unwrap().len(), 2);
    b.remove_ban(&BanScope::Job(k1.clone())).unwrap();
    assert!(claim(&*b, "w").is_none(), "JOB_SUBMIT covers TASK_PICK");
    b.remove_ban(&BanScope::JobDefine("bn".into())).unwrap();
    assert!(claim(&*b, "w").is_some());
}

pub fn retry_resets_error_tasks_and_keeps_checkpoints(make: Factory<'_>) {
    let b = make();
    let job = simple_job(&*b, "rty", "t");
    let key = JobKey::of(&job);
    b.submit(&job, false).unwrap();
    advance(&*b, &key);
    match b.retry_job(&key).unwrap() {
        Err(JobOpFailure::Refused(e)) => assert!(e.to_string().contains("has no error task"), "{e}"),
        other => panic!("retry of an UNDONE job without errors is refused: {other:?}"),
    }
    let c = claim(&*b, "w").unwrap();
    assert!(b.save_checkpoint(&c.lease, b"7", None, 60_000).unwrap());
    assert!(b.finish(&c.lease, &Finish { picked_times: 2, tried_times: 3, ..finish(TaskState::Error) }).unwrap());
    let out = advance(&*b, &key);
    assert_eq!(out.state, Some(JobState::Error));
    assert!(!out.archived, "ERROR jobs stay alive");
    assert_eq!(b.tasks(TaskList::Error, &TaskFilter::default()).unwrap().len(), 1);
    let job = b.retry_job(&key).unwrap().expect("retry accepted");
    assert_eq!(job.state, JobState::Undone);
    assert_eq!(job.steps[0].state, StepState::Ready);
    assert!(b.tasks(TaskList::Error, &TaskFilter::default()).unwrap().is_empty());
    let again = claim(&*b, "w").expect("the task is todo again");
    assert_eq!((again.task.picked_times, again.task.tried_times), (0, 0));
    assert_eq!(again.checkpoint.as_deref(), Some(&b"7"[..]), "retry keeps the checkpoint");
    assert!(b.retry_job(&JobKey::new("rty", "zzz")).unwrap().is_err());
}

pub fn delete_with_and_without_archive(make: Factory<'_>) {
    let b = make();
    let (k1, k2) = (JobKey::new("del", "t1"), JobKey::new("del", "t2"));
    for k in [&k1, &k2] {
        b.submit(&simple_job(&*b, "del", &k.trigger), false).unwrap();
        advance(&*b, k);
    }
    let c = claim(&*b, "w").unwrap();
    assert_eq!(c.lease.task.job, k1);
    assert!(b.delete_alive_job(&k1, false).unwrap().is_some());
    assert!(b.job(&k1).unwrap().is_none());
    assert!(!b.finish(&c.lease, &finish(TaskState::Success)).unwrap(), "a deleted job's result is discarded");
    assert!(b.job_tasks(&k1).unwrap().is_empty());
    assert!(matches!(b.submit(&simple_job(&*b, "del", "t1"), false).unwrap(), Submitted::Created(_)));
    b.delete_alive_job(&k2, true).unwrap().expect("deleted");
    let archived = b.job(&k2).unwrap().expect("archived");
    assert!(archived.archived);
    assert!(serde_json::to_string(&archived.job.traits).unwrap().contains("DELETED"));
    assert!(matches!(b.submit(&simple_job(&*b, "del", "t2"), false).unwrap(), Submitted::Existing(_)));
    assert!(b.delete_alive_job(&JobKey::new("del", "none"), false).unwrap().is_none());
}

pub fn waiting_tasks_resolve_when_a_binding_appears(make: Factory<'_>) {
    let b = make();
    let job = job_of(r#"{"jobName":"w","steps":[{"stepName":"a"}]}"#, r#"{"jobName":"w","trigger":"t"}"#, &*b);
    b.submit(&job, false).unwrap();
    advance(&*b, &JobKey::of(&job));
    assert!(claim(&*b, "w").is_none(), "no executor: not claimable");
    assert_eq!(b.counts().unwrap().unresolved, 1);
    let todo = b.tasks(TaskList::Todo, &TaskFilter::default()).unwrap();
    assert!(todo[0].executor.is_none());
    let n =
        b.resolve_waiting(&[Binding { executor: "x".into(), job_name: "w".into(), step_name: "a".into() }]).unwrap();
    assert_eq!(n, 1);
    assert!(claim(&*b, "w").is_some());
}

pub fn release_applies_backoff_and_counters(make: Factory<'_>) {
    let b = make();
    let job = simple_job(&*b, "rel", "t");
    b.submit(&job, false).unwrap();
    advance(&*b, &JobKey::of(&job));
    let c = claim(&*b, "w").unwrap();
    assert!(b.record_attempt(&c.lease, 1, "transient").unwrap());
    let far = b.now_ms().unwrap() + 3_600_000;
    let release = Release { picked_times: 6, tried_times: 6, after_ms: Some(far), reason: Some("gave up".into()) };
    assert!(b.release(&c.lease, &release).unwrap());
    assert!(claim(&*b, "w").is_none(), "not picked before its back-off ends");
    let task = b.task(&c.lease.task).unwrap().unwrap();
    assert_eq!((task.picked_times, task.tried_times, task.after), (6, 6, Some(far)));
    assert_eq!(task.state, TaskState::Undone);
    assert!(b.adoptions(None).unwrap().is_empty());
}

pub fn deleting_a_todo_task_ends_it_error(make: Factory<'_>) {
    let b = make();
    let job = simple_job(&*b, "dt", "t");
    let key = JobKey::of(&job);
    b.submit(&job, false).unwrap();
    advance(&*b, &key);
    let tk = TaskKey::new("dt", "t", "a");
    assert!(b.delete_todo_task(&tk).unwrap().is_some());
    assert!(b.delete_todo_task(&tk).unwrap().is_none(), "no longer a todo task");
    let out = advance(&*b, &key);
    assert_eq!(out.state, Some(JobState::Error), "the step can finish (D14)");
}

pub fn uploads_and_node_bindings(make: Factory<'_>) {
    let b = make();
    b.put_upload("e1", "abc", b"bytes-1").unwrap();
    b.put_upload("e2", "abc", b"bytes-1").unwrap();
    assert_eq!(b.uploads().unwrap().len(), 2);
    assert_eq!(b.upload_bytes("abc").unwrap().as_deref(), Some(&b"bytes-1"[..]));
    assert!(b.delete_upload("e1").unwrap());
    assert!(!b.delete_upload("e1").unwrap());
    assert!(b.upload_bytes("abc").unwrap().is_some(), "still named by e2");
    assert!(b.delete_upload("e2").unwrap());
    assert!(b.upload_bytes("abc").unwrap().is_none(), "unreferenced blobs are dropped");
    let exec = NodeExecutor { name: "x".into(), sha256: "s".into(), bindings: vec![("j".into(), "a".into())] };
    b.heartbeat_node("n1", &[exec]).unwrap();
    let bindings = b.live_bindings(60_000).unwrap();
    assert_eq!(bindings, vec![Binding { executor: "x".into(), job_name: "j".into(), step_name: "a".into() }]);
    std::thread::sleep(Duration::from_millis(30));
    assert!(b.live_bindings(10).unwrap().is_empty(), "bindings of silent nodes are not live");
}

pub fn update_changes_future_tasks_only(make: Factory<'_>) {
    let b = make();
    let job = job_of(
        r#"{"jobName":"up","steps":[{"stepName":"s","stepType":"SHARD","executor":"x","shardConf":{"shard":4,"maxTaskCount":1}}]}"#,
        r#"{"jobName":"up","trigger":"t"}"#,
        &*b,
    );
    let key = JobKey::of(&job);
    b.submit(&job, false).unwrap();
    assert_eq!(advance(&*b, &key).created, 1);
    let update = JobRequest::parse(
        r#"{"jobName":"up","trigger":"t","steps":[{"stepName":"s","shardConf":{"maxTaskCount":3}}]}"#,
    )
    .unwrap();
    let updated = b.update_alive_job(&update).unwrap().expect("update accepted");
    assert_eq!(updated.steps[0].shard_conf.as_ref().and_then(|c| c.max_task_count), Some(3));
    assert!(b.update_alive_job(&update).unwrap().is_err(), "no change: refused");
    assert_eq!(advance(&*b, &key).created, 2, "the new limit applies to the next creation");
}

pub fn monitor_reports_slow_work_and_retries(make: Factory<'_>) {
    let b = make();
    let slow = job_of(
        r#"{"jobName":"slow","duration":1000,"steps":[{"stepName":"a","executor":"x","duration":500},
            {"stepName":"b","executor":"x"}]}"#,
        r#"{"jobName":"slow","trigger":"t"}"#,
        &*b,
    );
    let fast = job_of(
        r#"{"jobName":"fast","steps":[{"stepName":"a","executor":"x"}]}"#,
        r#"{"jobName":"fast","trigger":"t","duration":-1}"#,
        &*b,
    );
    for j in [&slow, &fast] {
        b.submit(j, false).unwrap();
        advance(&*b, &JobKey::of(j));
    }
    let created = slow.create_time;
    let at = |ms: i64| b.monitor(created + ms, 60_000, &["x".to_string()], 10).unwrap();
    let early = at(400);
    assert!(early.slow_jobs.is_empty() && early.slow_task_count == 0, "nothing outlived its duration yet");
    assert_eq!(early.claimable, 3);
    let mid = at(700);
    assert_eq!((mid.slow_jobs.len(), mid.slow_task_count), (0, 1), "the task (500 ms) is slow before the job");
    assert_eq!(mid.slow_tasks, vec![TaskKey::new("slow", "t", "a")]);
    let late = at(1_500);
    assert_eq!(late.slow_jobs, vec![JobKey::new("slow", "t")], "jobs without a duration are never slow");
    assert_eq!(late.slow_task_count, 1, "tasks without a duration are never slow");
    let c = claim(&*b, "w").expect("a task is claimable");
    let release = Release { picked_times: 2, tried_times: 7, after_ms: None, reason: None };
    assert!(b.release(&c.lease, &release).unwrap());
    let snap = at(0);
    let r = snap.retries.iter().find(|r| r.job_name == c.task.job_name).expect("retry counters of the step");
    assert_eq!((r.picked_sum, r.tried_sum, r.picked_tasks, r.picked_max, r.tried_max), (2, 7, 1, 2, 7));
    assert_eq!(snap.counts.todo_tasks, 3);
}

/// Queue depth and tasks waiting for an executor: a task waits when no executor is named or
/// bound, or when the one named is loaded by no live node (nor by the caller); it is claimable
/// when its executor is available, its back-off is over and no ban stops picking it.
pub fn monitor_counts_claimable_and_waiting_tasks(make: Factory<'_>) {
    let b = make();
    let job = job_of(
        r#"{"jobName":"q","steps":[{"stepName":"none"},{"stepName":"ghost","executor":"ghost"},
            {"stepName":"x","executor":"x"},{"stepName":"y","executor":"y"}]}"#,
        r#"{"jobName":"q","trigger":"t"}"#,
        &*b,
    );
    let key = JobKey::of(&job);
    b.submit(&job, false).unwrap();
    assert_eq!(advance(&*b, &key).created, 4);
    let depth = |live_ms: i64, local: &[&str]| {
        let local: Vec<String> = local.iter().map(|s| s.to_string()).collect();
        let snap = b.monitor(b.now_ms().unwrap(), live_ms, &local, 10).unwrap();
        (snap.claimable, snap.waiting_for_executor)
    };
    assert_eq!(depth(60_000, &[]), (0, 4), "no node has any executor: everything waits");
    assert_eq!(depth(60_000, &["x"]), (1, 3), "the caller's own executors count");
    let y = NodeExecutor { name: "y".into(), sha256: "s".into(), bindings: vec![] };
    b.heartbeat_node("n2", &[y]).unwrap();
    assert_eq!(depth(60_000, &["x"]), (2, 2), "a live node's executor counts");
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(depth(10, &["x"]), (1, 3), "a silent node's executors do not");
    assert_eq!(b.counts().unwrap().unresolved, 1, "counts() knows only tasks with no executor");

    let c = claim(&*b, "w").expect("the x task");
    assert_eq!(depth(60_000, &["x"]), (1, 2), "a leased task is neither claimable nor waiting");
    let later = b.now_ms().unwrap() + 3_600_000;
    let backoff = Release { picked_times: 1, tried_times: 0, after_ms: Some(later), reason: None };
    assert!(b.release(&c.lease, &backoff).unwrap());
    assert_eq!(depth(60_000, &["x"]), (1, 2), "a backed-off task is not claimable yet");
    assert_eq!(depth(60_000, &[]), (1, 3), "and waits if its executor is gone");

    b.set_ban(&BanScope::Job(key.clone()), BanLevel::TaskPick).unwrap();
    assert_eq!(depth(60_000, &["x"]), (0, 2), "a job ban stops picking; waiting tasks still wait");
    b.remove_ban(&BanScope::Job(key)).unwrap();
    b.set_ban(&BanScope::JobDefine("q".into()), BanLevel::TaskCreate).unwrap();
    assert_eq!(depth(60_000, &["x"]), (0, 2), "so does a stronger ban on the define");
    b.remove_ban(&BanScope::JobDefine("q".into())).unwrap();
    b.set_ban(&BanScope::Global, BanLevel::TaskPick).unwrap();
    assert_eq!(depth(60_000, &["x"]), (0, 2), "and a global one");
    b.remove_ban(&BanScope::Global).unwrap();
    assert_eq!(depth(60_000, &["x", "y"]), (1, 2));
}

pub fn batches_claim_in_order_and_fence_each_finish(make: Factory<'_>) {
    let b = make();
    let job = job_of(
        r#"{"jobName":"bat","steps":[{"stepName":"s","stepType":"SHARD","executor":"x","shardConf":{"shard":6}}]}"#,
        r#"{"jobName":"bat","trigger":"t"}"#,
        &*b,
    );
    b.submit(&job, false).unwrap();
    advance(&*b, &JobKey::of(&job));
    let request = ClaimRequest {
        node: "n".into(),
        worker: "w".into(),
        executors: vec!["x".into()],
        lease_ms: 60_000,
        max_overall: 4,
    };
    let batch = b.claim_batch(&request, 10).unwrap();
    let names: Vec<_> = batch.iter().map(|c| c.task.task_name.as_str()).collect();
    assert_eq!(names, ["s.shard-0", "s.shard-1", "s.shard-2", "s.shard-3"], "pick order, capped by max_overall");
    assert!(b.claim_batch(&request, 10).unwrap().is_empty());
    let mut stale = batch[1].lease.clone();
    stale.epoch += 100;
    let finishes = vec![
        (batch[0].lease.clone(), finish(TaskState::Success)),
        (stale, finish(TaskState::Success)),
        (batch[2].lease.clone(), finish(TaskState::Failed)),
    ];
    assert_eq!(b.finish_batch(&finishes).unwrap(), vec![true, false, true], "each entry is fenced on its own");
    let states: Vec<_> = b.job_tasks(&JobKey::of(&job)).unwrap().iter().map(|t| t.state).collect();
    use TaskState::*;
    assert_eq!(states, [Success, Undone, Failed, Undone, Undone, Undone]);
    assert_eq!(b.claim_batch(&request, 10).unwrap().len(), 2, "two slots freed");
}

pub fn releasing_an_adoption_fences_the_holder(make: Factory<'_>) {
    let b = make();
    let job = simple_job(&*b, "ra", "t");
    let key = JobKey::of(&job);
    b.submit(&job, false).unwrap();
    advance(&*b, &key);
    let tk = TaskKey::new("ra", "t", "a");
    assert_eq!(b.release_adoption(&tk).unwrap(), None, "nobody holds it yet");
    let first = claim(&*b, "w1").expect("claimable");
    assert_eq!(b.release_adoption(&tk).unwrap(), Some("n1/w1".to_string()));
    assert!(b.adoptions(None).unwrap().is_empty());
    assert!(!b.renew(&first.lease, 60_000).unwrap(), "the released holder cannot renew");
    assert!(!b.finish(&first.lease, &finish(TaskState::Success)).unwrap(), "its result is discarded");
    let second = claim(&*b, "w2").expect("claimable again");
    assert!(second.lease.epoch > first.lease.epoch);
}

pub fn a_stopping_node_releases_its_leases(make: Factory<'_>) {
    let b = make();
    let job = job_of(
        r#"{"jobName":"rn","steps":[{"stepName":"s","stepType":"SHARD","executor":"x","shardConf":{"shard":3}}]}"#,
        r#"{"jobName":"rn","trigger":"t"}"#,
        &*b,
    );
    b.submit(&job, false).unwrap();
    advance(&*b, &JobKey::of(&job));
    let request = |node: &str| ClaimRequest {
        node: node.into(),
        worker: "w".into(),
        executors: vec!["x".into()],
        lease_ms: 60_000,
        max_overall: 10,
    };
    let mine = b.claim_batch(&request("n1"), 2).unwrap();
    let other = b.claim_batch(&request("n10"), 1).unwrap();
    assert_eq!((mine.len(), other.len()), (2, 1));
    assert!(b.save_checkpoint(&mine[0].lease, b"3", None, 60_000).unwrap());
    assert_eq!(b.release_node("n1").unwrap(), 2, "only n1's leases, not n10's");
    assert!(!b.finish(&mine[1].lease, &finish(TaskState::Success)).unwrap(), "the stopped node is fenced out");
    let resumed = b.claim_batch(&request("n2"), 5).unwrap();
    assert_eq!(resumed.len(), 2);
    assert_eq!(resumed[0].checkpoint.as_deref(), Some(&b"3"[..]), "and its checkpoint is kept");
    let owners: Vec<String> = b.adoptions(None).unwrap().into_iter().map(|(_, owner)| owner).collect();
    assert_eq!(owners.iter().filter(|o| *o == "n10/w").count(), 1, "n10 keeps its lease: {owners:?}");
}

/// Spec §10.3 item 3 (TC-62): at equal priority, the step with the larger share of unclaimed
/// todo tasks goes first, whatever the names say; so a busy early-named job cannot starve others.
pub fn claims_prefer_the_emptier_step(make: Factory<'_>) {
    let b = make();
    for (name, shards) in [("a", 3), ("b", 2)] {
        let job = job_of(
            &format!(
                r#"{{"jobName":"{name}","steps":[{{"stepName":"s","stepType":"SHARD","executor":"x","shardConf":{{"shard":{shards}}}}}]}}"#
            ),
            &format!(r#"{{"jobName":"{name}","trigger":"t"}}"#),
            &*b,
        );
        b.submit(&job, false).unwrap();
        advance(&*b, &JobKey::of(&job));
    }
    let first = claim(&*b, "w1").unwrap();
    assert_eq!(first.task.job_name, "a", "equal rates (1000): names decide");
    let second = claim(&*b, "w2").unwrap();
    assert_eq!(second.task.job_name, "b", "a's rate is now 666, b's 1000");
    let third = claim(&*b, "w3").unwrap();
    assert_eq!(third.task.job_name, "a", "a 666 vs b 500");
    assert!(b.finish(&first.lease, &finish(TaskState::Success)).unwrap());
    // a: 2 todo, 1 held → 500; b: 2 todo, 1 held → 500: names again.
    assert_eq!(claim(&*b, "w4").unwrap().task.job_name, "a");
    assert_eq!(claim(&*b, "w5").unwrap().task.job_name, "b");
    assert!(claim(&*b, "w6").is_none());
}
