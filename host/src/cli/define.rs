//! `tascreed define check`: offline validation of define directories with exactly the rules a
//! node applies when it loads them (the define catalog, and the configuration's graph check).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tascreed::catalog::DefineCatalog;
use tascreed::config::Config;

#[derive(Subcommand)]
pub enum DefineCommand {
    /// Validate every `*.json` in the directories (not recursive); exit 1 on any error.
    Check {
        /// Directories to check; the configured `define.dirs` when none is given.
        dirs: Vec<PathBuf>,
        /// TOML configuration file, as for `serve` (for `define.graph.validate.enable`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A configuration key, e.g. `--set define.graph.validate.enable=false`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

pub fn run(cmd: DefineCommand) -> anyhow::Result<ExitCode> {
    let DefineCommand::Check { dirs, config, set } = cmd;
    let overrides = super::serve::parse_set(&set)?;
    let config = Config::load(config.as_deref(), std::env::vars(), &overrides)?;
    let dirs = if dirs.is_empty() { config.define_dirs.clone() } else { dirs };
    let (report, failed) = check(dirs, config.validate_options());
    print!("{report}");
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The report, one line per file plus a summary, and whether anything failed.
fn check(dirs: Vec<PathBuf>, options: tascreed::domain::ValidateOptions) -> (String, bool) {
    let catalog = DefineCatalog::new(dirs.clone(), options);
    let reload = catalog.reload();
    let mut lines: Vec<(PathBuf, String)> = Vec::new();
    for dir in &reload.missing_dirs {
        lines.push((dir.clone(), format!("ERROR {}: no such directory", dir.display())));
    }
    for e in &reload.errors {
        lines.push((e.file.clone(), format!("ERROR {}: {}", e.file.display(), e.message)));
    }
    let defines = catalog.list();
    for d in &defines {
        let n = d.define.steps.len();
        let steps = if n == 1 { "1 step".to_string() } else { format!("{n} steps") };
        lines.push((d.file.clone(), format!("OK    {}: {} ({steps})", d.file.display(), d.name)));
    }
    lines.sort();
    let errors = reload.errors.len() + reload.missing_dirs.len();
    let mut out: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    let where_ = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    if defines.is_empty() && errors == 0 {
        out.push_str(&format!("no *.json files in {where_}\n"));
    }
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    out.push_str(&format!(
        "{} OK, {} in {where_}\n",
        plural(defines.len(), "define", "defines"),
        plural(errors, "error", "errors")
    ));
    (out, errors > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"jobName": "good", "steps": [{"stepName": "a", "executor": "noop"}]}"#;

    #[test]
    fn reports_each_file_and_fails_on_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("good.json"), GOOD).expect("write");
        let cyclic = r#"{"jobName": "cyc", "steps": [
            {"stepName": "a", "dependency": {"doneSteps": ["b"]}},
            {"stepName": "b", "dependency": {"doneSteps": ["a"]}}]}"#;
        std::fs::write(dir.path().join("cyc.json"), cyclic).expect("write");
        let on = tascreed::domain::ValidateOptions { graph_cycle_check: true };
        let (report, failed) = check(vec![dir.path().to_path_buf()], on);
        assert!(failed, "{report}");
        assert!(report.contains("good.json: good (1 step)"), "{report}");
        assert!(report.contains("cyc.json: ") && report.contains("cycle"), "{report}");
        assert!(report.contains("1 define OK, 1 error"), "{report}");

        let off = tascreed::domain::ValidateOptions { graph_cycle_check: false };
        let (report, failed) = check(vec![dir.path().to_path_buf()], off);
        assert!(!failed, "{report}");
        assert!(report.contains("2 defines OK, 0 errors"), "{report}");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nope");
        let on = tascreed::domain::ValidateOptions { graph_cycle_check: true };
        let (report, failed) = check(vec![missing], on);
        assert!(failed);
        assert!(report.contains("nope: no such directory"), "{report}");
    }
}
