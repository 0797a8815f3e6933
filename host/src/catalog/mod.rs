//! The node's catalogs of job defines (`define.dirs`, `*.json`) and executor components
//! (`executor.dirs`, `*.wasm`, plus uploads), each hot-reloaded from its directories.
//!
//! Both follow one rule: a file that stops loading is reported and the last good version it
//! produced stays live, so a half-saved or broken file never takes a working define or executor
//! away. A deleted file takes away what it provided. Directories are read non-recursively.

mod defines;
mod executors;
mod scan;
mod watch;

use std::path::PathBuf;

pub use defines::{DefineCatalog, DefineInfo, ReloadReport};
pub use executors::{ExecutorCatalog, ExecutorInfo, ExecutorReload, InsertError, Source, is_valid_executor_name};
pub use watch::{DEBOUNCE, WatchError, Watcher};

/// A file (or directory) that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The offending file or directory.
    pub file: PathBuf,
    /// The define or executor it provides or meant to provide, when known.
    pub name: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}
