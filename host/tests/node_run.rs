//! Jobs run end to end through a node: storage, advancer, workers and real executors.

mod support;

use serde_json::json;
use support::*;
use tascreed_bulletin::TaskList;
use tascreed_domain::{JobState, StepState, TaskState};

const CHAIN: &str = r#"{"jobName":"chain","steps":[{"stepName":"A"},
 {"stepName":"B","dependency":{"steps":["A"]}},{"stepName":"C","dependency":{"steps":["B"]}}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_runs_in_order_and_is_archived() {
    let h = Harness::new(&[&with_executor(CHAIN, "scripted")]).await;
    h.submit(&scripted_request("chain", "t", json!({}))).await;
    let job = h.wait_state("chain", "t", JobState::Success).await;
    assert_eq!(job.progression, "100.00%");
    let (_, archived) = h.job("chain", "t").await.unwrap();
    assert!(archived);
    let tasks = h.tasks("chain", "t").await;
    let names: Vec<_> = tasks.iter().map(|t| t.task_name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    let b = &tasks[1];
    assert_eq!(b.dependent_step_states.as_ref().unwrap().get("A"), Some(&StepState::Success));
    assert!(b.create_time >= tasks[0].finish_time.unwrap(), "B is created only after A finished");
    for t in &tasks {
        assert_eq!(t.state, TaskState::Success);
        assert!(t.fuel.unwrap() > 0, "fuel recorded for {}", t.task_name);
        assert!(t.executor.as_ref().unwrap().sha256.as_ref().unwrap().len() == 64);
        assert_eq!(t.node.as_deref(), Some("n1"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_skips_dependants_and_keeps_the_job_alive() {
    let h = Harness::new(&[&with_executor(CHAIN, "scripted")]).await;
    h.submit(&scripted_request("chain", "t", json!({"A": ["ERR"]}))).await;
    let job = h.wait_state("chain", "t", JobState::Error).await;
    assert_eq!(step(&job, "A").state, StepState::Error);
    assert_eq!(step(&job, "B").state, StepState::SkipByError);
    assert_eq!(step(&job, "C").state, StepState::SkipByError);
    let (_, archived) = h.job("chain", "t").await.unwrap();
    assert!(!archived, "ERROR jobs stay alive");
    let errors = h.list(TaskList::Error, "chain").await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].result.state, Some(TaskState::Error));
    assert!(h.list(TaskList::Done, "chain").await.is_empty(), "done records are consumed by the fold");
    assert_eq!(h.tasks("chain", "t").await.len(), 1, "only task A was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_with_a_pick_limit_ends_in_error_after_limit_plus_one_runs() {
    let define = r#"{"jobName":"mp","steps":[{"stepName":"a","maxPickTimes":2,"executor":"scripted"},
        {"stepName":"b","dependentStep":"a","executor":"scripted"}]}"#;
    let h = Harness::new(&[define]).await;
    h.submit(&scripted_request("mp", "t", json!({"a": ["NONRETRY"]}))).await;
    let job = h.wait_state("mp", "t", JobState::Error).await;
    assert_eq!(step(&job, "b").state, StepState::SkipByError);
    let a = &h.tasks("mp", "t").await[0];
    assert_eq!(a.state, TaskState::Error);
    assert_eq!(a.result.reason.as_deref(), Some("picked times 3 exceeds max pick times 2"));
    assert_eq!((a.picked_times, a.tried_times), (3, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn retryable_errors_are_retried_in_place() {
    let define = r#"{"jobName":"rt","steps":[{"stepName":"a","executor":"scripted"}]}"#;
    let h = Harness::new(&[define]).await;
    h.submit(&scripted_request("rt", "t", json!({"a": ["RETRY", "RETRY", "OK"]}))).await;
    h.wait_state("rt", "t", JobState::Success).await;
    let a = &h.tasks("rt", "t").await[0];
    assert_eq!((a.picked_times, a.tried_times), (0, 2), "two failed attempts within one pick");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_trap_ends_the_task_error_at_once() {
    let define = r#"{"jobName":"spin","steps":[{"stepName":"a","executor":"scripted","fuelLimit":50000000}]}"#;
    let h = Harness::new(&[define]).await;
    h.submit(&scripted_request("spin", "t", json!({"a": ["SPIN"]}))).await;
    h.wait_state("spin", "t", JobState::Error).await;
    let a = &h.tasks("spin", "t").await[0];
    assert!(a.result.reason.as_deref().unwrap().contains("fuel exhausted"), "{:?}", a.result.reason);
    assert_eq!(a.fuel, Some(50_000_000));
    assert_eq!((a.picked_times, a.tried_times), (0, 0), "no retry of a limit hit");
}

#[tokio::test(flavor = "multi_thread")]
async fn updated_params_reach_later_tasks() {
    let define = r#"{"jobName":"par","params":{"a":"D"},"steps":[{"stepName":"s1","executor":"scripted"},
        {"stepName":"s2","dependentStep":"s1","executor":"scripted"}]}"#;
    let h = Harness::new(&[define]).await;
    let script = json!({"s1": [{"do": "OK", "updatedParams": {"c": "U"}}]});
    h.submit(&scripted_request("par", "t", script)).await;
    let job = h.wait_state("par", "t", JobState::Success).await;
    assert_eq!(job.updated_params.get("c").map(String::as_str), Some("U"));
    let s2 = &h.tasks("par", "t").await[1];
    assert_eq!(s2.params.get("c").map(String::as_str), Some("U"));
    assert_eq!(s2.params.get("a").map(String::as_str), Some("D"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_executor_runs_round_by_round() {
    let define = r#"{"jobName":"cp","steps":[{"stepName":"a","executor":"counter","params":{"rounds":"10"}}]}"#;
    let h = Harness::new(&[define]).await;
    h.submit(r#"{"jobName":"cp","trigger":"t"}"#).await;
    h.wait_state("cp", "t", JobState::Success).await;
    let a = &h.tasks("cp", "t").await[0];
    assert_eq!(a.result.checkpoint.as_deref(), Some("MTA="), "base64 of the final checkpoint \"10\"");
    assert_eq!(a.result.checkpoint_size, Some(2));
    assert_eq!(a.result.progression.as_deref(), Some("100.00%"));
    assert_eq!((a.picked_times, a.tried_times), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn shard_and_pack_steps_run_every_task() {
    let define = r#"{"jobName":"sp","steps":[
        {"stepName":"s","stepType":"SHARD","executor":"range-sum","shardConf":{"shard":6,"maxTaskCount":2},"params":{"end":"99"}},
        {"stepName":"p","stepType":"PACK","executor":"range-sum","dependentStep":"s","packConf":{"size":100,"start":0,"end":1005,"maxTaskCount":3}}]}"#;
    let h = Harness::new(&[define]).await;
    h.submit(r#"{"jobName":"sp","trigger":"t"}"#).await;
    let job = h.wait_state("sp", "t", JobState::Success).await;
    assert_eq!(step(&job, "s").shard_done_range.as_ref().map(|r| r.indexes.to_string()), Some("[0,5]".to_string()));
    assert_eq!(step(&job, "p").pack_done_range.as_ref().map(|r| r.offsets.to_string()), Some("[0,1005]".to_string()));
    let tasks = h.tasks("sp", "t").await;
    assert_eq!(tasks.len(), 6 + 11);
    let total: u128 = job
        .updated_params
        .iter()
        .filter(|(k, _)| k.starts_with("sum.p.pack-"))
        .map(|(_, v)| v.parse::<u128>().unwrap())
        .sum();
    assert_eq!(total, (0..=1005u128).sum(), "the packs tile [0, 1005] exactly");
    let shard_total: u128 = job
        .updated_params
        .iter()
        .filter(|(k, _)| k.starts_with("sum.s.shard-"))
        .map(|(_, v)| v.parse::<u128>().unwrap())
        .sum();
    assert_eq!(shard_total, (0..=99u128).sum());
}

#[tokio::test(flavor = "multi_thread")]
async fn events_drive_a_job_without_the_sweep() {
    // The sweep would take a minute to notice anything: a submit and each finished task must
    // advance the job by themselves, so the chain ends long before the first sweep.
    let mut config = fast_config("n1");
    config.sweep_ms = 60_000;
    let h = Harness::with_config(&[&with_executor(CHAIN, "scripted")], config).await;
    let started = std::time::Instant::now();
    h.submit(&scripted_request("chain", "t", json!({}))).await;
    h.wait_state("chain", "t", JobState::Success).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    let tasks = h.tasks("chain", "t").await;
    assert_eq!(tasks.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_workers_advances_jobs_but_runs_no_task() {
    let mut config = fast_config("api-only");
    config.workers = 0;
    let h = Harness::with_config(&[&with_executor(CHAIN, "scripted")], config).await;
    h.submit(&scripted_request("chain", "t", json!({}))).await;
    let tasks = eventually(20, "task A created", || async {
        let t = h.tasks("chain", "t").await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(tasks[0].task_name, "A");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(h.adoptions().await.is_empty(), "nobody claimed A");
    let a = &h.tasks("chain", "t").await[0];
    assert_eq!((a.state, a.start_time), (TaskState::Undone, None), "A never ran");
}
