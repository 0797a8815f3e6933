//! Sample summaries, the printed table and the JSON report.

use serde::Serialize;
use serde_json::{Value, json};

/// A summary of samples of one quantity.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub unit: &'static str,
    pub count: usize,
    pub median: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(unit: &'static str, samples: &[f64]) -> Summary {
        let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        let pick = |q: f64| -> f64 {
            if s.is_empty() {
                return f64::NAN;
            }
            let i = ((s.len() - 1) as f64 * q).round() as usize;
            s[i.min(s.len() - 1)]
        };
        Summary {
            unit,
            count: s.len(),
            median: pick(0.5),
            p99: pick(0.99),
            min: s.first().copied().unwrap_or(f64::NAN),
            max: s.last().copied().unwrap_or(f64::NAN),
            mean: if s.is_empty() { f64::NAN } else { s.iter().sum::<f64>() / s.len() as f64 },
        }
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: &'static str,
    pub target: &'static str,
    /// The headline figure, e.g. "23 512 tasks/s".
    pub headline: String,
    /// Whether the headline meets the target (`None`: the target is "report").
    pub met: Option<bool>,
    /// What the scenario ran on: task counts, rates, durations, rounds.
    pub sizes: Vec<(String, Value)>,
    pub samples: Vec<(String, Summary)>,
    pub figures: Vec<(String, Value)>,
}

impl Outcome {
    pub fn new(name: &'static str, target: &'static str) -> Outcome {
        Outcome { name, target, headline: String::new(), met: None, sizes: vec![], samples: vec![], figures: vec![] }
    }

    pub fn size(&mut self, label: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.sizes.push((label.into(), value.into()));
        self
    }

    pub fn sample(&mut self, label: impl Into<String>, summary: Summary) -> &mut Self {
        self.samples.push((label.into(), summary));
        self
    }

    pub fn figure(&mut self, label: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.figures.push((label.into(), value.into()));
        self
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "target": self.target,
            "headline": self.headline,
            "met": self.met,
            "sizes": self.sizes.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<serde_json::Map<_, _>>(),
            "samples": self.samples.iter().map(|(k, s)| json!({"label": k, "summary": s})).collect::<Vec<_>>(),
            "figures": self.figures.iter().map(|(k, v)| json!({"label": k, "value": v})).collect::<Vec<_>>(),
        })
    }
}

pub fn print_table(outcomes: &[Outcome]) {
    println!("\n{:<12} {:<40} {:<44} met", "scenario", "result", "target");
    println!("{}", "-".repeat(104));
    for o in outcomes {
        let met = match o.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!("{:<12} {:<40} {:<44} {}", o.name, o.headline, o.target, met);
        if !o.sizes.is_empty() {
            let sizes: Vec<String> = o.sizes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("    sizes: {}", sizes.join(", "));
        }
        for (label, s) in &o.samples {
            println!(
                "    {label:<36} median {:>10.3} p99 {:>10.3} min {:>10.3} max {:>10.3} {} (n={})",
                s.median, s.p99, s.min, s.max, s.unit, s.count
            );
        }
        for (label, v) in &o.figures {
            println!("    {label:<36} {v}");
        }
    }
}

/// Facts about the machine the figures were measured on.
pub fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string());
    let mem_kb = read("/proc/meminfo").lines().find_map(|l| l.strip_prefix("MemTotal:")).map(|l| l.trim().to_string());
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory": mem_kb,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}
