//! `tascreed submit`: `POST /api/v1/job` with a JobRequest from a file and/or flags.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Map, Value};

use super::Remote;
use super::client::Client;

#[derive(Args)]
pub struct SubmitArgs {
    /// A JobRequest JSON file (`-` reads stdin). The flags below override its fields.
    file: Option<PathBuf>,
    /// The job define to instantiate (`jobName`).
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
    /// The job's trigger, unique per define.
    #[arg(long, value_name = "T")]
    trigger: Option<String>,
    /// A job param; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Job priority (larger is picked first).
    #[arg(long, value_name = "N")]
    priority: Option<i64>,
    /// Print the job JSON instead of a one-line summary.
    #[arg(long)]
    json: bool,
    /// Then follow the job until it is done, as `status --watch` (exit 1 unless SUCCESS).
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: SubmitArgs) -> Result<ExitCode> {
    let request = Value::Object(build_request(&args)?);
    let client = Client::new(&args.remote)?;
    let reply = client.post_json("/api/v1/job", &request)?;
    let job = &reply.body;
    if job.is_null() {
        bail!("the server accepted the job but returned no job (a concurrent submit of the same trigger?)");
    }
    let name = text(job, "jobName").or_else(|| text(&request, "jobName")).unwrap_or_default();
    let trigger = text(job, "trigger").or_else(|| text(&request, "trigger")).unwrap_or_default();
    if args.json {
        println!("{}", serde_json::to_string_pretty(job)?);
    } else {
        println!("{}", summary(job, reply.status));
    }
    if args.watch {
        return super::status::watch(&client, &name, &trigger, std::time::Duration::from_millis(500));
    }
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The request: the file's object (if any), then the flags.
fn build_request(args: &SubmitArgs) -> Result<Map<String, Value>> {
    let mut request = match &args.file {
        Some(path) => read_request(path)?,
        None => Map::new(),
    };
    if let Some(job) = &args.job {
        request.remove("name");
        request.insert("jobName".into(), Value::String(job.clone()));
    }
    if let Some(trigger) = &args.trigger {
        request.insert("trigger".into(), Value::String(trigger.clone()));
    }
    if let Some(priority) = args.priority {
        request.insert("priority".into(), Value::from(priority));
    }
    if !args.params.is_empty() {
        let params = request.entry("params").or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(params) = params else { bail!("the request's \"params\" is not an object") };
        for p in &args.params {
            let (k, v) = p.split_once('=').with_context(|| format!("--param takes KEY=VALUE, got {p:?}"))?;
            params.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    if !request.contains_key("jobName") && !request.contains_key("name") {
        bail!("which job? give a JobRequest file or --job NAME");
    }
    if !request.contains_key("trigger") {
        bail!("a trigger is needed: --trigger T (or \"trigger\" in the request file)");
    }
    Ok(request)
}

fn read_request(path: &PathBuf) -> Result<Map<String, Value>> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read the request from stdin")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    match serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))? {
        Value::Object(map) => Ok(map),
        _ => bail!("{} must hold a JobRequest object", path.display()),
    }
}

/// `created job demo/t1: UNDONE 0.00%, steps prep, calc`.
fn summary(job: &Value, status: u16) -> String {
    let get = |k: &str| text(job, k).unwrap_or_else(|| "?".into());
    let verb = if status == 201 { "created" } else { "exists already (unchanged)" };
    let steps: Vec<String> = job
        .get("steps")
        .and_then(Value::as_array)
        .map(|steps| steps.iter().filter_map(|s| text(s, "stepName")).collect())
        .unwrap_or_default();
    format!(
        "{verb}: job {}/{} {} {}, steps {}",
        get("jobName"),
        get("trigger"),
        get("state"),
        text(job, "progression").unwrap_or_else(|| "0.00%".into()),
        if steps.is_empty() { "-".into() } else { steps.join(", ") }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: SubmitArgs,
    }

    fn args(argv: &[&str]) -> SubmitArgs {
        T::parse_from(std::iter::once("submit").chain(argv.iter().copied())).args
    }

    #[test]
    fn flags_make_a_request() {
        let r = build_request(&args(&["--job", "demo", "--trigger", "t1", "--param", "a=1", "--param", "b=x=y"]))
            .expect("request");
        assert_eq!(
            Value::Object(r),
            serde_json::json!({"jobName": "demo", "trigger": "t1", "params": {"a": "1", "b": "x=y"}})
        );
    }

    #[test]
    fn file_fields_are_overridden_by_flags() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("r.json");
        std::fs::write(&file, r#"{"name": "old", "trigger": "t0", "params": {"a": "0", "keep": "k"}}"#).expect("w");
        let f = file.display().to_string();
        let r = build_request(&args(&[&f, "--job", "new", "--param", "a=1", "--priority", "3"])).expect("request");
        assert_eq!(
            Value::Object(r),
            serde_json::json!({"jobName": "new", "trigger": "t0", "priority": 3, "params": {"a": "1", "keep": "k"}})
        );
    }

    #[test]
    fn missing_job_or_trigger_is_explained() {
        let e = build_request(&args(&["--trigger", "t"])).expect_err("no job");
        assert!(e.to_string().contains("--job NAME"), "{e}");
        let e = build_request(&args(&["--job", "j"])).expect_err("no trigger");
        assert!(e.to_string().contains("--trigger T"), "{e}");
    }
}
