//! The advancer thread: advances jobs as events arrive, coalescing repeats, with a timer for
//! `after` gates. One per node; other nodes' advancers may work on the same jobs safely because
//! every advance is one transaction on the bulletin.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use tascreed_bulletin::JobKey;
use tascreed_domain::CREATION_BUDGET_PER_PASS;

use super::{Shared, sources};
use crate::metrics;

pub(crate) enum Msg {
    Advance(JobKey),
    Stop,
}

#[derive(Clone)]
pub(crate) struct Handle(Sender<Msg>);

impl Handle {
    pub(crate) fn advance(&self, key: JobKey) {
        // A send fails only once the advancer stopped; then nothing is left to advance.
        let _ = self.0.send(Msg::Advance(key));
    }

    pub(crate) fn stop(&self) {
        let _ = self.0.send(Msg::Stop);
    }
}

pub(crate) fn channel() -> (Handle, Receiver<Msg>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (Handle(tx), rx)
}

pub(crate) fn spawn(shared: Arc<Shared>, rx: Receiver<Msg>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("tascreed-advancer".into()).spawn(move || run(shared, rx))
}

fn run(shared: Arc<Shared>, rx: Receiver<Msg>) {
    let mut pending: BTreeSet<JobKey> = BTreeSet::new();
    let mut timers: BTreeMap<Instant, BTreeSet<JobKey>> = BTreeMap::new();
    loop {
        let now = Instant::now();
        while let Some(entry) = timers.first_entry() {
            if *entry.key() > now {
                break;
            }
            pending.extend(entry.remove());
        }
        if pending.is_empty() {
            let wait =
                timers.keys().next().map(|t| t.saturating_duration_since(now)).unwrap_or(Duration::from_secs(3600));
            match rx.recv_timeout(wait) {
                Ok(Msg::Advance(k)) => {
                    pending.insert(k);
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => continue,
            }
        }
        // Drain what else arrived so repeated events for one job cost one advance.
        loop {
            match rx.try_recv() {
                Ok(Msg::Advance(k)) => {
                    pending.insert(k);
                }
                Ok(Msg::Stop) => return,
                Err(_) => break,
            }
        }
        let bindings = bindings(&shared);
        for key in std::mem::take(&mut pending) {
            if shared.stopping.is_set() {
                return;
            }
            match shared.bulletin.advance(&key, &bindings, CREATION_BUDGET_PER_PASS) {
                Ok(out) => {
                    record(&key, &out);
                    for w in &out.warnings {
                        tracing::warn!(job = %key, "{w}");
                    }
                    if out.created > 0 {
                        shared.work.notify_waiters();
                    }
                    if out.more {
                        let _ = shared.advancer.0.send(Msg::Advance(key.clone()));
                    }
                    if let Some(at) = out.wake_at_ms {
                        let now_ms = shared.bulletin.now_ms().unwrap_or(at);
                        let delay = Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0) + 1);
                        timers.entry(Instant::now() + delay).or_default().insert(key.clone());
                    }
                    if out.archived {
                        tracing::info!(job = %key, state = ?out.state, "job finished and archived");
                    }
                }
                Err(e) if e.is_busy() => {
                    // Another process holds the database; try again shortly.
                    timers.entry(Instant::now() + Duration::from_millis(20)).or_default().insert(key);
                }
                Err(e) => tracing::error!(job = %key, error = %e, "cannot advance job"),
            }
        }
    }
}

/// TasCreed's operation counters and execution summaries for what one advance did.
fn record(key: &JobKey, out: &tascreed_bulletin::Advanced) {
    for (step, n) in &out.created_by_step {
        metrics::task_opr(&key.job_name, step, "UNDONE", "CREATE", *n as u64);
    }
    for t in &out.folded_tasks {
        metrics::task_opr(&key.job_name, &t.step_name, t.state.as_str(), "FINISH", 1);
        if let Some(finish) = t.finish_ms {
            metrics::task_execution(&key.job_name, &t.step_name, t.state.as_str(), finish - t.create_ms);
        }
    }
    if out.archived
        && let (Some(state), Some((created, modified))) = (out.state, out.job_times)
    {
        metrics::job_opr(&key.job_name, state.as_str(), "FINISH");
        metrics::job_execution(&key.job_name, state.as_str(), modified - created);
    }
}

/// Bindings of live nodes' executors plus this node's own (which may not be advertised yet).
fn bindings(shared: &Shared) -> Vec<tascreed_domain::Binding> {
    let mut all = shared.bulletin.live_bindings(shared.config.live_ms()).unwrap_or_default();
    for b in sources::local_bindings(&*shared.executors) {
        if !all.contains(&b) {
            all.push(b);
        }
    }
    all
}
