//! Project automation: `cargo xtask <command>`.
//!
//! - `plugins`: builds the guest components (installing the `wasm32-wasip2` target if needed)
//!   into `target/plugins/` (examples) and `target/plugins/testing/` (test-only guests).
//! - `test`: every check CI runs: formatting, clippy, plugins, then all tests.
//! - `bench [--quick] [--only NAME] [--out FILE]`: builds in release (dev with `--quick`) and
//!   runs the benchmark scenarios against real nodes; prints a table, writes JSON.
//! - `profile NAME`: runs one bench scenario under `perf record` (or a flamegraph tool) so the
//!   slow part can be found, not guessed.
//! - `serve`: builds the example executors, then runs `tascreed serve` on the example defines
//!   (`defines/`) and executors (`target/plugins/`), the embedded SQLite default
//!   (`tascreed.db`) and 127.0.0.1:7070. Arguments after `--` go to `tascreed serve`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

const GUEST_TARGET: &str = "wasm32-wasip2";
/// Example executors, loaded by `serve`: (crate file stem, executor name).
const EXAMPLES: &[(&str, &str)] =
    &[("noop", "noop"), ("scripted", "scripted"), ("counter", "counter"), ("range_sum", "range-sum")];
/// Guests that exist only to be rejected or probed by tests.
const TESTING: &[(&str, &str)] = &[("other_world", "other-world"), ("bad_import", "bad-import")];

#[derive(Parser)]
#[command(about = "tascreed project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the guest components into target/plugins.
    Plugins,
    /// Run every check: fmt, clippy, plugins, tests.
    Test,
    /// Run the benchmark scenarios (release build; `--quick` runs tiny sizes on a dev build).
    Bench {
        /// Every scenario at tiny sizes, as a smoke check of the harness (part of `test`).
        #[arg(long)]
        quick: bool,
        /// Only these scenarios (comma-separated).
        #[arg(long)]
        only: Option<String>,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/latest.json")]
        out: PathBuf,
    },
    /// Run one bench scenario under a profiler (perf, or cargo flamegraph when installed).
    Profile {
        /// The scenario, e.g. burn-down.
        scenario: String,
    },
    /// Build the example executors and run a node on them and the example defines.
    Serve {
        /// Passed to `tascreed serve`, e.g. `cargo xtask serve -- --worker-max-count-per-host 2`.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    match cli.command {
        Cmd::Plugins => plugins(&root).map(|_| ()),
        Cmd::Test => test(&root),
        Cmd::Serve { args } => serve(&root, &args),
        Cmd::Bench { quick, only, out } => bench(&root, quick, only.as_deref(), &out),
        Cmd::Profile { scenario } => profile(&root, &scenario),
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask has no parent directory")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn ensure_guest_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to install the wasm32-wasip2 target; install rustup")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == GUEST_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: installing the {GUEST_TARGET} target");
    run(Command::new("rustup").args(["target", "add", GUEST_TARGET]))
        .with_context(|| format!("cannot install the {GUEST_TARGET} target (is the network reachable?)"))
}

/// Test counts summed over every `test result:` line.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// Runs a `cargo test`, echoing its output and adding up its results.
fn run_tests(cmd: &mut Command, totals: &mut Totals) -> Result<()> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: running {cmd:?}");
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("cannot start {cmd:?}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read test output")?;
        println!("{line}");
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(['.', ';'])
                    .find_map(|part| part.trim().strip_suffix(word).and_then(|n| n.trim().parse().ok()))
                    .unwrap_or(0)
            };
            totals.passed += count("passed");
            totals.failed += count("failed");
            totals.ignored += count("ignored");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Builds the guests; returns the folder holding the example executors.
fn plugins(root: &Path) -> Result<PathBuf> {
    ensure_guest_target()?;
    let manifest = root.join("plugins/Cargo.toml");
    let target_dir = root.join("plugins/target");
    run(cargo()
        .args(["build", "--release", "--target", GUEST_TARGET, "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir))?;
    let built = target_dir.join(GUEST_TARGET).join("release");
    let out = root.join("target/plugins");
    let testing = out.join("testing");
    std::fs::create_dir_all(&testing).with_context(|| format!("cannot create {}", testing.display()))?;
    for (dir, list) in [(&out, EXAMPLES), (&testing, TESTING)] {
        for (stem, name) in list {
            let from = built.join(format!("{stem}.wasm"));
            let to = dir.join(format!("{name}.wasm"));
            std::fs::copy(&from, &to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    eprintln!("xtask: guests in {}", out.display());
    Ok(out)
}

fn test(root: &Path) -> Result<()> {
    let plugins_manifest = root.join("plugins/Cargo.toml");
    run(cargo().current_dir(root).args(["fmt", "--all", "--", "--check"]))?;
    run(cargo()
        .current_dir(root)
        .args(["fmt", "--all", "--manifest-path"])
        .arg(&plugins_manifest)
        .args(["--", "--check"]))?;
    let plugins_dir = plugins(root)?;
    run(cargo()
        .current_dir(root)
        .args(["clippy", "--manifest-path"])
        .arg(&plugins_manifest)
        .args(["--workspace", "--target", GUEST_TARGET, "--release", "--", "-D", "warnings"])
        .env("CARGO_TARGET_DIR", root.join("plugins/target")))?;
    run(cargo().current_dir(root).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let mut totals = Totals::default();
    run_tests(
        cargo()
            .current_dir(root)
            .args(["test", "--manifest-path"])
            .arg(&plugins_manifest)
            .args(["--workspace", "--target", host_triple()?.as_str()])
            .env("CARGO_TARGET_DIR", root.join("plugins/target")),
        &mut totals,
    )?;
    run_tests(
        cargo().current_dir(root).args(["test", "--workspace"]).env("TASCREED_PLUGINS_DIR", &plugins_dir),
        &mut totals,
    )?;
    // The bench harness at tiny sizes, on the dev build the tests already made (a release build
    // here would compile wasmtime a second time): proves it runs, asserts nothing about speed.
    bench(root, true, None, &root.join("target/bench/quick.json"))?;
    eprintln!("xtask: all checks passed");
    // One closing line for everything, since the last runner to print is the doc-test pass.
    println!("tests: {} passed, {} failed, {} skipped", totals.passed, totals.failed, totals.ignored);
    Ok(())
}

/// `tascreed serve` from the repo root, so the defaults (`sqlite:tascreed.db`,
/// `.tascreed-cache/`, 127.0.0.1:7070) land there. Only the top level of `target/plugins` holds
/// executors: directories are not scanned recursively, so `target/plugins/testing/` stays out.
fn serve(root: &Path, extra: &[String]) -> Result<()> {
    plugins(root)?;
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["run", "--package", "tascreed", "--", "serve"])
        .args(["--define-dirs", "defines", "--executor-dirs", "target/plugins"])
        .args(extra);
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    // Ctrl-C reaches the node too, which shuts down cleanly; a signal is no failure here.
    if status.success() || status.code().is_none() {
        return Ok(());
    }
    bail!("tascreed serve failed with {status}")
}

/// Where cargo puts builds: `CARGO_TARGET_DIR` when set, else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn git_revision(root: &Path) -> String {
    Command::new("git")
        .current_dir(root)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Builds `tascreed` and the bench harness, then runs the scenarios.
fn bench(root: &Path, quick: bool, only: Option<&str>, out: &Path) -> Result<()> {
    let plugins_dir = plugins(root)?;
    let profile = if quick { "dev" } else { "release" };
    let dir = if quick { "debug" } else { "release" };
    run(cargo().current_dir(root).args(["build", "--profile", profile, "-p", "tascreed", "-p", "tascreed-bench"]))?;
    let target = target_dir(root).join(dir);
    let mut cmd = Command::new(target.join("tascreed-bench"));
    cmd.current_dir(root)
        .arg("--binary")
        .arg(target.join("tascreed"))
        .arg("--plugins")
        .arg(&plugins_dir)
        .arg("--out")
        .arg(out)
        .args(["--revision", &git_revision(root), "--profile", profile]);
    if quick {
        cmd.arg("--quick");
    }
    if let Some(only) = only {
        cmd.args(["--only", only]);
    }
    run(&mut cmd)
}

/// One scenario under `perf record` with DWARF call graphs (data in target/bench/perf.data),
/// or under `flamegraph` when perf is missing; says how to get either when neither is.
fn profile(root: &Path, scenario: &str) -> Result<()> {
    /// How `profile` samples when `TASCREED_PERF_RECORD_ARGS` does not say otherwise. The release
    /// build keeps no frame pointers, so `-g` (frame-pointer call graphs) gives broken stacks:
    /// DWARF unwinding from a copy of each sample's user stack is used instead. That copy makes
    /// every sample ~16 KiB, hence the low frequency (about 8 MB per busy core-second).
    const PERF_RECORD_ARGS: &[&str] = &["-F", "499", "--call-graph", "dwarf,16384"];
    /// perf as a non-root user needs `kernel.perf_event_paranoid` <= 1 to see the whole picture
    /// (at 2 it may refuse, or sample user space only and miss time spent in the kernel).
    fn warn_if_perf_restricted() {
        let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok());
        let root = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        if let Some(level) = paranoid.filter(|&l| l > 1 && !root) {
            eprintln!(
                "xtask: kernel.perf_event_paranoid is {level}: perf may refuse or miss kernel time; \
                 run `sudo sysctl kernel.perf_event_paranoid=1` (or profile as root)"
            );
        }
    }

    let plugins_dir = plugins(root)?;
    run(cargo().current_dir(root).args(["build", "--release", "-p", "tascreed", "-p", "tascreed-bench"]))?;
    let target = target_dir(root).join("release");
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let args = [
        "--binary".to_string(),
        target.join("tascreed").display().to_string(),
        "--plugins".into(),
        plugins_dir.display().to_string(),
        "--only".into(),
        scenario.into(),
        "--out".into(),
        out_dir.join("profile.json").display().to_string(),
        "--revision".into(),
        git_revision(root),
        "--profile".into(),
        "release".into(),
    ];
    let bench_bin = target.join("tascreed-bench");
    if Command::new("perf").arg("--version").output().is_ok_and(|o| o.status.success()) {
        warn_if_perf_restricted();
        let record: Vec<String> = match std::env::var("TASCREED_PERF_RECORD_ARGS") {
            Ok(custom) => custom.split_whitespace().map(str::to_string).collect(),
            Err(_) => PERF_RECORD_ARGS.iter().map(|a| a.to_string()).collect(),
        };
        let data = out_dir.join("perf.data");
        run(Command::new("perf").arg("record").args(&record).arg("-o").arg(&data).arg(&bench_bin).args(&args))?;
        eprintln!(
            "xtask: profile in {0}; read it with `perf report -i {0} --no-children --no-inline` \
             (--no-inline: resolving inlined frames of DWARF stacks can take perf many minutes)",
            data.display()
        );
        return Ok(());
    }
    if Command::new("flamegraph").arg("--help").output().is_ok_and(|o| o.status.success()) {
        let svg = out_dir.join("flamegraph.svg");
        run(Command::new("flamegraph").arg("-o").arg(&svg).arg("--").arg(&bench_bin).args(&args))?;
        eprintln!("xtask: flamegraph in {}", svg.display());
        return Ok(());
    }
    bail!(
        "no profiler found: install one with `apt-get install linux-perf` (perf) or `cargo install flamegraph`, then run again"
    )
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("cannot run rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host triple")
}
