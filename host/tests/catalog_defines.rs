//! The define catalog against real directories: reload rules and the watcher.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tascreed::catalog::DefineCatalog;
use tascreed::domain::ValidateOptions;

fn define(name: &str, steps: &[&str]) -> String {
    let steps: Vec<String> = steps.iter().map(|s| format!(r#"{{"stepName": "{s}"}}"#)).collect();
    format!(r#"{{"jobName": "{name}", "version": 1, "steps": [{}]}}"#, steps.join(", "))
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn catalog(dirs: &[&Path]) -> Arc<DefineCatalog> {
    Arc::new(DefineCatalog::new(dirs.iter().map(|d| d.to_path_buf()).collect(), ValidateOptions::default()))
}

fn step_names(cat: &DefineCatalog, name: &str) -> Vec<String> {
    cat.get(name).map(|d| d.steps.iter().map(|s| s.name().to_string()).collect()).unwrap_or_default()
}

/// Polls `cond` until it holds; returns how long that took.
fn eventually(what: &str, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(2), "not within 2 s: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

#[test]
fn valid_file_is_listed_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.json", &define("jobA", &["s1", "s2"]));
    write(dir.path(), "notes.txt", "not a define");
    let cat = catalog(&[dir.path()]);
    assert_eq!(cat.generation(), 0);
    let report = cat.reload();
    assert!(report.changed && report.errors.is_empty(), "{report:?}");
    assert_eq!(report.added, vec!["jobA"]);
    let list = cat.list();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].name.as_str(), &list[0].file), ("jobA", &file));
    assert_eq!(step_names(&cat, "jobA"), ["s1", "s2"]);
    let generation = cat.generation();
    assert!(!cat.reload().changed, "nothing changed on disk");
    assert_eq!(cat.generation(), generation);
}

#[test]
fn change_break_fix_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.json", &define("jobA", &["s1"]));
    let cat = catalog(&[dir.path()]);
    cat.reload();

    write(dir.path(), "a.json", &define("jobA", &["s1", "s2"]));
    let report = cat.reload();
    assert_eq!(report.updated, vec!["jobA"]);
    assert_eq!(step_names(&cat, "jobA"), ["s1", "s2"]);

    // Broken JSON: the last good version stays, the error names the file and the problem.
    write(dir.path(), "a.json", r#"{"jobName": "jobA", "steps": [ "#);
    let report = cat.reload();
    assert!(report.changed && report.updated.is_empty() && report.removed.is_empty(), "{report:?}");
    assert_eq!(step_names(&cat, "jobA"), ["s1", "s2"]);
    let errors = cat.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, file);
    assert!(errors[0].message.contains("parse json fails"), "{}", errors[0]);

    // Invalid define: still kept, and the message says what is wrong.
    write(dir.path(), "a.json", r#"{"jobName": "jobA", "steps": [{"stepName": "s", "stepType": "SHARD"}]}"#);
    cat.reload();
    assert_eq!(step_names(&cat, "jobA"), ["s1", "s2"]);
    let errors = cat.errors();
    assert_eq!(errors[0].name.as_deref(), Some("jobA"));
    assert!(errors[0].message.contains("shardConf is null"), "{}", errors[0]);

    write(dir.path(), "a.json", &define("jobA", &["s3"]));
    cat.reload();
    assert!(cat.errors().is_empty());
    assert_eq!(step_names(&cat, "jobA"), ["s3"]);

    std::fs::remove_file(&file).unwrap();
    let report = cat.reload();
    assert_eq!(report.removed, vec!["jobA"]);
    assert!(cat.get("jobA").is_none() && cat.list().is_empty() && cat.errors().is_empty());
}

#[test]
fn broken_new_file_is_only_an_error_and_graph_check_follows_options() {
    let dir = tempfile::tempdir().unwrap();
    let cyclic = r#"{"jobName": "cyc", "steps": [
        {"stepName": "a", "dependency": {"doneSteps": ["b"]}},
        {"stepName": "b", "dependency": {"doneSteps": ["a"]}}]}"#;
    write(dir.path(), "cyc.json", cyclic);
    write(dir.path(), "bad.json", r#"{"jobName": "1bad", "steps": [{"stepName": "s"}]}"#);
    let cat = catalog(&[dir.path()]);
    cat.reload();
    assert!(cat.list().is_empty());
    let messages: Vec<String> = cat.errors().iter().map(|e| e.message.clone()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("job define name invalid: 1bad")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("step graph has cycle")), "{messages:?}");

    let lenient = DefineCatalog::new(vec![dir.path().to_path_buf()], ValidateOptions { graph_cycle_check: false });
    lenient.reload();
    assert!(lenient.get("cyc").is_some());
}

#[test]
fn later_file_wins_and_the_shadowed_one_is_reported() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let a = write(first.path(), "a.json", &define("same", &["from_a"]));
    let b = write(first.path(), "b.json", &define("same", &["from_b"]));
    let cat = catalog(&[first.path(), second.path()]);
    cat.reload();
    assert_eq!(step_names(&cat, "same"), ["from_b"]);
    assert_eq!(cat.list()[0].file, b);
    let errors = cat.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, a);
    assert!(errors[0].message.contains(&b.display().to_string()), "{}", errors[0]);

    // A later directory beats file names of an earlier one.
    let c = write(second.path(), "0.json", &define("same", &["from_second_dir"]));
    cat.reload();
    assert_eq!(step_names(&cat, "same"), ["from_second_dir"]);
    assert_eq!(cat.list()[0].file, c);

    // Taking the winner away brings the next one back.
    std::fs::remove_file(&c).unwrap();
    std::fs::remove_file(&b).unwrap();
    cat.reload();
    assert_eq!(step_names(&cat, "same"), ["from_a"]);
    assert!(cat.errors().is_empty());
}

#[test]
fn renamed_file_keeps_its_define_and_rename_to_other_extension_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "a.json", &define("jobA", &["s"]));
    let cat = catalog(&[dir.path()]);
    cat.reload();
    let new = dir.path().join("renamed.json");
    std::fs::rename(&old, &new).unwrap();
    cat.reload();
    assert_eq!(cat.list()[0].file, new);
    std::fs::rename(&new, dir.path().join("renamed.json.bak")).unwrap();
    cat.reload();
    assert!(cat.get("jobA").is_none());
}

#[test]
fn missing_directory_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("later");
    let cat = catalog(&[&missing]);
    let report = cat.reload();
    assert_eq!(report.missing_dirs, vec![missing.clone()]);
    assert!(cat.list().is_empty());
}

#[test]
fn watcher_sees_every_kind_of_change() {
    let dir = tempfile::tempdir().unwrap();
    let not_yet = dir.path().join("not-yet");
    let cat = catalog(&[dir.path(), &not_yet]);
    cat.reload();
    let _watcher = cat.watch().unwrap();
    let mut latencies = Vec::new();

    write(dir.path(), "a.json", &define("jobA", &["s1"]));
    latencies.push(eventually("created file", || cat.get("jobA").is_some()));

    write(dir.path(), "a.json", &define("jobA", &["s1", "s2"]));
    latencies.push(eventually("modified file", || step_names(&cat, "jobA").len() == 2));

    write(dir.path(), "a.json", "{ broken");
    latencies.push(eventually("broken file reported", || !cat.errors().is_empty()));
    assert_eq!(step_names(&cat, "jobA"), ["s1", "s2"]);

    write(dir.path(), "a.json", &define("jobA", &["s3"]));
    latencies.push(eventually("fixed file", || cat.errors().is_empty() && step_names(&cat, "jobA") == ["s3"]));

    std::fs::rename(dir.path().join("a.json"), dir.path().join("b.json")).unwrap();
    latencies.push(eventually("renamed file", || cat.list().first().is_some_and(|d| d.file.ends_with("b.json"))));

    std::fs::remove_file(dir.path().join("b.json")).unwrap();
    latencies.push(eventually("deleted file", || cat.get("jobA").is_none()));

    // A directory that did not exist when watching started.
    std::fs::create_dir(&not_yet).unwrap();
    write(&not_yet, "late.json", &define("late", &["s"]));
    latencies.push(eventually("file in a new directory", || cat.get("late").is_some()));

    // The same directory deleted and created again is watched again.
    std::fs::remove_dir_all(&not_yet).unwrap();
    eventually("deleted directory", || cat.get("late").is_none());
    std::fs::create_dir(&not_yet).unwrap();
    write(&not_yet, "again.json", &define("again", &["s"]));
    latencies.push(eventually("file in a re-created directory", || cat.get("again").is_some()));

    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!("define reload latencies: {latencies:?}");
    assert!(slowest < Duration::from_secs(1), "slowest reload took {slowest:?}");
}

#[test]
fn dropping_the_watcher_stops_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(&[dir.path()]);
    let watcher = cat.watch().unwrap();
    write(dir.path(), "a.json", &define("jobA", &["s"]));
    eventually("created file", || cat.get("jobA").is_some());
    drop(watcher);
    write(dir.path(), "b.json", &define("jobB", &["s"]));
    std::thread::sleep(Duration::from_millis(400));
    assert!(cat.get("jobB").is_none());
}
