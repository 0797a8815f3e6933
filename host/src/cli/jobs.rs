//! `tascreed jobs [--job NAME]`: the alive jobs as a table.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use super::Remote;
use super::client::Client;
use super::table::{cell, field, list, render};

#[derive(Args)]
pub struct JobsArgs {
    /// Only jobs of this define.
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
    /// Print the JSON list instead.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: JobsArgs) -> Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let query: Vec<(&str, &str)> = args.job.as_deref().map(|j| ("jobName", j)).into_iter().collect();
    let reply = client.get("/api/v1/state/aliveJobs", &query)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reply.body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = list(&reply.body);
    if jobs.is_empty() {
        println!("no alive jobs");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", table(&jobs));
    Ok(ExitCode::SUCCESS)
}

fn table(jobs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                cell(j.get("jobName")),
                cell(j.get("trigger")),
                cell(j.get("state")),
                cell(j.get("progression")),
                cell(j.get("priority")),
                cell(field(j, &["createTime"])),
            ]
        })
        .collect();
    render(&["JOB", "TRIGGER", "STATE", "PROGRESS", "PRIORITY", "CREATED"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_row_per_job() {
        let jobs = [json!({"jobName": "demo", "trigger": "t1", "state": "UNDONE", "progression": "12.50%",
                           "createTime": "2021-10-12T00:53:20.000Z"})];
        assert_eq!(
            table(&jobs),
            "JOB   TRIGGER  STATE   PROGRESS  PRIORITY  CREATED\n\
             demo  t1       UNDONE  12.50%    -         2021-10-12T00:53:20.000Z"
        );
    }
}
