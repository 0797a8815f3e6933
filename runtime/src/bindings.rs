//! Typed bindings of the WIT world `tascreed:executor/executor` (`wit/executor.wit`).

wasmtime::component::bindgen!({
    world: "executor",
    path: "../wit",
    exports: { default: async },
});
