//! tascreed: a leaderless, reliable task-execution host whose executors are WASM components.
//!
//! Crates: [`domain`] (pure rules), [`runtime`] (wasmtime sandbox), [`bulletin`] (storage).
//! This crate wires them into a running node: configuration, the define and executor catalogs,
//! the node (advancer, workers, sweeper), the HTTP API and the CLI.
pub use tascreed_domain as domain;
pub use tascreed_runtime as runtime;

pub mod api;
pub mod catalog;
pub mod config;
pub mod metrics;
pub mod node;
pub mod service;
