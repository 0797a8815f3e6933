//! `counter`: a checkpoint executor. The checkpoint is a decimal count (UTF-8); each round adds
//! one, sleeps `roundMs`, reports progress and finishes once the count reaches `rounds`.
//!
//! Params: `rounds` (default 10), `roundMs` (default 0), `failAt` (optional: the round whose new
//! count equals it fails with `non-retry`).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

/// The count stored in a checkpoint: none or empty is 0.
fn parse_checkpoint(checkpoint: Option<&[u8]>) -> Result<u64, String> {
    let bytes = match checkpoint {
        None | Some([]) => return Ok(0),
        Some(bytes) => bytes,
    };
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| format!("bad checkpoint: {:?} is not a decimal count", String::from_utf8_lossy(bytes)))
}

/// A non-negative integer param, `None` when absent.
fn u64_param(value: Option<&str>, name: &str) -> Result<Option<u64>, String> {
    value
        .map(|v| v.trim().parse::<u64>().map_err(|_| format!("bad param {name}: {v:?} is not a non-negative integer")))
        .transpose()
}

/// `count * 100 / rounds`, capped at 100 (and 100 for `rounds == 0`).
fn percent(count: u64, rounds: u64) -> u8 {
    if rounds == 0 {
        return 100;
    }
    let p = u128::from(count) * 100 / u128::from(rounds);
    p.min(100) as u8
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "executor", path: "../../wit" });

    use std::time::{Duration, Instant};

    use tascreed::executor::host;
    use tascreed::executor::types::Status;

    struct Counter;

    impl Guest for Counter {
        fn describe() -> Manifest {
            Manifest {
                name: "counter".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                bindings: Vec::new(),
                checkpoint: true,
            }
        }

        fn execute(_task: Task) -> Result<Outcome, TaskError> {
            Err(TaskError::NonRetry("counter is a checkpoint executor".into()))
        }

        fn execute_round(task: Task, checkpoint: Option<Vec<u8>>) -> Result<Round, TaskError> {
            let count = super::parse_checkpoint(checkpoint.as_deref()).map_err(TaskError::NonRetry)?;
            let rounds = param(&task, "rounds")?.unwrap_or(10);
            let round_ms = param(&task, "roundMs")?.unwrap_or(0);
            let fail_at = param(&task, "failAt")?;

            let count = count.saturating_add(1);
            sleep_for(Duration::from_millis(round_ms))?;
            if fail_at == Some(count) {
                return Err(TaskError::NonRetry(format!("counter failAt {count}")));
            }
            host::progress(super::percent(count, rounds));
            let finished = (count >= rounds).then(|| Outcome {
                status: Status::Success,
                reason: None,
                updated_params: Vec::new(),
                updated_configs: Vec::new(),
            });
            Ok(Round { checkpoint: count.to_string().into_bytes(), finished })
        }
    }

    export!(Counter);

    fn param(task: &Task, name: &str) -> Result<Option<u64>, TaskError> {
        let value = task.params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        super::u64_param(value, name).map_err(TaskError::NonRetry)
    }

    /// Sleeps, asking the host at least every 100 ms whether the task is still ours.
    fn sleep_for(total: Duration) -> Result<(), TaskError> {
        let deadline = Instant::now() + total;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
            if !host::still_occupied() {
                return Err(TaskError::NonRetry("lost occupation".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint() {
        assert_eq!(parse_checkpoint(None), Ok(0));
        assert_eq!(parse_checkpoint(Some(b"")), Ok(0));
        assert_eq!(parse_checkpoint(Some(b"7")), Ok(7));
        assert_eq!(parse_checkpoint(Some(b"18446744073709551615")), Ok(u64::MAX));
        for bad in [&b"x"[..], b"-1", b"1.5", b"\xff", b" 3"] {
            assert!(parse_checkpoint(Some(bad)).unwrap_err().starts_with("bad checkpoint: "));
        }
    }

    #[test]
    fn params() {
        assert_eq!(u64_param(None, "rounds"), Ok(None));
        assert_eq!(u64_param(Some("12"), "rounds"), Ok(Some(12)));
        let err = u64_param(Some("ten"), "roundMs").unwrap_err();
        assert!(err.contains("roundMs"), "{err}");
        assert!(u64_param(Some("-3"), "failAt").is_err());
    }

    #[test]
    fn progress() {
        assert_eq!(percent(1, 10), 10);
        assert_eq!(percent(3, 7), 42);
        assert_eq!(percent(10, 10), 100);
        assert_eq!(percent(12, 10), 100);
        assert_eq!(percent(1, 0), 100);
        assert_eq!(percent(u64::MAX, 1), 100);
    }
}
