//! The job-define catalog: every `*.json` of `define.dirs`, parsed and validated by the domain.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tascreed_domain::{JobDefine, ValidateOptions};

use super::scan::{self, FileKey};
use super::{FileError, WatchError, Watcher, watch};

/// A loaded define and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefineInfo {
    pub name: String,
    pub file: PathBuf,
    pub define: Arc<JobDefine>,
}

/// What one [`DefineCatalog::reload`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The catalog's generation after the reload.
    pub generation: u64,
    /// Whether anything visible (defines or errors) changed.
    pub changed: bool,
    /// Defines that appeared.
    pub added: Vec<String>,
    /// Defines whose content or file changed.
    pub updated: Vec<String>,
    /// Defines that are gone.
    pub removed: Vec<String>,
    /// All current load errors.
    pub errors: Vec<FileError>,
    /// Configured directories that do not exist.
    pub missing_dirs: Vec<PathBuf>,
}

/// Job defines by name, reloaded from their directories. Thread-safe; share it in an `Arc`.
///
/// Rules: the last good version of a define stays live while its file is broken; a deleted
/// file takes its define away; of two files defining one name the later (directory order, then
/// file name) wins and the shadowed one is listed among the errors.
pub struct DefineCatalog {
    dirs: Vec<PathBuf>,
    options: ValidateOptions,
    state: RwLock<State>,
    /// Serialises reloads, so a slow one cannot overwrite a newer one's result.
    reloading: Mutex<()>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<FileKey, FileRecord>,
    view: View,
    generation: u64,
    missing: BTreeSet<PathBuf>,
}

#[derive(Clone)]
struct FileRecord {
    /// Hash of the content this record was made from; equal content is not parsed again.
    fingerprint: u64,
    /// The last define this file loaded successfully.
    good: Option<Arc<JobDefine>>,
    /// Why the current content does not load.
    error: Option<FileError>,
}

#[derive(Default, Clone, PartialEq)]
struct View {
    defines: BTreeMap<String, (PathBuf, Arc<JobDefine>)>,
    errors: Vec<FileError>,
}

impl DefineCatalog {
    /// An empty catalog over `dirs`; call [`reload`](Self::reload) to fill it.
    pub fn new(dirs: Vec<PathBuf>, options: ValidateOptions) -> Self {
        DefineCatalog { dirs, options, state: RwLock::new(State::default()), reloading: Mutex::new(()) }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Rescans every directory. Unchanged files are not parsed again.
    pub fn reload(&self) -> ReloadReport {
        let _serial = self.reloading.lock().unwrap_or_else(PoisonError::into_inner);
        let listing = scan::list(&self.dirs, "json");
        let old_files = self.read().files.clone();
        let mut files = BTreeMap::new();
        for key in listing.files {
            if let Some(record) = self.load_file(&key.1, old_files.get(&key)) {
                files.insert(key, record);
            }
        }
        let view = View::build(&files, listing.errors);

        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        scan::log_missing_changes("define", &state.missing, &listing.missing);
        let mut report = diff(&state.view, &view);
        if report.changed {
            state.generation += 1;
            for note in view.errors.iter().filter(|e| !state.view.errors.contains(e) && is_shadow(e)) {
                tracing::warn!(file = %note.file.display(), "{}", note.message);
            }
            tracing::info!(
                generation = state.generation,
                added = ?report.added, updated = ?report.updated, removed = ?report.removed,
                errors = view.errors.len(),
                "job defines reloaded"
            );
        }
        report.generation = state.generation;
        report.errors = view.errors.clone();
        report.missing_dirs = listing.missing.iter().cloned().collect();
        state.files = files;
        state.view = view;
        state.missing = listing.missing;
        report
    }

    /// Reads and validates one file, reusing its old record when the content is unchanged.
    /// `None` when the file vanished between listing and reading.
    fn load_file(&self, path: &Path, old: Option<&FileRecord>) -> Option<FileRecord> {
        let previous_good = old.and_then(|r| r.good.clone());
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                let error = FileError { file: path.to_path_buf(), name: None, message: format!("cannot read: {e}") };
                tracing::warn!(file = %path.display(), error = %e, "cannot read job define file");
                return Some(FileRecord { fingerprint: 0, good: previous_good, error: Some(error) });
            }
        };
        let fingerprint = fingerprint(&bytes);
        if let Some(old) = old.filter(|r| r.fingerprint == fingerprint) {
            return Some(old.clone());
        }
        let (good, error) = match parse(&bytes, self.options) {
            Ok(define) => {
                tracing::debug!(file = %path.display(), define = define.name(), "job define loaded");
                (Some(Arc::new(define)), None)
            }
            Err((name, message)) => {
                let kept = previous_good.as_ref().map(|d| d.name().to_string());
                tracing::warn!(file = %path.display(), define = ?name, kept_previous = ?kept, "invalid job define: {message}");
                (previous_good, Some(FileError { file: path.to_path_buf(), name, message }))
            }
        };
        Some(FileRecord { fingerprint, good, error })
    }

    /// The live define called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<JobDefine>> {
        self.read().view.defines.get(name).map(|(_, d)| d.clone())
    }

    /// Every live define, by name.
    pub fn list(&self) -> Vec<DefineInfo> {
        let state = self.read();
        let defines = state.view.defines.iter();
        defines
            .map(|(name, (file, define))| DefineInfo { name: name.clone(), file: file.clone(), define: define.clone() })
            .collect()
    }

    /// Current load errors (broken files, shadowed defines, unreadable directories), by file.
    pub fn errors(&self) -> Vec<FileError> {
        self.read().view.errors.clone()
    }

    /// Bumped whenever the defines or the errors change.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Reloads on every change in the directories until the returned [`Watcher`] is dropped.
    /// Directories that do not exist yet are picked up when they appear.
    pub fn watch(self: &Arc<Self>) -> Result<Watcher, WatchError> {
        let catalog = Arc::downgrade(self);
        watch::spawn("defines", self.dirs.clone(), move || {
            if let Some(catalog) = catalog.upgrade() {
                catalog.reload();
            }
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // State is replaced whole under the lock, so a panicking writer cannot leave it torn.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Parses and validates; on failure, the define's name if it got that far, and the message.
fn parse(bytes: &[u8], options: ValidateOptions) -> Result<JobDefine, (Option<String>, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| (None, format!("not UTF-8 text: {e}")))?;
    let define = JobDefine::parse(text).map_err(|e| (None, e.to_string()))?;
    match define.validate(options) {
        Ok(()) => Ok(define),
        Err(e) => {
            let name = define.job_name.clone().filter(|n| !n.is_empty());
            let message = match &name {
                Some(n) => format!("job define {n} invalid: {e}"),
                None => e.to_string(),
            };
            Err((name, message))
        }
    }
}

fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

const SHADOW_MARK: &str = "is also defined in";

fn is_shadow(e: &FileError) -> bool {
    e.message.contains(SHADOW_MARK)
}

impl View {
    fn build(files: &BTreeMap<FileKey, FileRecord>, dir_errors: Vec<FileError>) -> View {
        let mut defines: BTreeMap<String, (PathBuf, Arc<JobDefine>)> = BTreeMap::new();
        let mut errors = dir_errors;
        for ((_, path), record) in files {
            errors.extend(record.error.clone());
            let Some(define) = &record.good else { continue };
            let name = define.name().to_string();
            if let Some((earlier, _)) = defines.insert(name.clone(), (path.clone(), define.clone())) {
                let message = format!("job define {name} {SHADOW_MARK} {}, which wins", path.display());
                errors.push(FileError { file: earlier, name: Some(name), message });
            }
        }
        errors.sort_by(|a, b| (&a.file, &a.message).cmp(&(&b.file, &b.message)));
        View { defines, errors }
    }
}

fn diff(old: &View, new: &View) -> ReloadReport {
    let mut report = ReloadReport { changed: old != new, ..ReloadReport::default() };
    for (name, entry) in &new.defines {
        match old.defines.get(name) {
            None => report.added.push(name.clone()),
            Some(before) if before != entry => report.updated.push(name.clone()),
            Some(_) => {}
        }
    }
    report.removed = old.defines.keys().filter(|n| !new.defines.contains_key(*n)).cloned().collect();
    report
}
