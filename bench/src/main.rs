//! `cargo xtask bench`: runs each scenario, prints a table and writes a JSON report. Nothing here
//! asserts a speed: figures are measured, saved and compared run to run.

mod ctx;
mod report;
mod scenarios;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use crate::ctx::Ctx;
use crate::report::Outcome;

#[derive(Parser)]
#[command(about = "tascreed benchmarks")]
struct Cli {
    /// Every scenario at tiny sizes: proves the harness works.
    #[arg(long)]
    quick: bool,
    /// Run only these scenarios (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench/latest.json")]
    out: PathBuf,
    /// Folder of the built guests.
    #[arg(long, default_value = "target/plugins")]
    plugins: PathBuf,
    /// The `tascreed` binary for process scenarios.
    #[arg(long)]
    binary: PathBuf,
    /// Recorded in the report.
    #[arg(long, default_value = "unknown")]
    revision: String,
    #[arg(long, default_value = "unknown")]
    profile: String,
}

const ALL: &[&str] = &[
    "invoke",
    "fuel",
    "compile",
    "claim-depth",
    "fan-out",
    "dispatch",
    "chain",
    "checkpoint",
    "burn-down",
    "steady",
    "reload",
    "memory",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(bad) = cli.only.iter().find(|n| !ALL.contains(&n.as_str())) {
        anyhow::bail!("unknown scenario {bad:?}; known: {}", ALL.join(", "));
    }
    // The service installs the Prometheus recorder (with its upkeep thread); without it every
    // `metrics::` call in the node is a no-op and the figures would leave out what recording
    // costs.
    tascreed::metrics::handle();
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("artifact-cache");
    let c = Ctx { quick: cli.quick, plugins: cli.plugins.clone(), binary: cli.binary.clone(), tmp, cache };
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut failures = Vec::new();
    for &name in ALL {
        if !cli.only.is_empty() && !cli.only.iter().any(|n| n == name) {
            continue;
        }
        eprintln!("bench: {name} ...");
        let result = match name {
            "invoke" => scenarios::runtime::invoke(&c).await,
            "fuel" => scenarios::runtime::fuel(&c).await,
            "compile" => scenarios::runtime::compile(&c).await,
            "claim-depth" => scenarios::store::claim_depth(&c),
            "fan-out" => scenarios::store::fan_out(&c),
            "dispatch" => scenarios::node::dispatch(&c).await,
            "chain" => scenarios::node::chain(&c).await,
            "checkpoint" => scenarios::node::checkpoint(&c).await,
            "burn-down" => scenarios::node::burn_down(&c).await,
            "steady" => scenarios::node::steady(&c).await,
            "reload" => scenarios::process::reload(&c),
            "memory" => scenarios::process::memory(&c),
            _ => unreachable!("checked against ALL above"),
        };
        match result {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                eprintln!("bench: {name} failed: {e:#}");
                failures.push(json!({"name": name, "error": format!("{e:#}")}));
            }
        }
    }
    report::print_table(&outcomes);
    let doc = json!({
        "machine": report::machine(),
        "revision": cli.revision,
        "profile": cli.profile,
        "quick": cli.quick,
        "settings": {
            "quick": cli.quick,
            "only": cli.only,
            "plugins": cli.plugins.display().to_string(),
            "binary": cli.binary.display().to_string(),
            "node": c.node_settings(),
            "serve": "reload and memory: `tascreed serve` with its defaults, sqlite storage, \
                      --http-bind 127.0.0.1:0, RUST_LOG=warn",
            "metrics": "Prometheus recorder installed as by `tascreed serve` (with its upkeep)",
        },
        "scenarios": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
        "failures": failures,
    });
    if let Some(dir) = cli.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&cli.out, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("cannot write {}", cli.out.display()))?;
    println!("\nreport: {}", cli.out.display());
    if !failures.is_empty() {
        anyhow::bail!("{} scenario(s) failed to run: see the report", failures.len());
    }
    Ok(())
}
