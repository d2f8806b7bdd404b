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

use std::future::Future;
use std::time::Duration;

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

    #[tokio::test]
    async fn the_deadline_covers_every_attempt() {
        // Each attempt alone is within the deadline; the two together are not, on any machine.
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
