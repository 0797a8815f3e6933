//! The executor catalog: components from `executor.dirs` (`*.wasm`, name = file stem) and
//! uploads, loaded through the runtime and served by name.
//!
//! A directory file and an upload may share a name; the most recent change wins: a file whose
//! content changed (and loaded) after the upload replaces it, and a later upload replaces the
//! file's version. Removing the upload brings the directory version back. Between directories,
//! the later one (configured order) wins, as for defines. At start-up the directories load
//! first and the uploads after them, so an upload wins over a file of its name until that file
//! changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime};

use tascreed_domain::Binding;
use tascreed_runtime::{Executor, LoadError, Manifest, Runtime};
use tokio::sync::{Notify, watch as tokio_watch};

use super::scan::{self, FileKey};
use super::{FileError, WatchError, Watcher, watch};

/// Where a live executor came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file of `executor.dirs`.
    Dir(PathBuf),
    /// `PUT /api/v1/executor/{name}`.
    Upload,
}

/// A live executor, for listings.
#[derive(Debug, Clone)]
pub struct ExecutorInfo {
    pub name: String,
    pub sha256: String,
    pub size: usize,
    pub source: Source,
    pub manifest: Manifest,
    /// Whether its compiled code came from the artifact cache.
    pub cache_hit: bool,
    pub compile_ms: u64,
}

/// Why an upload was refused; nothing changes in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("executor name invalid: {0:?} (expected [a-z0-9][a-z0-9._-]{{0,63}})")]
    InvalidName(String),
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// What one [`ExecutorCatalog::reload`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorReload {
    pub generation: u64,
    pub changed: bool,
    /// Names whose directory file was (re)loaded into a new version.
    pub loaded: Vec<String>,
    /// Current load errors.
    pub errors: Vec<FileError>,
    pub missing_dirs: Vec<PathBuf>,
}

/// `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn is_valid_executor_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Files modified this recently are re-hashed even if size and mtime look unchanged: mtime
/// granularity is coarse, and a rewrite of equal length could otherwise go unseen.
const RECENT: Duration = Duration::from_secs(2);

/// Executors by name. Thread-safe; share it in an `Arc` inside a tokio runtime.
pub struct ExecutorCatalog {
    runtime: Runtime,
    dirs: Vec<PathBuf>,
    state: RwLock<State>,
    /// Serialises directory reloads, which await component loads between reading and writing
    /// `state`.
    reloading: tokio::sync::Mutex<()>,
    /// See [`ExecutorCatalog::lock_uploads`].
    upload_changes: tokio::sync::Mutex<BTreeSet<(String, String)>>,
    changes: tokio_watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<FileKey, FileRecord>,
    uploads: BTreeMap<String, Loaded>,
    view: View,
    /// Unreadable directories and skipped files of the last scan.
    scan_errors: Vec<FileError>,
    /// Orders changes so that the most recent one of a name wins.
    seq: u64,
    generation: u64,
    missing: BTreeSet<PathBuf>,
}

#[derive(Clone)]
struct FileRecord {
    name: String,
    stamp: Stamp,
    /// sha256 of the content last read, loadable or not; unchanged content is not loaded again.
    sha256: String,
    good: Option<Loaded>,
    error: Option<FileError>,
}

#[derive(Clone)]
struct Loaded {
    executor: Executor,
    seq: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

#[derive(Clone, Default)]
struct View {
    live: BTreeMap<String, Live>,
    errors: Vec<FileError>,
}

#[derive(Clone)]
struct Live {
    loaded: Loaded,
    source: Source,
}

impl PartialEq for View {
    fn eq(&self, other: &Self) -> bool {
        let key = |v: &View| {
            v.live
                .iter()
                .map(|(n, l)| (n.clone(), l.loaded.executor.sha256().to_string(), l.source.clone()))
                .collect::<Vec<_>>()
        };
        self.errors == other.errors && key(self) == key(other)
    }
}

/// What the blocking scan found for one file.
enum Scanned {
    Unchanged {
        key: FileKey,
        stamp: Stamp,
    },
    Changed {
        key: FileKey,
        name: String,
        stamp: Stamp,
        sha256: String,
        bytes: Vec<u8>,
    },
    /// Skipped (bad name) or unreadable; an unreadable file keeps its previous good version.
    Failed {
        key: Option<FileKey>,
        error: FileError,
    },
}

impl ExecutorCatalog {
    /// An empty catalog; call [`reload`](Self::reload) to load the directories.
    pub fn new(runtime: Runtime, dirs: Vec<PathBuf>) -> Self {
        let (changes, _) = tokio_watch::channel(0);
        ExecutorCatalog {
            runtime,
            dirs,
            state: RwLock::new(State::default()),
            reloading: tokio::sync::Mutex::new(()),
            upload_changes: tokio::sync::Mutex::new(BTreeSet::new()),
            changes,
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Rescans the directories and loads files whose content changed.
    pub async fn reload(&self) -> ExecutorReload {
        let _serial = self.reloading.lock().await;
        let known: BTreeMap<FileKey, (Stamp, String)> =
            self.read().files.iter().map(|(k, r)| (k.clone(), (r.stamp, r.sha256.clone()))).collect();
        let dirs = self.dirs.clone();
        let (entries, missing, mut scan_errors) =
            match tokio::task::spawn_blocking(move || scan_dirs(&dirs, &known)).await {
                Ok(scanned) => scanned,
                Err(e) => {
                    tracing::error!(error = %e, "executor directory scan failed");
                    return self.summary(false, Vec::new());
                }
            };

        let old_files = self.read().files.clone();
        let mut files = BTreeMap::new();
        let mut fresh = Vec::new();
        for entry in entries {
            match entry {
                Scanned::Unchanged { key, stamp } => {
                    if let Some(mut record) = old_files.get(&key).cloned() {
                        record.stamp = stamp;
                        files.insert(key, record);
                    }
                }
                Scanned::Changed { key, name, stamp, sha256, bytes } => {
                    let previous = old_files.get(&key).and_then(|r| r.good.clone());
                    let (record, is_fresh) = self.load_file(&key.1, name, stamp, sha256, bytes, previous).await;
                    if is_fresh {
                        fresh.push(key.clone());
                    }
                    files.insert(key, record);
                }
                Scanned::Failed { key: Some(key), error } if old_files.contains_key(&key) => {
                    if let Some(mut record) = old_files.get(&key).cloned() {
                        // Forces a fresh read next time, whatever the stamp says.
                        record.stamp = Stamp { len: u64::MAX, modified: None };
                        record.error = Some(error);
                        files.insert(key, record);
                    }
                }
                Scanned::Failed { error, .. } => scan_errors.push(error),
            }
        }

        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        scan::log_missing_changes("executor", &state.missing, &missing);
        let mut loaded = Vec::new();
        for key in fresh {
            state.seq += 1;
            let seq = state.seq;
            if let Some(record) = files.get_mut(&key) {
                if let Some(good) = record.good.as_mut() {
                    good.seq = seq;
                }
                loaded.push(record.name.clone());
            }
        }
        state.files = files;
        state.missing = missing;
        state.scan_errors = scan_errors;
        let changed = self.refresh(&mut state);
        drop(state);
        self.summary(changed, loaded)
    }

    /// Loads changed content; on failure the file keeps its previous good version. The flag
    /// says a new version was loaded (it gets its place in the change order under the lock).
    async fn load_file(
        &self,
        path: &Path,
        name: String,
        stamp: Stamp,
        sha256: String,
        bytes: Vec<u8>,
        previous: Option<Loaded>,
    ) -> (FileRecord, bool) {
        if let Some(previous) = previous.clone().filter(|p| p.executor.sha256() == sha256) {
            // Back to the content that is already live (e.g. after a broken save): nothing to load.
            return (FileRecord { name, stamp, sha256, good: Some(previous), error: None }, false);
        }
        match self.runtime.load(bytes.into()).await {
            Ok(executor) => {
                let info = executor.load_info();
                crate::metrics::compile_time(&name, info.compile_time.as_secs_f64());
                tracing::info!(
                    executor = %name, file = %path.display(), sha256 = %sha256,
                    cache_hit = info.cache_hit, compile_ms = info.compile_time.as_millis() as u64,
                    "executor loaded"
                );
                let good = Some(Loaded { executor, seq: 0 });
                (FileRecord { name, stamp, sha256, good, error: None }, true)
            }
            Err(e) => {
                tracing::warn!(
                    executor = %name, file = %path.display(), sha256 = %sha256,
                    kept_previous = previous.is_some(), "executor file does not load: {e}"
                );
                let error = FileError { file: path.to_path_buf(), name: Some(name.clone()), message: e.to_string() };
                (FileRecord { name, stamp, sha256, good: previous, error: Some(error) }, false)
            }
        }
    }

    /// Validates `bytes` by loading them and makes them the live version of `name`. On error
    /// nothing changes.
    pub async fn insert(&self, name: &str, bytes: Arc<[u8]>) -> Result<Executor, InsertError> {
        let executor = self.load_upload(name, bytes).await?;
        self.install_upload(name, executor.clone());
        Ok(executor)
    }

    /// Validates an upload by loading it, without making it live.
    pub async fn load_upload(&self, name: &str, bytes: Arc<[u8]>) -> Result<Executor, InsertError> {
        if !is_valid_executor_name(name) {
            return Err(InsertError::InvalidName(name.to_string()));
        }
        let executor = self.runtime.load(bytes).await?;
        crate::metrics::compile_time(name, executor.load_info().compile_time.as_secs_f64());
        Ok(executor)
    }

    /// Makes a loaded upload the live version of `name` (it is the most recent change).
    pub fn install_upload(&self, name: &str, executor: Executor) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.seq += 1;
        let seq = state.seq;
        state.uploads.insert(name.to_string(), Loaded { executor: executor.clone(), seq });
        self.refresh(&mut state);
        tracing::info!(executor = name, sha256 = executor.sha256(), "executor uploaded");
    }

    /// The sha256 of the upload this catalog holds for `name`, live or shadowed by a newer file.
    pub fn upload_sha256(&self, name: &str) -> Option<String> {
        self.read().uploads.get(name).map(|l| l.executor.sha256().to_string())
    }

    /// Names of the uploads this catalog holds.
    pub fn upload_names(&self) -> Vec<String> {
        self.read().uploads.keys().cloned().collect()
    }

    /// Serialises changes of uploads (an HTTP PUT or DELETE, the sync with the bulletin), so
    /// that a sync never acts on half of one. The guarded set holds the (name, sha256) pairs
    /// that failed to load here, so a sync does not retry them every pass.
    pub async fn lock_uploads(&self) -> tokio::sync::MutexGuard<'_, BTreeSet<(String, String)>> {
        self.upload_changes.lock().await
    }

    /// Drops the upload of `name`; a directory file of that name, if any, becomes live again.
    /// False if there was no upload.
    pub fn remove(&self, name: &str) -> bool {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.uploads.remove(name).is_none() {
            return false;
        }
        self.refresh(&mut state);
        tracing::info!(executor = name, "executor upload removed");
        true
    }

    /// The live executor called `name`.
    pub fn get(&self, name: &str) -> Option<Executor> {
        self.read().view.live.get(name).map(|l| l.loaded.executor.clone())
    }

    /// Every live executor with its name, under one read lock (what workers ask before each claim).
    pub fn live(&self) -> Vec<(String, Executor)> {
        self.read().view.live.iter().map(|(name, l)| (name.clone(), l.loaded.executor.clone())).collect()
    }

    /// Every live executor, by name.
    pub fn list(&self) -> Vec<ExecutorInfo> {
        self.read()
            .view
            .live
            .iter()
            .map(|(name, live)| {
                let e = &live.loaded.executor;
                ExecutorInfo {
                    name: name.clone(),
                    sha256: e.sha256().to_string(),
                    size: e.size(),
                    source: live.source.clone(),
                    manifest: e.manifest().clone(),
                    cache_hit: e.load_info().cache_hit,
                    compile_ms: e.load_info().compile_time.as_millis() as u64,
                }
            })
            .collect()
    }

    /// Current load errors of directory files, by file.
    pub fn errors(&self) -> Vec<FileError> {
        self.read().view.errors.clone()
    }

    /// The manifests' (job, step) bindings of the live executors, oldest change first, so that
    /// [`tascreed_domain::resolve_executor`] (last binding wins) prefers the most recent one.
    pub fn bindings(&self) -> Vec<Binding> {
        let state = self.read();
        let mut live: Vec<(&String, &Live)> = state.view.live.iter().collect();
        live.sort_by_key(|(_, l)| l.loaded.seq);
        live.iter()
            .flat_map(|(name, l)| {
                l.loaded.executor.manifest().bindings.iter().map(|(job, step)| Binding {
                    executor: (*name).clone(),
                    job_name: job.clone(),
                    step_name: step.clone(),
                })
            })
            .collect()
    }

    /// Bumped whenever the live executors or the errors change.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Receives the generation after every change.
    pub fn subscribe(&self) -> tokio_watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Reloads on every change in the directories until the returned [`Watcher`] is dropped.
    /// Must be called inside a tokio runtime, which runs the reloads.
    pub fn watch(self: &Arc<Self>) -> Result<Watcher, WatchError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| WatchError::NoRuntime(e.to_string()))?;
        // A permit-holding Notify coalesces any number of events during a reload into one more.
        let wake = Arc::new(Notify::new());
        let catalog = Arc::downgrade(self);
        let wake_task = wake.clone();
        let task = handle.spawn(async move {
            loop {
                wake_task.notified().await;
                let Some(catalog) = catalog.upgrade() else { return };
                catalog.reload().await;
            }
        });
        let watcher = watch::spawn("executors", self.dirs.clone(), move || wake.notify_one())?;
        Ok(watcher.with_task(task))
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // State is only replaced in whole fields under the lock, so poisoning cannot tear it.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Recomputes the view; bumps the generation and notifies subscribers if it changed.
    fn refresh(&self, state: &mut State) -> bool {
        let view = build_view(&state.files, &state.uploads, state.scan_errors.clone());
        if view == state.view {
            return false;
        }
        for note in view.errors.iter().filter(|e| !state.view.errors.contains(e) && e.message.contains(SHADOW_MARK)) {
            tracing::warn!(file = %note.file.display(), "{}", note.message);
        }
        state.view = view;
        state.generation += 1;
        self.changes.send_replace(state.generation);
        true
    }

    fn summary(&self, changed: bool, loaded: Vec<String>) -> ExecutorReload {
        let state = self.read();
        ExecutorReload {
            generation: state.generation,
            changed,
            loaded,
            errors: state.view.errors.clone(),
            missing_dirs: state.missing.iter().cloned().collect(),
        }
    }
}

const SHADOW_MARK: &str = "is shadowed by";

fn build_view(
    files: &BTreeMap<FileKey, FileRecord>,
    uploads: &BTreeMap<String, Loaded>,
    extra: Vec<FileError>,
) -> View {
    let mut live: BTreeMap<String, Live> = BTreeMap::new();
    let mut errors = extra;
    for ((_, path), record) in files {
        errors.extend(record.error.clone());
        let Some(good) = &record.good else { continue };
        let entry = Live { loaded: good.clone(), source: Source::Dir(path.clone()) };
        if let Some(Live { source: Source::Dir(earlier), .. }) = live.insert(record.name.clone(), entry) {
            let message = format!("executor {} {SHADOW_MARK} {}", record.name, path.display());
            errors.push(FileError { file: earlier, name: Some(record.name.clone()), message });
        }
    }
    for (name, upload) in uploads {
        let newer = live.get(name).is_none_or(|dir| upload.seq > dir.loaded.seq);
        if newer {
            live.insert(name.clone(), Live { loaded: upload.clone(), source: Source::Upload });
        }
    }
    errors.sort_by(|a, b| (&a.file, &a.message).cmp(&(&b.file, &b.message)));
    errors.dedup();
    View { live, errors }
}

type ScanResult = (Vec<Scanned>, BTreeSet<PathBuf>, Vec<FileError>);

/// Lists the directories and reads the files whose stamp or content changed.
fn scan_dirs(dirs: &[PathBuf], known: &BTreeMap<FileKey, (Stamp, String)>) -> ScanResult {
    let listing = scan::list(dirs, "wasm");
    let now = SystemTime::now();
    let mut out = Vec::new();
    for key in listing.files {
        let path = &key.1;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if !is_valid_executor_name(&name) {
            let message =
                format!("executor name invalid: {name:?} (expected [a-z0-9][a-z0-9._-]{{0,63}}); file skipped");
            out.push(Scanned::Failed { key: None, error: FileError { file: path.clone(), name: None, message } });
            continue;
        }
        let Ok(meta) = std::fs::metadata(path) else { continue };
        let stamp = Stamp { len: meta.len(), modified: meta.modified().ok() };
        let recent = stamp.modified.is_none_or(|m| now.duration_since(m).map_or(true, |age| age < RECENT));
        let old = known.get(&key);
        if !recent && old.is_some_and(|(s, _)| *s == stamp) {
            out.push(Scanned::Unchanged { key, stamp });
            continue;
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                let message = format!("cannot read: {e}");
                let error = FileError { file: path.clone(), name: Some(name), message };
                out.push(Scanned::Failed { key: Some(key), error });
                continue;
            }
        };
        let sha256 = Runtime::sha256_hex(&bytes);
        if old.is_some_and(|(_, s)| *s == sha256) {
            out.push(Scanned::Unchanged { key, stamp });
        } else {
            out.push(Scanned::Changed { key, name, stamp, sha256, bytes });
        }
    }
    (out, listing.missing, listing.errors)
}
