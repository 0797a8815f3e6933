//! Watching catalog directories: debounced file-system events, plus a slow poll that (re)arms
//! directories that do not exist yet or were deleted and created again (a watch on a deleted
//! directory is dead and would never fire again).

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use notify_debouncer_mini::notify::{self, RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

/// Quiet time after the last event of a burst before the catalog reloads: editors and `cp`
/// write in several steps, and one reload per save is enough.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// How often directories are checked for appearing, disappearing or being replaced.
const REARM_POLL: Duration = Duration::from_millis(250);

/// Why a catalog could not start watching.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the file watcher: {0}")]
    Notify(#[from] notify::Error),
    #[error("cannot start the watcher thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("executor watching needs a tokio runtime: {0}")]
    NoRuntime(String),
}

/// Keeps a catalog reloading while it lives; dropping it stops the watching.
pub struct Watcher {
    stop: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    pub(crate) fn with_task(mut self, task: tokio::task::JoinHandle<()>) -> Self {
        self.task = Some(task);
        self
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.stop.send(Msg::Stop);
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(thread) = self.thread.take() {
            // The thread wakes at least every REARM_POLL, so this join is short.
            let _ = thread.join();
        }
    }
}

enum Msg {
    Fs(DebounceEventResult),
    Stop,
}

/// Calls `on_change` after every debounced change in `dirs` and whenever a directory appears,
/// disappears or is replaced. `label` names the catalog in logs and the thread name.
pub(crate) fn spawn(
    label: &'static str,
    dirs: Vec<PathBuf>,
    on_change: impl FnMut() + Send + 'static,
) -> Result<Watcher, WatchError> {
    let (tx, rx) = mpsc::channel();
    let fs_tx = tx.clone();
    let debouncer = new_debouncer(DEBOUNCE, move |res: DebounceEventResult| {
        let _ = fs_tx.send(Msg::Fs(res));
    })?;
    let dirs = dirs.into_iter().map(|path| DirState { path, armed: None, failed: None }).collect();
    let mut dirs = Dirs { label, debouncer, dirs };
    // Arm before returning so that a write right after `watch()` is not missed.
    dirs.rearm();
    let thread = std::thread::Builder::new()
        .name(format!("tascreed-watch-{label}"))
        .spawn(move || run(dirs, rx, on_change))
        .map_err(WatchError::Thread)?;
    Ok(Watcher { stop: tx, thread: Some(thread), task: None })
}

fn run(mut dirs: Dirs, rx: mpsc::Receiver<Msg>, mut on_change: impl FnMut()) {
    // Catches what changed between the catalog's last reload and the watches being armed.
    on_change();
    loop {
        let changed = match rx.recv_timeout(REARM_POLL) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Fs(res)) => {
                if let Err(e) = res {
                    tracing::warn!(catalog = dirs.label, error = %e, "file watcher error; rescanning");
                }
                // Coalesce what queued up meanwhile into the same reload.
                while let Ok(msg) = rx.try_recv() {
                    if matches!(msg, Msg::Stop) {
                        return;
                    }
                }
                dirs.rearm();
                true
            }
            Err(RecvTimeoutError::Timeout) => dirs.rearm(),
        };
        if changed {
            on_change();
        }
    }
}

/// Identity of a directory, so a deleted-and-recreated one is noticed.
type DirId = (u64, u64);

struct Dirs {
    label: &'static str,
    debouncer: Debouncer<RecommendedWatcher>,
    dirs: Vec<DirState>,
}

struct DirState {
    path: PathBuf,
    /// The directory instance the watch is on.
    armed: Option<DirId>,
    /// The directory instance that could not be watched (warned about once).
    failed: Option<DirId>,
}

impl Dirs {
    /// Brings watches in line with the directories that exist now; true if anything changed
    /// or a directory cannot be watched (then the poll stands in for its events).
    fn rearm(&mut self) -> bool {
        let mut changed = false;
        for dir in &mut self.dirs {
            let current = std::fs::metadata(&dir.path).ok().filter(|m| m.is_dir()).map(|m| dir_id(&m));
            if current == dir.armed {
                continue;
            }
            changed = true;
            if dir.armed.take().is_some() {
                // Fails when the directory is gone, which is the usual reason to be here.
                let _ = self.debouncer.watcher().unwatch(&dir.path);
            }
            if current.is_none() {
                continue;
            }
            match self.debouncer.watcher().watch(&dir.path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(catalog = self.label, dir = %dir.path.display(), "watching");
                    dir.armed = current;
                    dir.failed = None;
                }
                Err(e) if dir.failed != current => {
                    tracing::warn!(catalog = self.label, dir = %dir.path.display(), error = %e,
                        "cannot watch directory; polling it instead");
                    dir.failed = current;
                }
                Err(_) => {}
            }
        }
        changed
    }
}

#[cfg(unix)]
fn dir_id(m: &std::fs::Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn dir_id(m: &std::fs::Metadata) -> DirId {
    let created = m.created().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    (0, created.map_or(0, |d| d.as_nanos() as u64))
}
