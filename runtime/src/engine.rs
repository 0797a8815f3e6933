//! The process-wide wasmtime engine and its epoch ticker.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::RuntimeError;

/// Settings of the runtime. `Default` gives the production defaults of DESIGN.md.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Linear-memory cap per instance (`guest.memory.max.bytes`).
    pub memory_max_bytes: u64,
    /// Use the pooling allocator; falls back to on-demand when the pool cannot be reserved.
    pub pooling: bool,
    /// How many instances may be alive at once in the pool.
    pub pool_instances: u32,
    /// Granularity of wall-clock deadlines; also how often a busy guest yields to tokio.
    pub epoch_tick: Duration,
    /// Fuel between cooperative yields of a long-running guest.
    pub fuel_yield_interval: u64,
    /// Meter fuel. Off only to measure what metering costs: budgets are then not enforced and
    /// calls report zero fuel.
    pub fuel_metering: bool,
    /// Compiled-artifact cache directory; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of each guest output stream kept for error reports.
    pub output_tail_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            memory_max_bytes: 256 * 1024 * 1024,
            pooling: true,
            pool_instances: 256,
            epoch_tick: Duration::from_millis(10),
            fuel_yield_interval: 10_000_000,
            fuel_metering: true,
            cache_dir: None,
            output_tail_bytes: 4096,
        }
    }
}

fn base_config(cfg: &RuntimeConfig) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(cfg.fuel_metering);
    config.epoch_interruption(true);
    // Component-model async is not part of our contract; turning it off makes calls cheaper.
    config.concurrency_support(false);
    config
}

fn pooling_config(cfg: &RuntimeConfig) -> PoolingAllocationConfig {
    let n = cfg.pool_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_memory_size(usize::try_from(cfg.memory_max_bytes).unwrap_or(usize::MAX))
        // Reset touched pages with memset instead of madvise: scales across threads (notes).
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(1 << 20)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Builds the engine; reports whether the pooling allocator is in use.
pub(crate) fn build_engine(cfg: &RuntimeConfig) -> Result<(Engine, bool), RuntimeError> {
    if cfg.pooling {
        let mut config = base_config(cfg);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(cfg)));
        match Engine::new(&config) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable, using on-demand allocation")
            }
        }
    }
    let config = base_config(cfg);
    Engine::new(&config).map(|e| (e, false)).map_err(|e| RuntimeError::Engine(e.to_string()))
}

/// Advances the engine's epoch on a dedicated OS thread, so that a guest which never yields
/// cannot starve the thing meant to stop it (a tokio task could be starved).
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Result<Self, RuntimeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("tascreed-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(RuntimeError::Ticker)?;
        Ok(Self { stop, handle: Some(handle) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
