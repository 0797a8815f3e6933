//! `noop`: succeeds at once with nothing to report. The cheapest possible executor, used by the
//! host's benchmarks to measure the per-task overhead of instantiating and calling a component.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "executor", path: "../../wit" });

use tascreed::executor::types::Status;

struct Noop;

impl Guest for Noop {
    fn describe() -> Manifest {
        Manifest {
            name: "noop".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            bindings: Vec::new(),
            checkpoint: false,
        }
    }

    fn execute(_task: Task) -> Result<Outcome, TaskError> {
        Ok(Outcome { status: Status::Success, reason: None, updated_params: Vec::new(), updated_configs: Vec::new() })
    }

    fn execute_round(_task: Task, _checkpoint: Option<Vec<u8>>) -> Result<Round, TaskError> {
        Err(TaskError::NonRetry("noop is not a checkpoint executor".into()))
    }
}

export!(Noop);
