//! `invoke`, `fuel` and `compile`: the wasm runtime alone.

use std::time::{Duration, Instant};

use tascreed_runtime::{CallContext, CallLimits, Pack, Task};

use crate::ctx::Ctx;
use crate::report::{Outcome, Summary};

fn task(name: &str) -> Task {
    Task {
        job_name: "bench".into(),
        trigger: "t".into(),
        step_name: name.into(),
        task_name: name.into(),
        params: vec![],
        shard: None,
        pack: None,
        dependent_step_states: vec![],
        prev_phase_step_states: vec![],
        picked_times: 0,
        tried_times: 0,
    }
}

fn ctx() -> CallContext {
    CallContext::new(CallLimits { fuel: 10_000_000_000, timeout: Duration::from_secs(60) })
}

pub async fn invoke(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("invoke", "<= 25 us p50 with pooling");
    let n = c.size(20_000, 300);
    out.size("calls per setting", n).size("warm-up calls", 200).size("guest", "noop");
    let mut headline = f64::NAN;
    for (pooling, fuel) in [(true, true), (true, false), (false, true), (false, false)] {
        let rt = c.runtime(pooling, fuel)?;
        let exec = rt.load(c.guest("noop")?).await?;
        let (t, cx) = (task("a"), ctx());
        for _ in 0..200 {
            exec.execute(&t, &cx).await.result?;
        }
        let mut us = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            let s = Instant::now();
            exec.execute(&t, &cx).await.result?;
            us.push(s.elapsed().as_secs_f64() * 1e6);
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        let label =
            format!("pooling={} fuel={}", if rt.pooling() { "on" } else { "off" }, if fuel { "on" } else { "off" });
        let s = Summary::of("us", &us);
        if pooling && fuel {
            headline = s.median;
        }
        out.sample(label.clone(), s);
        out.figure(format!("{label} calls/s (1 thread)"), rate.round());
    }
    out.headline = format!("{headline:.1} us p50 (pooling, fuel)");
    out.met = Some(headline <= 25.0);
    Ok(out)
}

pub async fn fuel(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("fuel", "overhead reported");
    // What is compared, and why not SPIN itself: SPIN (scripted's endless loop) only stops at a
    // limit, and with metering off the only limit is the wall-clock deadline, so its work is
    // uncountable and "with vs without" has nothing to divide. range-sum's loop is the bounded
    // twin: the same shape (one black-boxed integer op per iteration, no calls, no memory
    // traffic), a fixed amount of work, so the wall time of the same call both ways is the
    // metering cost. SPIN still gives fuel units per second below.
    let end = c.size(50_000_000, 200_000) as u64;
    out.size("range-sum iterations per call", end).size("calls per setting", 5);
    let mut walls = [0.0f64; 2];
    let mut fuel_used = 0u64;
    for (i, metering) in [true, false].into_iter().enumerate() {
        let rt = c.runtime(true, metering)?;
        let exec = rt.load(c.guest("range-sum")?).await?;
        let mut t = task("sum.pack-0");
        t.pack = Some(Pack { id: 0, start: 1, end });
        let mut ms = Vec::new();
        for _ in 0..5 {
            let r = exec.execute(&t, &ctx()).await;
            r.result?;
            ms.push(r.wall.as_secs_f64() * 1e3);
            if metering {
                fuel_used = r.fuel_consumed;
            }
        }
        let s = Summary::of("ms", &ms);
        walls[i] = s.median;
        let on = if metering { "on" } else { "off" };
        out.sample(format!("bounded SPIN-like loop (range-sum 1..={end}) fuel={on}"), s);
    }
    // SPIN (scripted's endless loop) stopped by its fuel budget: fuel units per CPU-second.
    let rt = c.runtime(true, true)?;
    let spin = rt.load(c.guest("scripted")?).await?;
    let mut t = task("s");
    t.params = vec![("script".into(), r#"{"*":["SPIN"]}"#.into())];
    let budget = c.size(5_000_000_000, 20_000_000) as u64;
    out.size("SPIN fuel budget", budget);
    let cx = CallContext::new(CallLimits { fuel: budget, timeout: Duration::from_secs(120) });
    let r = spin.execute(&t, &cx).await;
    anyhow::ensure!(
        matches!(r.result, Err(tascreed_runtime::CallError::FuelExhausted { .. })),
        "SPIN was not stopped by fuel"
    );
    let spin_rate = r.fuel_consumed as f64 / r.wall.as_secs_f64();
    out.figure("SPIN (metered only: unbounded) fuel units per second", format!("{spin_rate:.3e}"));
    out.figure("SPIN wall to exhaust the budget (ms)", format!("{:.1} for {budget}", r.wall.as_secs_f64() * 1e3));
    let overhead = (walls[0] / walls[1] - 1.0) * 100.0;
    let per_sec = fuel_used as f64 / (walls[0] / 1e3);
    out.figure("bounded loop: fuel units per call", fuel_used);
    out.figure("bounded loop: fuel units per second", format!("{per_sec:.3e}"));
    out.figure("bounded loop: metering overhead % (median wall, on vs off)", format!("{overhead:.1}"));
    out.headline = format!("{overhead:+.1}% wall with fuel (bounded loop); {per_sec:.2e} fuel/s");
    Ok(out)
}

pub async fn compile(c: &Ctx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("compile", "report");
    let guests = ["noop", "scripted", "counter", "range-sum"];
    out.size("guests", serde_json::json!(guests)).size("loads per guest", "1 cold (fresh cache), 1 cached");
    for name in guests {
        let bytes = c.guest(name)?;
        let fresh = tempfile::tempdir()?;
        let cold_rt = tascreed_runtime::Runtime::new(tascreed_runtime::RuntimeConfig {
            cache_dir: Some(fresh.path().to_path_buf()),
            ..Default::default()
        })?;
        let cold = cold_rt.load(bytes.clone()).await?.load_info();
        let warm_rt = tascreed_runtime::Runtime::new(tascreed_runtime::RuntimeConfig {
            cache_dir: Some(fresh.path().to_path_buf()),
            ..Default::default()
        })?;
        let start = Instant::now();
        let warm = warm_rt.load(bytes.clone()).await?;
        let warm_total = start.elapsed();
        out.figure(format!("{name} size bytes"), bytes.len());
        out.figure(format!("{name} compile ms"), format!("{:.1}", cold.compile_time.as_secs_f64() * 1e3));
        out.figure(
            format!("{name} cached load ms (artifact / whole load incl. describe)"),
            format!("{:.2} / {:.2}", warm.load_info().compile_time.as_secs_f64() * 1e3, warm_total.as_secs_f64() * 1e3),
        );
        if name == "scripted" {
            out.headline = format!(
                "scripted: compile {:.0} ms, cached {:.2} ms",
                cold.compile_time.as_secs_f64() * 1e3,
                warm.load_info().compile_time.as_secs_f64() * 1e3
            );
        }
    }
    Ok(out)
}
