//! The `tascreed` command line. `serve` runs a node; `define check` works offline; the other
//! commands are clients of a node's HTTP API (DESIGN.md "CLI").

mod client;
mod define;
mod executor;
mod jobs;
mod serve;
mod status;
mod submit;
mod table;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Where a node listens unless `--server` or `TASCREED_SERVER` says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

#[derive(Parser)]
#[command(name = "tascreed", version, about = "Reliable task execution with WebAssembly executors")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The node a client command talks to.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Base URL of a tascreed node.
    #[arg(long, env = "TASCREED_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    /// Bearer token for non-GET requests, when the node has one configured.
    #[arg(long, env = "TASCREED_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a node: the HTTP API, the workers and the job advancer.
    Serve(serve::ServeArgs),
    /// Submit a job: from a JobRequest file, or from --job/--trigger/--param.
    Submit(submit::SubmitArgs),
    /// Show a job's progress, one bar per step; --watch follows it to the end.
    Status(status::StatusArgs),
    /// List alive jobs.
    Jobs(jobs::JobsArgs),
    /// Upload and list executor components.
    #[command(subcommand)]
    Executor(executor::ExecutorCommand),
    /// Work with job defines.
    #[command(subcommand)]
    Define(define::DefineCommand),
}

impl Cli {
    /// Whether this invocation runs a node (which logs at info by default).
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }

    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => serve::run(args),
            Command::Submit(args) => submit::run(args),
            Command::Status(args) => status::run(args),
            Command::Jobs(args) => jobs::run(args),
            Command::Executor(cmd) => executor::run(cmd),
            Command::Define(cmd) => define::run(cmd),
        }
    }
}
