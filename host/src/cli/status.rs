//! `tascreed status JOB TRIGGER [--watch]`: the job and one progress bar per step, drawn with
//! indicatif on a terminal and as text lines otherwise (pipes, CI logs).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use super::Remote;
use super::client::{Client, Unreachable};

/// How long `--watch` keeps trying while the node cannot be reached (e.g. it restarts).
const UNREACHABLE_GRACE: Duration = Duration::from_secs(30);
/// Bars count hundredths of a percent.
const BAR_LEN: u64 = 10_000;
/// Width of a text bar.
const TEXT_BAR: usize = 20;

#[derive(Args)]
pub struct StatusArgs {
    /// The job's name (its define).
    job: String,
    /// The job's trigger.
    trigger: String,
    /// Refresh until the job is done; exit 0 on SUCCESS, 1 otherwise.
    #[arg(long)]
    watch: bool,
    /// Refresh interval of --watch.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    interval: u64,
    /// Print the job JSON instead.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: StatusArgs) -> Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    if args.watch {
        return watch(&client, &args.job, &args.trigger, Duration::from_millis(args.interval.max(50)));
    }
    let job = fetch(&client, &args.job, &args.trigger)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else if fancy() {
        let bars = Bars::new(&job)?;
        bars.finish();
    } else {
        print!("{}", render_text(&job));
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows the job until its state is no longer UNDONE.
pub fn watch(client: &Client, job: &str, trigger: &str, interval: Duration) -> Result<ExitCode> {
    let fancy = fancy();
    let mut bars: Option<Bars> = None;
    let mut last_line = String::new();
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let value = match fetch(client, job, trigger) {
            Ok(value) => value,
            Err(e) if e.downcast_ref::<Unreachable>().is_some() => {
                if unreachable_since.get_or_insert_with(Instant::now).elapsed() > UNREACHABLE_GRACE {
                    return Err(e);
                }
                std::thread::sleep(interval);
                continue;
            }
            Err(e) => return Err(e),
        };
        unreachable_since = None;
        let view = JobView::from(&value);
        if fancy {
            match &mut bars {
                Some(b) => b.update(&value),
                None => bars = Some(Bars::new(&value)?),
            }
        } else {
            let line = view.line();
            if line != last_line {
                println!("{line}");
                last_line = line;
            }
        }
        if view.state != "UNDONE" {
            match &bars {
                Some(b) => b.finish(),
                None => print!("{}", render_text(&value)),
            }
            if view.state == "SUCCESS" {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("job {job}/{trigger} ended {}", view.state);
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(interval);
    }
}

/// Bars only when both streams are terminals: piped output gets plain lines.
fn fancy() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

fn fetch(client: &Client, job: &str, trigger: &str) -> Result<Value> {
    let reply = client.get(&format!("/api/v1/job/{job}/{trigger}"), &[])?;
    if reply.body.is_null() {
        bail!("job {job}/{trigger} not found at {}", client.base());
    }
    Ok(reply.body)
}

/// What a bar shows of a job or a step.
struct Line {
    name: String,
    state: String,
    /// Percent, 0..=100.
    percent: f64,
    progression: String,
    detail: String,
}

impl Line {
    fn of(v: &Value, name: String, detail: String) -> Line {
        let progression = v.get("progression").and_then(Value::as_str).unwrap_or("0.00%").to_string();
        let percent = progression.trim_end_matches('%').trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 100.0);
        let state = v.get("state").and_then(Value::as_str).unwrap_or("?").to_string();
        Line { name, state, percent, progression, detail }
    }

    fn message(&self) -> String {
        let detail = if self.detail.is_empty() { String::new() } else { format!("  {}", self.detail) };
        format!("{:>7}  {}{detail}", self.progression, self.state)
    }

    fn position(&self) -> u64 {
        // Hundredths of a percent: 0..=10_000, exact for "NN.NN%".
        (self.percent * 100.0).round() as u64
    }
}

struct JobView {
    state: String,
    job: Line,
    steps: Vec<Line>,
}

impl JobView {
    fn from(v: &Value) -> JobView {
        let name = format!(
            "{}/{}",
            v.get("jobName").and_then(Value::as_str).unwrap_or("?"),
            v.get("trigger").and_then(Value::as_str).unwrap_or("?")
        );
        let job = Line::of(v, name, String::new());
        let steps = v
            .get("steps")
            .and_then(Value::as_array)
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| {
                        let name = s.get("stepName").and_then(Value::as_str).unwrap_or("?").to_string();
                        Line::of(s, name, step_detail(s))
                    })
                    .collect()
            })
            .unwrap_or_default();
        JobView { state: job.state.clone(), job, steps }
    }

    /// One line for the job, for logs of `--watch` without a terminal.
    fn line(&self) -> String {
        format!("{}  {}", self.job.name, self.job.message())
    }

    fn name_width(&self) -> usize {
        let steps = self.steps.iter().map(|s| s.name.chars().count() + 2);
        steps.chain([self.job.name.chars().count()]).max().unwrap_or(0)
    }
}

/// `SHARD, executor range-sum, 3 undone, 1 failed`.
fn step_detail(step: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(t) = step.get("stepType").and_then(Value::as_str) {
        parts.push(t.to_string());
    }
    if let Some(e) = step.get("executor").and_then(Value::as_str) {
        parts.push(format!("executor {e}"));
    }
    if let Some(states) = step.get("taskStates").and_then(Value::as_object) {
        for (label, state) in [("undone", "UNDONE"), ("failed", "FAILED"), ("error", "ERROR")] {
            let n = states.values().filter(|s| s.as_str() == Some(state)).count();
            if n > 0 {
                parts.push(format!("{n} {label}"));
            }
        }
    }
    parts.join(", ")
}

/// The job and its steps as text bars.
fn render_text(v: &Value) -> String {
    let view = JobView::from(v);
    let width = view.name_width();
    let bar = |l: &Line| {
        let filled = ((l.percent / 100.0) * TEXT_BAR as f64).round() as usize;
        format!("[{}{}]", "#".repeat(filled.min(TEXT_BAR)), "-".repeat(TEXT_BAR - filled.min(TEXT_BAR)))
    };
    let mut out = format!("{:<width$}  {}  {}\n", view.job.name, bar(&view.job), view.job.message());
    for s in &view.steps {
        out.push_str(&format!("  {:<w$}  {}  {}\n", s.name, bar(s), s.message(), w = width - 2));
    }
    out
}

/// indicatif bars: the job's on top, then one per step in define order.
struct Bars {
    _multi: MultiProgress,
    job: ProgressBar,
    steps: Vec<ProgressBar>,
}

impl Bars {
    fn new(v: &Value) -> Result<Bars> {
        let view = JobView::from(v);
        let width = view.name_width();
        let multi = MultiProgress::new();
        let style = |color: &str| {
            ProgressStyle::with_template(&format!("{{prefix}}  {{bar:30.{color}}}  {{msg}}"))
                .map(|s| s.progress_chars("█▉▊▋▌▍▎▏ "))
        };
        let job = multi.add(ProgressBar::new(BAR_LEN).with_style(style("cyan/blue")?));
        job.set_prefix(format!("{:<width$}", view.job.name));
        let mut steps = Vec::new();
        for s in &view.steps {
            let bar = multi.add(ProgressBar::new(BAR_LEN).with_style(style("green/white")?));
            bar.set_prefix(format!("  {:<w$}", s.name, w = width - 2));
            steps.push(bar);
        }
        let bars = Bars { _multi: multi, job, steps };
        bars.update_view(&view);
        Ok(bars)
    }

    fn update(&mut self, v: &Value) {
        self.update_view(&JobView::from(v));
    }

    fn update_view(&self, view: &JobView) {
        self.job.set_position(view.job.position());
        self.job.set_message(view.job.message());
        for (bar, s) in self.steps.iter().zip(&view.steps) {
            bar.set_position(s.position());
            bar.set_message(s.message());
        }
    }

    fn finish(&self) {
        for bar in self.steps.iter().chain([&self.job]) {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_bars_show_every_step() {
        let job = json!({
            "jobName": "demo", "trigger": "t1", "state": "UNDONE", "progression": "50.00%",
            "steps": [
                {"stepName": "prep", "stepType": "SIMPLE", "state": "SUCCESS", "progression": "100.00%"},
                {"stepName": "calc", "stepType": "SHARD", "executor": "range-sum", "state": "READY",
                 "progression": "25.00%", "taskStates": {"1": "UNDONE", "2": "UNDONE", "3": "FAILED"}}
            ]
        });
        let text = render_text(&job);
        assert_eq!(
            text,
            "demo/t1  [##########----------]   50.00%  UNDONE\n\
             \x20 prep   [####################]  100.00%  SUCCESS  SIMPLE\n\
             \x20 calc   [#####---------------]   25.00%  READY  SHARD, executor range-sum, 2 undone, 1 failed\n"
        );
        assert_eq!(JobView::from(&job).line(), "demo/t1   50.00%  UNDONE");
        assert_eq!(JobView::from(&job).steps[1].position(), 2500);
    }
}
