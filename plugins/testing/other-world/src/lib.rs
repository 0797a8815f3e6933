//! Test-only: a well-formed component of world `test:other/other`, not of world `executor`.
//! The host's runtime tests load it to check that such components are rejected.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "other", path: "wit" });

struct Other;

impl Guest for Other {
    fn hello() -> String {
        "hello from another world".into()
    }
}

export!(Other);
