//! Per-tenant request rate limits: a GCRA bucket (governor) per tenant, checked right after
//! authentication. Over the limit: `429 rate_limited` with `Retry-After`. A config reload starts
//! the buckets afresh.

use crate::canonical::{ErrorCode, Problem};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

pub struct TenantLimiter {
    bucket: DefaultDirectRateLimiter,
    per_second: u32,
}

impl std::fmt::Debug for TenantLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TenantLimiter({}/s)", self.per_second)
    }
}

impl TenantLimiter {
    /// `per_second` sustained, up to `burst` at once.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> TenantLimiter {
        TenantLimiter {
            bucket: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            per_second: per_second.get(),
        }
    }

    /// Takes one request from the bucket, or says when to retry.
    pub fn check(&self, tenant: &str) -> Result<(), Problem> {
        self.bucket.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut p = Problem::new(
                ErrorCode::RateLimited,
                format!(
                    "tenant {tenant:?} is over its limit of {} requests per second",
                    self.per_second
                ),
            );
            p.retry_after = Some(seconds.max(1).to_string());
            p
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_next_request_waits() {
        let l = TenantLimiter::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(3).unwrap());
        for _ in 0..3 {
            assert!(l.check("t").is_ok());
        }
        let p = l.check("t").unwrap_err();
        assert_eq!(p.code, ErrorCode::RateLimited);
        assert_eq!(p.retry_after.as_deref(), Some("1"));
    }
}
