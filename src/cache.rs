//! The GET response cache (moka): finished canonical answers, keyed by the normalized canonical
//! request, bounded by bytes, with a TTL per entry, single-flight misses, stale-if-error and
//! invalidation by call or by provider. A hit returns stored bytes: it never touches the vendor
//! and never re-runs normalization.
//!
//! Authorization happens before any lookup, so a tenant only ever reads entries of providers it
//! may use; entries are shared between tenants that may.

use crate::canonical::Problem;
use crate::metrics::CacheResult;
use bytes::Bytes;
use moka::future::Cache;
use moka::Expiry;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes counted per entry on top of its key and body (moka's own bookkeeping, our struct).
const ENTRY_OVERHEAD: u32 = 256;

/// The cache key: the operation, the provider and the normalized canonical request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    List,
    Get,
}

#[derive(Debug)]
pub struct Entry {
    pub body: Bytes,
    stored: Instant,
    fresh_for: Duration,
    keep_for: Duration,
    provider: String,
    kind: EntryKind,
    /// For `Get` entries: the canonical call id, for invalidation.
    call_id: Option<String>,
}

impl Entry {
    fn is_fresh(&self) -> bool {
        self.stored.elapsed() < self.fresh_for
    }
}

/// An answer worth caching, from the fetch of a miss.
pub struct Fetched {
    pub body: Bytes,
    /// How long it stays fresh; zero: do not keep it.
    pub ttl: Duration,
    pub kind: EntryKind,
    pub provider: String,
    pub call_id: Option<String>,
}

/// Lookup outcome: the metric label and the `Cache-Status` header (RFC 9211).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheOutcome {
    pub result: CacheResult,
    pub header: &'static str,
}

impl CacheOutcome {
    const fn new(result: CacheResult, header: &'static str) -> Self {
        CacheOutcome { result, header }
    }
    pub const HIT: Self = Self::new(CacheResult::Hit, "callgate; hit");
    pub const STALE: Self = Self::new(CacheResult::Stale, "callgate; hit; detail=stale");
    pub const MISS_STORED: Self = Self::new(CacheResult::Miss, "callgate; fwd=miss; stored");
    pub const MISS: Self = Self::new(CacheResult::Miss, "callgate; fwd=miss");
    pub const COLLAPSED: Self = Self::new(CacheResult::Collapsed, "callgate; fwd=miss; collapsed");
    pub const REFRESHED: Self = Self::new(CacheResult::Miss, "callgate; fwd=stale; stored");
    pub const REQUESTED: Self = Self::new(CacheResult::Bypass, "callgate; fwd=request; stored");
    pub const OFF: Self = Self::new(CacheResult::Bypass, "callgate; fwd=bypass");
}

/// How long entries live, from the config snapshot of the request that stores them.
#[derive(Clone, Debug)]
pub struct CachePolicy {
    pub enabled: bool,
    pub stale_if_error: Duration,
}

struct PerEntryExpiry;

impl Expiry<CacheKey, Arc<Entry>> for PerEntryExpiry {
    fn expire_after_create(
        &self,
        _k: &CacheKey,
        v: &Arc<Entry>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(v.keep_for)
    }
}

pub struct ResponseCache {
    cache: Cache<CacheKey, Arc<Entry>>,
    max_bytes: u64,
}

impl ResponseCache {
    pub fn new(max_bytes: u64) -> ResponseCache {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &CacheKey, v: &Arc<Entry>| {
                let size = k.0.len()
                    + v.body.len()
                    + v.call_id.as_ref().map_or(0, String::len)
                    + v.provider.len();
                u32::try_from(size)
                    .unwrap_or(u32::MAX)
                    .saturating_add(ENTRY_OVERHEAD)
            })
            .expire_after(PerEntryExpiry)
            .support_invalidation_closures()
            .build();
        ResponseCache { cache, max_bytes }
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Weighed bytes held now (after pending evictions are applied).
    pub async fn bytes(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    /// Serves `key` from the cache or through `fetch`. `refresh` (the client's `no-cache`) skips
    /// the lookup but stores the new answer. Vendor failures may be answered from a stale entry.
    pub async fn serve<F, Fut>(
        &self,
        policy: &CachePolicy,
        key: CacheKey,
        refresh: bool,
        fetch: F,
    ) -> (Result<Bytes, Problem>, CacheOutcome)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, Problem>>,
    {
        if !policy.enabled {
            return (fetch().await.map(|f| f.body), CacheOutcome::OFF);
        }
        if refresh {
            return match fetch().await {
                Ok(f) => {
                    let body = f.body.clone();
                    self.store(policy, key, f).await;
                    (Ok(body), CacheOutcome::REQUESTED)
                }
                Err(p) => (Err(p), CacheOutcome::MISS),
            };
        }
        if let Some(entry) = self.cache.get(&key).await {
            if entry.is_fresh() {
                return (Ok(entry.body.clone()), CacheOutcome::HIT);
            }
            return match fetch().await {
                Ok(f) => {
                    let body = f.body.clone();
                    self.store(policy, key, f).await;
                    (Ok(body), CacheOutcome::REFRESHED)
                }
                Err(p) if is_vendor_failure(&p) => (Ok(entry.body.clone()), CacheOutcome::STALE),
                Err(p) => (Err(p), CacheOutcome::MISS),
            };
        }
        // A miss: concurrent misses of one key share one fetch (moka coalesces the init future).
        let leader = AtomicBool::new(false);
        let stale = policy.stale_if_error;
        let init = async {
            leader.store(true, Ordering::Relaxed);
            fetch().await.map(|f| entry(f, stale))
        };
        let result = self.cache.try_get_with(key, init).await;
        let led = leader.load(Ordering::Relaxed);
        match result {
            Ok(e) if led && e.fresh_for.is_zero() => (Ok(e.body.clone()), CacheOutcome::MISS),
            Ok(e) if led => (Ok(e.body.clone()), CacheOutcome::MISS_STORED),
            Ok(e) => (Ok(e.body.clone()), CacheOutcome::COLLAPSED),
            Err(p) => (
                Err((*p).clone()),
                if led {
                    CacheOutcome::MISS
                } else {
                    CacheOutcome::COLLAPSED
                },
            ),
        }
    }

    async fn store(&self, policy: &CachePolicy, key: CacheKey, f: Fetched) {
        if f.ttl.is_zero() {
            self.cache.invalidate(&key).await;
        } else {
            self.cache
                .insert(key, entry(f, policy.stale_if_error))
                .await;
        }
    }

    /// Drops the entry of one call and every list entry of its provider (after a write).
    pub fn invalidate_call(&self, provider: &str, call_id: &str) {
        let (provider, call_id) = (provider.to_string(), call_id.to_string());
        let _ = self.cache.invalidate_entries_if(move |_, e| {
            e.provider == provider
                && (e.kind == EntryKind::List || e.call_id.as_deref() == Some(call_id.as_str()))
        });
    }
}

fn entry(f: Fetched, stale: Duration) -> Arc<Entry> {
    let keep_for = if f.ttl.is_zero() {
        Duration::ZERO
    } else {
        f.ttl + stale
    };
    Arc::new(Entry {
        body: f.body,
        stored: Instant::now(),
        fresh_for: f.ttl,
        keep_for,
        provider: f.provider,
        kind: f.kind,
        call_id: f.call_id,
    })
}

/// Failures stale-if-error may cover: the vendor's, not the client's.
fn is_vendor_failure(p: &Problem) -> bool {
    use crate::canonical::ErrorCode::*;
    matches!(
        p.code,
        ProviderError
            | ProviderUnavailable
            | ProviderTimeout
            | ProviderRateLimited
            | ProviderAuthFailed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::ErrorCode;
    use std::sync::atomic::AtomicUsize;

    fn fetched(body: &'static str, ttl_ms: u64) -> Fetched {
        Fetched {
            body: Bytes::from_static(body.as_bytes()),
            ttl: Duration::from_millis(ttl_ms),
            kind: EntryKind::Get,
            provider: "p".into(),
            call_id: Some("p:1".into()),
        }
    }

    fn policy(stale_ms: u64) -> CachePolicy {
        CachePolicy {
            enabled: true,
            stale_if_error: Duration::from_millis(stale_ms),
        }
    }

    #[tokio::test]
    async fn hit_after_miss_and_refresh_on_request() {
        let c = ResponseCache::new(1 << 20);
        let k = CacheKey("k".into());
        let (r, o) = c
            .serve(&policy(0), k.clone(), false, || async {
                Ok(fetched("a", 60_000))
            })
            .await;
        assert_eq!(
            (r.unwrap(), o),
            (Bytes::from_static(b"a"), CacheOutcome::MISS_STORED)
        );
        let (r, o) = c
            .serve(&policy(0), k.clone(), false, || async {
                Ok(fetched("b", 60_000))
            })
            .await;
        assert_eq!(
            (r.unwrap(), o),
            (Bytes::from_static(b"a"), CacheOutcome::HIT)
        );
        let (r, o) = c
            .serve(&policy(0), k.clone(), true, || async {
                Ok(fetched("c", 60_000))
            })
            .await;
        assert_eq!(
            (r.unwrap(), o),
            (Bytes::from_static(b"c"), CacheOutcome::REQUESTED)
        );
        let (r, _) = c
            .serve(&policy(0), k, false, || async { Ok(fetched("d", 60_000)) })
            .await;
        assert_eq!(
            r.unwrap(),
            Bytes::from_static(b"c"),
            "the refresh was stored"
        );
    }

    #[tokio::test]
    async fn zero_ttl_is_not_kept_and_errors_are_not_cached() {
        let c = ResponseCache::new(1 << 20);
        let k = CacheKey("k".into());
        let (_, o) = c
            .serve(&policy(0), k.clone(), false, || async {
                Ok(fetched("a", 0))
            })
            .await;
        assert_eq!(o, CacheOutcome::MISS);
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            let (r, _) = c
                .serve(&policy(0), k.clone(), false, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Problem::new(ErrorCode::ProviderError, "x"))
                })
                .await;
            assert!(r.is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn stale_if_error_serves_the_old_answer_when_the_vendor_fails() {
        let c = ResponseCache::new(1 << 20);
        let k = CacheKey("k".into());
        let _ = c
            .serve(&policy(60_000), k.clone(), false, || async {
                Ok(fetched("old", 1))
            })
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (r, o) = c
            .serve(&policy(60_000), k.clone(), false, || async {
                Err(Problem::new(ErrorCode::ProviderTimeout, "slow"))
            })
            .await;
        assert_eq!(
            (r.unwrap(), o),
            (Bytes::from_static(b"old"), CacheOutcome::STALE)
        );
        let (r, o) = c
            .serve(&policy(60_000), k, false, || async {
                Err(Problem::new(ErrorCode::NotFound, "gone"))
            })
            .await;
        assert!(
            r.is_err(),
            "a client-side answer is not covered by stale-if-error"
        );
        assert_eq!(o, CacheOutcome::MISS);
    }

    #[tokio::test]
    async fn invalidation_drops_the_call_and_its_providers_lists() {
        let c = ResponseCache::new(1 << 20);
        let p = policy(0);
        let _ = c
            .serve(&p, CacheKey("get1".into()), false, || async {
                Ok(fetched("a", 60_000))
            })
            .await;
        let _ = c
            .serve(&p, CacheKey("list".into()), false, || async {
                Ok(Fetched {
                    kind: EntryKind::List,
                    call_id: None,
                    ..fetched("l", 60_000)
                })
            })
            .await;
        c.invalidate_call("p", "p:1");
        c.cache.run_pending_tasks().await;
        for k in ["get1", "list"] {
            let (_, o) = c
                .serve(&p, CacheKey(k.into()), false, || async {
                    Ok(fetched("n", 60_000))
                })
                .await;
            assert_eq!(o, CacheOutcome::MISS_STORED, "{k} was dropped");
        }
    }
}
