//! Nodes as real `tascreed serve` processes on one SQLite file: crash and resume from a
//! checkpoint, two nodes sharing a job, fencing of a node that lost its lease, restarts.
//!
//! Jobs are submitted by writing to the database from the test process (the HTTP API is not
//! used); states are read the same way. Every wait polls with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tascreed_bulletin::{Bulletin, JobKey, SqliteBulletin, TaskKey};
use tascreed_domain::{JobState, Task, TaskState};
use tascreed_tests::*;

const SIMPLE: &str = r#"{"jobName":"simple","steps":[{"stepName":"a","executor":"noop"}]}"#;

fn job_state(b: &SqliteBulletin, name: &str, trigger: &str) -> Option<(JobState, bool)> {
    b.job(&JobKey::new(name, trigger)).expect("read job").map(|s| (s.job.state, s.archived))
}

fn wait_job(b: &SqliteBulletin, name: &str, trigger: &str, state: JobState, secs: u64, servers: &[&Server]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((s, archived)) = job_state(b, name, trigger)
            && s == state
        {
            return archived;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = servers.iter().map(|s| s.log()).collect();
            panic!(
                "{name}/{trigger} not {state:?} in {secs}s: {:?}\ntasks: {:?}\nlogs:\n{}",
                job_state(b, name, trigger),
                b.job_tasks(&JobKey::new(name, trigger))
                    .map(|t| t.iter().map(|t| (t.task_name.clone(), t.state)).collect::<Vec<_>>()),
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn task(b: &SqliteBulletin, name: &str, trigger: &str, task: &str) -> Option<Task> {
    b.task(&TaskKey::new(name, trigger, task)).expect("read task")
}

/// Standard base64 → text (checkpoints are shown base64).
fn unbase64(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes().filter(|&c| c != b'=') {
        let d = ALPHABET.iter().position(|&a| a == c).expect("base64 digit") as u32;
        bits = (bits << 6) | d;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).expect("utf-8 checkpoint")
}

fn checkpoint(t: &Task) -> Option<u64> {
    t.result.checkpoint.as_deref().map(|c| unbase64(c).parse().expect("decimal checkpoint"))
}

/// Raw connection for what the Bulletin trait does not show (fencing epochs).
fn raw(ws: &Workspace) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(ws.db()).expect("open db");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// How many times each task of a job was claimed (its fencing epoch).
fn claims(ws: &Workspace, job: &str) -> BTreeMap<String, i64> {
    let conn = raw(ws);
    let mut stmt = conn.prepare("SELECT task_name, lease_epoch FROM tasks WHERE job_name = ?1").unwrap();
    stmt.query_map([job], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// Whether another process could take the write lock within `ms` (i.e. no stopped process holds it).
fn writable(ws: &Workspace, ms: u64) -> bool {
    let conn = rusqlite::Connection::open(ws.db()).expect("open db");
    conn.busy_timeout(Duration::from_millis(ms)).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok()
}

/// A second node whose `scripted` is a fixed build (noop under that name), so which node's
/// guest ran a task shows in its result.
fn serve_fixed(ws: &Workspace, flags: &[&str]) -> Server {
    let fixed = ws.path().join("executors-fixed");
    std::fs::create_dir_all(&fixed).unwrap();
    std::fs::copy(plugins_dir().join("noop.wasm"), fixed.join("scripted.wasm")).unwrap();
    let dir = fixed.display().to_string();
    let mut flags = flags.to_vec();
    flags.extend(["--executor-dirs", dir.as_str()]);
    ws.serve(&flags)
}

#[test]
fn a_killed_node_is_resumed_from_its_last_checkpoint_by_another() {
    let ws = Workspace::new();
    let cp =
        r#"{"jobName":"cp","steps":[{"stepName":"a","executor":"counter","params":{"rounds":"10","roundMs":"300"}}]}"#;
    let cp2 =
        r#"{"jobName":"cp2","steps":[{"stepName":"a","executor":"counter","params":{"rounds":"12","roundMs":"250"}}]}"#;
    ws.define("simple", SIMPLE);
    ws.define("cp", cp);
    ws.define("cp2", cp2);
    let flags = ["--lease-ms", "2000", "--heartbeat-ms", "300", "--worker-max-count-per-host", "4"];
    let mut first = ws.serve(&flags);
    let b = ws.bulletin();

    // Two finished jobs before the crash.
    for t in ["done1", "done2"] {
        ws.submit(&b, SIMPLE, &format!(r#"{{"jobName":"simple","trigger":"{t}"}}"#));
    }
    for t in ["done1", "done2"] {
        assert!(wait_job(&b, "simple", t, JobState::Success, 30, &[&first]), "archived");
    }
    let finished_before: Vec<_> = ["done1", "done2"]
        .iter()
        .map(|t| (b.job(&JobKey::new("simple", *t)).unwrap(), b.job_tasks(&JobKey::new("simple", *t)).unwrap()))
        .collect();

    ws.submit(&b, cp, r#"{"jobName":"cp","trigger":"t"}"#);
    ws.submit(&b, cp2, r#"{"jobName":"cp2","trigger":"t"}"#);
    eventually(30, "cp at round 5", || task(&b, "cp", "t", "a").filter(|t| checkpoint(t) >= Some(5)));
    first.kill();
    let at_kill = task(&b, "cp", "t", "a").unwrap();
    let k = checkpoint(&at_kill).unwrap();
    assert!((5..10).contains(&k), "killed mid-run at checkpoint {k}");
    assert_eq!(at_kill.node.as_deref(), Some(first.node_id().as_str()));
    assert_eq!(at_kill.state, TaskState::Undone);

    let restart = Instant::now();
    let second = ws.serve(&flags);
    let mut seen = vec![k];
    let done = loop {
        let t = task(&b, "cp", "t", "a").unwrap();
        if let Some(c) = checkpoint(&t)
            && seen.last() != Some(&c)
        {
            seen.push(c);
        }
        if t.state.is_done() {
            break t;
        }
        assert!(restart.elapsed() < Duration::from_secs(40), "cp not finished after the restart:\n{}", second.log());
        std::thread::sleep(Duration::from_millis(10));
    };
    let resumed = restart.elapsed();
    assert_eq!(done.state, TaskState::Success);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "resumed, never restarted from 0: checkpoints seen {seen:?}");
    assert_eq!(checkpoint(&done), Some(10));
    assert_eq!(done.node.as_deref(), Some(second.node_id().as_str()), "finished by the second node");
    assert_eq!((done.picked_times, done.tried_times), (0, 0), "a crash counts nothing");
    let wall = done.wall_ms.unwrap();
    assert!(wall < 10 * 300, "the second node ran {} rounds, not 10 (wall {wall} ms)", 10 - k);
    assert_eq!(claims(&ws, "cp")["a"], 2, "claimed once per node");
    assert!(wait_job(&b, "cp", "t", JobState::Success, 30, &[&second]));
    assert!(wait_job(&b, "cp2", "t", JobState::Success, 30, &[&second]), "the other running job completes too");
    assert_eq!(task(&b, "cp2", "t", "a").and_then(|t| checkpoint(&t)), Some(12));

    for ((job, tasks), t) in finished_before.iter().zip(["done1", "done2"]) {
        assert_eq!(&b.job(&JobKey::new("simple", t)).unwrap(), job, "finished job {t} unchanged");
        assert_eq!(&b.job_tasks(&JobKey::new("simple", t)).unwrap(), tasks, "its tasks unchanged");
        assert!(job.as_ref().unwrap().archived);
        assert!(tasks.iter().all(|t| t.state == TaskState::Success));
    }
    eprintln!(
        "crash: killed at checkpoint {k}; second node ran {} rounds in {wall} ms; resumed and finished {} ms after restart; \
         checkpoints seen {seen:?}",
        10 - k,
        resumed.as_millis()
    );
}

#[test]
fn two_nodes_run_a_2000_task_job_each_task_once() {
    let ws = Workspace::new();
    // `scripted` logs one line per run, naming its task: the logs tell how often each ran.
    let many = r#"{"jobName":"many","steps":[{"stepName":"s","stepType":"SHARD","executor":"scripted",
        "shardConf":{"shard":2000,"maxTaskCount":200}}]}"#;
    ws.define("many", many);
    let one = ws.serve(&[]);
    let two = ws.serve(&[]);
    let b = ws.bulletin();
    let started = Instant::now();
    ws.submit(&b, many, r#"{"jobName":"many","trigger":"t"}"#);
    let (mut samples, mut max_adopted, mut owners) = (0, 0, BTreeSet::new());
    loop {
        let adoptions = b.adoptions(None).expect("adoptions");
        let keys: BTreeSet<&String> = adoptions.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), adoptions.len(), "a task leased twice at once: {adoptions:?}");
        max_adopted = max_adopted.max(adoptions.len());
        owners.extend(adoptions.iter().map(|(_, v)| v.split('/').next().unwrap_or_default().to_string()));
        samples += 1;
        if let Some((state, _)) = job_state(&b, "many", "t")
            && state.is_done()
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(55), "not done in 55 s:\n{}\n-----\n{}", one.log(), two.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    let (state, archived) = job_state(&b, "many", "t").unwrap();
    assert_eq!(state, JobState::Success);
    assert!(archived);
    let tasks = b.job_tasks(&JobKey::new("many", "t")).unwrap();
    assert_eq!(tasks.len(), 2000);
    assert!(tasks.iter().all(|t| t.state == TaskState::Success), "every task SUCCESS");
    // A task may be claimed again only if it was handed back before it started (a batch behind
    // a long task), so runs are counted, not claims.
    let logs = format!("{}\n{}", one.log(), two.log());
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for line in logs.lines() {
        if let Some(rest) = line.split("scripted: task ").nth(1)
            && let Some(task) = rest.split(' ').next()
        {
            *runs.entry(task).or_default() += 1;
        }
    }
    assert_eq!(runs.len(), 2000, "every task ran");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "every task ran exactly once; these did not: {twice:?}");
    let epochs = claims(&ws, "many");
    let reclaimed = epochs.values().filter(|e| **e != 1).count();
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tasks {
        *per_node.entry(t.node.clone().unwrap_or_default()).or_default() += 1;
    }
    eprintln!(
        "two nodes: 2000 tasks in {} ms; per node {per_node:?}; max concurrent adoptions {max_adopted} over {samples} \
         samples; {reclaimed} handed back and claimed again",
        took.as_millis()
    );
    assert_eq!(
        per_node.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([one.node_id(), two.node_id()]),
        "both nodes ran tasks: {per_node:?}"
    );
    assert!(max_adopted <= 20, "worker.max.count.overall respected");
    assert!(owners.is_subset(&BTreeSet::from([one.node_id(), two.node_id()])));
}

#[test]
fn a_node_paused_past_its_lease_cannot_record_its_result() {
    let ws = Workspace::new();
    let fence = r#"{"jobName":"fence","steps":[{"stepName":"a","executor":"scripted"}]}"#;
    ws.define("fence", fence);
    let lease = ["--lease-ms", "1000", "--heartbeat-ms", "300"];
    let first = ws.serve(&lease);
    let b = ws.bulletin();
    let script = r#"{\"a\":[{\"do\":\"FAIL\",\"sleepMs\":4000}]}"#;
    ws.submit(&b, fence, &format!(r#"{{"jobName":"fence","trigger":"t","params":{{"script":"{script}"}}}}"#));
    let owner = format!("{}/", first.node_id());
    let claimed = eventually(30, "the first node runs a", || {
        let leased = b.adoptions(Some("fence/t/a")).unwrap().iter().any(|(_, v)| v.starts_with(&owner));
        if leased { task(&b, "fence", "t", "a") } else { None }
    });
    first.wait_log("scripted: task a attempt 0 action FAIL", 10);
    // Pause it, but never in the middle of a write transaction (that would stall everyone).
    let mut tries = 0;
    loop {
        first.signal("STOP");
        if writable(&ws, 300) {
            break;
        }
        first.signal("CONT");
        tries += 1;
        assert!(tries < 20, "the first node keeps the database locked");
        std::thread::sleep(Duration::from_millis(30));
    }
    // It succeeds where the first node's guest fails: whose result was recorded is visible.
    let second = serve_fixed(&ws, &lease);
    assert!(wait_job(&b, "fence", "t", JobState::Success, 30, &[&second]), "archived");
    let a = task(&b, "fence", "t", "a").unwrap();
    assert_eq!(a.state, TaskState::Success);
    assert_eq!(a.node.as_deref(), Some(second.node_id().as_str()));
    // Keep the first node paused until its guest's sleep is over, so that on resuming it
    // returns its FAIL at once and tries to record it.
    let claimed_at = claimed.start_time.unwrap();
    eventually(20, "the first guest's sleep is over", || (b.now_ms().unwrap() > claimed_at + 4500).then_some(()));
    first.signal("CONT");
    // Its worker is done with the task once it says so ("lease lost before finishing; result
    // discarded" if the guest's FAIL came first, "... before recording a failure" if the
    // heartbeat noticed first and the guest stopped on `still-occupied`).
    let log = first.wait_log("lease lost before", 20);
    let lines: Vec<&str> =
        log.lines().filter(|l| l.contains("lease lost") || l.contains("fence/t/a") && l.contains("WARN")).collect();
    let after = task(&b, "fence", "t", "a").unwrap();
    assert_eq!(after.state, TaskState::Success, "the late FAIL is rejected");
    assert_eq!(after.node, a.node);
    assert_eq!(after.finish_time, a.finish_time);
    assert_eq!(claims(&ws, "fence")["a"], 2);
    assert_eq!(job_state(&b, "fence", "t"), Some((JobState::Success, true)));
    eprintln!("fencing: STOP attempts {}; first node on resume:\n{}", tries + 1, lines.join("\n"));
}

#[test]
fn restarted_nodes_complete_every_accepted_job() {
    let ws = Workspace::new();
    let chain = r#"{"jobName":"chain","steps":[{"stepName":"A","executor":"scripted"},
        {"stepName":"B","executor":"scripted","dependentStep":"A"},{"stepName":"C","executor":"scripted","dependentStep":"B"}]}"#;
    let shard = r#"{"jobName":"shard","steps":[{"stepName":"s","stepType":"SHARD","executor":"scripted",
        "shardConf":{"shard":20,"maxTaskCount":4}}]}"#;
    let cp =
        r#"{"jobName":"cp","steps":[{"stepName":"a","executor":"counter","params":{"rounds":"12","roundMs":"250"}}]}"#;
    ws.define("chain", chain);
    ws.define("shard", shard);
    ws.define("cp", cp);
    let flags = ["--lease-ms", "2000", "--heartbeat-ms", "300", "--worker-max-count-per-host", "3"];
    let b = ws.bulletin();
    let sleep = |ms: u64| format!(r#""params":{{"script":"{{\"*\":[{{\"do\":\"OK\",\"sleepMs\":{ms}}}]}}"}}"#);
    let jobs = [("chain", "t"), ("shard", "t"), ("cp", "t")];
    ws.submit(&b, chain, &format!(r#"{{"jobName":"chain","trigger":"t",{}}}"#, sleep(600)));
    ws.submit(&b, shard, &format!(r#"{{"jobName":"shard","trigger":"t",{}}}"#, sleep(300)));
    ws.submit(&b, cp, r#"{"jobName":"cp","trigger":"t"}"#);
    let started = Instant::now();

    // Graceful stop (SIGINT) while tasks run, then an abrupt one (SIGTERM), then a last node.
    let mut stops = Vec::new();
    for signal in ["INT", "TERM"] {
        let mut node = ws.serve(&flags);
        eventually(30, "tasks running", || {
            let running =
                b.adoptions(None).unwrap().iter().any(|(_, v)| v.starts_with(&format!("{}/", node.node_id())));
            let finished =
                b.job_tasks(&JobKey::new("shard", "t")).unwrap().iter().filter(|t| t.state.is_done()).count();
            (running && finished >= 2 + 5 * stops.len()).then_some(())
        });
        let status = node.stop_with(signal, 15);
        stops.push((signal, status, b.adoptions(None).unwrap().len()));
    }
    let last = ws.serve(&flags);
    for (name, trigger) in jobs {
        assert!(wait_job(&b, name, trigger, JobState::Success, 45, &[&last]), "{name} archived");
        let tasks = b.job_tasks(&JobKey::new(name, trigger)).unwrap();
        assert!(tasks.iter().all(|t| t.state == TaskState::Success), "{name}: every task SUCCESS");
    }
    assert_eq!(b.job_tasks(&JobKey::new("shard", "t")).unwrap().len(), 20);
    assert_eq!(b.job_tasks(&JobKey::new("chain", "t")).unwrap().len(), 3);
    assert_eq!(task(&b, "cp", "t", "a").and_then(|t| checkpoint(&t)), Some(12));
    let shard_claims = claims(&ws, "shard");
    eprintln!(
        "restarts: stops {stops:?}; all jobs done {} ms after the first start; shard tasks claimed more than once: {}",
        started.elapsed().as_millis(),
        shard_claims.values().filter(|e| **e > 1).count()
    );
}

#[test]
fn tc58_a_killed_node_s_normal_task_is_picked_by_another_counting_nothing() {
    let ws = Workspace::new();
    let crash = r#"{"jobName":"crash","steps":[{"stepName":"a","executor":"scripted","params":{"k":"v"}}]}"#;
    ws.define("crash", crash);
    let lease = ["--lease-ms", "1500", "--heartbeat-ms", "300"];
    let mut first = ws.serve(&lease);
    let b = ws.bulletin();
    let script = r#"{\"a\":[{\"do\":\"OK\",\"sleepMs\":60000}]}"#;
    ws.submit(&b, crash, &format!(r#"{{"jobName":"crash","trigger":"t","params":{{"script":"{script}"}}}}"#));
    first.wait_log("scripted: task a attempt 0 action OK", 30);
    let (status, adoption) = first.get("/api/v1/state/adoption/crash/t/a");
    assert_eq!(status, 200, "{adoption}");
    assert!(adoption.to_string().contains(&first.node_id()), "held by the first node: {adoption}");
    first.kill();

    // It returns OK at once where the first node's guest blocks.
    let second = serve_fixed(&ws, &lease);
    assert!(wait_job(&b, "crash", "t", JobState::Success, 30, &[&second]), "archived");
    let a = task(&b, "crash", "t", "a").unwrap();
    assert_eq!(a.state, TaskState::Success);
    assert_eq!(a.node.as_deref(), Some(second.node_id().as_str()));
    assert_eq!(a.params.get("k").map(String::as_str), Some("v"), "the define's params reach the new run");
    assert_eq!((a.picked_times, a.tried_times), (0, 0), "a crash counts nothing");
    assert_eq!(claims(&ws, "crash")["a"], 2, "claimed once per node");
    let (_, tasks) = second.get("/api/v1/job/crash/t/tasks");
    let shown = &tasks.as_array().expect("task list")[0];
    assert!(shown.get("pickedTimes").is_none(), "pickedTimes absent, as TasCreed prints it: {shown}");
}
