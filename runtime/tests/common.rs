//! Shared fixtures: the guest components built by `cargo xtask plugins`, and task builders.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tascreed_runtime::{CallContext, CallLimits, Executor, Runtime, RuntimeConfig, Task};

/// Folder of the built guests: `TASCREED_PLUGINS_DIR`, else `<workspace>/target/plugins`.
pub fn plugins_dir() -> PathBuf {
    std::env::var_os("TASCREED_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

pub fn guest_bytes(relative: &str) -> Arc<[u8]> {
    let path = plugins_dir().join(relative);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build the guests first with `cargo xtask plugins`", path.display()))
        .into()
}

/// One runtime per test process, with a private artifact cache so each guest compiles once.
pub fn shared_runtime() -> &'static Runtime {
    static RT: OnceLock<(Runtime, tempfile::TempDir)> = OnceLock::new();
    &RT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = RuntimeConfig {
            memory_max_bytes: 64 * 1024 * 1024,
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeConfig::default()
        };
        (Runtime::new(config).expect("runtime"), dir)
    })
    .0
}

pub async fn load(name: &str) -> Executor {
    shared_runtime().load(guest_bytes(&format!("{name}.wasm"))).await.expect("example guest loads")
}

pub fn task(task_name: &str, params: &[(&str, &str)]) -> Task {
    Task {
        job_name: "job".into(),
        trigger: "t".into(),
        step_name: task_name.split('.').next().unwrap_or(task_name).into(),
        task_name: task_name.into(),
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        shard: None,
        pack: None,
        dependent_step_states: vec![],
        prev_phase_step_states: vec![],
        picked_times: 0,
        tried_times: 0,
    }
}

pub fn scripted_task(script: &str) -> Task {
    task("s", &[("script", script)])
}

pub fn ctx(fuel: u64, timeout: Duration) -> CallContext {
    CallContext::new(CallLimits { fuel, timeout })
}

pub fn default_ctx() -> CallContext {
    ctx(10_000_000_000, Duration::from_secs(30))
}
