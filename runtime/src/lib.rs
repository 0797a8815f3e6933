//! The wasmtime runtime of tascreed: loads executor components and runs one task call at a time
//! in a sandbox.
//!
//! # Interface
//!
//! - [`Runtime::new`] builds the single process-wide engine (fuel metering, epoch interruption
//!   with a ticker on its own OS thread, pooling allocator with an on-demand fallback) from a
//!   [`RuntimeConfig`].
//! - [`Runtime::load`] turns component bytes into an [`Executor`]: it rejects garbage, core
//!   modules, components of another world and components importing what the host does not
//!   provide, each with its own [`LoadError`]; compiles off the async runtime, through an on-disk
//!   artifact cache keyed by sha256 and the engine's compatibility hash; and reads the
//!   [`Manifest`] from `describe()`.
//! - [`Executor::execute`] and [`Executor::execute_round`] run one call in a fresh instance,
//!   under the [`CallLimits`] and with the [`TaskHooks`] of a [`CallContext`], and return a
//!   [`CallReport`]: the guest's value or a [`CallError`] (guest `retry` / `non-retry`, fuel
//!   exhausted, deadline, memory cap, trap with the stderr tail, instantiation failure), plus the
//!   fuel consumed, the wall time and the peak memory of the call, whether it succeeded or not.
//!
//! # Sandbox
//!
//! WASI preview 2 with nothing granted but the clocks and random (so guests may sleep and
//! time themselves): no preopened directories, no environment variables or arguments, no
//! sockets (TCP, UDP, every address refused) and no name lookup; stdin is closed; stdout and stderr go line by line
//! to `tracing` inside the caller's span, and the stderr tail is kept for trap reports. Linear
//! memory is capped per instance; fuel is metered on every call (with periodic cooperative
//! yields); a wall-clock deadline stops guests that compute (epochs) and guests blocked in a host
//! call (a timer).

mod bindings;
mod cache;
mod engine;
mod error;
mod executor;
mod output;
mod sandbox;

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

pub use bindings::tascreed::executor::host::Level as LogLevel;
pub use bindings::tascreed::executor::types::{Manifest, Outcome, Pack, Round, Shard, Status, Task, TaskError};
pub use engine::RuntimeConfig;
pub use error::{CallError, LoadError, RuntimeError};
pub use executor::{CallContext, CallLimits, CallReport, Executor, LoadInfo};
pub use sandbox::{NoHooks, TaskHooks};

use cache::ArtifactCache;
use executor::{Shared, check_header, error_text, link};

/// The process-wide runtime. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    cache: Option<Arc<ArtifactCache>>,
    pooling: bool,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let (engine, pooling) = engine::build_engine(&config)?;
        let linker = link(&engine).map_err(|e| RuntimeError::Linker(error_text(&e)))?;
        let ticker = engine::EpochTicker::start(engine.clone(), config.epoch_tick)?;
        let cache = config.cache_dir.clone().map(|dir| Arc::new(ArtifactCache::new(dir, &engine)));
        Ok(Self { shared: Arc::new(Shared { engine, linker, config, _ticker: ticker }), cache, pooling })
    }

    /// Whether the pooling allocator is in use (it may have fallen back to on-demand).
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// Hex sha256 of component bytes, the identity used for caching and versioning.
    pub fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Validates, compiles (or loads from cache) and describes a component.
    pub async fn load(&self, bytes: Arc<[u8]>) -> Result<Executor, LoadError> {
        check_header(&bytes)?;
        let sha256 = Self::sha256_hex(&bytes);
        let engine = self.shared.engine.clone();
        let cache = self.cache.clone();
        let sha = sha256.clone();
        let size = bytes.len();
        let (component, info) = tokio::task::spawn_blocking(move || compile(&engine, cache.as_deref(), &sha, &bytes))
            .await
            .map_err(|e| LoadError::Join(e.to_string()))??;
        Executor::from_component(self.shared.clone(), component, sha256, size, info).await
    }
}

fn compile(
    engine: &wasmtime::Engine,
    cache: Option<&ArtifactCache>,
    sha256: &str,
    bytes: &[u8],
) -> Result<(Component, LoadInfo), LoadError> {
    let start = Instant::now();
    if let Some(component) = cache.and_then(|c| c.load(engine, sha256)) {
        return Ok((component, LoadInfo { cache_hit: true, compile_time: start.elapsed() }));
    }
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Invalid(error_text(&e)))?;
    if let Some(cache) = cache {
        cache.store(sha256, &component);
    }
    Ok((component, LoadInfo { cache_hit: false, compile_time: start.elapsed() }))
}
