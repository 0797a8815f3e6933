use std::time::Duration;

/// Why a component was not accepted as an executor.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly binary (missing the \\0asm magic header)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build executors as components (e.g. `--target wasm32-wasip2`)"
    )]
    CoreModule,
    #[error("invalid component: {0}")]
    Invalid(String),
    #[error("imports something the host does not provide: {0}")]
    UnsupportedImport(String),
    #[error("not a component of world `tascreed:executor/executor@0.1.0`: {0}")]
    WrongWorld(String),
    #[error("describe() failed: {0}")]
    Describe(#[source] CallError),
    #[error("describe() returned an invalid manifest: {0}")]
    BadManifest(String),
    #[error("compilation task failed: {0}")]
    Join(String),
}

/// Why building the runtime itself failed (engine configuration, ticker thread).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the wasmtime engine: {0}")]
    Engine(String),
    #[error("cannot set up the WASI linker: {0}")]
    Linker(String),
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// How one call into a guest ended when it did not return a value.
///
/// `Retry` / `NonRetry` are the guest's own `task-error`; the limit variants are raised by the
/// sandbox; `Trap` is anything else the guest did wrong (panic, `unreachable`, stack overflow).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("retryable error: {0}")]
    Retry(String),
    #[error("non-retryable error: {0}")]
    NonRetry(String),
    #[error("fuel exhausted: used the whole budget of {budget} units")]
    FuelExhausted { budget: u64 },
    #[error("deadline exceeded: ran {}ms, limit {}ms", elapsed.as_millis(), limit.as_millis())]
    Deadline { limit: Duration, elapsed: Duration },
    #[error("memory cap exceeded: asked for {requested} bytes, limit {limit} bytes")]
    MemoryCap { limit: u64, requested: u64 },
    #[error("guest trapped ({code}): {message}{}", stderr_suffix(stderr_tail))]
    Trap { code: String, message: String, stderr_tail: String },
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    #[error("{0}")]
    Unsupported(String),
}

fn stderr_suffix(tail: &str) -> String {
    if tail.is_empty() { String::new() } else { format!("; stderr: {tail}") }
}

impl CallError {
    /// True for the sandbox limits (fuel, deadline, memory): DESIGN.md ends such a task ERROR at once.
    pub fn is_limit(&self) -> bool {
        matches!(self, Self::FuelExhausted { .. } | Self::Deadline { .. } | Self::MemoryCap { .. })
    }

    /// A short, bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Retry(_) => "retry",
            Self::NonRetry(_) => "non_retry",
            Self::FuelExhausted { .. } => "fuel",
            Self::Deadline { .. } => "deadline",
            Self::MemoryCap { .. } => "memory",
            Self::Trap { .. } => "trap",
            Self::Instantiate(_) => "instantiate",
            Self::Unsupported(_) => "unsupported",
        }
    }
}
