//! The execution stack a planned request runs through, one concern per file, in the order a
//! request meets them (in the spirit of tower's layers):
//!
//! 1. [`rate_limit`] — the tenant's allowance (GCRA), checked right after authentication;
//! 2. [`idempotency`] — writes with an `Idempotency-Key` run once, duplicates get the first answer;
//! 3. [`cache`] — reads are answered from finished canonical answers, misses fetched once;
//! 4. [`bulkhead`] — a bound on the requests in flight to each provider; [`breaker`] — a
//!    failing provider × operation is refused at once (circuit open); [`health`] — what each
//!    vendor exchange showed, per provider;
//! 5. [`retry`] — whether a failed attempt may be sent again, within the provider's deadline;
//! 6. the vendor client (`gateway::exchange`), one attempt over one connection.
//!
//! Each stateful layer sits behind a trait ([`rate_limit::RateLimiter`],
//! [`idempotency::IdempotencyStore`], [`cache::ResponseCache`]) whose in-memory implementation is
//! the embedded default; a shared backend is one more implementation. A layer returns what it saw
//! in its result ([`VendorFacts`] from the vendor side, the cache's outcome, a replay flag); the
//! gateway assembles the request's log and metrics record from them once.
//!
//! Nothing here knows Pingora, routing or adapters: each layer is tested alone.

pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod health;
pub mod idempotency;
pub mod rate_limit;
pub mod retry;
pub mod snapshot;

use crate::adapter::rules::Drift;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future handed to a layer behind a trait (the inner part of the stack it wraps).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the vendor side of one request showed: returned by the inner layers with their result.
#[derive(Debug, Default, Clone)]
pub struct VendorFacts {
    /// Time spent waiting on the vendor (every attempt).
    pub waited: Duration,
    /// What went wrong, as a `callgate_upstream_errors_total{kind}` label.
    pub error: Option<&'static str>,
    /// The vendor's HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Vendor fields that did not match the adapter.
    pub drift: Vec<Drift>,
}
