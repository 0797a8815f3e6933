//! `tascreed serve`: configuration from flags, environment and file, then the node until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tascreed::config::{Config, KEYS};
use tascreed::service::Service;

#[derive(Args)]
pub struct ServeArgs {
    /// TOML file with TasCreed-style dotted keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Any configuration key as a flag, e.g. `--define-dirs defines` or `--set lease.ms=5000`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    flags: Vec<String>,
}

/// `--set k=v` pairs, checked for shape only ([`Config::load`] checks the keys).
pub fn parse_set(set: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    set.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').with_context(|| format!("--set takes KEY=VALUE, got {s:?}"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `--define-dirs x --lease-ms=5` style flags, checked against the key table.
fn parse_flags(flags: &[String], set: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = parse_set(set)?;
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

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let overrides = parse_flags(&args.flags, &args.set)?;
    let config = Config::load(args.config.as_deref(), std::env::vars(), &overrides)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let service = Service::start(config).await?;
        println!("tascreed listening on http://{}", service.local_addr());
        // SIGINT (Ctrl-C) and SIGTERM (service managers) both stop gracefully: running tasks
        // are released to other nodes instead of waiting out their leases.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        service.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
