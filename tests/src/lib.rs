//! Harness for black-box tests: runs `tascreed serve` as a real process on an ephemeral port,
//! with its own database, define folder and executor folder, and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `tascreed` binary built next to this test binary (`target/<profile>/tascreed`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = dir.join("tascreed");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p tascreed`", bin.display());
    bin
}

/// Folder of the built guests: `TASCREED_PLUGINS_DIR`, else `<workspace>/target/plugins`.
pub fn plugins_dir() -> PathBuf {
    std::env::var_os("TASCREED_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

/// A private folder for one test: `db`, `defines/`, `executors/` (the example guests).
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("defines")).expect("defines dir");
        std::fs::create_dir_all(dir.path().join("executors")).expect("executors dir");
        for name in ["noop", "scripted", "counter", "range-sum"] {
            let from = plugins_dir().join(format!("{name}.wasm"));
            std::fs::copy(&from, dir.path().join("executors").join(format!("{name}.wasm")))
                .unwrap_or_else(|e| panic!("{}: {e}; build the guests with `cargo xtask plugins`", from.display()));
        }
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("bulletin.db")
    }

    pub fn defines(&self) -> PathBuf {
        self.path().join("defines")
    }

    pub fn executors(&self) -> PathBuf {
        self.path().join("executors")
    }

    /// Writes `defines/<name>.json`.
    pub fn define(&self, name: &str, json: &str) {
        std::fs::write(self.defines().join(format!("{name}.json")), json).expect("write define");
    }

    /// Arguments for `tascreed serve` on this workspace, an ephemeral port, fast timings and
    /// a shared artifact cache (so guests compile once per test run).
    pub fn serve_args(&self) -> Vec<String> {
        let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/serve-artifact-cache");
        [
            ("storage-url", format!("sqlite:{}", self.db().display())),
            ("define-dirs", self.defines().display().to_string()),
            ("executor-dirs", self.executors().display().to_string()),
            ("executor-cache-dir", cache.display().to_string()),
            ("http-bind", "127.0.0.1:0".into()),
            ("sweep-ms", "100".into()),
            ("lease-ms", "3000".into()),
            ("heartbeat-ms", "500".into()),
            ("task-retry-delay-ms", "10".into()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [format!("--{k}"), v])
        .collect()
    }

    /// Starts `tascreed serve` with [`Workspace::serve_args`] plus `extra` flags.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut args = self.serve_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::start(&args, &[])
    }

    /// Runs `tascreed serve` with [`Workspace::serve_args`] and `extra` flags (a flag given in
    /// both takes `extra`'s value) for a start that must fail: returns the exit status and
    /// stderr. Panics if the process is still running after 60 s (it started serving).
    pub fn serve_expecting_exit(&self, extra: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
        let mut args = self.serve_args();
        for (flag, value) in extra {
            set_flag(&mut args, flag, value);
        }
        let log = tempfile::NamedTempFile::new().expect("log file");
        let stderr = log.reopen().expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve").args(&args).stdout(Stdio::null()).stderr(stderr).env("RUST_LOG", "info,cranelift=warn");
        strip_tascreed_env(&mut cmd);
        let mut child = cmd.spawn().expect("start tascreed serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for tascreed serve") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                panic!("tascreed serve {args:?} kept running instead of exiting:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, std::fs::read_to_string(log.path()).unwrap_or_default())
    }
}

/// Sets `--flag value` in `args`: replaces the value of an existing `--flag`, else appends it.
pub fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    let name = format!("--{flag}");
    match args.iter().position(|a| *a == name) {
        Some(i) if i + 1 < args.len() => args[i + 1] = value.to_string(),
        _ => args.extend([name, value.to_string()]),
    }
}

/// Removes every `TASCREED_*` variable the caller's environment would pass on (a developer's
/// exported `TASCREED_TOKEN` or `TASCREED_HTTP_BIND` must not change what a test starts).
pub fn strip_tascreed_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("TASCREED_")) {
            cmd.env_remove(k);
        }
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `tascreed serve` process; killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary with `serve` and `args`, waiting until it prints its address. The
    /// caller's `TASCREED_*` variables are not passed on; `env` is.
    pub fn start(args: &[String], env: &[(&str, &str)]) -> Server {
        let log = tempfile::NamedTempFile::new().expect("log file").into_temp_path().keep().expect("keep log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve").args(args).stdout(Stdio::piped()).stderr(stderr).env("RUST_LOG", "info,cranelift=warn");
        strip_tascreed_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tascreed serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("tascreed listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            // A wildcard bind is reached over loopback.
            Ok(base) => Server { child, base: base.replace("://0.0.0.0:", "://127.0.0.1:"), log },
            Err(_) => {
                let _ = child.kill();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("tascreed serve did not start:\n{text}");
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no shutdown, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let resp = ureq::get(&self.url(path)).config().http_status_as_error(false).build().call().expect("GET");
        read(resp)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp =
            ureq::post(&self.url(path)).config().http_status_as_error(false).build().send_json(body).expect("POST");
        read(resp)
    }

    /// Waits until `GET path` satisfies `ok`, or panics after `secs`.
    pub fn wait(&self, path: &str, secs: u64, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (_, v) = self.get(path);
            if ok(&v) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("GET {path} never satisfied the condition in {secs}s; last: {v}\nlog:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits for the job's `state`.
    pub fn wait_job_state(&self, job: &str, trigger: &str, state: &str) -> Value {
        self.wait(&format!("/api/v1/job/{job}/{trigger}"), 60, |v| v["state"] == state)
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- additions for process-level node tests (node_process.rs) ----

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node id this process registers and leases with: `<hostname>-<pid>`.
    pub fn node_id(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", self.pid())
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, `INT`, …) with `kill`.
    pub fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Sends `signal` and waits (at most `secs`) for the process to exit; returns its status.
    pub fn stop_with(&mut self, signal: &str, secs: u64) -> std::process::ExitStatus {
        self.signal(signal);
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for tascreed serve") {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("tascreed serve did not exit {secs}s after SIG{signal}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `secs`) until the log contains `text`.
    pub fn wait_log(&self, text: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            if Instant::now() > deadline {
                panic!("log never contained {text:?} in {secs}s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Workspace {
    /// The bulletin of this workspace, opened from the test process (another "process" on the
    /// same database file).
    pub fn bulletin(&self) -> tascreed_bulletin::SqliteBulletin {
        tascreed_bulletin::SqliteBulletin::open(&tascreed_bulletin::SqliteOptions::new(self.db())).expect("bulletin")
    }

    /// Writes `defines/<name>.json` and submits `request` for it straight into the database,
    /// as another node's API would; serving nodes pick it up on their next sweep.
    pub fn submit(
        &self,
        bulletin: &dyn tascreed_bulletin::Bulletin,
        define: &str,
        request: &str,
    ) -> tascreed_domain::Job {
        let define = tascreed_domain::JobDefine::load(define, Default::default()).expect("define is valid");
        let request = tascreed_domain::JobRequest::parse(request).expect("request parses");
        let now = bulletin.now_ms().expect("clock");
        let job = tascreed_domain::build_job(&define, &request, now).expect("job builds");
        let unique = define.unique_alive();
        match bulletin.submit(&job, unique).expect("submit") {
            tascreed_bulletin::Submitted::Created(job) => job,
            other => panic!("not created: {other:?}"),
        }
    }
}

/// Polls `f` every 20 ms until it yields `Some`, or panics naming `what` after `secs`.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Raw requests, for API tests that need methods, headers or bodies the helpers above do not
/// send (wrong content types, tokens, uploads).
impl Server {
    /// `method path` with `headers` and `body`; any status is returned, never an error.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        let mut builder = ureq::http::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.to_vec()).expect("request");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        read(agent.run(request).unwrap_or_else(|e| panic!("{method} {path}: {e}")))
    }

    /// `PUT path` without a body (bans, resumes).
    pub fn put(&self, path: &str) -> (u16, Value) {
        self.request("PUT", path, &[], b"")
    }

    /// `PUT path` with raw bytes (executor uploads).
    pub fn put_bytes(&self, path: &str, bytes: &[u8]) -> (u16, Value) {
        self.request("PUT", path, &[("content-type", "application/wasm")], bytes)
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.request("DELETE", path, &[], b"")
    }

    /// `POST path` with a JSON body given as text (e.g. malformed on purpose).
    pub fn post_text(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        self.request("POST", path, &[("content-type", content_type)], body.as_bytes())
    }
}

/// Asserts an error answer: status, `errorType`, and a phrase of the message.
#[track_caller]
pub fn assert_error(answer: &(u16, Value), status: u16, error_type: &str, phrase: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "status of {body}");
    assert_eq!(body["errorType"], error_type, "errorType of {body}");
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains(phrase), "message {message:?} lacks {phrase:?}");
    let code = body["errorCode"].as_i64().unwrap_or_default();
    assert!(message.starts_with(&format!("[{code}, {error_type}] ")), "message {message:?} lacks its prefix");
}
