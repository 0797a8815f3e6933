//! tascreed: a leaderless, reliable task-execution host whose executors are WASM components.
pub use tascreed_domain as domain;
pub use tascreed_runtime as runtime;
