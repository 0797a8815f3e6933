//! `tascreed executor put NAME FILE` and `tascreed executor list`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::Value;
use tascreed::catalog::is_valid_executor_name;

use super::Remote;
use super::client::Client;
use super::table::{cell, field, list, render};

/// The first bytes of a WebAssembly component (a core module has version 1 instead).
const COMPONENT_MAGIC: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

#[derive(Subcommand)]
pub enum ExecutorCommand {
    /// Upload a component (world `tascreed:executor/executor`) under NAME, for every node.
    Put {
        /// Executor name: `[a-z0-9][a-z0-9._-]{0,63}`.
        name: String,
        /// The `.wasm` component.
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the executors the node has loaded (directories and uploads).
    List {
        /// Print the JSON list instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(cmd: ExecutorCommand) -> Result<ExitCode> {
    match cmd {
        ExecutorCommand::Put { name, file, remote } => put(&name, &file, &remote),
        ExecutorCommand::List { json, remote } => list_executors(json, &remote),
    }
}

fn put(name: &str, file: &PathBuf, remote: &Remote) -> Result<ExitCode> {
    if !is_valid_executor_name(name) {
        bail!("executor name invalid: {name:?} (expected [a-z0-9][a-z0-9._-]{{0,63}})");
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !bytes.starts_with(&COMPONENT_MAGIC) {
        let what = if bytes.starts_with(b"\0asm") { "a core WebAssembly module" } else { "not WebAssembly" };
        bail!("{} is {what}, not a component; build executors for wasm32-wasip2", file.display());
    }
    let client = Client::new(remote)?;
    let reply = client.put_bytes(&format!("/api/v1/executor/{name}"), "application/wasm", &bytes)?;
    let sha = cell(field(&reply.body, &["sha256", "executor.sha256"]));
    let version = cell(field(&reply.body, &["version", "manifest.version"]));
    println!("uploaded executor {name} ({} bytes): version {version}, sha256 {sha}", bytes.len());
    Ok(ExitCode::SUCCESS)
}

fn list_executors(json: bool, remote: &Remote) -> Result<ExitCode> {
    let client = Client::new(remote)?;
    let reply = client.get("/api/v1/executor", &[])?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply.body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let executors = list(&reply.body);
    if executors.is_empty() {
        println!("no executors loaded");
    } else {
        println!("{}", table(&executors));
    }
    // Files of `executor.dirs` that failed to load: they run nothing until fixed.
    for e in reply.body.get("errors").and_then(Value::as_array).into_iter().flatten() {
        println!("ERROR {}: {}", cell(e.get("file")), cell(e.get("message")));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(executors: &[Value]) -> String {
    let rows: Vec<Vec<String>> = executors
        .iter()
        .map(|e| {
            let sha = cell(field(e, &["sha256"]));
            vec![
                cell(e.get("name")),
                cell(field(e, &["version", "manifest.version"])),
                kind(e),
                source(e),
                sha.chars().take(12).collect(),
            ]
        })
        .collect();
    render(&["NAME", "VERSION", "KIND", "SOURCE", "SHA256"], &rows)
}

/// `checkpoint` or `normal`.
fn kind(e: &Value) -> String {
    match field(e, &["checkpoint", "manifest.checkpoint"]).and_then(Value::as_bool) {
        Some(true) => "checkpoint".into(),
        Some(false) => "normal".into(),
        None => "-".into(),
    }
}

/// `upload`, or the file it was loaded from.
fn source(e: &Value) -> String {
    match e.get("source") {
        Some(Value::Object(o)) => {
            let file = o.get("file").or_else(|| o.get("path")).or_else(|| o.get("dir"));
            let kind = o.get("kind").or_else(|| o.get("type"));
            file.or(kind).map(|v| cell(Some(v))).unwrap_or_else(|| Value::Object(o.clone()).to_string())
        }
        other => {
            let file = field(e, &["file", "path"]);
            if file.is_some() { cell(file) } else { cell(other) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_reads_flat_and_nested_shapes() {
        let list = [
            json!({"name": "noop", "sha256": "0123456789abcdef", "source": "dir", "file": "executors/noop.wasm",
                   "manifest": {"version": "0.1.0", "checkpoint": false}}),
            json!({"name": "mine", "sha256": "fedcba9876543210", "source": "upload", "version": "1", "checkpoint": true}),
        ];
        assert_eq!(
            table(&list),
            "NAME  VERSION  KIND        SOURCE               SHA256\n\
             noop  0.1.0    normal      executors/noop.wasm  0123456789ab\n\
             mine  1        checkpoint  upload               fedcba987654"
        );
    }
}
