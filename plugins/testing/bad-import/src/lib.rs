//! Test-only: a component with all of world `executor` plus an import of
//! `test:extra/missing@0.1.0`, which the host does not provide. `execute` calls it, so the
//! import is really used; the host's runtime tests check that the component is rejected.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    world: "test:bad-import/bad-import",
    path: ["../../../wit", "wit"],
    // The nested test:extra package is not the world's own: generate its bindings too.
    generate_all,
});

use tascreed::executor::types::Status;
use test::extra::missing;

struct BadImport;

impl Guest for BadImport {
    fn describe() -> Manifest {
        Manifest {
            name: "bad-import".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            bindings: Vec::new(),
            checkpoint: false,
        }
    }

    fn execute(_task: Task) -> Result<Outcome, TaskError> {
        let thing = missing::thing();
        Ok(Outcome {
            status: Status::Success,
            reason: Some(format!("thing {thing}")),
            updated_params: Vec::new(),
            updated_configs: Vec::new(),
        })
    }

    fn execute_round(_task: Task, _checkpoint: Option<Vec<u8>>) -> Result<Round, TaskError> {
        Err(TaskError::NonRetry("bad-import is not a checkpoint executor".into()))
    }
}

export!(BadImport);
