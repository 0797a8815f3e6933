//! The `tascreed` command line as a user runs it: offline define checks, and the client commands
//! against a real node. Also keeps the README's configuration table equal to the key table.

use std::path::PathBuf;
use std::process::{Command, Output};

use tascreed::config::KEYS;
use tascreed_tests::{Workspace, binary, plugins_dir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `tascreed args...` with no `TASCREED_*` variables from the caller's environment.
fn tascreed(args: &[&str]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).env("RUST_LOG", "error");
    for (k, _) in std::env::vars() {
        if k.starts_with("TASCREED_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run tascreed")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "exit {:?}:\n{}", out.status.code(), text(&out));
    stdout(&out)
}

#[test]
fn the_example_defines_pass_define_check() {
    let defines = repo().join("defines");
    let out = tascreed(&["define", "check", &defines.display().to_string()]);
    let report = ok(out);
    for name in ["hello", "sum-shards", "sum-packs", "stream", "pipeline"] {
        assert!(report.contains(&format!("{name}.json: {name} (")), "{name} missing:\n{report}");
    }
    assert!(report.contains("5 defines OK, 0 errors"), "{report}");
    assert!(!report.contains("ERROR"), "{report}");
}

#[test]
fn define_check_names_each_broken_file_and_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, json: &str| std::fs::write(dir.path().join(name), json).expect("write");
    write("good.json", r#"{"jobName": "good", "steps": [{"stepName": "a", "executor": "noop"}]}"#);
    write("no-shard-conf.json", r#"{"jobName": "ns", "steps": [{"stepName": "a", "stepType": "SHARD"}]}"#);
    write("syntax.json", r#"{"jobName": "syntax", "steps": ["#);
    write(
        "cycle.json",
        r#"{"jobName": "cycle", "steps": [{"stepName": "a", "dependentStep": "b"}, {"stepName": "b", "dependentStep": "a"}]}"#,
    );
    write("notes.txt", "not a define");
    let out = tascreed(&["define", "check", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = stdout(&out);
    let line = |file: &str| {
        report.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("no line for {file}:\n{report}")).to_string()
    };
    assert!(line("good.json").starts_with("OK"), "{report}");
    assert!(
        line("no-shard-conf.json").starts_with("ERROR") && line("no-shard-conf.json").contains("shardConf is null")
    );
    assert!(line("syntax.json").starts_with("ERROR") && line("syntax.json").contains("parse json fails"), "{report}");
    assert!(line("cycle.json").contains("step graph has cycle"), "{report}");
    assert!(!report.contains("notes.txt"), "{report}");
    assert!(report.contains("1 define OK, 3 errors"), "{report}");

    // The configuration's graph check applies, as on a node.
    let out = tascreed(&[
        "define",
        "check",
        "--set",
        "define.graph.validate.enable=false",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).contains("step graph has cycle"), "{}", text(&out));
    assert!(stdout(&out).contains("2 defines OK, 2 errors"), "{}", text(&out));

    let out = tascreed(&["define", "check", &dir.path().join("missing").display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no such directory"), "{}", text(&out));
}

#[test]
fn an_unreachable_server_is_one_clear_sentence() {
    // Port 9 (discard) is closed on a test machine.
    let out = tascreed(&["status", "demo", "t1", "--server", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), "error: cannot reach tascreed at http://127.0.0.1:9: connection refused");

    let out = tascreed(&["submit", "--trigger", "t", "--server", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--job NAME"), "{}", text(&out));
}

const DEMO: &str = r#"{"jobName": "demo", "steps": [
    {"stepName": "prep", "executor": "scripted"},
    {"stepName": "calc", "stepType": "SHARD", "shardConf": {"shard": 3}, "executor": "range-sum",
     "params": {"end": "1000"}, "dependency": {"doneSteps": ["prep"]}}]}"#;

#[test]
fn submit_then_watch_the_status_to_success() {
    let ws = Workspace::new();
    ws.define("demo", DEMO);
    ws.define(
        "slow",
        r#"{"jobName": "slow", "params": {"script": "{\"*\": [{\"sleepMs\": 60000}]}"},
        "steps": [{"stepName": "wait", "executor": "scripted"}]}"#,
    );
    let server = ws.serve(&[]);
    let base = server.base.as_str();

    let out = ok(tascreed(&["submit", "--server", base, "--job", "demo", "--trigger", "t1", "--param", "x=1"]));
    assert!(out.starts_with("created: job demo/t1 UNDONE"), "{out}");
    assert!(out.contains("steps prep, calc"), "{out}");

    let out = ok(tascreed(&["status", "demo", "t1", "--watch", "--interval", "100", "--server", base]));
    let last = out.lines().rev().take(3).collect::<Vec<_>>();
    assert!(out.contains("demo/t1"), "{out}");
    assert!(last.iter().any(|l| l.contains("prep") && l.contains("100.00%  SUCCESS")), "{out}");
    assert!(last.iter().any(|l| l.contains("calc") && l.contains("SUCCESS")), "{out}");

    // Submitting the same trigger again returns the existing job.
    let out = ok(tascreed(&["submit", "--server", base, "--job", "demo", "--trigger", "t1"]));
    assert!(out.starts_with("exists already"), "{out}");

    // A request file, printed as JSON.
    let request = ws.path().join("request.json");
    std::fs::write(&request, r#"{"jobName": "slow", "trigger": "s1", "priority": 3}"#).expect("write");
    let out = ok(tascreed(&["submit", &request.display().to_string(), "--json", "--server", base]));
    let job: serde_json::Value = serde_json::from_str(&out).expect("job JSON");
    assert_eq!(job["jobName"], "slow");
    assert_eq!(job["priority"], 3);

    let out = ok(tascreed(&["jobs", "--server", base]));
    let row = out.lines().find(|l| l.starts_with("slow ")).unwrap_or_else(|| panic!("no slow row:\n{out}"));
    assert!(row.contains("s1") && row.contains("UNDONE"), "{out}");
    let out = ok(tascreed(&["jobs", "--job", "demo", "--server", base]));
    assert!(!out.contains("slow"), "{out}");

    // The one-shot status of an unfinished job exits 0 with its bars as text.
    let out = ok(tascreed(&["status", "slow", "s1", "--server", base]));
    assert!(out.starts_with("slow/s1  ["), "{out}");
    assert!(out.lines().next().is_some_and(|l| l.ends_with("0.00%  UNDONE")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("  wait  ") && l.contains("executor scripted")), "{out}");

    // Failures carry the server's own message.
    let out = tascreed(&["submit", "--server", base, "--job", "nope", "--trigger", "t1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("job define nope not found"), "{}", text(&out));
}

#[test]
fn watch_exits_1_when_the_job_fails() {
    let ws = Workspace::new();
    ws.define(
        "fails",
        r#"{"jobName": "fails", "params": {"script": "{\"*\": [\"FAIL\"]}"},
        "steps": [{"stepName": "only", "executor": "scripted"}]}"#,
    );
    let server = ws.serve(&[]);
    let out = tascreed(&["submit", "--watch", "--server", &server.base, "--job", "fails", "--trigger", "f1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("job fails/f1 ended FAILED"), "{}", text(&out));
}

#[test]
fn executor_put_then_list_shows_it() {
    let ws = Workspace::new();
    let server = ws.serve(&[]);
    let base = server.base.as_str();
    let noop = plugins_dir().join("noop.wasm");
    let out = ok(tascreed(&["executor", "put", "my-noop", &noop.display().to_string(), "--server", base]));
    assert!(out.starts_with("uploaded executor my-noop"), "{out}");

    let out = ok(tascreed(&["executor", "list", "--server", base]));
    let row = out.lines().find(|l| l.starts_with("my-noop ")).unwrap_or_else(|| panic!("no my-noop row:\n{out}"));
    assert!(row.contains("upload"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("scripted ")), "{out}");

    // A core module or a bad name is refused before any upload.
    let out = tascreed(&["executor", "put", "Bad", &noop.display().to_string(), "--server", base]);
    assert!(text(&out).contains("executor name invalid"), "{}", text(&out));
    let readme = repo().join("README.md");
    let out = tascreed(&["executor", "put", "x", &readme.display().to_string(), "--server", base]);
    assert!(text(&out).contains("not WebAssembly"), "{}", text(&out));
}

/// The README's configuration table, between its markers, is generated from `KEYS`.
fn config_table() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        let computed = k.default == "unset" || k.default.contains(' ');
        let default = if computed { k.default.to_string() } else { format!("`{}`", k.default) };
        out.push_str(&format!("| `{}` | {default} | {} |\n", k.key, k.meaning));
    }
    out
}

const TABLE_START: &str = "<!-- config-table: generated from KEYS in host/src/config.rs -->\n";
const TABLE_END: &str = "<!-- /config-table -->";

#[test]
fn readme_configuration_table_lists_exactly_the_keys() {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme.find(TABLE_START).expect("README has the config-table start marker") + TABLE_START.len();
    let end = start + readme[start..].find(TABLE_END).expect("README has the config-table end marker");
    let expected = config_table();
    if readme[start..end] != expected && std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        readme[start..end],
        expected,
        "README.md's configuration table differs from KEYS; rerun with UPDATE_README=1 to regenerate it"
    );
    // Belt and braces: every key has its row.
    for k in KEYS {
        assert!(readme.contains(&format!("| `{}` |", k.key)), "{}", k.key);
    }
}
