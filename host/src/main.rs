//! The `tascreed` binary: `serve` runs a node; the other commands talk to one over HTTP.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tascreed::config::{Config, KEYS};
use tascreed::service::Service;

#[derive(Parser)]
#[command(name = "tascreed", version, about = "Reliable task execution with WebAssembly executors")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: the HTTP API, the workers and the job advancer.
    Serve {
        /// TOML file with TasCreed-style dotted keys.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Any configuration key as a flag, e.g. `--define-dirs defines` or `--set lease.ms=5000`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        flags: Vec<String>,
    },
}

/// `--define-dirs x --lease-ms=5` style flags, checked against the key table.
fn parse_flags(flags: &[String], set: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for s in set {
        let (k, v) = s.split_once('=').with_context(|| format!("--set takes KEY=VALUE, got {s:?}"))?;
        out.push((k.to_string(), v.to_string()));
    }
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").with_context(|| format!("unexpected argument {flag:?}"))?;
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (name.to_string(), it.next().with_context(|| format!("--{name} needs a value"))?.clone()),
        };
        if !KEYS.iter().any(|k| Config::flag_name(k.key) == name) {
            anyhow::bail!("unknown flag --{name}; every configuration key is a flag (e.g. --define-dirs)");
        }
        out.push((name, value));
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,cranelift=warn,wasmtime=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, set, flags } => {
            let overrides = parse_flags(&flags, &set)?;
            let config = Config::load(config.as_deref(), std::env::vars(), &overrides)?;
            let service = Service::start(config).await?;
            println!("tascreed listening on http://{}", service.local_addr());
            tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
            tracing::info!("shutting down");
            service.shutdown().await;
            Ok(())
        }
    }
}
