pub mod node;
pub mod process;
pub mod runtime;
pub mod store;
