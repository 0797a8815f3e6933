//! `burn-down`, `dispatch`, `chain`, `checkpoint`, `steady`: a real node in this process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tascreed_bulletin::{Bulletin, JobKey};
use tascreed_domain::{JobRequest, JobState};

use crate::ctx::{self, Ctx, POLL_COARSE, POLL_FINE, wait_archived};
use crate::report::{Outcome, Summary};

async fn blocking<T: Send + 'static>(
    b: &Arc<dyn Bulletin>,
    f: impl FnOnce(&dyn Bulletin) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let b = b.clone();
    tokio::task::spawn_blocking(move || f(&*b)).await?
}

pub async fn burn_down(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("burn-down", ">= 20 000 tasks/s");
    // 10 000 is the size issue 4 reports; 100 000 the bench target.
    let sizes: Vec<usize> = if c.quick { vec![300] } else { vec![10_000, 100_000] };
    let mut last = 0.0;
    out.size("tasks", serde_json::json!(sizes));
    out.size("task", "SHARD step on noop, tasks created before the node starts");
    for n in sizes {
        let rate = burn(c, n, &mut out).await?;
        out.figure(format!("{n} tasks/s"), rate.round());
        last = rate;
    }
    out.headline = format!("{last:.0} tasks/s");
    out.met = Some(last >= 20_000.0);
    Ok(out)
}

async fn burn(c: &Ctx, n: usize, out: &mut Outcome) -> anyhow::Result<f64> {
    let (b, _) = c.bulletin(&format!("burn-down-{n}"))?;
    let define = format!(
        r#"{{"jobName":"burn","steps":[{{"stepName":"s","stepType":"SHARD","executor":"noop","shardConf":{{"shard":{n},"maxTaskCount":{n}}}}}]}}"#
    );
    let job = ctx::job(&define, r#"{"jobName":"burn","trigger":"t"}"#, b.now_ms()?)?;
    b.submit(&job, false)?;
    let key = JobKey::of(&job);
    let k = key.clone();
    let created = blocking(&b, move |b| ctx::create_all(b, &k, 10_000)).await?;
    // Loading (and, on a cold cache, compiling) the executors happens before the timer: the
    // figure is the node draining its queue, and startup is reported on its own.
    let loading = Instant::now();
    let executors = c.executors().await?;
    out.figure(
        format!("{n}: executor loading before start (ms)"),
        format!("{:.1}", loading.elapsed().as_secs_f64() * 1e3),
    );
    let start = Instant::now();
    let node = c.start_node(b.clone(), &[], executors)?;
    let job = wait_archived(&b, &key, Duration::from_secs(600), POLL_COARSE).await?;
    let secs = start.elapsed().as_secs_f64();
    node.shutdown().await;
    anyhow::ensure!(job.state == JobState::Success, "burn-down job ended {:?}", job.state);
    out.figure(format!("{n}: seconds (node start to job archived)"), format!("{secs:.2}"));
    Ok(created as f64 / secs)
}

const SIMPLE: &str = r#"{"jobName":"one","steps":[{"stepName":"a","executor":"noop"}]}"#;

pub async fn dispatch(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("dispatch", "p50 <= 2 ms, p99 <= 10 ms");
    let n = c.size(500, 20);
    out.size("jobs", n).size("job", "1 SIMPLE step on noop, submitted one after another");
    let (b, _) = c.bulletin("dispatch")?;
    let node = c.node(b.clone(), &[SIMPLE]).await?;
    let (mut to_start, mut to_success) = (Vec::new(), Vec::new());
    for i in 0..n {
        let request = JobRequest::parse(&format!(r#"{{"jobName":"one","trigger":"d{i}"}}"#))?;
        let t0 = Instant::now();
        let submitted = node.submit(request).await?;
        let job = wait_archived(&b, &JobKey::of(&submitted.job), Duration::from_secs(30), POLL_FINE).await?;
        to_success.push(t0.elapsed().as_secs_f64() * 1e3);
        let key = JobKey::of(&job);
        let tasks = blocking(&b, move |b| Ok(b.job_tasks(&key)?)).await?;
        if let Some(start) = tasks.first().and_then(|t| t.start_time) {
            to_start.push((start - job.create_time) as f64);
        }
    }
    node.shutdown().await;
    let (start, success) = (Summary::of("ms", &to_start), Summary::of("ms", &to_success));
    out.headline = format!("submit→SUCCESS p50 {:.2} ms, p99 {:.2} ms", success.median, success.p99);
    out.met = Some(success.median <= 2.0 && success.p99 <= 10.0);
    out.sample("submit→execute start (db clock, 1 ms resolution)", start);
    out.sample("submit→SUCCESS (archived)", success);
    Ok(out)
}

pub async fn chain(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("chain", "per-hop p50 <= 2 ms");
    let steps = c.size(50, 10);
    out.size("steps", steps).size("job", "SIMPLE noop steps, each depending on the previous");
    let list: Vec<String> = (0..steps)
        .map(|i| {
            let dep = if i == 0 { String::new() } else { format!(r#","dependentStep":"s{}""#, i - 1) };
            format!(r#"{{"stepName":"s{i}","executor":"noop"{dep}}}"#)
        })
        .collect();
    let define = format!(r#"{{"jobName":"chain","steps":[{}]}}"#, list.join(","));
    let (b, _) = c.bulletin("chain")?;
    let node = c.node(b.clone(), &[&define]).await?;
    let t0 = Instant::now();
    let submitted = node.submit(JobRequest::parse(r#"{"jobName":"chain","trigger":"t"}"#)?).await?;
    let key = JobKey::of(&submitted.job);
    wait_archived(&b, &key, Duration::from_secs(120), POLL_FINE).await?;
    let total = t0.elapsed().as_secs_f64() * 1e3;
    node.shutdown().await;
    let mut tasks = blocking(&b, move |b| Ok(b.job_tasks(&key)?)).await?;
    tasks.sort_by_key(|t| t.task_name.trim_start_matches('s').parse::<usize>().unwrap_or(0));
    let hops: Vec<f64> = tasks.windows(2).filter_map(|w| Some((w[1].start_time? - w[0].finish_time?) as f64)).collect();
    let s = Summary::of("ms", &hops);
    out.headline = format!("per hop p50 {:.1} ms; whole chain {total:.0} ms", s.median);
    out.met = Some(s.median <= 2.0);
    out.sample("SUCCESS → next task start (db clock, 1 ms resolution)", s);
    out.figure("mean ms per step (submit to archived / steps)", format!("{:.2}", total / steps as f64));
    Ok(out)
}

pub async fn checkpoint(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("checkpoint", ">= 10 000 persisted rounds/s");
    let rounds = c.size(100_000, 300);
    out.size("rounds", rounds).size("job", "1 SIMPLE step on counter (roundMs 0)");
    let define = format!(
        r#"{{"jobName":"cp","steps":[{{"stepName":"a","executor":"counter","params":{{"rounds":"{rounds}"}}}}]}}"#
    );
    let (b, _) = c.bulletin("checkpoint")?;
    let node = c.node(b.clone(), &[&define]).await?;
    let t0 = Instant::now();
    let submitted = node.submit(JobRequest::parse(r#"{"jobName":"cp","trigger":"t"}"#)?).await?;
    let job = wait_archived(&b, &JobKey::of(&submitted.job), Duration::from_secs(600), POLL_COARSE).await?;
    let secs = t0.elapsed().as_secs_f64();
    node.shutdown().await;
    anyhow::ensure!(job.state == JobState::Success, "checkpoint job ended {:?}", job.state);
    let rate = rounds as f64 / secs;
    out.figure("rounds", rounds).figure("seconds", format!("{secs:.2}"));
    out.headline = format!("{rate:.0} rounds/s");
    out.met = Some(rate >= 10_000.0);
    Ok(out)
}

pub async fn steady(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("steady", ">= 5 000 jobs/s with p99 < 100 ms");
    let secs = if c.quick { 1.0 } else { 20.0 };
    let rates: Vec<u64> = if c.quick { vec![50] } else { vec![500, 1_000, 2_000, 5_000] };
    out.size("seconds per rate", secs).size("rates (jobs/s)", serde_json::json!(rates));
    out.size("job", "1 SIMPLE step on noop");
    let mut best = 0u64;
    for rate in rates {
        let run = steady_run(c, rate, secs).await?;
        let s = Summary::of("ms", &run.e2e);
        // Sustained: every submit accepted, everything finished, p99 under 100 ms, and the
        // producer kept the rate (a few late submits, counted, are the producer's own scheduling).
        let ok = run.errors == 0 && run.finished == run.total && s.p99 < 100.0 && run.offered >= rate as f64 * 0.98;
        out.sample(format!("{rate} jobs/s offered ({:.0} achieved): scheduled submit→archived", run.offered), s);
        out.figure(
            format!("{rate} jobs/s: finished / scheduled / submit errors / late submits"),
            format!("{} / {} / {} / {}", run.finished, run.total, run.errors, run.late),
        );
        if let Some(e) = &run.first_error {
            out.figure(format!("{rate} jobs/s: first submit error"), e.clone());
        }
        if ok {
            best = best.max(rate);
        } else {
            break;
        }
    }
    out.headline = format!("{best} jobs/s sustained with p99 < 100 ms");
    out.met = Some(best >= 5_000);
    Ok(out)
}

struct SteadyRun {
    total: usize,
    /// The producer's achieved submit rate.
    offered: f64,
    late: u64,
    errors: usize,
    first_error: Option<String>,
    finished: usize,
    /// Per job, ms from its scheduled submit time to its archive (`modify_time`); unfinished
    /// jobs count as infinite and are left out of the summary, and `finished` says so.
    e2e: Vec<f64>,
}

/// Wall-clock milliseconds since the epoch: the clock SQLite's `unixepoch('subsec')` reads, so
/// comparable with the database's timestamps.
fn wall_ms() -> anyhow::Result<f64> {
    Ok(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64() * 1e3)
}

async fn steady_run(c: &Ctx, rate: u64, secs: f64) -> anyhow::Result<SteadyRun> {
    let (b, _) = c.bulletin(&format!("steady-{rate}"))?;
    let node = Arc::new(c.node(b.clone(), &[SIMPLE]).await?);
    let total = (rate as f64 * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let (t0, wall0) = (Instant::now(), wall_ms()?);
    let mut jobs = Vec::with_capacity(total);
    let mut late = 0u64;
    for i in 0..total {
        let offset = interval * i as u32;
        let due = t0 + offset;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        } else if Instant::now() - due > Duration::from_millis(50) {
            late += 1;
        }
        // The latency clock starts at the scheduled time, not at the submit: a producer or a
        // submit path that falls behind shows up in the figure instead of hiding in it.
        let scheduled_ms = wall0 + offset.as_secs_f64() * 1e3;
        let node = node.clone();
        let request = JobRequest::parse(&format!(r#"{{"jobName":"one","trigger":"s{i}"}}"#))?;
        let handle = tokio::spawn(async move { node.submit(request).await });
        jobs.push((JobKey::new("one", format!("s{i}")), scheduled_ms, handle));
    }
    let offered = total as f64 / t0.elapsed().as_secs_f64();
    // One deadline for the whole run: a backlog of missing jobs costs one wait, not one each.
    let deadline = Instant::now() + Duration::from_secs(if c.quick { 30 } else { 120 });
    let (mut errors, mut first_error) = (0, None);
    let mut submitted = Vec::with_capacity(total);
    for (key, scheduled_ms, handle) in jobs {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match tokio::time::timeout(left, handle).await {
            Ok(Ok(Ok(_))) => {
                submitted.push((key, scheduled_ms));
                continue;
            }
            Ok(Ok(Err(e))) => format!("{key}: {e}"),
            Ok(Err(e)) => format!("{key}: submit task failed: {e}"),
            Err(_) => format!("{key}: submit did not return before the deadline"),
        };
        errors += 1;
        first_error.get_or_insert(error);
    }
    let mut e2e = Vec::with_capacity(total);
    for (key, scheduled_ms) in &submitted {
        let left = deadline.saturating_duration_since(Instant::now());
        // Past the deadline this still looks once, so jobs already done are counted.
        match wait_archived(&b, key, left, POLL_COARSE).await {
            Ok(job) => e2e.push(job.modify_time as f64 - scheduled_ms),
            Err(_) => e2e.push(f64::INFINITY),
        }
    }
    node.shutdown().await;
    let finished = e2e.iter().filter(|v| v.is_finite()).count();
    e2e.resize(total, f64::INFINITY);
    Ok(SteadyRun { total, offered, late, errors, first_error, finished, e2e })
}
