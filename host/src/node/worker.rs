//! A worker: claim, run under a heartbeat-renewed lease, record the outcome (spec §10, §11).
//!
//! Short tasks are claimed and finished in growing batches (up to [`MAX_BATCH`]), so the store's
//! commit rate does not bound throughput; a task that runs long returns the worker to claiming
//! one task at a time and writing each result at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tascreed_bulletin::{ClaimRequest, Claimed, Finish, JobKey, Lease, Release, RunStats};
use tascreed_domain::{FailureKind, Params, TaskState, UpdatedConfig, Verdict};
use tascreed_runtime::{CallContext, CallError, CallLimits, CallReport, Executor, Status, TaskHooks};
use tracing::Instrument;

use super::{Shared, convert, db};
use crate::metrics;

/// How long an idle worker waits before asking again when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Largest batch a worker claims at once (grown only while tasks stay short).
const MAX_BATCH: usize = 64;
/// A task shorter than this keeps its worker batching.
const SHORT_TASK: Duration = Duration::from_millis(5);
/// A task that has run this long hands the unstarted rest of its batch back. Longer than
/// [`SHORT_TASK`]: a short task slowed by a busy machine should not make the batch churn
/// through the store, only a task that really holds the others up.
const HAND_BACK_AFTER: Duration = Duration::from_millis(100);

pub(crate) async fn run(shared: Arc<Shared>, worker: String) {
    let mut batch = 1;
    loop {
        if shared.stopping.is_set() {
            return;
        }
        // Register for wake-ups before looking, so a notification between an empty claim and
        // the wait is not lost.
        let notified = shared.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let executors: Vec<String> = shared.executors.loaded().into_iter().map(|(name, _)| name).collect();
        let request = ClaimRequest {
            node: shared.config.node_id.clone(),
            worker: worker.clone(),
            executors,
            lease_ms: shared.config.lease_ms,
            max_overall: shared.config.max_overall,
        };
        match db(&shared.bulletin, move |b| b.claim_batch(&request, batch)).await {
            Ok(claimed) if !claimed.is_empty() => {
                let short = run_batch(&shared, claimed).await;
                batch = if short { (batch * 2).min(MAX_BATCH) } else { 1 };
            }
            Ok(_) => {
                batch = 1;
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Err(e) => {
                if !e.is_busy() {
                    tracing::error!(error = %e, "cannot claim a task");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs a claimed batch in order under one heartbeat; returns whether every task was short.
///
/// A task that turns out not to be short must not hold up the rest of its batch: once it has
/// run [`SHORT_TASK`], the results waiting behind it are written and the batch's unstarted
/// tasks are handed back for any worker of any node to take (they would otherwise sit leased,
/// counting against `worker.max.count.overall`, until the long task ends).
async fn run_batch(shared: &Arc<Shared>, claimed: Vec<Claimed>) -> bool {
    let running: Vec<(Lease, Arc<Hooks>)> = claimed.iter().map(|c| (c.lease.clone(), Arc::new(Hooks::new()))).collect();
    let held: Held = Arc::new(std::sync::Mutex::new(running.clone()));
    let heartbeat = tokio::spawn(heartbeat(shared.clone(), held.clone()));
    let mut queue: std::collections::VecDeque<(Claimed, Arc<Hooks>)> =
        claimed.into_iter().zip(running.into_iter().map(|(_, hooks)| hooks)).collect();
    let mut pending: Vec<(Lease, Finish)> = Vec::new();
    let mut short = true;
    while let Some((claimed, hooks)) = queue.pop_front() {
        let lease = claimed.lease.clone();
        if shared.stopping.is_set() {
            let _ = db(&shared.bulletin, move |b| b.unclaim(&lease)).await;
            continue;
        }
        if !hooks.still_occupied() {
            // Lost while it waited its turn in the batch (e.g. its job was deleted).
            continue;
        }
        let started = Instant::now();
        let run = run_task(shared, claimed, hooks);
        tokio::pin!(run);
        let result = match tokio::time::timeout(SHORT_TASK, &mut run).await {
            Ok(r) => r,
            // Not short: write the results waiting behind it while it runs, and if it keeps
            // running, free the tasks queued after it.
            Err(_) => {
                let flushing = flush_held(shared, &held, std::mem::take(&mut pending));
                tokio::pin!(flushing);
                let (mut flushed, mut handed_back) = (false, queue.is_empty());
                let hand_back_at = tokio::time::Instant::from_std(started + HAND_BACK_AFTER);
                let r = loop {
                    tokio::select! {
                        r = &mut run => break r,
                        () = &mut flushing, if !flushed => flushed = true,
                        () = tokio::time::sleep_until(hand_back_at), if !handed_back => {
                            handed_back = true;
                            give_back(shared, &held, queue.drain(..).map(|(c, _)| c.lease).collect()).await;
                        }
                    }
                };
                if !flushed {
                    flushing.await;
                }
                r
            }
        };
        short &= started.elapsed() < SHORT_TASK;
        match result {
            Some(finished) => pending.push(finished),
            None => held.lock().unwrap_or_else(|e| e.into_inner()).retain(|(l, _)| *l != lease),
        }
        if !short {
            flush_held(shared, &held, std::mem::take(&mut pending)).await;
        }
    }
    flush_held(shared, &held, pending).await;
    heartbeat.abort();
    short
}

/// Returns claimed but unstarted tasks to the queue and wakes the workers that may take them.
async fn give_back(shared: &Arc<Shared>, held: &Held, leases: Vec<Lease>) {
    if leases.is_empty() {
        return;
    }
    held.lock().unwrap_or_else(|e| e.into_inner()).retain(|(l, _)| !leases.contains(l));
    let n = leases.len();
    // A failure only delays these tasks: their leases expire and they are claimed again.
    match db(&shared.bulletin, move |b| leases.iter().try_for_each(|l| b.unclaim(l).map(|_| ()))).await {
        Ok(()) => tracing::debug!(tasks = n, "handed back the rest of a batch behind a long task"),
        Err(e) => tracing::warn!(error = %e, "cannot hand back unstarted tasks; their leases will expire"),
    }
    shared.work.notify_waiters();
}

/// [`flush`], then stops renewing the written tasks' leases.
async fn flush_held(shared: &Arc<Shared>, held: &Held, finishes: Vec<(Lease, Finish)>) {
    let leases: Vec<Lease> = finishes.iter().map(|(l, _)| l.clone()).collect();
    flush(shared, finishes).await;
    held.lock().unwrap_or_else(|e| e.into_inner()).retain(|(l, _)| !leases.contains(l));
}

/// Writes finished results in one transaction; each is fenced on its own lease.
async fn flush(shared: &Arc<Shared>, finishes: Vec<(Lease, Finish)>) {
    if finishes.is_empty() {
        return;
    }
    let finishes = Arc::new(finishes);
    let mut delay = Duration::from_millis(10);
    for _ in 0..5 {
        let f = finishes.clone();
        match db(&shared.bulletin, move |b| b.finish_batch(&f)).await {
            Ok(accepted) => {
                let mut jobs: Vec<JobKey> = Vec::new();
                for ((lease, _), ok) in finishes.iter().zip(accepted) {
                    if ok {
                        if !jobs.contains(&lease.task.job) {
                            jobs.push(lease.task.job.clone());
                        }
                    } else {
                        metrics::fenced_result();
                        tracing::warn!(task = %lease.task, "lease lost before finishing; result discarded");
                    }
                }
                for job in jobs {
                    shared.advancer.advance(job);
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot record results yet");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    tracing::error!(tasks = finishes.len(), "results not recorded; the leases will expire and the tasks run again");
}

/// What the guest sees of its task while it runs.
struct Hooks {
    occupied: AtomicBool,
    progress: AtomicU8,
    touched: AtomicBool,
}

impl TaskHooks for Hooks {
    fn progress(&self, percent: u8) {
        self.progress.store(percent, Ordering::Relaxed);
        self.touched.store(true, Ordering::Relaxed);
    }

    fn still_occupied(&self) -> bool {
        self.occupied.load(Ordering::Relaxed)
    }
}

impl Hooks {
    fn new() -> Hooks {
        Hooks { occupied: AtomicBool::new(true), progress: AtomicU8::new(0), touched: AtomicBool::new(false) }
    }

    fn progress(&self) -> Option<u8> {
        self.touched.load(Ordering::Relaxed).then(|| self.progress.load(Ordering::Relaxed))
    }
}

/// Cost of a pick, summed over its attempts or rounds.
#[derive(Default)]
struct Cost {
    fuel: u64,
    wall_ms: i64,
    peak_memory: u64,
}

impl Cost {
    /// Adds a call's cost, and records it in the metrics.
    fn add<T>(&mut self, report: &CallReport<T>, executor: &Executor) {
        let outcome = match &report.result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        metrics::call(
            &executor.manifest().name,
            executor.sha256(),
            outcome,
            report.wall.as_secs_f64(),
            report.fuel_consumed,
            report.peak_memory,
        );
        self.fuel = self.fuel.saturating_add(report.fuel_consumed);
        self.wall_ms = self.wall_ms.saturating_add(i64::try_from(report.wall.as_millis()).unwrap_or(i64::MAX));
        self.peak_memory = self.peak_memory.max(report.peak_memory);
    }
}

struct Run<'a> {
    shared: &'a Arc<Shared>,
    lease: Lease,
    executor: Executor,
    hooks: Arc<Hooks>,
    ctx: CallContext,
    cost: Cost,
    start_ms: i64,
    picked: u32,
    tried: u32,
    max_pick_times: Option<i64>,
    /// The terminal result, written by the caller (batched with others').
    result: Option<Finish>,
    /// A checkpoint executor's final checkpoint, written with the result.
    checkpoint: Option<Vec<u8>>,
}

/// Runs one claimed task; returns its terminal result to be written, if it reached one.
async fn run_task(shared: &Arc<Shared>, claimed: Claimed, hooks: Arc<Hooks>) -> Option<(Lease, Finish)> {
    let Claimed { task, checkpoint, lease } = claimed;
    let span = tracing::info_span!(
        "task",
        job = %task.job_name,
        trigger = %task.trigger,
        step = %task.step_name,
        task = %task.task_name,
        executor = tracing::field::Empty,
        attempt = tracing::field::Empty,
    );
    let Some(executor) = task.executor.as_ref().and_then(|e| shared.executors.executor(&e.name)) else {
        // Unloaded since the claim: give the task back untouched for a node that has it.
        let _ = db(&shared.bulletin, move |b| b.unclaim(&lease)).await;
        return None;
    };
    let sha = executor.sha256();
    span.record("executor", format!("{}@{}", executor.manifest().name, sha.get(..12).unwrap_or(sha)));
    let limits = CallLimits {
        fuel: task.fuel_limit.and_then(|f| u64::try_from(f).ok()).unwrap_or(shared.config.fuel_default),
        timeout: Duration::from_millis(
            task.timeout_ms.and_then(|t| u64::try_from(t).ok()).unwrap_or(shared.config.timeout_ms_default),
        ),
    };
    let ctx = CallContext { limits, span: span.clone(), hooks: hooks.clone() };
    let mut run = Run {
        shared,
        lease,
        executor,
        hooks,
        ctx,
        cost: Cost::default(),
        start_ms: task.start_time.unwrap_or_default(),
        picked: task.picked_times,
        tried: task.tried_times,
        max_pick_times: task.max_pick_times,
        result: None,
        checkpoint: None,
    };
    let wit = convert::wit_task(&task);
    let body = async {
        if run.executor.manifest().checkpoint { run.rounds(wit, checkpoint).await } else { run.attempts(wit).await }
    };
    body.instrument(span).await;
    let lease = run.lease.clone();
    run.result.take().map(|f| (lease, f))
}

/// The leases a worker holds, with the hooks of their guests.
type Held = Arc<std::sync::Mutex<Vec<(Lease, Arc<Hooks>)>>>;

/// Renews the leases of a batch until aborted; a lost lease tells its guest to stop.
///
/// A lease that cannot be renewed (the store keeps failing) is given up once a whole lease
/// period has passed without a renewal: by then it has expired in the store and another worker
/// may hold the task, so the guest is told to stop rather than run on unowned.
async fn heartbeat(shared: Arc<Shared>, held: Held) {
    let period = Duration::from_millis(shared.config.heartbeat_ms.max(1));
    let lease_period = super::ms(shared.config.lease_ms);
    let start = Instant::now();
    let mut renewed: Vec<(Lease, Instant)> = Vec::new();
    loop {
        tokio::time::sleep(period).await;
        let leases = held.lock().unwrap_or_else(|e| e.into_inner()).clone();
        renewed.retain(|(l, _)| leases.iter().any(|(held, _)| held == l));
        for (lease, hooks) in leases {
            let asked = Instant::now();
            let (l, ms) = (lease.clone(), shared.config.lease_ms);
            let lost = match db(&shared.bulletin, move |b| b.renew(&l, ms)).await {
                Ok(true) => {
                    match renewed.iter_mut().find(|(l, _)| *l == lease) {
                        Some((_, at)) => *at = asked,
                        None => renewed.push((lease.clone(), asked)),
                    }
                    false
                }
                Ok(false) => true,
                Err(e) => {
                    let last = renewed.iter().find(|(l, _)| *l == lease).map_or(start, |(_, at)| *at);
                    tracing::warn!(task = %lease.task, error = %e, "lease renewal failed");
                    last.elapsed() >= lease_period
                }
            };
            if lost {
                metrics::lease_lost();
                tracing::warn!(task = %lease.task, "lease lost; the task will be abandoned");
                hooks.occupied.store(false, Ordering::Relaxed);
                held.lock().unwrap_or_else(|e| e.into_inner()).retain(|(l, _)| *l != lease);
            }
        }
    }
}

enum Step {
    Again,
    Done,
}

impl Run<'_> {
    async fn attempts(&mut self, mut wit: tascreed_runtime::Task) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracing::Span::current().record("attempt", attempt);
            wit.picked_times = self.picked;
            wit.tried_times = self.tried;
            let report = self.executor.execute(&wit, &self.ctx).await;
            self.cost.add(&report, &self.executor);
            match report.result {
                Ok(outcome) => return self.finish_outcome(outcome),
                Err(e) => {
                    if let Step::Done = self.failed(e, attempt).await {
                        return;
                    }
                }
            }
        }
    }

    async fn rounds(&mut self, mut wit: tascreed_runtime::Task, mut checkpoint: Option<Vec<u8>>) {
        let mut attempt: u32 = 0;
        loop {
            // The attempt under way: failed attempts so far plus this one.
            tracing::Span::current().record("attempt", attempt.saturating_add(1));
            wit.picked_times = self.picked;
            wit.tried_times = self.tried;
            let report = self.executor.execute_round(&wit, checkpoint.clone(), &self.ctx).await;
            self.cost.add(&report, &self.executor);
            match report.result {
                Ok(round) => {
                    if let Some(outcome) = round.finished {
                        // The last checkpoint goes with the result, in one transaction.
                        metrics::checkpoint_write(&self.executor.manifest().name);
                        self.checkpoint = Some(round.checkpoint);
                        return self.finish_outcome(outcome);
                    }
                    let (l, cp, progress, ms) = (
                        self.lease.clone(),
                        round.checkpoint.clone(),
                        self.hooks.progress(),
                        self.shared.config.lease_ms,
                    );
                    // Persisted with the lease renewal, and refused if the lease was lost.
                    match db(&self.shared.bulletin, move |b| b.save_checkpoint(&l, &cp, progress, ms)).await {
                        Ok(true) => {
                            metrics::checkpoint_write(&self.executor.manifest().name);
                            checkpoint = Some(round.checkpoint)
                        }
                        Ok(false) => return self.lost("checkpoint"),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot persist checkpoint");
                            attempt += 1;
                            if let Step::Done =
                                self.failed(CallError::Retry(format!("checkpoint not persisted: {e}")), attempt).await
                            {
                                return;
                            }
                            continue;
                        }
                    }
                }
                Err(e) => {
                    attempt += 1;
                    if let Step::Done = self.failed(e, attempt).await {
                        return;
                    }
                }
            }
        }
    }

    fn lost(&self, what: &str) {
        metrics::fenced_result();
        tracing::warn!(task = %self.lease.task, "lease lost before {what}; result discarded");
    }

    /// Applies §10.6 to a failed call; `Again` means retry in place now.
    async fn failed(&mut self, error: CallError, attempt: u32) -> Step {
        let reason = error.to_string();
        metrics::exception(match &error {
            CallError::Retry(_) => "TC_RETRY_EXCEPTION",
            CallError::NonRetry(_) | CallError::Trap { .. } => "TC_NON_RETRY_EXCEPTION",
            CallError::FuelExhausted { .. } | CallError::Deadline { .. } | CallError::MemoryCap { .. } => {
                "TC_FATAL_TASK_EXCEPTION"
            }
            CallError::Instantiate(_) | CallError::Unsupported(_) => "TC_FATAL_TASK_EXCEPTION",
        });
        if error.is_limit() {
            metrics::limit_hit(&self.executor.manifest().name, error.kind());
        }
        if !self.hooks.still_occupied() {
            self.lost("recording a failure");
            return Step::Done;
        }
        if error.is_limit() {
            tracing::warn!(kind = error.kind(), "{reason}");
            self.finish(TaskState::Error, Some(reason), Params::new(), vec![]);
            return Step::Done;
        }
        let kind = if matches!(error, CallError::Retry(_)) { FailureKind::Retry } else { FailureKind::NonRetry };
        tracing::info!(kind = error.kind(), attempt, "attempt failed: {reason}");
        let now = match db(&self.shared.bulletin, |b| b.now_ms()).await {
            Ok(now) => now,
            Err(_) => self.start_ms,
        };
        let next = self.shared.config.retry.after_failed_attempt(
            self.picked,
            self.tried,
            attempt,
            kind,
            self.max_pick_times,
            now,
        );
        self.picked = next.picked_times;
        self.tried = next.tried_times;
        match next.verdict {
            Verdict::RetryInPlace { delay_ms } => {
                let (l, tried, r) = (self.lease.clone(), self.tried, reason.clone());
                match db(&self.shared.bulletin, move |b| b.record_attempt(&l, tried, &r)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.lost("recording an attempt");
                        return Step::Done;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot record a failed attempt"),
                }
                tokio::time::sleep(super::ms(delay_ms)).await;
                Step::Again
            }
            Verdict::GiveUp { after } => {
                let release = Release {
                    picked_times: self.picked,
                    tried_times: self.tried,
                    after_ms: after,
                    reason: Some(reason),
                };
                let l = self.lease.clone();
                match db(&self.shared.bulletin, move |b| b.release(&l, &release)).await {
                    Ok(true) => self.shared.work.notify_waiters(),
                    Ok(false) => self.lost("giving the task up"),
                    Err(e) => tracing::error!(error = %e, "cannot release the task; its lease will expire"),
                }
                Step::Done
            }
            Verdict::EndError { reason } => {
                self.finish(TaskState::Error, Some(reason), Params::new(), vec![]);
                Step::Done
            }
        }
    }

    fn finish_outcome(&mut self, outcome: tascreed_runtime::Outcome) {
        let state = match outcome.status {
            Status::Success => TaskState::Success,
            Status::Failed => TaskState::Failed,
            Status::Error => TaskState::Error,
        };
        let params: Params = outcome.updated_params.into_iter().collect();
        // Read here, where a conf that is not one can be blamed on the executor that returned it.
        let configs = outcome
            .updated_configs
            .into_iter()
            .filter_map(|(step, text)| match UpdatedConfig::parse(&text) {
                Ok(conf) => Some((step, conf)),
                Err(e) => {
                    tracing::warn!(step = %step, error = %e, "updated config ignored: not a conf");
                    None
                }
            })
            .collect();
        self.finish(state, outcome.reason, params, configs);
    }

    /// Records the terminal result; the caller writes it (fenced, possibly batched).
    fn finish(
        &mut self,
        state: TaskState,
        reason: Option<String>,
        params: Params,
        configs: Vec<(String, UpdatedConfig)>,
    ) {
        tracing::debug!(state = state.as_str(), "task finished");
        self.result = Some(Finish {
            state,
            reason,
            updated_params: params,
            updated_configs: configs,
            picked_times: self.picked,
            tried_times: self.tried,
            run: RunStats {
                executor_sha256: Some(self.executor.sha256().to_string()),
                fuel: self.cost.fuel,
                wall_ms: self.cost.wall_ms,
                peak_memory: self.cost.peak_memory,
                start_ms: self.start_ms,
                progress: self.hooks.progress(),
            },
            checkpoint: self.checkpoint.take(),
        });
    }
}
