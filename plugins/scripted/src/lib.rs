//! `scripted`: a test double whose behaviour for each attempt comes from the task's `script`
//! param (see `script` and the README), so any scenario can be played without a new executor.
//!
//! The language itself is in [`script`], plain Rust tested on the native target; the component
//! glue below exists only on wasm32.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod script;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "executor", path: "../../wit" });

    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use crate::script::{self, Action, Kind};
    use tascreed::executor::host::{self, Level};
    use tascreed::executor::types::Status;

    struct Scripted;

    impl Guest for Scripted {
        fn describe() -> Manifest {
            Manifest {
                name: "scripted".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                bindings: Vec::new(),
                checkpoint: false,
            }
        }

        fn execute(task: Task) -> Result<Outcome, TaskError> {
            let script = param(&task, "script");
            let action = match script::select(script, &task.task_name, &task.step_name, task.tried_times) {
                Ok(action) => action,
                Err(what) => {
                    let msg = format!("bad script param: {what}");
                    host::log(
                        Level::Warn,
                        &format!("scripted: task {} attempt {} {msg}", task.task_name, task.tried_times),
                    );
                    return Err(TaskError::NonRetry(msg));
                }
            };
            host::log(
                Level::Info,
                &format!(
                    "scripted: task {} attempt {} action {}",
                    task.task_name,
                    task.tried_times,
                    action.kind.name()
                ),
            );
            if let Some(until) = action.until_ms {
                sleep_until_epoch_ms(until)?;
            }
            sleep_for(Duration::from_millis(action.sleep_ms))?;
            if matches!(action.kind, Kind::Probe) {
                return Ok(probe(param(&task, "probeAddr").unwrap_or("127.0.0.1:9")));
            }
            act(action)
        }

        fn execute_round(_task: Task, _checkpoint: Option<Vec<u8>>) -> Result<Round, TaskError> {
            Err(TaskError::NonRetry("scripted is not a checkpoint executor".into()))
        }
    }

    export!(Scripted);

    fn param<'a>(task: &'a Task, name: &str) -> Option<&'a str> {
        task.params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn act(action: Action) -> Result<Outcome, TaskError> {
        let status = match action.kind {
            Kind::Ok => Status::Success,
            Kind::Fail => Status::Failed,
            Kind::Err => Status::Error,
            Kind::Retry => {
                return Err(TaskError::Retry(action.reason.unwrap_or_else(|| "scripted retry".into())));
            }
            Kind::NonRetry => {
                return Err(TaskError::NonRetry(action.reason.unwrap_or_else(|| "scripted non-retry".into())));
            }
            Kind::Panic => match action.reason {
                Some(reason) => panic!("scripted panic: {reason}"),
                None => panic!("scripted panic"),
            },
            Kind::Spin => spin(),
            Kind::Hog => hog(),
            Kind::Probe => return Ok(probe("127.0.0.1:9")),
        };
        Ok(Outcome {
            status,
            reason: action.reason,
            updated_params: action.updated_params,
            updated_configs: action.updated_configs,
        })
    }

    /// Burns fuel forever; only the host's fuel or wall-clock limit ends it.
    fn spin() -> ! {
        let mut x: u64 = 1;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407));
        }
    }

    /// Allocates (and writes) 1 MiB chunks forever; only the host's memory cap ends it.
    fn hog() -> ! {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            chunks.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&mut chunks);
        }
    }

    const CHECK_EVERY: Duration = Duration::from_millis(100);

    fn lost() -> TaskError {
        TaskError::NonRetry("lost occupation".into())
    }

    fn sleep_for(total: Duration) -> Result<(), TaskError> {
        let deadline = Instant::now() + total;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            std::thread::sleep((deadline - now).min(CHECK_EVERY));
            if !host::still_occupied() {
                return Err(lost());
            }
        }
    }

    fn sleep_until_epoch_ms(until_ms: u64) -> Result<(), TaskError> {
        let until = UNIX_EPOCH + Duration::from_millis(until_ms);
        loop {
            let Ok(left) = until.duration_since(SystemTime::now()) else {
                return Ok(());
            };
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(CHECK_EVERY));
            if !host::still_occupied() {
                return Err(lost());
            }
        }
    }

    /// What the sandbox lets a guest see and do; each probe reports "allowed" or "denied: <err>".
    /// The TCP probe connects to `addr` (param `probeAddr`): point it at a live listener, so that
    /// a refusal can only come from the sandbox.
    fn probe(addr: &str) -> Outcome {
        fn verdict<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
            match r {
                Ok(_) => "allowed".into(),
                Err(e) => format!("denied: {e}"),
            }
        }

        println!("probe stdout line");
        eprintln!("probe stderr line");

        let env = std::env::vars().count();
        let _home = std::hint::black_box(std::env::var("HOME"));
        let args = std::env::args().count();

        let fs = match std::fs::read_dir("/") {
            Ok(_) => Ok(()),
            Err(dir_err) => std::fs::read("/etc/passwd")
                .map(|_| ())
                .map_err(|file_err| format!("read_dir /: {dir_err}; read /etc/passwd: {file_err}")),
        };
        let write = std::fs::File::create("probe.txt");
        let net = std::net::TcpStream::connect(addr);
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|sock| sock.send_to(b"probe", addr));
        let dns = std::net::ToSocketAddrs::to_socket_addrs("localhost:80");

        Outcome {
            status: Status::Success,
            reason: None,
            updated_params: vec![
                ("probe.env".into(), env.to_string()),
                ("probe.args".into(), args.to_string()),
                ("probe.fs".into(), verdict(fs)),
                ("probe.write".into(), verdict(write)),
                ("probe.net".into(), verdict(net)),
                ("probe.udp".into(), verdict(udp)),
                ("probe.dns".into(), verdict(dns)),
            ],
            updated_configs: Vec::new(),
        }
    }
}
