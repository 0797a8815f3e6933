//! `claim-depth` and `fan-out`: the bulletin alone.

use std::time::Instant;

use tascreed_bulletin::{Bulletin, ClaimRequest, JobKey};

use crate::ctx::{self, Ctx};
use crate::report::{Outcome, Summary};

fn shard_job(b: &dyn Bulletin, name: &str, n: usize) -> anyhow::Result<JobKey> {
    let define = format!(
        r#"{{"jobName":"{name}","steps":[{{"stepName":"s","stepType":"SHARD","executor":"x","shardConf":{{"shard":{n},"maxTaskCount":{n}}}}}]}}"#
    );
    let job = ctx::job(&define, &format!(r#"{{"jobName":"{name}","trigger":"t"}}"#), b.now_ms()?)?;
    b.submit(&job, false)?;
    Ok(JobKey::of(&job))
}

pub fn claim_depth(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("claim-depth", "1M no more than 1.5x slower than 1k");
    let depths: Vec<usize> = if c.quick { vec![100, 1_000] } else { vec![1_000, 10_000, 100_000, 1_000_000] };
    let claims = c.size(500, 50);
    out.size("depths (queued tasks)", serde_json::json!(depths)).size("claims per depth", claims);
    let mut medians = Vec::new();
    for depth in &depths {
        let (b, path) = c.bulletin(&format!("claim-{depth}"))?;
        let key = shard_job(&*b, "depth", *depth)?;
        ctx::create_all(&*b, &key, 10_000)?;
        let request = ClaimRequest {
            node: "bench".into(),
            worker: "w".into(),
            executors: vec!["x".into()],
            lease_ms: 600_000,
            max_overall: 1_000_000,
        };
        let mut us = Vec::new();
        for _ in 0..claims {
            let t = Instant::now();
            let claimed = b.claim(&request)?;
            us.push(t.elapsed().as_secs_f64() * 1e6);
            anyhow::ensure!(claimed.is_some(), "nothing to claim at depth {depth}");
        }
        let s = Summary::of("us", &us);
        medians.push(s.median);
        out.sample(format!("claim with {depth} queued"), s);
        out.figure(format!("db size with {depth} tasks (MiB)"), format!("{:.1}", file_mib(&path)));
    }
    let ratio = medians.last().copied().unwrap_or(f64::NAN) / medians.first().copied().unwrap_or(f64::NAN);
    out.headline = format!("{}: {ratio:.2}x the smallest depth", depths.last().copied().unwrap_or(0));
    out.met = Some(ratio <= 1.5);
    Ok(out)
}

pub fn fan_out(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("fan-out", "report tasks created/s");
    let end = c.size(1_000_000, 2_000) - 1;
    out.size("pack range", format!("0..={end}")).size("pack size", 10);
    out.size("tasks per transaction", tascreed_domain::CREATION_BUDGET_PER_PASS);
    let (b, _) = c.bulletin("fan-out")?;
    let define = format!(
        r#"{{"jobName":"fan","steps":[{{"stepName":"p","stepType":"PACK","executor":"x","packConf":{{"size":10,"start":0,"end":{end},"maxTaskCount":200000}}}}]}}"#
    );
    let job = ctx::job(&define, r#"{"jobName":"fan","trigger":"t"}"#, b.now_ms()?)?;
    b.submit(&job, false)?;
    let key = JobKey::of(&job);
    let t = Instant::now();
    // The node's own per-pass budget (spec §7.1: 100 tasks per job and pass).
    let created = ctx::create_all(&*b, &key, tascreed_domain::CREATION_BUDGET_PER_PASS)?;
    let secs = t.elapsed().as_secs_f64();
    let rate = created as f64 / secs;
    out.figure("tasks", created).figure("seconds", format!("{secs:.2}"));
    out.headline = format!("{rate:.0} tasks created/s");
    Ok(out)
}

pub fn file_mib(path: &std::path::Path) -> f64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = path.with_extension("db-wal");
    (size(path) + size(&wal)) as f64 / (1024.0 * 1024.0)
}
