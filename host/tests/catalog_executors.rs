//! The executor catalog with the real guest components built by `cargo xtask plugins`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tascreed::catalog::{ExecutorCatalog, InsertError, Source};
use tascreed::runtime::{LoadError, Runtime, RuntimeConfig};

/// Folder of the built guests: `TASCREED_PLUGINS_DIR`, else `<workspace>/target/plugins`.
fn plugins_dir() -> PathBuf {
    std::env::var_os("TASCREED_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

fn guest(relative: &str) -> Vec<u8> {
    let path = plugins_dir().join(relative);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build the guests first with `cargo xtask plugins`", path.display()))
}

/// One runtime per test process, with a private artifact cache so each guest compiles once.
fn runtime() -> Runtime {
    static RT: OnceLock<(Runtime, tempfile::TempDir)> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig {
            memory_max_bytes: 64 * 1024 * 1024,
            pool_instances: 16,
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeConfig::default()
        };
        (Runtime::new(config).unwrap(), dir)
    })
    .0
    .clone()
}

fn catalog(dirs: &[&Path]) -> Arc<ExecutorCatalog> {
    Arc::new(ExecutorCatalog::new(runtime(), dirs.iter().map(|d| d.to_path_buf()).collect()))
}

fn put(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn sha(bytes: &[u8]) -> String {
    Runtime::sha256_hex(bytes)
}

fn live_sha(cat: &ExecutorCatalog, name: &str) -> Option<String> {
    cat.get(name).map(|e| e.sha256().to_string())
}

/// Polls `cond` until it holds; returns how long that took.
async fn eventually(what: &str, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(2), "not within 2 s: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_files_load_replace_break_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let noop = guest("noop.wasm");
    let scripted = guest("scripted.wasm");
    let file = put(dir.path(), "job-exec.wasm", &noop);
    put(dir.path(), "counter.wasm", &guest("counter.wasm"));
    let cat = catalog(&[dir.path()]);

    let report = cat.reload().await;
    assert!(report.changed && report.errors.is_empty(), "{report:?}");
    let list = cat.list();
    assert_eq!(list.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["counter", "job-exec"]);
    let info = &list[1];
    assert_eq!((info.sha256.as_str(), info.size), (sha(&noop).as_str(), noop.len()));
    assert_eq!(info.source, Source::Dir(file.clone()));
    assert_eq!(info.manifest.name, "noop");
    assert!(list[0].manifest.checkpoint);
    assert!(cat.bindings().is_empty(), "the example guests bind nothing");

    // Replaced by another component: new version.
    put(dir.path(), "job-exec.wasm", &scripted);
    let report = cat.reload().await;
    assert_eq!(report.loaded, vec!["job-exec"]);
    assert_eq!(live_sha(&cat, "job-exec"), Some(sha(&scripted)));
    assert_eq!(cat.get("job-exec").unwrap().manifest().name, "scripted");

    // Same content written again: not reloaded, nothing changes.
    let generation = cat.generation();
    put(dir.path(), "job-exec.wasm", &scripted);
    let report = cat.reload().await;
    assert!(!report.changed && report.loaded.is_empty(), "{report:?}");
    assert_eq!(cat.generation(), generation);

    // Garbage over it: error listed, previous version still served.
    put(dir.path(), "job-exec.wasm", b"definitely not wasm");
    let report = cat.reload().await;
    assert!(report.loaded.is_empty());
    assert_eq!(live_sha(&cat, "job-exec"), Some(sha(&scripted)));
    let errors = cat.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].file.as_path(), errors[0].name.as_deref()), (file.as_path(), Some("job-exec")));
    assert!(errors[0].message.contains("not a WebAssembly binary"), "{}", errors[0]);

    // Half-written component: never loaded, previous version stays; completing it loads it.
    put(dir.path(), "job-exec.wasm", &noop[..noop.len() / 2]);
    cat.reload().await;
    assert_eq!(live_sha(&cat, "job-exec"), Some(sha(&scripted)));
    assert!(cat.errors()[0].message.contains("invalid component"), "{}", cat.errors()[0]);
    put(dir.path(), "job-exec.wasm", &noop);
    cat.reload().await;
    assert_eq!(live_sha(&cat, "job-exec"), Some(sha(&noop)));
    assert!(cat.errors().is_empty());

    std::fs::remove_file(&file).unwrap();
    cat.reload().await;
    assert!(cat.get("job-exec").is_none());
    assert_eq!(cat.list().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_components_and_names_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "other-world.wasm", &guest("testing/other-world.wasm"));
    put(dir.path(), "bad-import.wasm", &guest("testing/bad-import.wasm"));
    put(dir.path(), "core.wasm", b"\0asm\x01\0\0\0");
    put(dir.path(), "Upper.wasm", &guest("noop.wasm"));
    let cat = catalog(&[dir.path()]);
    cat.reload().await;
    assert!(cat.list().is_empty());
    let errors = cat.errors();
    let message =
        |file: &str| errors.iter().find(|e| e.file.ends_with(file)).map(|e| e.message.clone()).unwrap_or_default();
    assert!(message("other-world.wasm").contains("not a component of world"), "{errors:?}");
    assert!(message("bad-import.wasm").contains("imports something the host does not provide"), "{errors:?}");
    assert!(message("core.wasm").contains("core WebAssembly module"), "{errors:?}");
    assert!(message("Upper.wasm").contains("executor name invalid"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_validate_and_the_most_recent_change_wins() {
    let dir = tempfile::tempdir().unwrap();
    let noop = guest("noop.wasm");
    let range = guest("range-sum.wasm");
    let scripted = guest("scripted.wasm");
    let cat = catalog(&[dir.path()]);
    let mut changes = cat.subscribe();

    let exe = cat.insert("up", range.clone().into()).await.unwrap();
    assert_eq!(exe.sha256(), sha(&range));
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), cat.generation());
    let info = cat.list().into_iter().find(|i| i.name == "up").unwrap();
    assert_eq!(info.source, Source::Upload);

    // Invalid uploads change nothing.
    let generation = cat.generation();
    let bad = cat.insert("up", Arc::from(&b"garbage"[..])).await.err().expect("rejected");
    assert!(matches!(bad, InsertError::Load(LoadError::NotWasm)), "{bad}");
    let wrong = cat.insert("up", guest("testing/other-world.wasm").into()).await.err().expect("rejected");
    assert!(matches!(wrong, InsertError::Load(LoadError::WrongWorld(_))), "{wrong}");
    let name = cat.insert("Bad/Name", noop.clone().into()).await.err().expect("rejected");
    assert!(matches!(name, InsertError::InvalidName(_)), "{name}");
    assert_eq!(cat.generation(), generation);
    assert!(!changes.has_changed().unwrap());
    assert_eq!(live_sha(&cat, "up"), Some(sha(&range)));

    // A directory file changed after the upload wins; a later upload wins back.
    put(dir.path(), "up.wasm", &noop);
    cat.reload().await;
    assert_eq!(live_sha(&cat, "up"), Some(sha(&noop)));
    cat.insert("up", scripted.clone().into()).await.unwrap();
    assert_eq!(live_sha(&cat, "up"), Some(sha(&scripted)));
    // Rescanning the unchanged file does not take over again.
    cat.reload().await;
    assert_eq!(live_sha(&cat, "up"), Some(sha(&scripted)));

    // Removing the upload brings the directory version back; removing twice is a no-op.
    assert!(cat.remove("up"));
    assert_eq!(live_sha(&cat, "up"), Some(sha(&noop)));
    assert!(!cat.remove("up"));
    cat.insert("only-up", noop.clone().into()).await.unwrap();
    assert!(cat.remove("only-up"));
    assert!(cat.get("only-up").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_loads_changes_and_keeps_good_versions() {
    let dir = tempfile::tempdir().unwrap();
    let noop = guest("noop.wasm");
    let counter = guest("counter.wasm");
    // Warm the artifact cache so latencies measure the catalog, not Cranelift.
    for bytes in [&noop, &counter] {
        runtime().load(bytes.clone().into()).await.unwrap();
    }
    let later = dir.path().join("later");
    let cat = catalog(&[dir.path(), &later]);
    cat.reload().await;
    let _watcher = cat.watch().unwrap();
    let mut changes = cat.subscribe();
    let mut latencies = Vec::new();

    put(dir.path(), "w.wasm", &noop);
    latencies.push(eventually("dropped in", || live_sha(&cat, "w") == Some(sha(&noop))).await);
    assert!(changes.has_changed().unwrap());
    changes.borrow_and_update();

    put(dir.path(), "w.wasm", &counter);
    latencies.push(eventually("replaced", || live_sha(&cat, "w") == Some(sha(&counter))).await);

    put(dir.path(), "w.wasm", b"garbage");
    latencies.push(eventually("garbage reported", || !cat.errors().is_empty()).await);
    assert_eq!(live_sha(&cat, "w"), Some(sha(&counter)));

    put(dir.path(), "w.wasm", &noop);
    latencies.push(eventually("repaired", || live_sha(&cat, "w") == Some(sha(&noop)) && cat.errors().is_empty()).await);

    // Rewriting the same bytes reloads nothing.
    let generation = cat.generation();
    put(dir.path(), "w.wasm", &noop);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cat.generation(), generation);

    std::fs::create_dir(&later).unwrap();
    put(&later, "late.wasm", &counter);
    latencies.push(eventually("in a new directory", || cat.get("late").is_some()).await);

    std::fs::remove_file(dir.path().join("w.wasm")).unwrap();
    latencies.push(eventually("deleted", || cat.get("w").is_none()).await);

    eprintln!("executor reload latencies: {latencies:?}");
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    assert!(slowest < Duration::from_secs(1), "slowest reload took {slowest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_in_pieces_loads_only_when_complete() {
    let dir = tempfile::tempdir().unwrap();
    let noop = guest("noop.wasm");
    let scripted = guest("scripted.wasm");
    put(dir.path(), "piece.wasm", &noop);
    let cat = catalog(&[dir.path()]);
    cat.reload().await;
    let _watcher = cat.watch().unwrap();

    // Write the new version slowly, in chunks, as a network copy would.
    let path = dir.path().join("piece.wasm");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in scripted.chunks(scripted.len() / 4 + 1) {
            f.write_all(chunk).unwrap();
            f.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let live = live_sha(&cat, "piece");
            assert!(live == Some(sha(&noop)) || live == Some(sha(&scripted)), "never a partial version");
        }
    }
    eventually("complete file", || live_sha(&cat, "piece") == Some(sha(&scripted))).await;
    eventually("errors of partial reads cleared", || cat.errors().is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_sync_respects_a_newer_directory_file_and_skips_broken_uploads() {
    use tascreed::service::sync_uploads;
    use tascreed_bulletin::{Bulletin, SqliteBulletin, SqliteOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let bulletin: Arc<dyn Bulletin> =
        Arc::new(SqliteBulletin::open(&SqliteOptions::new(store.path().join("b.db"))).unwrap());
    let (noop, range) = (guest("noop.wasm"), guest("range-sum.wasm"));
    let cat = catalog(&[dir.path()]);

    // Uploaded through another node: the sync makes it live here.
    bulletin.put_upload("x", &sha(&range), &range).unwrap();
    sync_uploads(&bulletin, &cat).await;
    assert_eq!(live_sha(&cat, "x"), Some(sha(&range)));

    // A directory file of that name changed later wins, and later syncs leave it so.
    put(dir.path(), "x.wasm", &noop);
    cat.reload().await;
    assert_eq!(live_sha(&cat, "x"), Some(sha(&noop)));
    let generation = cat.generation();
    sync_uploads(&bulletin, &cat).await;
    sync_uploads(&bulletin, &cat).await;
    assert_eq!(live_sha(&cat, "x"), Some(sha(&noop)), "the unchanged upload does not take over again");
    assert_eq!(cat.generation(), generation);

    // A new upload in the bulletin is the most recent change: it wins.
    let scripted = guest("scripted.wasm");
    bulletin.put_upload("x", &sha(&scripted), &scripted).unwrap();
    sync_uploads(&bulletin, &cat).await;
    assert_eq!(live_sha(&cat, "x"), Some(sha(&scripted)));

    // Bytes that do not load here change nothing, pass after pass.
    bulletin.put_upload("broken", &sha(b"garbage"), b"garbage").unwrap();
    sync_uploads(&bulletin, &cat).await;
    let generation = cat.generation();
    sync_uploads(&bulletin, &cat).await;
    assert!(cat.get("broken").is_none());
    assert_eq!(cat.generation(), generation);

    // Deleted from the bulletin: dropped here, and the directory file is live again.
    bulletin.delete_upload("x").unwrap();
    sync_uploads(&bulletin, &cat).await;
    assert_eq!(live_sha(&cat, "x"), Some(sha(&noop)));
}
