//! `reload` and `memory`: the real `tascreed serve` binary as a process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::ctx::{Ctx, rss_bytes};
use crate::report::{Outcome, Summary};
use crate::scenarios::store::file_mib;

struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(c: &Ctx, dir: &Path, db: &Path) -> anyhow::Result<Serve> {
    for sub in ["defines", "executors"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let mut child = Command::new(&c.binary)
        .arg("serve")
        .args(["--storage-url", &format!("sqlite:{}", db.display())])
        .args(["--define-dirs", &dir.join("defines").display().to_string()])
        .args(["--executor-dirs", &dir.join("executors").display().to_string()])
        .args(["--executor-cache-dir", &c.cache.display().to_string()])
        .args(["--http-bind", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", c.binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.strip_prefix("tascreed listening on ") {
                    break addr.trim().to_string();
                }
            }
            _ => bail!("tascreed serve exited before listening"),
        }
    };
    Ok(Serve { child, base })
}

fn status(url: &str) -> (u16, serde_json::Value) {
    match ureq::get(url).config().http_status_as_error(false).build().call() {
        Ok(mut r) => {
            let code = r.status().as_u16();
            let body = r.body_mut().read_json().unwrap_or(serde_json::Value::Null);
            (code, body)
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if ok() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn post_json(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    match ureq::post(url).config().http_status_as_error(false).build().send_json(body) {
        Ok(mut r) => {
            let code = r.status().as_u16();
            let body = r.body_mut().read_json().unwrap_or(serde_json::Value::Null);
            (code, body)
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// The define every reload job runs: one step on executor `e`, the file being replaced.
const RELOAD_DEFINE: &str = r#"{"jobName":"r","steps":[{"stepName":"a","executor":"e"}]}"#;
/// How long one reload round may take before the scenario gives up.
const RELOAD_GIVE_UP: Duration = Duration::from_secs(30);

/// Submits job `r` with `trigger` and waits for its task to finish; returns the sha256 of the
/// executor version it ran on (`None`: the task finished without naming one).
fn run_job(base: &str, trigger: &str, until: Instant) -> anyhow::Result<Option<String>> {
    let (code, body) =
        post_json(&format!("{base}/api/v1/job"), &serde_json::json!({"jobName": "r", "trigger": trigger}));
    anyhow::ensure!(code == 201, "submit of r/{trigger} answered {code}: {body}");
    let url = format!("{base}/api/v1/job/r/{trigger}/tasks");
    loop {
        let (code, tasks) = status(&url);
        let task = &tasks[0];
        if code == 200 && task["state"].as_str().is_some_and(|s| s != "UNDONE") {
            return Ok(task["executor"]["sha256"].as_str().map(str::to_string));
        }
        if Instant::now() > until {
            bail!("the task of job r/{trigger} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn reload(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("reload", "<= 1 s each");
    let rounds = c.size(10, 2);
    out.size("rounds", rounds).size("executor versions", "e.wasm overwritten in place, alternately scripted / noop");
    let dir = c.tmp.path().join("reload");
    let s = serve(c, &dir, &dir.join("b.db"))?;
    let exe = dir.join("executors").join("e.wasm");
    let guests = [c.guest("noop")?, c.guest("scripted")?];
    let shas = guests.each_ref().map(|g| tascreed_runtime::Runtime::sha256_hex(g));
    anyhow::ensure!(shas[0] != shas[1], "noop and scripted have the same sha256");

    // Before measuring: `e` is noop, and a job on the define bound to it ran on noop.
    std::fs::write(&exe, &*guests[0])?;
    std::fs::write(dir.join("defines").join("r.json"), RELOAD_DEFINE)?;
    let url = format!("{}/api/v1/define/r", s.base);
    wait_for(RELOAD_GIVE_UP, || status(&url).0 == 200).context("define r never became visible")?;
    let mut serial = 0usize;
    let until = Instant::now() + RELOAD_GIVE_UP;
    loop {
        serial += 1;
        if run_job(&s.base, &format!("warm{serial}"), until)?.as_deref() == Some(shas[0].as_str()) {
            break;
        }
    }

    let (mut defines, mut api, mut used, mut jobs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let executor_url = format!("{}/api/v1/executor/e", s.base);
    for i in 0..rounds {
        // A new define file → the API serves it.
        let name = format!("d{i}");
        let json = format!(r#"{{"jobName":"{name}","steps":[{{"stepName":"a","executor":"noop"}}]}}"#);
        let t = Instant::now();
        std::fs::write(dir.join("defines").join(format!("{name}.json")), json)?;
        let url = format!("{}/api/v1/define/{name}", s.base);
        wait_for(Duration::from_secs(10), || status(&url).0 == 200).context("define never became visible")?;
        defines.push(t.elapsed().as_secs_f64() * 1e3);

        // `e.wasm` replaced by another guest → a newly submitted job's task runs on it. Jobs are
        // submitted one after another until one reports the new sha256; the executor API is
        // checked on the side.
        let next = (i + 1) % 2;
        let (bytes, sha) = (&guests[next], shas[next].as_str());
        let t = Instant::now();
        let until = t + RELOAD_GIVE_UP;
        std::fs::write(&exe, &**bytes)?;
        let (mut seen_in_api, mut submitted) = (None, 0usize);
        loop {
            serial += 1;
            submitted += 1;
            let ran_on = run_job(&s.base, &format!("r{serial}"), until)?;
            if seen_in_api.is_none() && status(&executor_url).1["sha256"].as_str() == Some(sha) {
                seen_in_api = Some(t.elapsed().as_secs_f64() * 1e3);
            }
            if ran_on.as_deref() == Some(sha) {
                used.push(t.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if Instant::now() > until {
                bail!("no new task ran on the replaced e.wasm within {RELOAD_GIVE_UP:?}");
            }
        }
        api.extend(seen_in_api);
        jobs.push(submitted as f64);
    }
    let (d, u) = (Summary::of("ms", &defines), Summary::of("ms", &used));
    out.headline = format!("define p50 {:.0} ms, executor p50 {:.0} ms", d.median, u.median);
    out.met = Some(defines.len() == rounds && used.len() == rounds && d.max <= 1_000.0 && u.max <= 1_000.0);
    out.sample("define file write → GET /api/v1/define/{name}", d);
    out.sample("e.wasm overwritten → a new job's task reports its sha256", u);
    out.sample(
        "e.wasm overwritten → GET /api/v1/executor/e shows its sha256 (checked between jobs)",
        Summary::of("ms", &api),
    );
    out.sample("jobs submitted until one ran on the new version", Summary::of("jobs", &jobs));
    Ok(out)
}

pub fn memory(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("memory", "<= 30 MiB idle; <= 1.5 GiB for 1M");
    let dir = c.tmp.path().join("memory-idle");
    let idle = serve(c, &dir, &dir.join("b.db"))?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = rss_bytes(idle.child.id()).context("no RSS")? as f64 / 1048576.0;
    drop(idle);

    let n = c.size(1_000_000, 5_000);
    out.size("queued tasks", n).size("idle settle (s)", 2).size("queued settle (s)", 7);
    let dir = c.tmp.path().join("memory-full");
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("b.db");
    {
        let b = tascreed_bulletin::SqliteBulletin::open(&tascreed_bulletin::SqliteOptions::new(&db))?;
        let define = format!(
            r#"{{"jobName":"mem","steps":[{{"stepName":"s","stepType":"SHARD","executor":"absent","shardConf":{{"shard":{n},"maxTaskCount":{n}}}}}]}}"#
        );
        use tascreed_bulletin::Bulletin;
        let job = crate::ctx::job(&define, r#"{"jobName":"mem","trigger":"t"}"#, b.now_ms()?)?;
        b.submit(&job, false)?;
        crate::ctx::create_all(&b, &tascreed_bulletin::JobKey::of(&job), 10_000)?;
    }
    let full = serve(c, &dir, &db)?;
    // Let the sweeper and the monitor run over the queue at least once.
    std::thread::sleep(Duration::from_secs(7));
    let full_rss = rss_bytes(full.child.id()).context("no RSS")? as f64 / 1048576.0;
    drop(full);
    let db_mib = file_mib(&db);
    out.figure("idle RSS (MiB)", format!("{idle_rss:.1}"));
    out.figure(format!("RSS with {n} queued tasks (MiB)"), format!("{full_rss:.1}"));
    out.figure(format!("database with {n} queued tasks (MiB)"), format!("{db_mib:.1}"));
    out.headline = format!("idle {idle_rss:.1} MiB; {n} queued: {full_rss:.0} MiB RSS, {db_mib:.0} MiB db");
    out.met = Some(idle_rss <= 30.0 && (c.quick || full_rss <= 1536.0));
    Ok(out)
}
