//! The safety net: periodic lease expiry, re-advancing, executor advertising, archive purge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Shared, db, sources};

pub(crate) async fn run(shared: Arc<Shared>) {
    let sweep = Duration::from_millis(shared.config.sweep_ms.max(10));
    let heartbeat = Duration::from_millis(shared.config.heartbeat_ms.max(10));
    let mut last_heartbeat: Option<Instant> = None;
    let mut last_purge: Option<Instant> = None;
    loop {
        if shared.stopping.is_set() {
            return;
        }
        if last_heartbeat.is_none_or(|t| t.elapsed() >= heartbeat) {
            let node = shared.config.node_id.clone();
            let executors = sources::advertised(shared.runnable());
            let bindings = sources::local_bindings(&*shared.executors);
            let result = db(&shared.bulletin, move |b| {
                b.heartbeat_node(&node, &executors)?;
                b.resolve_waiting(&bindings)
            })
            .await;
            match result {
                Ok(n) if n > 0 => {
                    tracing::info!(tasks = n, "tasks waiting for an executor got one");
                    shared.work.notify_waiters();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "node heartbeat failed"),
            }
            last_heartbeat = Some(Instant::now());
        }
        match db(&shared.bulletin, |b| Ok((b.expire_leases()?, b.jobs_to_advance()?))).await {
            Ok((expired, jobs)) => {
                if expired > 0 {
                    tracing::info!(expired, "expired leases of silent workers");
                    shared.work.notify_waiters();
                }
                for key in jobs {
                    shared.advancer.advance(key);
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
        if shared.config.archive_retention_hours >= 0
            && last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(600))
        {
            let keep_ms = shared.config.archive_retention_hours.saturating_mul(3_600_000);
            if let Err(e) =
                db(&shared.bulletin, move |b| b.now_ms().and_then(|now| b.purge_archive(now - keep_ms))).await
            {
                tracing::warn!(error = %e, "archive purge failed");
            }
            last_purge = Some(Instant::now());
        }
        tokio::time::sleep(sweep).await;
    }
}
