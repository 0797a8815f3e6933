//! The runtime against real guest components (built by `cargo xtask plugins`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use common::*;
use tascreed_runtime::{
    CallContext, CallError, CallLimits, LoadError, Pack, Runtime, RuntimeConfig, Status, TaskHooks,
};

#[tokio::test(flavor = "multi_thread")]
async fn reads_the_manifest_of_each_example() {
    let scripted = load("scripted").await;
    assert_eq!(scripted.manifest().name, "scripted");
    assert!(!scripted.manifest().checkpoint);
    let counter = load("counter").await;
    assert_eq!(counter.manifest().name, "counter");
    assert!(counter.manifest().checkpoint);
    for name in ["noop", "range-sum"] {
        let exec = load(name).await;
        assert_eq!(exec.manifest().name, name);
        assert!(!exec.manifest().checkpoint);
        assert_eq!(exec.sha256().len(), 64);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn returns_the_outcome_the_guest_chose() {
    let exec = load("scripted").await;
    for (action, status) in [("OK", Status::Success), ("FAIL", Status::Failed), ("ERR", Status::Error)] {
        let report = exec.execute(&scripted_task(&format!(r#"{{"*":["{action}"]}}"#)), &default_ctx()).await;
        let outcome = report.result.unwrap_or_else(|e| panic!("{action}: {e}"));
        assert_eq!(outcome.status, status, "{action}");
        assert!(report.fuel_consumed > 0, "fuel is reported for {action}");
        assert!(report.peak_memory > 0, "peak memory is reported for {action}");
    }
    let script = r#"{"s":[{"do":"OK","reason":"fine","updatedParams":{"k":"v"},"updatedConfigs":{"calc":{"shardConf":{"shard":3}}}}]}"#;
    let outcome = exec.execute(&scripted_task(script), &default_ctx()).await.result.expect("OK");
    assert_eq!(outcome.reason.as_deref(), Some("fine"));
    assert_eq!(outcome.updated_params, vec![("k".to_string(), "v".to_string())]);
    assert_eq!(outcome.updated_configs.len(), 1);
    assert_eq!(outcome.updated_configs[0].0, "calc");
    let conf: serde_json::Value = serde_json::from_str(&outcome.updated_configs[0].1).expect("config is JSON");
    assert_eq!(conf["shardConf"]["shard"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_action_follows_the_attempt_number() {
    let exec = load("scripted").await;
    let mut task = scripted_task(r#"{"*":["RETRY","FAIL","OK"]}"#);
    let mut seen = Vec::new();
    for tried in 0..4 {
        task.tried_times = tried;
        seen.push(match exec.execute(&task, &default_ctx()).await.result {
            Ok(o) => format!("{:?}", o.status),
            Err(e) => e.kind().to_string(),
        });
    }
    assert_eq!(seen, ["retry", "Status::Failed", "Status::Success", "Status::Success"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_errors_keep_their_kind_and_reason() {
    let exec = load("scripted").await;
    let retry = exec.execute(&scripted_task(r#"{"*":[{"do":"RETRY","reason":"busy"}]}"#), &default_ctx()).await;
    assert!(matches!(&retry.result, Err(CallError::Retry(m)) if m.contains("busy")), "{:?}", retry.result);
    let non = exec.execute(&scripted_task(r#"{"*":[{"do":"NONRETRY","reason":"broken"}]}"#), &default_ctx()).await;
    assert!(matches!(&non.result, Err(CallError::NonRetry(m)) if m.contains("broken")), "{:?}", non.result);
    assert!(!non.result.as_ref().unwrap_err().is_limit());
    let bad = exec.execute(&scripted_task("{not json"), &default_ctx()).await;
    assert!(matches!(&bad.result, Err(CallError::NonRetry(m)) if m.contains("script")), "{:?}", bad.result);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_trap_carrying_the_stderr_tail() {
    let exec = load("scripted").await;
    let report = exec.execute(&scripted_task(r#"{"*":[{"do":"PANIC","reason":"kaboom-42"}]}"#), &default_ctx()).await;
    match report.result {
        Err(CallError::Trap { stderr_tail, code, message }) => {
            assert!(stderr_tail.contains("kaboom-42"), "stderr tail: {stderr_tail}");
            assert!(code.contains("unreachable"), "trap code: {code}");
            // The message names what went wrong, not wasmtime's backtrace wrapper.
            assert!(message.contains("unreachable"), "trap message: {message}");
            assert!(!message.contains("backtrace"), "trap message: {message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_is_stopped_by_fuel() {
    let exec = load("scripted").await;
    let budget = 200_000_000;
    let report = exec.execute(&scripted_task(r#"{"*":["SPIN"]}"#), &ctx(budget, Duration::from_secs(60))).await;
    assert_eq!(report.result.unwrap_err(), CallError::FuelExhausted { budget });
    assert_eq!(report.fuel_consumed, budget);
    assert!(report.wall < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_with_unlimited_fuel_is_stopped_by_the_deadline() {
    let exec = load("scripted").await;
    let timeout = Duration::from_millis(300);
    let report = exec.execute(&scripted_task(r#"{"*":["SPIN"]}"#), &ctx(u64::MAX, timeout)).await;
    match report.result {
        Err(CallError::Deadline { limit, elapsed }) => {
            assert_eq!(limit, timeout);
            assert!(elapsed >= timeout, "stopped after {elapsed:?}");
        }
        other => panic!("expected a deadline, got {other:?}"),
    }
    assert!(report.wall < Duration::from_secs(5), "the deadline is enforced promptly: {:?}", report.wall);
    assert!(report.fuel_consumed > 0, "fuel burnt before the deadline is reported");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_guest_is_stopped_by_the_deadline_too() {
    let exec = load("scripted").await;
    let timeout = Duration::from_millis(200);
    let report = exec.execute(&scripted_task(r#"{"*":[{"do":"OK","sleepMs":20000}]}"#), &ctx(u64::MAX, timeout)).await;
    assert!(matches!(report.result, Err(CallError::Deadline { .. })), "{:?}", report.result);
    assert!(report.wall < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn hog_is_stopped_by_the_memory_cap() {
    let exec = load("scripted").await;
    let report = exec.execute(&scripted_task(r#"{"*":["HOG"]}"#), &default_ctx()).await;
    let err = report.result.unwrap_err();
    let limit = 64 * 1024 * 1024;
    assert!(matches!(err, CallError::MemoryCap { limit: l, requested } if l == limit && requested > limit), "{err:?}");
    assert!(err.to_string().contains(&limit.to_string()), "message names the limit: {err}");
    assert!(err.is_limit());
    assert!(report.peak_memory <= limit && report.peak_memory > limit / 2, "peak {}", report.peak_memory);
}

#[tokio::test(flavor = "multi_thread")]
async fn fuel_consumed_grows_with_work() {
    let exec = load("range-sum").await;
    let mut fuel = Vec::new();
    for end in [1_000u64, 100_000] {
        let mut task = task("sum.pack-0", &[]);
        task.pack = Some(Pack { id: 0, start: 1, end });
        let report = exec.execute(&task, &default_ctx()).await;
        let outcome = report.result.expect("range-sum succeeds");
        let expected = (end * (end + 1) / 2).to_string();
        assert_eq!(outcome.updated_params, vec![("sum.sum.pack-0".to_string(), expected)]);
        fuel.push(report.fuel_consumed);
    }
    assert!(fuel[1] > fuel[0] * 10, "100x the work burns far more fuel: {fuel:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_grants_nothing() {
    // Live TCP and UDP listeners on one port: a connection or datagram the guest fails to make
    // can then only have been refused by the sandbox, not by an empty port.
    let (tcp, udp) = (0..50)
        .find_map(|_| {
            let tcp = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
            let port = tcp.local_addr().ok()?.port();
            let udp = std::net::UdpSocket::bind(("127.0.0.1", port)).ok()?;
            Some((tcp, udp))
        })
        .expect("a loopback port free for TCP and UDP");
    tcp.set_nonblocking(true).unwrap();
    udp.set_nonblocking(true).unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let task = task("s", &[("script", r#"{"*":["PROBE"]}"#), ("probeAddr", &addr)]);
    let outcome = exec_probe(&task).await;
    let get =
        |k: &str| outcome.updated_params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("probe.env"), "0", "no environment");
    assert_eq!(get("probe.args"), "0", "no arguments");
    for key in ["probe.fs", "probe.write", "probe.net", "probe.udp", "probe.dns"] {
        assert!(get(key).starts_with("denied"), "{key} = {}", get(key));
    }
    assert!(tcp.accept().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "no TCP connection got through");
    let mut buf = [0u8; 16];
    assert!(udp.recv(&mut buf).is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "no datagram got through");
}

async fn exec_probe(task: &tascreed_runtime::Task) -> tascreed_runtime::Outcome {
    load("scripted").await.execute(task, &default_ctx()).await.result.expect("probe runs")
}

#[derive(Default)]
struct Recorder {
    progress: AtomicU8,
    occupied: AtomicBool,
}

impl TaskHooks for Recorder {
    fn progress(&self, percent: u8) {
        self.progress.store(percent, Ordering::SeqCst);
    }
    fn still_occupied(&self) -> bool {
        self.occupied.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_executor_is_driven_round_by_round() {
    let exec = load("counter").await;
    let hooks = Arc::new(Recorder { occupied: AtomicBool::new(true), ..Recorder::default() });
    let ctx = CallContext { hooks: hooks.clone(), ..default_ctx() };
    let task = task("a", &[("rounds", "3")]);
    let mut checkpoint = None;
    let mut rounds = 0;
    loop {
        let round = exec.execute_round(&task, checkpoint.clone(), &ctx).await.result.expect("round succeeds");
        rounds += 1;
        assert_eq!(String::from_utf8(round.checkpoint.clone()).unwrap(), rounds.to_string());
        checkpoint = Some(round.checkpoint);
        if let Some(outcome) = round.finished {
            assert_eq!(outcome.status, Status::Success);
            break;
        }
        assert!(rounds < 3, "finished flag missing after round {rounds}");
    }
    assert_eq!(rounds, 3);
    assert_eq!(hooks.progress.load(Ordering::SeqCst), 100);
    // Resuming from a persisted checkpoint continues from it.
    let round = exec.execute_round(&task, Some(b"2".to_vec()), &ctx).await.result.expect("resume");
    assert_eq!(round.checkpoint, b"3");
    assert!(round.finished.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wrong_entry_point_is_refused() {
    let counter = load("counter").await;
    let r = counter.execute(&task("a", &[]), &default_ctx()).await;
    assert!(matches!(r.result, Err(CallError::Unsupported(_))), "{:?}", r.result);
    let scripted = load("scripted").await;
    let r = scripted.execute_round(&task("a", &[]), None, &default_ctx()).await;
    assert!(matches!(r.result, Err(CallError::Unsupported(_))), "{:?}", r.result);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_sees_when_its_lease_is_lost() {
    let exec = load("scripted").await;
    let hooks = Arc::new(Recorder::default()); // occupied = false
    let ctx = CallContext { hooks, ..default_ctx() };
    let report = exec.execute(&scripted_task(r#"{"*":[{"do":"OK","sleepMs":10000}]}"#), &ctx).await;
    assert!(matches!(&report.result, Err(CallError::NonRetry(m)) if m.contains("occupation")), "{:?}", report.result);
    assert!(report.wall < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_bad_component_is_rejected_with_its_own_error() {
    let rt = shared_runtime();
    let garbage: Arc<[u8]> = Arc::from(&b"definitely not wasm"[..]);
    assert!(matches!(rt.load(garbage).await, Err(LoadError::NotWasm)));
    let core: Arc<[u8]> = Arc::from(&b"\0asm\x01\0\0\0"[..]);
    assert!(matches!(rt.load(core).await, Err(LoadError::CoreModule)));
    let whole = guest_bytes("scripted.wasm");
    let truncated: Arc<[u8]> = Arc::from(&whole[..whole.len() / 2]);
    assert!(matches!(rt.load(truncated).await, Err(LoadError::Invalid(_))));
    match rt.load(guest_bytes("testing/other-world.wasm")).await {
        Err(LoadError::WrongWorld(m)) => assert!(!m.is_empty()),
        other => panic!("expected WrongWorld, got {:?}", other.map(|e| e.manifest().name.clone())),
    }
    match rt.load(guest_bytes("testing/bad-import.wasm")).await {
        Err(LoadError::UnsupportedImport(m)) => assert!(m.contains("missing"), "{m}"),
        other => panic!("expected UnsupportedImport, got {:?}", other.map(|e| e.manifest().name.clone())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_artifact_cache_survives_a_restart_and_heals_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig { cache_dir: Some(dir.path().to_path_buf()), ..RuntimeConfig::default() };
    let bytes = guest_bytes("noop.wasm");

    let first = Runtime::new(config.clone()).unwrap().load(bytes.clone()).await.unwrap();
    assert!(!first.load_info().cache_hit);
    let artifacts: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(artifacts.len(), 1, "one artifact, no temp files left: {artifacts:?}");
    assert!(artifacts[0].file_name().unwrap().to_string_lossy().starts_with(first.sha256()));

    let restarted = Runtime::new(config.clone()).unwrap().load(bytes.clone()).await.unwrap();
    assert!(restarted.load_info().cache_hit, "a new process reuses the artifact");
    assert!(restarted.execute(&task("a", &[]), &default_ctx()).await.result.is_ok());

    let mut damaged = std::fs::read(&artifacts[0]).unwrap();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    std::fs::write(&artifacts[0], &damaged).unwrap();
    let healed = Runtime::new(config.clone()).unwrap().load(bytes.clone()).await.unwrap();
    assert!(!healed.load_info().cache_hit, "a corrupt artifact is recompiled");
    assert!(healed.execute(&task("a", &[]), &default_ctx()).await.result.is_ok());

    std::fs::write(&artifacts[0], b"short").unwrap();
    let again = Runtime::new(config.clone()).unwrap().load(bytes.clone()).await.unwrap();
    assert!(!again.load_info().cache_hit, "a truncated artifact is recompiled");
    let last = Runtime::new(config).unwrap().load(bytes).await.unwrap();
    assert!(last.load_info().cache_hit, "and rewritten whole");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_demand_allocation_works_too() {
    let rt = Runtime::new(RuntimeConfig { pooling: false, ..RuntimeConfig::default() }).unwrap();
    assert!(!rt.pooling());
    let exec = rt.load(guest_bytes("noop.wasm")).await.unwrap();
    let limits = CallLimits { fuel: 1_000_000, timeout: Duration::from_secs(5) };
    let report = exec.execute(&task("a", &[]), &CallContext::new(limits)).await;
    assert_eq!(report.result.unwrap().status, Status::Success);
}

#[tokio::test(flavor = "multi_thread")]
async fn pooling_is_on_by_default() {
    assert!(shared_runtime().pooling(), "this machine has the address space for the pool");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_fuel_metering_only_the_deadline_stops_a_guest() {
    let rt = Runtime::new(RuntimeConfig { fuel_metering: false, ..RuntimeConfig::default() }).unwrap();
    let exec = rt.load(guest_bytes("scripted.wasm")).await.unwrap();
    let ok = exec.execute(&scripted_task(r#"{"*":["OK"]}"#), &ctx(1, Duration::from_secs(5))).await;
    assert!(ok.result.is_ok(), "a budget of 1 is not enforced without metering: {:?}", ok.result);
    assert_eq!(ok.fuel_consumed, 0);
    // Nothing but epochs can take a non-metered guest off its thread: a hang here is a failure.
    let spin = tokio::time::timeout(
        Duration::from_secs(30),
        exec.execute(&scripted_task(r#"{"*":["SPIN"]}"#), &ctx(1, Duration::from_millis(200))),
    )
    .await
    .expect("the deadline stops a guest that never yields");
    assert!(matches!(spin.result, Err(CallError::Deadline { .. })), "{:?}", spin.result);
}
