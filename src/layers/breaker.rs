//! The circuit-breaker layer: per provider × operation, outlier detection in Envoy's manner. A
//! circuit opens after `consecutive_failures` failures in a row, or when at least
//! `min_requests` exchanges in the current window failed at `failure_rate_percent` or more.
//! While open, requests are refused at once (`503 provider_unavailable` with `Retry-After`)
//! without asking the vendor. When the open time is over, the circuit is half-open: up to
//! `half_open_probes` requests go through; a success closes it, a failure opens it again for
//! longer (the open time doubles per trip in a row, up to `max_open`).
//!
//! A failure is what says the vendor is unwell: no answer (connect failure, timeout, broken
//! connection) or a 5xx. Client-side answers (4xx, including 429) are the vendor answering.
//! The state is the gateway's, kept across reloads; the settings are the provider's config.

use crate::canonical::{ErrorCode, Operation, Problem};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A provider's breaker settings (`[providers.NAME.circuit_breaker]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerSettings {
    pub enabled: bool,
    pub consecutive_failures: u32,
    pub failure_rate_percent: u32,
    pub min_requests: u32,
    pub window: Duration,
    pub open_for: Duration,
    pub max_open: Duration,
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            enabled: true,
            consecutive_failures: 5,
            failure_rate_percent: 50,
            min_requests: 20,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            max_open: Duration::from_secs(60),
            half_open_probes: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// Probing: `probes` requests let through since `since`.
    HalfOpen {
        probes: u32,
        since: Instant,
    },
}

#[derive(Debug)]
struct Circuit {
    state: State,
    consecutive: u32,
    window_start: Instant,
    total: u32,
    failures: u32,
    /// Times opened in a row without closing (the open time doubles with each).
    trips: u32,
}

impl Circuit {
    fn new(now: Instant) -> Circuit {
        Circuit {
            state: State::Closed,
            consecutive: 0,
            window_start: now,
            total: 0,
            failures: 0,
            trips: 0,
        }
    }

    fn open(&mut self, s: &BreakerSettings, now: Instant) {
        let factor = 1u32 << self.trips.min(16);
        let open_for = s.open_for.saturating_mul(factor).min(s.max_open);
        self.state = State::Open {
            until: now + open_for,
        };
        self.trips = self.trips.saturating_add(1);
        self.consecutive = 0;
        self.total = 0;
        self.failures = 0;
        self.window_start = now;
    }

    fn tripped(&self, s: &BreakerSettings) -> bool {
        let by_streak = s.consecutive_failures > 0 && self.consecutive >= s.consecutive_failures;
        let by_rate = self.total >= s.min_requests.max(1)
            && u64::from(self.failures) * 100
                >= u64::from(self.total) * u64::from(s.failure_rate_percent);
        by_streak || by_rate
    }
}

/// The circuits of every provider × operation.
#[derive(Default)]
pub struct Breakers {
    circuits: Mutex<HashMap<(String, Operation), Circuit>>,
}

/// The state of one circuit, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitView {
    pub provider: String,
    pub operation: Operation,
    pub open: bool,
}

impl Breakers {
    /// Whether a request may go to the vendor now; refused: the problem to answer at once.
    pub fn admit(
        &self,
        provider: &str,
        operation: Operation,
        s: &BreakerSettings,
        now: Instant,
    ) -> Result<(), Problem> {
        if !s.enabled {
            return Ok(());
        }
        let Ok(mut circuits) = self.circuits.lock() else {
            return Ok(());
        };
        let Some(c) = circuits.get_mut(&(provider.to_string(), operation)) else {
            return Ok(());
        };
        match c.state {
            State::Closed => Ok(()),
            State::Open { until } if now < until => Err(open_problem(provider, until - now)),
            State::Open { .. } => {
                c.state = State::HalfOpen {
                    probes: 1,
                    since: now,
                };
                Ok(())
            }
            // A probe that never reported (its client went away) frees its place after open_for.
            State::HalfOpen { probes, since }
                if probes < s.half_open_probes.max(1) || now >= since + s.open_for =>
            {
                c.state = State::HalfOpen {
                    probes: probes + 1,
                    since,
                };
                Ok(())
            }
            State::HalfOpen { .. } => Err(open_problem(provider, s.open_for)),
        }
    }

    /// Records what one exchange showed: `failed` when the vendor did not answer or answered 5xx.
    pub fn record(
        &self,
        provider: &str,
        operation: Operation,
        s: &BreakerSettings,
        failed: bool,
        now: Instant,
    ) {
        if !s.enabled {
            return;
        }
        let Ok(mut circuits) = self.circuits.lock() else {
            return;
        };
        let c = circuits
            .entry((provider.to_string(), operation))
            .or_insert_with(|| Circuit::new(now));
        match c.state {
            State::HalfOpen { .. } if failed => c.open(s, now),
            State::HalfOpen { .. } => *c = Circuit::new(now),
            // An answer to a request admitted before the circuit opened.
            State::Open { .. } => {}
            State::Closed => {
                if now.duration_since(c.window_start) >= s.window {
                    c.window_start = now;
                    c.total = 0;
                    c.failures = 0;
                }
                c.total += 1;
                if failed {
                    c.failures += 1;
                    c.consecutive += 1;
                } else {
                    c.consecutive = 0;
                }
                if c.tripped(s) {
                    tracing::warn!(provider, operation = operation.name(), "circuit opened");
                    c.open(s, now);
                }
            }
        }
    }

    /// Every circuit known, open (or half-open) or not.
    pub fn views(&self, now: Instant) -> Vec<CircuitView> {
        let Ok(circuits) = self.circuits.lock() else {
            return Vec::new();
        };
        circuits
            .iter()
            .map(|((provider, operation), c)| CircuitView {
                provider: provider.clone(),
                operation: *operation,
                open: match c.state {
                    State::Closed => false,
                    State::Open { until } => now < until,
                    State::HalfOpen { .. } => true,
                },
            })
            .collect()
    }
}

fn open_problem(provider: &str, wait: Duration) -> Problem {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut p = Problem::new(
        ErrorCode::ProviderUnavailable,
        format!(
            "provider {provider:?} is failing; callgate stopped sending it requests for now (circuit open)"
        ),
    )
    .with_provider(provider);
    p.retry_after = Some(seconds.max(1).to_string());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP: Operation = Operation::GetCall;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            failure_rate_percent: 50,
            min_requests: 10,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            max_open: Duration::from_secs(12),
            half_open_probes: 1,
            enabled: true,
        }
    }

    fn fail(b: &Breakers, s: &BreakerSettings, n: u32, now: Instant) {
        for _ in 0..n {
            b.admit("p", OP, s, now).unwrap();
            b.record("p", OP, s, true, now);
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_refuses_at_once() {
        let (b, s, t0) = (Breakers::default(), settings(), Instant::now());
        fail(&b, &s, 2, t0);
        b.record("p", OP, &s, false, t0);
        fail(&b, &s, 2, t0);
        assert!(
            b.admit("p", OP, &s, t0).is_ok(),
            "a success broke the streak"
        );
        fail(&b, &s, 1, t0);
        let p = b.admit("p", OP, &s, t0).unwrap_err();
        assert_eq!(p.code, ErrorCode::ProviderUnavailable);
        assert_eq!(p.retry_after.as_deref(), Some("5"));
        assert!(
            b.admit("p", Operation::ListCalls, &s, t0).is_ok(),
            "per operation"
        );
        assert!(b.admit("q", OP, &s, t0).is_ok(), "per provider");
        assert_eq!(
            b.views(t0),
            vec![CircuitView {
                provider: "p".into(),
                operation: OP,
                open: true
            }]
        );
    }

    #[test]
    fn opens_on_a_failure_rate_over_a_minimum_volume() {
        let (b, s, t0) = (Breakers::default(), settings(), Instant::now());
        // Alternating, never 3 in a row: 4 of 9 failed, under the volume of 10.
        for i in 0..9 {
            b.record("p", OP, &s, i % 2 == 1, t0);
        }
        assert!(b.admit("p", OP, &s, t0).is_ok());
        // A 10th that succeeds: 4 of 10, under the rate; then 5 of 11, still under it.
        b.record("p", OP, &s, false, t0);
        b.record("p", OP, &s, true, t0);
        assert!(b.admit("p", OP, &s, t0).is_ok());
        // 6 of 12: half failed.
        b.record("p", OP, &s, true, t0);
        assert!(b.admit("p", OP, &s, t0).is_err());
        // A new window forgets the old counts.
        let (b, t1) = (Breakers::default(), t0 + Duration::from_secs(11));
        for i in 0..9 {
            b.record("p", OP, &s, i % 2 == 0, t0);
        }
        b.record("p", OP, &s, true, t1);
        assert!(b.admit("p", OP, &s, t1).is_ok());
    }

    #[test]
    fn half_opens_probes_then_closes_or_opens_for_longer() {
        let (b, s, t0) = (Breakers::default(), settings(), Instant::now());
        fail(&b, &s, 3, t0);
        let t1 = t0 + Duration::from_secs(5);
        assert!(b.admit("p", OP, &s, t1).is_ok(), "the probe");
        assert!(b.admit("p", OP, &s, t1).is_err(), "one probe at a time");
        b.record("p", OP, &s, false, t1);
        assert!(b.admit("p", OP, &s, t1).is_ok(), "closed again");
        assert!(!b.views(t1)[0].open);

        // Fails again: open for 5 s; after a failed probe 10 s; after another 20 s, capped at 12.
        fail(&b, &s, 3, t1);
        let mut t = t1;
        for open_for in [5, 10, 12] {
            let secs = Duration::from_secs(open_for);
            assert!(b
                .admit("p", OP, &s, t + secs - Duration::from_millis(1))
                .is_err());
            t += secs;
            b.admit("p", OP, &s, t).expect("the probe");
            b.record("p", OP, &s, true, t);
        }
        // A probe that succeeds closes it, and the next trip is short again.
        t += Duration::from_secs(12);
        b.admit("p", OP, &s, t).expect("the probe");
        b.record("p", OP, &s, false, t);
        fail(&b, &s, 3, t);
        assert!(b.admit("p", OP, &s, t + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn a_probe_that_never_reports_frees_its_place() {
        let (b, s, t0) = (Breakers::default(), settings(), Instant::now());
        fail(&b, &s, 3, t0);
        let t1 = t0 + Duration::from_secs(5);
        assert!(b.admit("p", OP, &s, t1).is_ok());
        assert!(b.admit("p", OP, &s, t1 + Duration::from_secs(1)).is_err());
        assert!(b.admit("p", OP, &s, t1 + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn disabled_never_refuses() {
        let s = BreakerSettings {
            enabled: false,
            ..settings()
        };
        let (b, t0) = (Breakers::default(), Instant::now());
        fail(&b, &s, 10, t0);
        assert!(b.admit("p", OP, &s, t0).is_ok());
        assert!(b.views(t0).is_empty());
    }
}
