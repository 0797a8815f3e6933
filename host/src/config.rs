//! Node configuration: TasCreed-style dotted keys from defaults, a TOML file, `TASCREED_*`
//! environment variables and command-line overrides, highest last (DESIGN.md "Configuration").
//!
//! [`KEYS`] is the single list of keys: the CLI derives its `--flags` from it and the README
//! table is checked against it. Every value goes through one string parser per key, whatever
//! its source, so a key behaves the same in a file, the environment and on the command line.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One configuration key, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// Dotted key, e.g. `define.dirs`.
    pub key: &'static str,
    /// Default as shown to users (`number of cores` and `unset` are computed/absent).
    pub default: &'static str,
    /// What it controls.
    pub meaning: &'static str,
}

/// Every key, in documentation order.
pub static KEYS: &[KeyInfo] = &[
    KeyInfo { key: "namespace", default: "default", meaning: "isolates several deployments in one database" },
    KeyInfo { key: "storage.url", default: "sqlite:tascreed.db", meaning: "bulletin (`postgres://…` later)" },
    KeyInfo {
        key: "storage.sync",
        default: "normal",
        meaning: "`normal`: no loss on process crash; `full`: no loss on power loss",
    },
    KeyInfo { key: "http.bind", default: "127.0.0.1:7070", meaning: "API address" },
    KeyInfo {
        key: "http.token",
        default: "unset",
        meaning: "bearer token for non-GET endpoints; required off loopback",
    },
    KeyInfo { key: "define.dirs", default: "defines", meaning: "comma-separated, `*.json`, watched" },
    KeyInfo { key: "define.graph.validate.enable", default: "true", meaning: "cycle check" },
    KeyInfo { key: "executor.dirs", default: "executors", meaning: "comma-separated, `*.wasm`, watched" },
    KeyInfo { key: "executor.cache.dir", default: ".tascreed-cache", meaning: "compiled artifacts" },
    KeyInfo {
        key: "worker.max.count.per.host",
        default: "number of cores",
        meaning: "concurrent tasks on this node; `0`: an API-only node that runs none",
    },
    KeyInfo { key: "worker.max.count.overall", default: "20", meaning: "concurrent tasks across nodes" },
    KeyInfo { key: "lease.ms", default: "60000", meaning: "task occupation" },
    KeyInfo { key: "heartbeat.ms", default: "15000", meaning: "task occupation" },
    KeyInfo { key: "task.default.max.pick.times", default: "-1", meaning: "unlimited" },
    KeyInfo {
        key: "task.retry.delay.ms",
        default: "1000",
        meaning: "first in-place retry delay (doubles; 5 attempts)",
    },
    KeyInfo {
        key: "task.pick.backoff.ms",
        default: "30000",
        meaning: "re-pick back-off step after the 5th give-up (cap 10 steps)",
    },
    KeyInfo {
        key: "ban.cache.ms",
        default: "1000",
        meaning: "accepted for TasCreed configs; bans are read inside every claim and advance, so they act at once",
    },
    KeyInfo { key: "sweep.ms", default: "1000", meaning: "safety-net advance of all jobs" },
    KeyInfo { key: "monitor.ms", default: "5000", meaning: "slow-job and gauge refresh" },
    KeyInfo {
        key: "guest.fuel.default",
        default: "10000000000",
        meaning: "fuel per call unless the step sets `fuelLimit`",
    },
    KeyInfo {
        key: "guest.timeout.ms.default",
        default: "600000",
        meaning: "wall clock per call unless the step sets `timeoutMs`",
    },
    KeyInfo { key: "guest.memory.max.bytes", default: "268435456", meaning: "per instance" },
    KeyInfo { key: "archive.retention.hours", default: "168", meaning: "archived jobs kept; `-1` forever" },
    KeyInfo {
        key: "archive.task.enable",
        default: "false",
        meaning: "accepted for TasCreed configs; every task stays queryable with its job, archived or not, until the \
                  retention purges the job",
    },
];

/// Environment prefix of every key.
pub const ENV_PREFIX: &str = "TASCREED_";

/// `TASCREED_TOKEN`, DESIGN.md's name for the API token, read as `http.token` when
/// `TASCREED_HTTP_TOKEN` is not set (the CLI uses the same variable as a client).
pub const TOKEN_ENV_ALIAS: &str = "TASCREED_TOKEN";

/// `storage.sync`: how hard the bulletin flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageSync {
    /// No loss on process crash.
    #[default]
    Normal,
    /// No loss on power loss.
    Full,
}

/// The node's settings, one field per key of [`KEYS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub namespace: String,
    pub storage_url: String,
    pub storage_sync: StorageSync,
    pub http_bind: SocketAddr,
    pub http_token: Option<String>,
    pub define_dirs: Vec<PathBuf>,
    pub define_graph_validate_enable: bool,
    pub executor_dirs: Vec<PathBuf>,
    pub executor_cache_dir: PathBuf,
    pub worker_max_count_per_host: u32,
    pub worker_max_count_overall: u32,
    pub lease_ms: u64,
    pub heartbeat_ms: u64,
    /// Negative: unlimited.
    pub task_default_max_pick_times: i64,
    pub task_retry_delay_ms: u64,
    pub task_pick_backoff_ms: u64,
    pub ban_cache_ms: u64,
    pub sweep_ms: u64,
    pub monitor_ms: u64,
    pub guest_fuel_default: u64,
    pub guest_timeout_ms_default: u64,
    pub guest_memory_max_bytes: u64,
    /// Negative: forever.
    pub archive_retention_hours: i64,
    pub archive_task_enable: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: "default".into(),
            storage_url: "sqlite:tascreed.db".into(),
            storage_sync: StorageSync::Normal,
            http_bind: SocketAddr::from(([127, 0, 0, 1], 7070)),
            http_token: None,
            define_dirs: vec![PathBuf::from("defines")],
            define_graph_validate_enable: true,
            executor_dirs: vec![PathBuf::from("executors")],
            executor_cache_dir: PathBuf::from(".tascreed-cache"),
            worker_max_count_per_host: default_workers_per_host(),
            worker_max_count_overall: 20,
            lease_ms: 60_000,
            heartbeat_ms: 15_000,
            task_default_max_pick_times: -1,
            task_retry_delay_ms: 1_000,
            task_pick_backoff_ms: 30_000,
            ban_cache_ms: 1_000,
            sweep_ms: 1_000,
            monitor_ms: 5_000,
            guest_fuel_default: 10_000_000_000,
            guest_timeout_ms_default: 600_000,
            guest_memory_max_bytes: 268_435_456,
            archive_retention_hours: 168,
            archive_task_enable: false,
        }
    }
}

fn default_workers_per_host() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    Override,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Override => f.write_str("command line"),
        }
    }
}

/// Why the configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("unknown configuration key `{key}` in {origin}{}", suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey { key: String, origin: Origin, suggestion: Option<&'static str> },
    #[error("invalid value {value:?} for `{key}` in {origin}: expected {expected}")]
    BadValue { key: &'static str, value: String, origin: Origin, expected: &'static str },
    #[error("`{key}` in {origin} is a {found}; values are strings, integers or booleans")]
    BadType { key: String, origin: Origin, found: &'static str },
    #[error("{0}")]
    Inconsistent(String),
}

impl Config {
    /// Assembles the configuration: defaults, then `file`, then the `TASCREED_*` variables of
    /// `env`, then `overrides` (keys as `define.dirs` or as flag names `define-dirs`).
    ///
    /// Unknown keys are errors in the file and the overrides; unknown `TASCREED_*` variables
    /// are ignored because the CLI has its own (`TASCREED_SERVER`, ...).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
            for (key, value) in parse_file(path, &text)? {
                config.set_from(&key, &value, Origin::File(path.to_path_buf()))?;
            }
        }
        config.apply_env(env)?;
        for (key, value) in overrides {
            let key = if key.contains('.') { key.clone() } else { key.replace('-', ".") };
            config.set_from(&key, value, Origin::Override)?;
        }
        config.check()?;
        Ok(config)
    }

    /// The runtime settings this configuration implies (memory cap, artifact cache).
    pub fn runtime_config(&self) -> tascreed_runtime::RuntimeConfig {
        tascreed_runtime::RuntimeConfig {
            memory_max_bytes: self.guest_memory_max_bytes,
            cache_dir: Some(self.executor_cache_dir.clone()),
            // Every worker holds one instance at a time; loads (`describe`) and uploads take a
            // few more. An exhausted pool would fail tasks, so it grows with the workers.
            pool_instances: self.worker_max_count_per_host.saturating_mul(2).saturating_add(32).max(256),
            ..tascreed_runtime::RuntimeConfig::default()
        }
    }

    /// Define validation switches (`define.graph.validate.enable`).
    pub fn validate_options(&self) -> tascreed_domain::ValidateOptions {
        tascreed_domain::ValidateOptions { graph_cycle_check: self.define_graph_validate_enable }
    }

    /// The flag of a key: `define.dirs` → `define-dirs`.
    pub fn flag_name(key: &str) -> String {
        key.replace('.', "-")
    }

    /// The environment variable of a key: `define.dirs` → `TASCREED_DEFINE_DIRS`.
    pub fn env_name(key: &str) -> String {
        format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
    }

    /// Sets one key from its textual value (as given by an override).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.set_from(key, value, Origin::Override)
    }

    /// The effective value of a key as text (the token shown masked), for logs and `--help`.
    pub fn value_of(&self, key: &str) -> Option<String> {
        let join = |dirs: &[PathBuf]| dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(",");
        Some(match key {
            "namespace" => self.namespace.clone(),
            "storage.url" => self.storage_url.clone(),
            "storage.sync" => match self.storage_sync {
                StorageSync::Normal => "normal".into(),
                StorageSync::Full => "full".into(),
            },
            "http.bind" => self.http_bind.to_string(),
            "http.token" => self.http_token.as_ref().map_or("unset", |_| "***").into(),
            "define.dirs" => join(&self.define_dirs),
            "define.graph.validate.enable" => self.define_graph_validate_enable.to_string(),
            "executor.dirs" => join(&self.executor_dirs),
            "executor.cache.dir" => self.executor_cache_dir.display().to_string(),
            "worker.max.count.per.host" => self.worker_max_count_per_host.to_string(),
            "worker.max.count.overall" => self.worker_max_count_overall.to_string(),
            "lease.ms" => self.lease_ms.to_string(),
            "heartbeat.ms" => self.heartbeat_ms.to_string(),
            "task.default.max.pick.times" => self.task_default_max_pick_times.to_string(),
            "task.retry.delay.ms" => self.task_retry_delay_ms.to_string(),
            "task.pick.backoff.ms" => self.task_pick_backoff_ms.to_string(),
            "ban.cache.ms" => self.ban_cache_ms.to_string(),
            "sweep.ms" => self.sweep_ms.to_string(),
            "monitor.ms" => self.monitor_ms.to_string(),
            "guest.fuel.default" => self.guest_fuel_default.to_string(),
            "guest.timeout.ms.default" => self.guest_timeout_ms_default.to_string(),
            "guest.memory.max.bytes" => self.guest_memory_max_bytes.to_string(),
            "archive.retention.hours" => self.archive_retention_hours.to_string(),
            "archive.task.enable" => self.archive_task_enable.to_string(),
            _ => return None,
        })
    }

    fn apply_env(&mut self, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        let mut alias_token = None;
        let mut direct_token = false;
        for (var, value) in env {
            if var == TOKEN_ENV_ALIAS {
                alias_token = Some(value);
                continue;
            }
            let Some(info) = KEYS.iter().find(|k| Self::env_name(k.key) == var) else { continue };
            direct_token |= info.key == "http.token";
            self.set_from(info.key, &value, Origin::Env(var))?;
        }
        if let (Some(value), false) = (alias_token, direct_token) {
            self.set_from("http.token", &value, Origin::Env(TOKEN_ENV_ALIAS.into()))?;
        }
        Ok(())
    }

    fn set_from(&mut self, key: &str, value: &str, origin: Origin) -> Result<(), ConfigError> {
        let Some(info) = KEYS.iter().find(|k| k.key == key) else {
            return Err(ConfigError::UnknownKey { key: key.to_string(), suggestion: closest_key(key), origin });
        };
        let v = Value { key: info.key, raw: value, origin };
        match info.key {
            "namespace" => self.namespace = v.non_empty()?,
            "storage.url" => self.storage_url = v.non_empty()?,
            "storage.sync" => self.storage_sync = v.sync()?,
            "http.bind" => self.http_bind = v.parse("a socket address such as 127.0.0.1:7070")?,
            "http.token" => self.http_token = Some(value.trim()).filter(|t| !t.is_empty()).map(str::to_string),
            "define.dirs" => self.define_dirs = v.dirs()?,
            "define.graph.validate.enable" => self.define_graph_validate_enable = v.boolean()?,
            "executor.dirs" => self.executor_dirs = v.dirs()?,
            "executor.cache.dir" => self.executor_cache_dir = PathBuf::from(v.non_empty()?),
            "worker.max.count.per.host" => self.worker_max_count_per_host = v.parse("a non-negative integer")?,
            "worker.max.count.overall" => self.worker_max_count_overall = v.positive()?,
            "lease.ms" => self.lease_ms = v.positive()?,
            "heartbeat.ms" => self.heartbeat_ms = v.positive()?,
            "task.default.max.pick.times" => {
                self.task_default_max_pick_times = v.parse("an integer (-1: unlimited)")?
            }
            "task.retry.delay.ms" => self.task_retry_delay_ms = v.parse("a non-negative integer")?,
            "task.pick.backoff.ms" => self.task_pick_backoff_ms = v.parse("a non-negative integer")?,
            "ban.cache.ms" => self.ban_cache_ms = v.parse("a non-negative integer")?,
            "sweep.ms" => self.sweep_ms = v.positive()?,
            "monitor.ms" => self.monitor_ms = v.positive()?,
            "guest.fuel.default" => self.guest_fuel_default = v.positive()?,
            "guest.timeout.ms.default" => self.guest_timeout_ms_default = v.positive()?,
            "guest.memory.max.bytes" => self.guest_memory_max_bytes = v.positive()?,
            "archive.retention.hours" => self.archive_retention_hours = v.parse("an integer (-1: forever)")?,
            "archive.task.enable" => self.archive_task_enable = v.boolean()?,
            // KEYS and this match are kept in step by a unit test.
            other => return Err(ConfigError::Inconsistent(format!("configuration key {other} has no setter"))),
        }
        Ok(())
    }

    /// Rules across keys.
    fn check(&self) -> Result<(), ConfigError> {
        if self.heartbeat_ms >= self.lease_ms {
            return Err(ConfigError::Inconsistent(format!(
                "heartbeat.ms ({}) must be less than lease.ms ({}), or leases expire between heartbeats",
                self.heartbeat_ms, self.lease_ms
            )));
        }
        Ok(())
    }
}

/// A textual value on its way to a typed field.
struct Value<'a> {
    key: &'static str,
    raw: &'a str,
    origin: Origin,
}

impl Value<'_> {
    fn bad(&self, expected: &'static str) -> ConfigError {
        ConfigError::BadValue { key: self.key, value: self.raw.to_string(), origin: self.origin.clone(), expected }
    }

    fn parse<T: std::str::FromStr>(&self, expected: &'static str) -> Result<T, ConfigError> {
        self.raw.trim().parse().map_err(|_| self.bad(expected))
    }

    fn positive<T: std::str::FromStr + Default + PartialOrd>(&self) -> Result<T, ConfigError> {
        let n: T = self.parse("a positive integer")?;
        if n > T::default() { Ok(n) } else { Err(self.bad("a positive integer")) }
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        match self.raw.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.bad("true or false")),
        }
    }

    fn non_empty(&self) -> Result<String, ConfigError> {
        let s = self.raw.trim();
        if s.is_empty() { Err(self.bad("a non-empty string")) } else { Ok(s.to_string()) }
    }

    fn sync(&self) -> Result<StorageSync, ConfigError> {
        match self.raw.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(StorageSync::Normal),
            "full" => Ok(StorageSync::Full),
            _ => Err(self.bad("normal or full")),
        }
    }

    fn dirs(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let dirs: Vec<PathBuf> =
            self.raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from).collect();
        if dirs.is_empty() { Err(self.bad("a comma-separated list of directories")) } else { Ok(dirs) }
    }
}

/// Parses the file and flattens TOML's tables back to the dotted keys they were written as.
fn parse_file(path: &Path, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
    let mut out = Vec::new();
    flatten(path, String::new(), &toml::Value::Table(table), &mut out)?;
    Ok(out)
}

fn flatten(
    path: &Path,
    prefix: String,
    value: &toml::Value,
    out: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    let bad_type =
        |found| ConfigError::BadType { key: prefix.clone(), origin: Origin::File(path.to_path_buf()), found };
    let text = match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(path, key, v, out)?;
            }
            return Ok(());
        }
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        // A list of directories reads naturally as a TOML array; anything else in one is not a value.
        toml::Value::Array(items) => {
            let parts: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
            parts.ok_or_else(|| bad_type("array of non-strings"))?.join(",")
        }
        toml::Value::Float(_) => return Err(bad_type("float")),
        toml::Value::Datetime(_) => return Err(bad_type("date-time")),
    };
    out.push((prefix, text));
    Ok(())
}

/// The known key nearest to a misspelt one, if it is plausibly what was meant.
fn closest_key(key: &str) -> Option<&'static str> {
    let wanted = key.replace(['-', '_'], ".").to_ascii_lowercase();
    KEYS.iter()
        .map(|k| (edit_distance(&wanted, k.key), k.key))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diag + usize::from(ca != *cb));
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_match_the_key_table() {
        let computed = Config::default();
        for info in KEYS {
            let mut c = Config::default();
            match info.default {
                "number of cores" => assert_eq!(c.worker_max_count_per_host, default_workers_per_host()),
                "unset" => assert_eq!(c.value_of(info.key).as_deref(), Some("unset")),
                d => {
                    c.set(info.key, d).unwrap_or_else(|e| panic!("{}: {e}", info.key));
                    assert_eq!(c, computed, "default of {}", info.key);
                    assert_eq!(c.value_of(info.key).as_deref(), Some(d), "{}", info.key);
                }
            }
        }
        assert!(computed.worker_max_count_per_host >= 1);
    }

    #[test]
    fn every_key_has_a_setter_and_a_value() {
        for info in KEYS {
            assert!(Config::default().value_of(info.key).is_some(), "{}", info.key);
        }
        assert_eq!(KEYS.len(), 24);
    }

    #[test]
    fn no_sources_gives_defaults() {
        assert_eq!(Config::load(None, Vec::new(), &[]).unwrap(), Config::default());
    }

    #[test]
    fn dotted_keys_in_the_file_are_flattened() {
        let f = file(
            "define.dirs = \"a, b\"\nworker.max.count.per.host = 4\ndefine.graph.validate.enable = false\n\
             storage.sync = \"full\"\nexecutor.dirs = [\"x\", \"y\"]\n[guest.timeout.ms]\ndefault = 5\n\
             [http]\nbind = \"0.0.0.0:80\"\n",
        );
        let c = Config::load(Some(f.path()), Vec::new(), &[]).unwrap();
        assert_eq!(c.define_dirs, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(c.executor_dirs, vec![PathBuf::from("x"), PathBuf::from("y")]);
        assert_eq!(c.worker_max_count_per_host, 4);
        assert!(!c.define_graph_validate_enable);
        assert_eq!(c.storage_sync, StorageSync::Full);
        assert_eq!(c.guest_timeout_ms_default, 5);
        assert_eq!(c.http_bind, "0.0.0.0:80".parse().unwrap());
    }

    #[test]
    fn overrides_beat_env_beat_file_beat_default() {
        let f = file("namespace = \"file\"\nstorage.url = \"file\"\nsweep.ms = 7\n");
        let e = env(&[("TASCREED_NAMESPACE", "env"), ("TASCREED_STORAGE_URL", "env")]);
        let o = vec![("namespace".to_string(), "flag".to_string())];
        let c = Config::load(Some(f.path()), e, &o).unwrap();
        assert_eq!(c.namespace, "flag");
        assert_eq!(c.storage_url, "env");
        assert_eq!(c.sweep_ms, 7);
        assert_eq!(c.monitor_ms, 5_000);
    }

    #[test]
    fn overrides_accept_flag_names() {
        let o = vec![("define-dirs".to_string(), "x".to_string()), ("lease.ms".to_string(), "90000".to_string())];
        let c = Config::load(None, Vec::new(), &o).unwrap();
        assert_eq!(c.define_dirs, vec![PathBuf::from("x")]);
        assert_eq!(c.lease_ms, 90_000);
        assert_eq!(Config::flag_name("define.dirs"), "define-dirs");
        assert_eq!(Config::env_name("worker.max.count.per.host"), "TASCREED_WORKER_MAX_COUNT_PER_HOST");
    }

    #[test]
    fn env_names_and_token_alias() {
        let c = Config::load(None, env(&[("TASCREED_SERVER", "x"), ("TASCREED_TOKEN", "alias"), ("HOME", "/")]), &[])
            .unwrap();
        assert_eq!(c.http_token.as_deref(), Some("alias"));
        let both = env(&[("TASCREED_HTTP_TOKEN", "direct"), ("TASCREED_TOKEN", "alias")]);
        assert_eq!(Config::load(None, both, &[]).unwrap().http_token.as_deref(), Some("direct"));
        let empty = env(&[("TASCREED_HTTP_TOKEN", "")]);
        assert_eq!(Config::load(None, empty, &[]).unwrap().http_token, None);
    }

    #[test]
    fn unknown_key_is_named_with_a_suggestion() {
        let f = file("define.dir = \"x\"\n");
        let e = Config::load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`define.dir`") && msg.contains("did you mean `define.dirs`"), "{msg}");
        let o = vec![("no-such-thing".to_string(), "1".to_string())];
        let msg = Config::load(None, Vec::new(), &o).unwrap_err().to_string();
        assert!(msg.contains("no.such.thing") && !msg.contains("did you mean"), "{msg}");
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            ("worker.max.count.per.host", "many"),
            ("lease.ms", "0"),
            ("storage.sync", "sometimes"),
            ("http.bind", "localhost"),
            ("archive.task.enable", "yes"),
            ("define.dirs", " , "),
        ];
        for (key, value) in cases {
            let o = vec![(key.to_string(), value.to_string())];
            let msg = Config::load(None, Vec::new(), &o).unwrap_err().to_string();
            assert!(msg.contains(key) && msg.contains(&format!("{value:?}")), "{msg}");
        }
        let e = env(&[("TASCREED_SWEEP_MS", "-5")]);
        let msg = Config::load(None, e, &[]).unwrap_err().to_string();
        assert!(msg.contains("TASCREED_SWEEP_MS") && msg.contains("\"-5\""), "{msg}");
        let f = file("monitor.ms = 1.5\n");
        let msg = Config::load(Some(f.path()), Vec::new(), &[]).unwrap_err().to_string();
        assert!(msg.contains("monitor.ms") && msg.contains("float"), "{msg}");
    }

    #[test]
    fn file_errors_name_the_file() {
        let f = file("define.dirs = \n");
        let msg = Config::load(Some(f.path()), Vec::new(), &[]).unwrap_err().to_string();
        assert!(msg.contains("not valid TOML"), "{msg}");
        let missing = Path::new("/nonexistent/tascreed.toml");
        assert!(matches!(Config::load(Some(missing), Vec::new(), &[]), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn heartbeat_must_be_below_lease() {
        let o = vec![("heartbeat.ms".to_string(), "60000".to_string())];
        assert!(matches!(Config::load(None, Vec::new(), &o), Err(ConfigError::Inconsistent(_))));
    }

    #[test]
    fn negative_means_unlimited_for_signed_keys() {
        let o = vec![
            ("task.default.max.pick.times".to_string(), "3".to_string()),
            ("archive.retention.hours".to_string(), "-1".to_string()),
        ];
        let c = Config::load(None, Vec::new(), &o).unwrap();
        assert_eq!((c.task_default_max_pick_times, c.archive_retention_hours), (3, -1));
    }
}
