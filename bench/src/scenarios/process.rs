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

pub fn reload(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("reload", "<= 1 s each");
    let dir = c.tmp.path().join("reload");
    let s = serve(c, &dir, &dir.join("b.db"))?;
    let (mut defines, mut executors) = (Vec::new(), Vec::new());
    for i in 0..c.size(10, 2) {
        let name = format!("d{i}");
        let json = format!(r#"{{"jobName":"{name}","steps":[{{"stepName":"a","executor":"noop"}}]}}"#);
        let t = Instant::now();
        std::fs::write(dir.join("defines").join(format!("{name}.json")), json)?;
        let url = format!("{}/api/v1/define/{name}", s.base);
        wait_for(Duration::from_secs(10), || status(&url).0 == 200).context("define never became visible")?;
        defines.push(t.elapsed().as_secs_f64() * 1e3);

        let exe = format!("e{i}");
        let bytes = c.guest(if i % 2 == 0 { "noop" } else { "counter" })?;
        let sha = tascreed_runtime::Runtime::sha256_hex(&bytes);
        let t = Instant::now();
        std::fs::write(dir.join("executors").join(format!("{exe}.wasm")), &bytes)?;
        let url = format!("{}/api/v1/executor/{exe}", s.base);
        wait_for(Duration::from_secs(10), || {
            let (code, body) = status(&url);
            code == 200 && body.to_string().contains(&sha)
        })
        .context("executor never became visible")?;
        executors.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (d, e) = (Summary::of("ms", &defines), Summary::of("ms", &executors));
    out.headline = format!("define p50 {:.0} ms, executor p50 {:.0} ms", d.median, e.median);
    out.met = Some(d.max <= 1_000.0 && e.max <= 1_000.0);
    out.sample("define file write → GET /api/v1/define/{name}", d);
    out.sample("executor file write → GET /api/v1/executor/{name} shows its sha256", e);
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
