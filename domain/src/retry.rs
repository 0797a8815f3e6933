//! Failed attempts, in-place retries, give-ups and the pick limit (spec §10.6) as arithmetic.

/// Delays and limits; defaults are TasCreed's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts within one pick for retryable errors.
    pub attempts_per_pick: u32,
    /// Delay before the first in-place retry; doubles each time (`task.retry.delay.ms`).
    pub retry_delay_ms: i64,
    /// Back-off step between picks after the free picks (`task.pick.backoff.ms`).
    pub pick_backoff_ms: i64,
    /// Give-ups re-picked without back-off.
    pub free_picks: u32,
    /// Back-off stops growing after this many steps.
    pub max_backoff_steps: u32,
    /// Pick limit for tasks without `maxPickTimes`; negative = unlimited.
    pub default_max_pick_times: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_per_pick: 5,
            retry_delay_ms: 1000,
            pick_backoff_ms: 30_000,
            free_picks: 5,
            max_backoff_steps: 10,
            default_max_pick_times: -1,
        }
    }
}

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Transient (`task-error::retry`, or no terminal result): retried in place.
    Retry,
    /// Not worth retrying in place (`task-error::non-retry`, a trap): gives the pick up.
    NonRetry,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run again within this pick after `delay_ms`.
    RetryInPlace {
        /// Sleep before the next attempt.
        delay_ms: i64,
    },
    /// Release the task; it may be picked again from `after` on (`None`: at once).
    GiveUp {
        /// The task's new `after`.
        after: Option<i64>,
    },
    /// End the task as ERROR with this reason.
    EndError {
        /// "picked times P exceeds max pick times L".
        reason: String,
    },
}

/// The counters and the verdict after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    /// New `pickedTimes`.
    pub picked_times: u32,
    /// New `triedTimes`.
    pub tried_times: u32,
    /// What to do.
    pub verdict: Verdict,
}

impl RetryPolicy {
    /// After the `attempt`-th (1-based) attempt of the current pick failed with `kind`.
    pub fn after_failed_attempt(
        &self,
        picked_times: u32,
        tried_times: u32,
        attempt: u32,
        kind: FailureKind,
        max_pick_times: Option<i64>,
        now_ms: i64,
    ) -> Next {
        let tried_times = tried_times.saturating_add(1);
        if kind == FailureKind::Retry && attempt < self.attempts_per_pick {
            let doublings = attempt.saturating_sub(1).min(30);
            let delay_ms = self.retry_delay_ms.saturating_mul(1i64 << doublings);
            return Next { picked_times, tried_times, verdict: Verdict::RetryInPlace { delay_ms } };
        }
        let mut next = self.after_give_up(picked_times, max_pick_times, now_ms);
        next.tried_times = tried_times;
        next
    }

    /// A pick given up without an attempt (e.g. the executor could not be prepared):
    /// counts the pick, checks the limit, applies back-off. `tried_times` is left at 0 here;
    /// callers keep their own.
    pub fn after_give_up(&self, picked_times: u32, max_pick_times: Option<i64>, now_ms: i64) -> Next {
        let picked_times = picked_times.saturating_add(1);
        let limit = max_pick_times.unwrap_or(self.default_max_pick_times);
        let verdict = if limit >= 0 && i64::from(picked_times) > limit {
            Verdict::EndError { reason: format!("picked times {picked_times} exceeds max pick times {limit}") }
        } else {
            let wait = self.backoff_ms(picked_times);
            Verdict::GiveUp { after: (wait > 0).then(|| now_ms.saturating_add(wait)) }
        };
        Next { picked_times, tried_times: 0, verdict }
    }

    /// Back-off before the next pick after `picked_times` give-ups.
    pub fn backoff_ms(&self, picked_times: u32) -> i64 {
        let steps = picked_times.saturating_sub(self.free_picks).min(self.max_backoff_steps);
        self.pick_backoff_ms.saturating_mul(i64::from(steps))
    }
}
