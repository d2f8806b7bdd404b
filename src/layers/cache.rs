//! The cache layer: finished canonical answers of reads, keyed by the normalized canonical
//! request, bounded by bytes, with a TTL per entry, single-flight misses, stale-if-error and
//! invalidation by call or by provider. A hit returns stored bytes: it never touches the vendor
//! and never re-runs normalization.
//!
//! [`ResponseCache`] is the layer's interface; [`MemoryCache`] (moka, in this process) is the
//! embedded implementation. The fetch a miss runs is the inner part of the stack: its
//! [`VendorFacts`] come back in [`Served`] when it ran.
//!
//! Authorization happens before any lookup, so a tenant only ever reads entries of providers it
//! may use; entries are shared between tenants that may.

use super::{BoxFuture, VendorFacts};
use crate::canonical::Problem;
use crate::metrics::CacheResult;
use async_trait::async_trait;
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
    /// When it was stored, on tokio's clock (the system's, but for tests on a paused clock).
    stored: tokio::time::Instant,
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
    /// The canonical answer as serialized; the cache decides how to keep it (see [`kept`]).
    pub body: Vec<u8>,
    /// How long it stays fresh; zero: do not keep it.
    pub ttl: Duration,
    /// How long past its freshness it may still answer when the vendor fails, at least (the
    /// policy's `stale_if_error` applies when longer).
    pub stale: Duration,
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

/// The response cache in this process's memory (moka), bounded by bytes.
pub struct MemoryCache {
    cache: Cache<CacheKey, Arc<Entry>>,
    max_bytes: u64,
}

impl MemoryCache {
    pub fn new(max_bytes: u64) -> MemoryCache {
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
        MemoryCache { cache, max_bytes }
    }

    /// Serves `key` from the cache or through `fetch`. `refresh` (the client's `no-cache`) skips
    /// the lookup but stores the new answer. Vendor failures may be answered from a stale entry.
    pub async fn serve_with<F, Fut>(
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
            return (
                fetch().await.map(|f| Bytes::from(f.body)),
                CacheOutcome::OFF,
            );
        }
        if refresh {
            return match fetch().await {
                Ok(f) => (
                    Ok(self.store(policy, key, f).await),
                    CacheOutcome::REQUESTED,
                ),
                Err(p) => (Err(p), CacheOutcome::MISS),
            };
        }
        if let Some(entry) = self.cache.get(&key).await {
            if entry.is_fresh() {
                return (Ok(entry.body.clone()), CacheOutcome::HIT);
            }
            return match fetch().await {
                Ok(f) => (
                    Ok(self.store(policy, key, f).await),
                    CacheOutcome::REFRESHED,
                ),
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

    /// Stores a fetched answer (or, with a zero TTL, drops the old one); its body to answer with.
    async fn store(&self, policy: &CachePolicy, key: CacheKey, f: Fetched) -> Bytes {
        if f.ttl.is_zero() {
            self.cache.invalidate(&key).await;
            Bytes::from(f.body)
        } else {
            let e = entry(f, policy.stale_if_error);
            let body = e.body.clone();
            self.cache.insert(key, e).await;
            body
        }
    }
}

/// A miss's fetch, as it ran: the answer to keep (or the problem) and what the vendor side saw.
pub struct Fetch {
    pub result: Result<Fetched, Problem>,
    pub vendor: VendorFacts,
}

/// A read served by the cache layer.
pub struct Served {
    pub result: Result<Bytes, Problem>,
    pub cache: CacheOutcome,
    /// What the vendor side saw, when this request ran the fetch (not on hits or collapsed misses).
    pub vendor: Option<VendorFacts>,
}

/// What a write did to a call, for its invalidation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new call: no cache holds it yet, only list pages of its provider may lack it.
    Created,
    /// An existing call changed: any cached copy is wrong now.
    Updated,
}

/// The cache layer's interface: serve a read, forget what a write changed, report its size.
#[async_trait]
pub trait ResponseCache: Send + Sync {
    /// Serves `key` from the cache or through `fetch`. `refresh` (the client's `no-cache`) skips
    /// the lookup but stores the new answer. Vendor failures may be answered from a stale entry.
    async fn serve(
        &self,
        policy: &CachePolicy,
        key: CacheKey,
        refresh: bool,
        fetch: BoxFuture<'_, Fetch>,
    ) -> Served;

    /// Drops the entry of one call and every list entry of its provider (after a write), here
    /// and, for a shared backend, on every replica.
    async fn invalidate_call(&self, provider: &str, call_id: &str, change: Change);

    /// Weighed bytes held now.
    async fn bytes(&self) -> u64;

    /// The configured bound in bytes.
    fn max_bytes(&self) -> u64;
}

impl MemoryCache {
    /// Drops the entry of one call and every list entry of its provider, in this process.
    pub fn forget_call(&self, provider: &str, call_id: &str) {
        let (provider, call_id) = (provider.to_string(), call_id.to_string());
        let _ = self.cache.invalidate_entries_if(move |_, e| {
            e.provider == provider
                && (e.kind == EntryKind::List || e.call_id.as_deref() == Some(call_id.as_str()))
        });
    }

    /// Drops every entry (when invalidations from other replicas may have been missed).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}

#[async_trait]
impl ResponseCache for MemoryCache {
    async fn serve(
        &self,
        policy: &CachePolicy,
        key: CacheKey,
        refresh: bool,
        fetch: BoxFuture<'_, Fetch>,
    ) -> Served {
        let mut vendor = None;
        let ran = &mut vendor;
        let (result, cache) = self
            .serve_with(policy, key, refresh, move || async move {
                let f = fetch.await;
                *ran = Some(f.vendor);
                f.result
            })
            .await;
        Served {
            result,
            cache,
            vendor,
        }
    }

    async fn invalidate_call(&self, provider: &str, call_id: &str, _change: Change) {
        self.forget_call(provider, call_id);
    }

    async fn bytes(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

fn entry(f: Fetched, stale: Duration) -> Arc<Entry> {
    let keep_for = if f.ttl.is_zero() {
        Duration::ZERO
    } else {
        f.ttl + stale.max(f.stale)
    };
    Arc::new(Entry {
        body: kept(f.body),
        stored: tokio::time::Instant::now(),
        fresh_for: f.ttl,
        keep_for,
        provider: f.provider,
        kind: f.kind,
        call_id: f.call_id,
    })
}

/// A body as the cache keeps it: in an allocation of about its size, as the weigher counts its
/// length. `serde_json::to_vec` grows its buffer by doubling, so a 28 KB page sat in a 32 KB
/// allocation and a 33 KB one in 64 KB; `Bytes::from(Vec)` keeps that capacity (and an
/// allocator does not shrink a block in place by much). A buffer with more than 1/8 unused is
/// copied into one of the right size (a few µs for a page, paid only by what is stored).
fn kept(body: Vec<u8>) -> Bytes {
    if body.capacity() - body.len() > body.len() / 8 {
        Bytes::copy_from_slice(&body)
    } else {
        Bytes::from(body)
    }
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
#[path = "cache_tests.rs"]
mod tests;
