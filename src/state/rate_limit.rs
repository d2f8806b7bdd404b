//! A tenant's rate limit for the whole fleet: the same GCRA as the local limiter, its one number
//! (the "theoretical arrival time") kept in Redis and updated by one Lua script on Redis's clock,
//! so `per_second` holds across every replica and a check costs one round trip.
//!
//! The bucket's key carries the limit, so a reload that changes a tenant's limit starts a new
//! bucket (as the local limiter does), and a hash tag on the tenant, so Redis Cluster can run
//! the script. While Redis is unreachable, `[state.on_failure] rate_limit` decides: `local`
//! (each replica's own bucket at the full limit) or `fail_closed` (`503 state_unavailable`).

use super::link::{Function, RedisLink};
use crate::canonical::{ErrorCode, Problem};
use crate::config::RateLimitFailure;
use crate::layers::rate_limit::{LocalRateLimiter, RateLimit, RateLimiter};
use async_trait::async_trait;
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// GCRA. KEYS[1]: the bucket. ARGV: emission interval (µs), burst.
/// Returns 0 when the request is allowed, else the µs to wait.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then return math.ceil(allow_at - now) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(tolerance / 1000) + 1000)
return 0
",
    )
});

/// Fleet-wide buckets in Redis, with this replica's buckets as the fallback.
pub struct RedisRateLimiter {
    link: Arc<RedisLink>,
    local: LocalRateLimiter,
    on_failure: RateLimitFailure,
}

impl RedisRateLimiter {
    pub fn new(link: Arc<RedisLink>) -> RedisRateLimiter {
        RedisRateLimiter {
            on_failure: link.settings().on_failure.rate_limit,
            link,
            local: LocalRateLimiter::default(),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, tenant: &str, limit: RateLimit) -> Result<(), Problem> {
        let key = self.link.key(&format!(
            "rl:{{{tenant}}}:{}:{}",
            limit.per_second, limit.burst
        ));
        let interval_us = 1_000_000 / u64::from(limit.per_second.get()).max(1);
        let burst = limit.burst.get();
        let key = &key;
        let waited = self
            .link
            .exec(Function::RateLimit, |mut c| async move {
                GCRA.key(key)
                    .arg(interval_us.max(1))
                    .arg(burst)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        match waited {
            Ok(0) => Ok(()),
            Ok(us) => Err(limit.exceeded(tenant, Duration::from_micros(us.max(0) as u64))),
            Err(e) => {
                self.link.metrics.fell_back(Function::RateLimit);
                match self.on_failure {
                    RateLimitFailure::Local => self.local.check(tenant, limit).await,
                    RateLimitFailure::FailClosed => Err(Problem::new(
                        ErrorCode::StateUnavailable,
                        format!("{e}: this tenant's rate limit is kept there, and this gateway is set to refuse requests without it"),
                    )),
                }
            }
        }
    }

    fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.local.retain(keep);
    }
}
