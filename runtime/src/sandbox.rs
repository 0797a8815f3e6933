//! Per-call store state: WASI with nothing granted, a memory limiter, and the `host` imports.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::tascreed::executor::{host, types};
use crate::output::{GuestOutput, StreamKind};

/// What the caller of a task learns from, and tells to, a running guest.
///
/// `log` lines are already forwarded to `tracing` inside the call's span; implement it only to
/// keep them elsewhere too.
pub trait TaskHooks: Send + Sync {
    fn progress(&self, _percent: u8) {}
    /// `false` once the caller lost the task's lease: the guest should stop.
    fn still_occupied(&self) -> bool {
        true
    }
    fn log(&self, _level: host::Level, _message: &str) {}
}

/// Hooks for calls made outside a task (e.g. `describe`).
pub struct NoHooks;
impl TaskHooks for NoHooks {}

/// Tracks linear-memory growth of one instance, refusing growth beyond the cap with a trap we
/// can name. The cap is on the instance's total: a component may hold several linear memories
/// (one per core module, e.g. a preview1 adapter's), and each growth only reports its own.
pub(crate) struct MemoryLimiter {
    cap: usize,
    /// Bytes of every linear memory of the store, summed.
    total: usize,
    pub(crate) peak: usize,
    pub(crate) refused: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap} bytes exceeded (asked for {requested})")]
struct MemoryCapHit {
    cap: usize,
    requested: usize,
}

impl MemoryLimiter {
    pub(crate) fn new(cap: usize) -> Self {
        Self { cap, total: 0, peak: 0, refused: None }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.cap {
            self.refused = Some(total);
            return Err(wasmtime::Error::new(MemoryCapHit { cap: self.cap, requested: total }));
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any sane executor.
        Ok(desired <= 1_000_000)
    }
}

pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    hooks: Arc<dyn TaskHooks>,
    span: tracing::Span,
}

impl StoreState {
    pub(crate) fn new(
        memory_cap: u64,
        hooks: Arc<dyn TaskHooks>,
        span: tracing::Span,
        stdout: GuestOutput,
        stderr: GuestOutput,
    ) -> Self {
        // Nothing is granted: no preopened directories, no environment, no arguments, no
        // sockets and no name lookup; stdin is closed. The network denials are the builder's
        // defaults too, but they are the sandbox's boundary, so they are said here rather than
        // left to a library default. Clocks and random stay: guests may sleep and time.
        let mut builder = WasiCtx::builder();
        builder
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(usize::try_from(memory_cap).unwrap_or(usize::MAX)),
            hooks,
            span,
        }
    }
}

pub(crate) fn outputs(span: &tracing::Span, tail: usize) -> (GuestOutput, GuestOutput) {
    (GuestOutput::new(StreamKind::Stdout, span.clone(), 0), GuestOutput::new(StreamKind::Stderr, span.clone(), tail))
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: host::Level, message: String) {
        let span = &self.span;
        match level {
            host::Level::Trace => tracing::trace!(parent: span, source = "guest", "{message}"),
            host::Level::Debug => tracing::debug!(parent: span, source = "guest", "{message}"),
            host::Level::Info => tracing::info!(parent: span, source = "guest", "{message}"),
            host::Level::Warn => tracing::warn!(parent: span, source = "guest", "{message}"),
            host::Level::Error => tracing::error!(parent: span, source = "guest", "{message}"),
        }
        self.hooks.log(level, &message);
    }

    fn progress(&mut self, percent: u8) {
        self.hooks.progress(percent.min(100));
    }

    fn still_occupied(&mut self) -> bool {
        self.hooks.still_occupied()
    }
}
