//! The `tascreed` binary: `serve` runs a node; the other commands talk to one over HTTP
//! (`define check` works offline). The commands live in [`cli`].

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // A node logs at info; client commands only show what goes wrong, unless RUST_LOG says more.
    let default_filter = if cli.is_serve() { "info,cranelift=warn,wasmtime=warn" } else { "error" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
