//! Listing the catalog directories: which files count, and in which order.

use std::collections::{BTreeSet, HashSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::FileError;

/// Orders files the way "later file wins" is defined: directories in configured order, then
/// file names within a directory.
pub(crate) type FileKey = (usize, PathBuf);

#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Matching files, in [`FileKey`] order.
    pub files: Vec<FileKey>,
    /// Configured directories that do not exist (yet).
    pub missing: BTreeSet<PathBuf>,
    /// Directories that exist but cannot be read.
    pub errors: Vec<FileError>,
}

/// The regular files named `*.{ext}` directly inside `dirs`. Hidden files are skipped: editors
/// keep lock and swap files there (Emacs' `.#name.json` is a dangling symlink).
pub(crate) fn list(dirs: &[PathBuf], ext: &str) -> Listing {
    let mut listing = Listing::default();
    let mut seen = HashSet::new();
    for (index, dir) in dirs.iter().enumerate() {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                listing.missing.insert(dir.clone());
                continue;
            }
            Err(e) => {
                let message = format!("cannot read directory: {e}");
                listing.errors.push(FileError { file: dir.clone(), name: None, message });
                continue;
            }
        };
        let mut files: Vec<PathBuf> =
            entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| is_candidate(path, ext)).collect();
        files.sort();
        for path in files {
            // The same directory configured twice must not make a file shadow itself.
            if seen.insert(path.clone()) {
                listing.files.push((index, path));
            }
        }
    }
    listing
}

fn is_candidate(path: &Path, ext: &str) -> bool {
    let visible = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.'));
    visible && path.extension().is_some_and(|e| e == ext) && path.is_file()
}

/// Logs directories that went missing or appeared since the last scan.
pub(crate) fn log_missing_changes(what: &str, before: &BTreeSet<PathBuf>, now: &BTreeSet<PathBuf>) {
    for dir in now.difference(before) {
        tracing::warn!(dir = %dir.display(), "{what} directory does not exist; it is used once created");
    }
    for dir in before.difference(now) {
        tracing::info!(dir = %dir.display(), "{what} directory appeared");
    }
}
