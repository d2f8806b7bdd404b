//! Shared state: which implementation each stateful layer gets, from `[state]`.
//!
//! The layers ([`crate::layers`]) define what they keep behind traits; `memory` gives each its
//! in-process implementation (one replica needs nothing else), `redis` gives the fleet versions
//! in this module — idempotency claims and answers ([`idempotency`]), GCRA buckets
//! ([`rate_limit`]), cache invalidations over pub/sub ([`invalidation`]) — all through one
//! [`link::RedisLink`] that bounds every call and falls back as `[state.on_failure]` says.

pub mod idempotency;
pub mod invalidation;
pub mod link;
pub mod rate_limit;

use crate::config::{IdempotencyFailure, RateLimitFailure, Settings, StateSettings};
use crate::layers::cache::{MemoryCache, ResponseCache};
use crate::layers::idempotency::{IdempotencyStore, MemoryIdempotencyStore};
use crate::layers::rate_limit::{LocalRateLimiter, RateLimiter};
use invalidation::{CoherentCache, InvalidationListener};
use link::{RedisLink, StateMetrics};
use std::sync::Arc;

/// The stateful layers of one gateway, and what is needed to watch their backend.
pub struct StateLayers {
    pub rate_limiter: Box<dyn RateLimiter>,
    pub idempotency: Box<dyn IdempotencyStore>,
    pub cache: Box<dyn ResponseCache>,
    pub status: StateStatus,
}

/// The backend as `/readyz` and the server see it.
pub struct StateStatus {
    link: Option<Arc<RedisLink>>,
    listener: Option<InvalidationListener>,
}

/// What `/readyz` says of the shared state.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Memory, or Redis answering.
    Ready,
    /// Redis is unreachable, but the replica may serve (fallbacks, or it did serve before).
    Degraded(&'static str),
    /// Redis is required and was never reached: this replica should not take traffic yet.
    NotReady(&'static str),
}

impl StateStatus {
    /// The background service that applies other replicas' cache invalidations (Redis only).
    pub fn invalidation_listener(&self) -> Option<InvalidationListener> {
        self.listener.clone()
    }

    /// Whether this replica is ready as far as shared state goes. A replica whose Redis is
    /// required (`fail_closed` for a function) and that never reached it is not ready: it would
    /// refuse keyed writes. Once it has served, a Redis outage is reported as degraded but not
    /// as unready: every replica shares the one Redis, so they would all leave the Service
    /// together and reads, which need no Redis, would fail too.
    pub fn readiness(&self) -> Readiness {
        let Some(link) = &self.link else {
            return Readiness::Ready;
        };
        let (listening, listened) = self
            .listener
            .as_ref()
            .map_or((true, true), InvalidationListener::listening);
        if link.reachable() && listening {
            return Readiness::Ready;
        }
        if link.reachable() && !listened {
            // Until it hears other replicas' writes, its cache could serve what they changed.
            return Readiness::NotReady(
                "not yet subscribed to other replicas' cache invalidations",
            );
        }
        let f = &link.settings().on_failure;
        let required = f.idempotency == IdempotencyFailure::FailClosed
            || f.rate_limit == RateLimitFailure::FailClosed;
        if required && !link.ever_reachable() {
            Readiness::NotReady(
                "the shared state store (Redis) is required and has not been reached yet",
            )
        } else {
            Readiness::Degraded("the shared state store (Redis) is unreachable; functions fall back as [state.on_failure] says")
        }
    }

    /// Tries Redis once (for readiness before the first request).
    pub async fn probe(&self) {
        if let Some(link) = &self.link {
            link.probe().await;
        }
    }
}

/// The stateful layers `settings` asks for; state metrics are registered in `registry`.
pub fn build(settings: &Settings, registry: &prometheus::Registry) -> StateLayers {
    let memory_idempotency = || {
        MemoryIdempotencyStore::new(
            settings.idempotency_ttl,
            settings.idempotency_max_entries,
            settings.idempotency_max_bytes,
        )
    };
    let cache = || MemoryCache::new(settings.cache.max_bytes);
    match &settings.state {
        StateSettings::Memory => StateLayers {
            rate_limiter: Box::new(LocalRateLimiter::default()),
            idempotency: Box::new(memory_idempotency()),
            cache: Box::new(cache()),
            status: StateStatus {
                link: None,
                listener: None,
            },
        },
        StateSettings::Redis(redis) => {
            let link = Arc::new(RedisLink::new(
                redis.clone(),
                StateMetrics::register(registry),
            ));
            let coherent = CoherentCache::new(Arc::new(cache()), link.clone());
            let listener = coherent.listener();
            StateLayers {
                rate_limiter: Box::new(rate_limit::RedisRateLimiter::new(link.clone())),
                idempotency: Box::new(idempotency::RedisIdempotencyStore::new(
                    link.clone(),
                    memory_idempotency(),
                    settings.idempotency_ttl,
                )),
                cache: Box::new(coherent),
                status: StateStatus {
                    link: Some(link),
                    listener: Some(listener),
                },
            }
        }
    }
}
