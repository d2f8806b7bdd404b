//! The retry layer: whether a failed attempt may be sent again, and the deadline over all
//! attempts. callgate resends only what cannot be a second request at the vendor:
//!
//! - anything that provably never left because the connection was refused at once (a connect
//!   that *timed out* is not tried again: a second try would double the wait for nothing);
//! - for reads only, a request on a reused idle connection that failed before any answer (the
//!   vendor had closed the connection while it was idle).
//!
//! A write that may have arrived is never resent; the write path reports it as
//! `"outcome": "unknown"`. At most one resend; the provider's timeout covers every attempt.
//!
//! Reads are also tried again on an *answer* that says "try again" ([`after_answer`]): a 502,
//! 503 or 504 after a jittered backoff, a 429 whose `Retry-After` is short enough to wait for —
//! at most [`MAX_READ_ATTEMPTS`] in all, within the provider's timeout, and only while the
//! provider's [`RetryBudget`] allows (retries at most 20 % of its reads), so retries never
//! multiply the load on a vendor that is already failing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Attempts of one read at most, the first included.
pub const MAX_READ_ATTEMPTS: u32 = 3;

/// The longest `Retry-After` a read waits for before trying again; a longer one is passed on.
pub const MAX_HONOURED_WAIT: Duration = Duration::from_secs(1);

/// The first backoff's ceiling; it doubles per attempt ("full jitter": a random wait below it).
const BACKOFF_BASE: Duration = Duration::from_millis(50);

/// Whether a read's answer may be tried again, and after how long.
pub fn after_answer(status: u16, retry_after: Option<&str>, attempt: u32) -> Option<Duration> {
    match status {
        502..=504 => Some(backoff(attempt)),
        429 => retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .filter(|wait| *wait <= MAX_HONOURED_WAIT),
        _ => None,
    }
}

/// A random wait below `BACKOFF_BASE × 2^attempt` (full jitter), so clients that failed
/// together do not come back together.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.min(6));
    ceiling.mul_f64(fastrand::f64())
}

/// Per provider, how many retries its reads have earned: each read deposits 0.2, each retry
/// takes 1 (so retries stay under 20 % of reads), starting from 2 so a quiet provider can
/// still retry, and capped at 10 so a long calm cannot buy a storm.
#[derive(Default)]
pub struct RetryBudget {
    /// In tenths of a retry (exact arithmetic).
    balances: Mutex<HashMap<String, u32>>,
}

impl RetryBudget {
    const PER_READ: u32 = 2;
    const PER_RETRY: u32 = 10;
    const START: u32 = 20;
    const CAP: u32 = 100;

    /// One read of `provider`.
    pub fn deposit(&self, provider: &str) {
        if let Ok(mut b) = self.balances.lock() {
            let balance = b.entry(provider.to_string()).or_insert(Self::START);
            *balance = (*balance + Self::PER_READ).min(Self::CAP);
        }
    }

    /// Takes one retry of `provider`'s reads, if its budget has one.
    pub fn withdraw(&self, provider: &str) -> bool {
        let Ok(mut b) = self.balances.lock() else {
            return false;
        };
        let balance = b.entry(provider.to_string()).or_insert(Self::START);
        match balance.checked_sub(Self::PER_RETRY) {
            Some(left) => {
                *balance = left;
                true
            }
            None => false,
        }
    }
}

/// What the plan allows to be resent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resend {
    /// A read: also after a stale pooled connection failed before any answer.
    Read,
    /// A write: only when it provably never left.
    WriteNeverSent,
}

/// How far a failed attempt got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// No connection was made: the request never left. `again`: a second try may succeed (a
    /// refused connection); not after a connect timeout (it would wait as long again) or a
    /// certificate the vendor will present again.
    Never { again: bool },
    /// A reused idle connection failed before any answer arrived.
    StaleConnection,
    /// The request may have arrived.
    Maybe,
}

impl Resend {
    /// May an attempt that failed this far be sent again?
    pub fn allows(self, reached: Reached) -> bool {
        match reached {
            Reached::Never { again } => again,
            Reached::StaleConnection => self == Resend::Read,
            Reached::Maybe => false,
        }
    }
}

/// Runs `attempt`, once more when `resend` allows, all within `deadline`; past it, `timeout()`.
pub async fn run<T, E, F, Fut>(
    resend: Resend,
    deadline: Duration,
    timeout: impl FnOnce() -> E,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, (E, Reached)>>,
{
    let attempts = async {
        match attempt().await {
            Err((_, reached)) if resend.allows(reached) => {
                tracing::debug!(
                    ?reached,
                    "attempt failed before reaching the vendor; once more"
                );
                attempt().await.map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    };
    tokio::time::timeout(deadline, attempts)
        .await
        .unwrap_or_else(|_| Err(timeout()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn answers_that_say_try_again_are_retried_after_a_jittered_wait() {
        for attempt in 0..3 {
            let wait = after_answer(503, None, attempt).expect("retried");
            assert!(wait <= BACKOFF_BASE * (1 << attempt), "{wait:?}");
        }
        assert!(after_answer(502, None, 0).is_some() && after_answer(504, None, 0).is_some());
        assert_eq!(
            after_answer(500, None, 0),
            None,
            "a 500 may be the request's fault"
        );
        assert_eq!(after_answer(404, None, 0), None);
        assert_eq!(
            after_answer(429, Some("1"), 0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(after_answer(429, Some("7"), 0), None, "too long: passed on");
        assert_eq!(after_answer(429, None, 0), None);
    }

    #[test]
    fn the_budget_keeps_retries_under_a_fifth_of_reads() {
        let b = RetryBudget::default();
        // The starting allowance, then nothing until reads earn more.
        assert!(b.withdraw("p") && b.withdraw("p"));
        assert!(!b.withdraw("p"));
        for _ in 0..10 {
            b.deposit("p");
        }
        assert!(b.withdraw("p") && b.withdraw("p"));
        assert!(!b.withdraw("p"), "10 reads earned 2 retries");
        // A long calm is capped.
        for _ in 0..1_000 {
            b.deposit("q");
        }
        let retries = (0..100).take_while(|_| b.withdraw("q")).count();
        assert_eq!(retries, 10);
    }

    /// Runs with attempts that fail as `first` says, then succeed; returns the attempts made.
    async fn attempts(resend: Resend, first: Reached) -> (Result<u8, &'static str>, usize) {
        let n = AtomicUsize::new(0);
        let result = run(
            resend,
            Duration::from_secs(60),
            || "timeout",
            || async {
                match n.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(("failed", first)),
                    _ => Ok(7),
                }
            },
        )
        .await;
        (result, n.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn reads_are_resent_unless_they_may_have_arrived() {
        assert_eq!(
            attempts(Resend::Read, Reached::Never { again: true }).await,
            (Ok(7), 2)
        );
        assert_eq!(
            attempts(Resend::Read, Reached::StaleConnection).await,
            (Ok(7), 2)
        );
        assert_eq!(
            attempts(Resend::Read, Reached::Maybe).await,
            (Err("failed"), 1)
        );
    }

    #[tokio::test]
    async fn writes_are_resent_only_when_they_never_left() {
        let w = Resend::WriteNeverSent;
        assert_eq!(
            attempts(w, Reached::Never { again: true }).await,
            (Ok(7), 2)
        );
        assert_eq!(
            attempts(w, Reached::StaleConnection).await,
            (Err("failed"), 1)
        );
        assert_eq!(attempts(w, Reached::Maybe).await, (Err("failed"), 1));
    }

    #[tokio::test]
    async fn a_connect_that_timed_out_or_a_bad_certificate_is_not_tried_again() {
        for resend in [Resend::Read, Resend::WriteNeverSent] {
            assert_eq!(
                attempts(resend, Reached::Never { again: false }).await,
                (Err("failed"), 1)
            );
        }
    }

    #[tokio::test]
    async fn at_most_one_resend() {
        let n = AtomicUsize::new(0);
        let result: Result<u8, _> = run(
            Resend::Read,
            Duration::from_secs(60),
            || "t",
            || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(("refused", Reached::Never { again: true }))
            },
        )
        .await;
        assert_eq!((result, n.load(Ordering::SeqCst)), (Err("refused"), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_covers_every_attempt() {
        // Each attempt alone is within the deadline; the two together are not (tokio's paused
        // clock: exact on any machine).
        let deadline = Duration::from_millis(200);
        let result: Result<u8, _> = run(
            Resend::Read,
            deadline,
            || "timeout",
            || async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Err(("refused", Reached::Never { again: true }))
            },
        )
        .await;
        assert_eq!(result, Err("timeout"));
    }
}
