//! A loaded executor component and the calls into it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::bindings::{self, ExecutorPre};
use crate::engine::RuntimeConfig;
use crate::error::{CallError, LoadError};
use crate::sandbox::{self, NoHooks, StoreState, TaskHooks};
use crate::{Manifest, Outcome, Round, Task, TaskError};

/// Per-call limits: fuel budget and wall-clock timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    pub fuel: u64,
    pub timeout: Duration,
}

impl Default for CallLimits {
    /// DESIGN.md's `guest.fuel.default` and `guest.timeout.ms.default`.
    fn default() -> Self {
        Self { fuel: 10_000_000_000, timeout: Duration::from_millis(600_000) }
    }
}

/// What the caller provides for one call: limits, the tracing span the guest's output and log
/// lines go to (carry job/step/task fields on it), and the hooks behind the `host` imports.
#[derive(Clone)]
pub struct CallContext {
    pub limits: CallLimits,
    pub span: tracing::Span,
    pub hooks: Arc<dyn TaskHooks>,
}

impl CallContext {
    pub fn new(limits: CallLimits) -> Self {
        Self { limits, span: tracing::Span::none(), hooks: Arc::new(NoHooks) }
    }
}

/// The result of one call, with what it cost; the cost is reported for failed calls too.
#[derive(Debug)]
pub struct CallReport<T> {
    pub result: Result<T, CallError>,
    /// Fuel consumed. For a call that trapped or timed out this is a lower bound: fuel burnt
    /// since the last yield is lost when a call is cut short.
    pub fuel_consumed: u64,
    pub wall: Duration,
    /// Largest linear memory the instance reached, in bytes.
    pub peak_memory: u64,
}

/// How the component got compiled when it was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadInfo {
    pub cache_hit: bool,
    pub compile_time: Duration,
}

/// The functions world `executor` exports.
const WORLD_EXPORTS: [&str; 3] = ["describe", "execute", "execute-round"];

/// What "no deadline" is clamped to: a century.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreState>,
    pub(crate) config: RuntimeConfig,
    /// Held by every executor too: deadlines of guests that never yield depend on it, so it
    /// must outlive the last executor, not only the `Runtime` that started it.
    pub(crate) _ticker: crate::engine::EpochTicker,
}

/// A validated executor component, ready to run tasks. Cheap to clone.
#[derive(Clone)]
pub struct Executor(Arc<Inner>);

struct Inner {
    sha256: String,
    size: usize,
    manifest: Manifest,
    load: LoadInfo,
    pre: ExecutorPre<StoreState>,
    shared: Arc<Shared>,
}

enum Call<'a> {
    Describe,
    Execute(&'a Task),
    Round(&'a Task, Option<Vec<u8>>),
}

enum Returned {
    Manifest(Manifest),
    Outcome(Result<Outcome, TaskError>),
    Round(Result<Round, TaskError>),
}

pub(crate) fn link(engine: &Engine) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::Executor::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Distinguishes garbage, core modules and components before handing bytes to the compiler,
/// so each gets an error that says what it is.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(LoadError::CoreModule),
        Some([0, b'a', b's', b'm', ..]) => Ok(()),
        _ => Err(LoadError::NotWasm),
    }
}

impl Executor {
    pub(crate) async fn from_component(
        shared: Arc<Shared>,
        component: Component,
        sha256: String,
        size: usize,
        load: LoadInfo,
    ) -> Result<Self, LoadError> {
        // Exports first: a component of another world usually imports things we do not link
        // either, and "wrong world" is the answer that helps its author.
        let ty = component.component_type();
        let missing: Vec<&str> =
            WORLD_EXPORTS.iter().copied().filter(|name| ty.get_export(&shared.engine, name).is_none()).collect();
        if !missing.is_empty() {
            return Err(LoadError::WrongWorld(format!("it does not export {}", missing.join(", "))));
        }
        let instance_pre =
            shared.linker.instantiate_pre(&component).map_err(|e| LoadError::UnsupportedImport(error_text(&e)))?;
        let pre = ExecutorPre::new(instance_pre).map_err(|e| LoadError::WrongWorld(error_text(&e)))?;
        let probe = Inner { sha256, size, manifest: placeholder_manifest(), load, pre, shared };
        let limits = CallLimits { fuel: 1_000_000_000, timeout: Duration::from_secs(10) };
        let report = probe.call(&CallContext::new(limits), Call::Describe).await;
        let manifest = match report.result {
            Ok(Returned::Manifest(m)) => m,
            Ok(_) => return Err(LoadError::Describe(mismatch())),
            Err(e) => return Err(LoadError::Describe(e)),
        };
        validate_manifest(&manifest)?;
        Ok(Self(Arc::new(Inner { manifest, ..probe })))
    }

    pub fn manifest(&self) -> &Manifest {
        &self.0.manifest
    }

    /// Hex sha256 of the component bytes: its identity and version.
    pub fn sha256(&self) -> &str {
        &self.0.sha256
    }

    pub fn size(&self) -> usize {
        self.0.size
    }

    pub fn load_info(&self) -> LoadInfo {
        self.0.load
    }

    /// Runs `execute` in a fresh instance.
    pub async fn execute(&self, task: &Task, ctx: &CallContext) -> CallReport<Outcome> {
        if self.0.manifest.checkpoint {
            return unsupported("checkpoint executor called through execute: the host must use execute-round");
        }
        let report = self.0.call(ctx, Call::Execute(task)).await;
        report.map(|r| match r {
            Returned::Outcome(r) => r.map_err(guest_error),
            _ => Err(mismatch()),
        })
    }

    /// Runs one `execute-round` in a fresh instance, resuming from `checkpoint`.
    pub async fn execute_round(
        &self,
        task: &Task,
        checkpoint: Option<Vec<u8>>,
        ctx: &CallContext,
    ) -> CallReport<Round> {
        if !self.0.manifest.checkpoint {
            return unsupported("normal executor called through execute-round: the host must use execute");
        }
        let report = self.0.call(ctx, Call::Round(task, checkpoint)).await;
        report.map(|r| match r {
            Returned::Round(r) => r.map_err(guest_error),
            _ => Err(mismatch()),
        })
    }
}

impl<T> CallReport<T> {
    fn map<U>(self, f: impl FnOnce(T) -> Result<U, CallError>) -> CallReport<U> {
        CallReport {
            result: self.result.and_then(f),
            fuel_consumed: self.fuel_consumed,
            wall: self.wall,
            peak_memory: self.peak_memory,
        }
    }
}

fn unsupported<T>(message: &str) -> CallReport<T> {
    CallReport {
        result: Err(CallError::Unsupported(message.to_string())),
        fuel_consumed: 0,
        wall: Duration::ZERO,
        peak_memory: 0,
    }
}

/// A `Returned` of another kind than its `Call` asked for: a bug of ours, reported, never a panic.
fn mismatch() -> CallError {
    CallError::Unsupported("internal error: the call returned a value of another kind".into())
}

fn guest_error(e: TaskError) -> CallError {
    match e {
        TaskError::Retry(m) => CallError::Retry(m),
        TaskError::NonRetry(m) => CallError::NonRetry(m),
    }
}

fn placeholder_manifest() -> Manifest {
    Manifest { name: String::new(), version: String::new(), bindings: Vec::new(), checkpoint: false }
}

fn validate_manifest(m: &Manifest) -> Result<(), LoadError> {
    if m.name.trim().is_empty() {
        return Err(LoadError::BadManifest("name is empty".into()));
    }
    if let Some((job, step)) = m.bindings.iter().find(|(j, s)| j.trim().is_empty() || s.trim().is_empty()) {
        return Err(LoadError::BadManifest(format!("binding ({job:?}, {step:?}) has an empty name")));
    }
    Ok(())
}

/// The error and its causes on one line.
pub(crate) fn error_text(e: &wasmtime::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

impl Inner {
    async fn call(&self, ctx: &CallContext, call: Call<'_>) -> CallReport<Returned> {
        let cfg = &self.shared.config;
        let start = Instant::now();
        let (stdout, stderr) = sandbox::outputs(&ctx.span, cfg.output_tail_bytes);
        let state =
            StoreState::new(cfg.memory_max_bytes, ctx.hooks.clone(), ctx.span.clone(), stdout.clone(), stderr.clone());
        let mut store = Store::new(&self.shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        let budget = ctx.limits.fuel;
        // A timeout too large to add (e.g. `Duration::MAX`) means no deadline in practice.
        let deadline = start.checked_add(ctx.limits.timeout).unwrap_or_else(|| start + FAR_FUTURE);
        let setup = if cfg.fuel_metering {
            store
                .set_fuel(budget)
                .and_then(|()| store.fuel_async_yield_interval(Some(cfg.fuel_yield_interval.clamp(1, budget.max(1)))))
        } else {
            Ok(())
        };
        if let Err(e) = setup {
            return CallReport {
                result: Err(CallError::Instantiate(error_text(&e))),
                fuel_consumed: 0,
                wall: start.elapsed(),
                peak_memory: 0,
            };
        }
        // Every tick, a guest that never yields is given back to tokio; past the deadline it traps.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
        });

        let run = async {
            let instance = self.pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
            let returned = match call {
                Call::Describe => instance.call_describe(&mut store).await.map(Returned::Manifest),
                Call::Execute(task) => instance.call_execute(&mut store, task).await.map(Returned::Outcome),
                Call::Round(task, cp) => {
                    instance.call_execute_round(&mut store, task, cp.as_deref()).await.map(Returned::Round)
                }
            };
            returned.map_err(|e| (false, e))
        };
        // Epochs stop guests that compute; the timer also stops guests blocked in a host call
        // (e.g. sleeping through `wasi:io/poll`).
        let outcome = tokio::time::timeout_at(deadline.into(), run).await;
        let wall = start.elapsed();
        let stderr_tail = stderr.finish();
        stdout.finish();
        let mut fuel_consumed = match store.get_fuel() {
            Ok(remaining) if cfg.fuel_metering => budget.saturating_sub(remaining),
            _ => 0,
        };
        let limiter = &store.data().limiter;
        let peak_memory = limiter.peak as u64;
        let result = match outcome {
            Err(_elapsed) => Err(CallError::Deadline { limit: ctx.limits.timeout, elapsed: wall }),
            Ok(Ok(returned)) => Ok(returned),
            Ok(Err((instantiating, e))) => {
                let trap = e.downcast_ref::<Trap>().copied();
                if let Some(requested) = limiter.refused {
                    Err(CallError::MemoryCap { limit: cfg.memory_max_bytes, requested: requested as u64 })
                } else if trap == Some(Trap::OutOfFuel) {
                    fuel_consumed = budget;
                    Err(CallError::FuelExhausted { budget })
                } else if trap == Some(Trap::Interrupt) {
                    Err(CallError::Deadline { limit: ctx.limits.timeout, elapsed: wall })
                } else if instantiating && trap.is_none() {
                    Err(CallError::Instantiate(error_text(&e)))
                } else {
                    let code = trap.map_or_else(|| "host error".to_string(), |t| t.to_string());
                    // The outer error is wasmtime's "error while executing at wasm backtrace:"
                    // wrapper; the root cause is what went wrong (the trap, or a host error).
                    let message = e.root_cause().to_string().replace('\n', " ");
                    Err(CallError::Trap { code, message, stderr_tail })
                }
            }
        };
        CallReport { result, fuel_consumed, wall, peak_memory }
    }
}
