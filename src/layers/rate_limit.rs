//! The rate-limit layer: per-tenant request rates, checked right after authentication. Over the
//! limit: `429 rate_limited` with `Retry-After`.
//!
//! The limit is config (a [`RateLimit`] on the tenant, part of the snapshot); the buckets are
//! state, owned by the limiter and keyed by tenant, so a reload that leaves a tenant's limit as
//! it was keeps that tenant's bucket (a changed limit starts a new one). [`LocalRateLimiter`] is
//! the in-memory implementation (GCRA via governor); a fleet-wide one implements [`RateLimiter`].

use crate::canonical::{ErrorCode, Problem};
use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter as Gcra};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

/// A tenant's configured limit: `per_second` sustained, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// The problem a request over this limit gets, asked to wait `wait`.
    pub fn exceeded(&self, tenant: &str, wait: std::time::Duration) -> Problem {
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
    }
}

/// Takes one request from a tenant's allowance.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// One request of `tenant`, limited to `limit`: allowed, or the 429 problem to answer.
    async fn check(&self, tenant: &str, limit: RateLimit) -> Result<(), Problem>;

    /// Forgets the buckets of tenants for which `keep` is false (after a reload removed them).
    fn retain(&self, keep: &dyn Fn(&str) -> bool);
}

struct Bucket {
    limit: RateLimit,
    gcra: DefaultDirectRateLimiter,
}

/// Buckets in this process's memory, one per tenant.
#[derive(Default)]
pub struct LocalRateLimiter {
    buckets: RwLock<HashMap<String, Arc<Bucket>>>,
}

impl LocalRateLimiter {
    /// The tenant's bucket for `limit`: the one it has when its limit is unchanged, else new.
    fn bucket(&self, tenant: &str, limit: RateLimit) -> Arc<Bucket> {
        let current =
            |m: &HashMap<String, Arc<Bucket>>| m.get(tenant).filter(|b| b.limit == limit).cloned();
        if let Some(b) = self.buckets.read().ok().and_then(|m| current(&m)) {
            return b;
        }
        let fresh = || {
            Arc::new(Bucket {
                limit,
                gcra: Gcra::direct(Quota::per_second(limit.per_second).allow_burst(limit.burst)),
            })
        };
        match self.buckets.write() {
            Ok(mut m) => {
                if let Some(b) = current(&m) {
                    return b;
                }
                let b = fresh();
                m.insert(tenant.to_string(), b.clone());
                b
            }
            // A poisoned map (a panic elsewhere while holding it) must not stop traffic.
            Err(_) => fresh(),
        }
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, tenant: &str, limit: RateLimit) -> Result<(), Problem> {
        let bucket = self.bucket(tenant, limit);
        bucket.gcra.check().map_err(|not_until| {
            limit.exceeded(
                tenant,
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        if let Ok(mut m) = self.buckets.write() {
            m.retain(|tenant, _| keep(tenant));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_burst_passes_then_the_next_request_waits() {
        let l = LocalRateLimiter::default();
        for _ in 0..3 {
            assert!(l.check("t", limit(1, 3)).await.is_ok());
        }
        let p = l.check("t", limit(1, 3)).await.unwrap_err();
        assert_eq!(p.code, ErrorCode::RateLimited);
        assert_eq!(p.retry_after.as_deref(), Some("1"));
        assert!(
            l.check("u", limit(1, 3)).await.is_ok(),
            "tenants have their own buckets"
        );
    }

    #[tokio::test]
    async fn an_unchanged_limit_keeps_its_bucket_and_a_changed_one_starts_afresh() {
        let l = LocalRateLimiter::default();
        for _ in 0..2 {
            l.check("t", limit(1, 2)).await.unwrap();
        }
        // The same limit (as a reload that did not touch it would pass): still spent.
        assert!(l.check("t", limit(1, 2)).await.is_err());
        // Another limit: a new bucket.
        assert!(l.check("t", limit(1, 5)).await.is_ok());
    }

    #[tokio::test]
    async fn buckets_of_removed_tenants_are_forgotten() {
        let l = LocalRateLimiter::default();
        l.check("t", limit(1, 1)).await.unwrap();
        l.check("gone", limit(1, 1)).await.unwrap();
        l.retain(&|t| t == "t");
        assert!(l.check("t", limit(1, 1)).await.is_err(), "kept");
        assert!(l.check("gone", limit(1, 1)).await.is_ok(), "forgotten");
    }
}
