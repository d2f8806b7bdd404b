//! The cache layer's unit tests (a module of `cache.rs`, kept apart for its length).

use super::*;
use crate::canonical::ErrorCode;
use std::sync::atomic::AtomicUsize;

fn fetched(body: &'static str, ttl_ms: u64) -> Fetched {
    Fetched {
        body: body.as_bytes().to_vec(),
        ttl: Duration::from_millis(ttl_ms),
        stale: Duration::ZERO,
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

/// Serves `k` with a fetch that would answer `body`; the answer and how it was served.
async fn serve(
    c: &MemoryCache,
    k: &CacheKey,
    refresh: bool,
    body: &'static str,
) -> (Bytes, CacheOutcome) {
    let (r, o) = c
        .serve_with(&policy(0), k.clone(), refresh, || async {
            Ok(fetched(body, 60_000))
        })
        .await;
    (r.unwrap(), o)
}

#[tokio::test]
async fn hit_after_miss_and_refresh_on_request() {
    let c = MemoryCache::new(1 << 20);
    let k = CacheKey("k".into());
    let a = Bytes::from_static(b"a");
    assert_eq!(
        serve(&c, &k, false, "a").await,
        (a.clone(), CacheOutcome::MISS_STORED)
    );
    assert_eq!(serve(&c, &k, false, "b").await, (a, CacheOutcome::HIT));
    let c_ = Bytes::from_static(b"c");
    assert_eq!(
        serve(&c, &k, true, "c").await,
        (c_.clone(), CacheOutcome::REQUESTED)
    );
    assert_eq!(
        serve(&c, &k, false, "d").await.0,
        c_,
        "the refresh was stored"
    );
}

#[tokio::test]
async fn zero_ttl_is_not_kept_and_errors_are_not_cached() {
    let c = MemoryCache::new(1 << 20);
    let k = CacheKey("k".into());
    let (_, o) = c
        .serve_with(&policy(0), k.clone(), false, || async {
            Ok(fetched("a", 0))
        })
        .await;
    assert_eq!(o, CacheOutcome::MISS);
    let calls = AtomicUsize::new(0);
    for _ in 0..2 {
        let (r, _) = c
            .serve_with(&policy(0), k.clone(), false, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Problem::new(ErrorCode::ProviderError, "x"))
            })
            .await;
        assert!(r.is_err());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_serves_the_old_answer_when_the_vendor_fails() {
    let c = MemoryCache::new(1 << 20);
    let k = CacheKey("k".into());
    let _ = c
        .serve_with(&policy(60_000), k.clone(), false, || async {
            Ok(fetched("old", 1))
        })
        .await;
    // Past the 1 ms freshness, on the paused clock.
    tokio::time::advance(Duration::from_millis(5)).await;
    let (r, o) = c
        .serve_with(&policy(60_000), k.clone(), false, || async {
            Err(Problem::new(ErrorCode::ProviderTimeout, "slow"))
        })
        .await;
    assert_eq!(
        (r.unwrap(), o),
        (Bytes::from_static(b"old"), CacheOutcome::STALE)
    );
    let (r, o) = c
        .serve_with(&policy(60_000), k, false, || async {
            Err(Problem::new(ErrorCode::NotFound, "gone"))
        })
        .await;
    assert!(
        r.is_err(),
        "a client-side answer is not covered by stale-if-error"
    );
    assert_eq!(o, CacheOutcome::MISS);
}

#[tokio::test(start_paused = true)]
async fn an_entry_may_carry_its_own_stale_window() {
    // A finished call keeps a stale window of its own while the policy has none.
    let c = MemoryCache::new(1 << 20);
    let k = CacheKey("k".into());
    let _ = c
        .serve_with(&policy(0), k.clone(), false, || async {
            Ok(Fetched {
                stale: Duration::from_secs(600),
                ..fetched("old", 1)
            })
        })
        .await;
    // Past the 1 ms freshness, on the paused clock.
    tokio::time::advance(Duration::from_millis(5)).await;
    let (r, o) = c
        .serve_with(&policy(0), k, false, || async {
            Err(Problem::new(ErrorCode::ProviderError, "down"))
        })
        .await;
    assert_eq!(
        (r.unwrap(), o),
        (Bytes::from_static(b"old"), CacheOutcome::STALE)
    );
}

#[tokio::test]
async fn invalidation_drops_the_call_and_its_providers_lists() {
    let c = MemoryCache::new(1 << 20);
    let p = policy(0);
    let _ = c
        .serve_with(&p, CacheKey("get1".into()), false, || async {
            Ok(fetched("a", 60_000))
        })
        .await;
    let _ = c
        .serve_with(&p, CacheKey("list".into()), false, || async {
            Ok(Fetched {
                kind: EntryKind::List,
                call_id: None,
                ..fetched("l", 60_000)
            })
        })
        .await;
    c.invalidate_call("p", "p:1", Change::Updated).await;
    c.cache.run_pending_tasks().await;
    for k in ["get1", "list"] {
        let (_, o) = c
            .serve_with(&p, CacheKey(k.into()), false, || async {
                Ok(fetched("n", 60_000))
            })
            .await;
        assert_eq!(o, CacheOutcome::MISS_STORED, "{k} was dropped");
    }
}

/// Spare capacity of the allocation behind `body`.
fn spare(body: Bytes) -> usize {
    let len = body.len();
    body.try_into_mut().expect("not shared").capacity() - len
}

#[test]
fn kept_bodies_sit_in_an_allocation_of_about_their_size() {
    // Sizes just past a doubling of serde_json's buffer (128 B, then ×2) are the worst case.
    for n in [10, 200, 4_200, 33_000, 140_000] {
        let body = serde_json::to_vec(&serde_json::json!({ "s": "x".repeat(n) })).unwrap();
        let len = body.len();
        let spare = spare(kept(body));
        assert!(spare <= len / 8, "{len} bytes with {spare} spare");
    }
}

#[tokio::test]
async fn a_stored_entry_is_kept_tight_and_an_unstored_answer_is_not_copied() {
    let loose = || {
        let mut body = Vec::with_capacity(66_000);
        body.resize(33_000, b'x');
        body
    };
    let c = MemoryCache::new(1 << 20);
    let body = loose();
    let fetched_at = body.as_ptr();
    let (answer, _) = c
        .serve_with(&policy(0), CacheKey("k".into()), false, || async move {
            Ok(Fetched {
                body,
                ..fetched("", 60_000)
            })
        })
        .await;
    let stored = c.cache.get(&CacheKey("k".into())).await.unwrap();
    assert_eq!(stored.body, answer.unwrap());
    assert_ne!(stored.body.as_ptr(), fetched_at, "a loose buffer is copied");

    let off = CachePolicy {
        enabled: false,
        ..policy(0)
    };
    let body = loose();
    let fetched_at = body.as_ptr();
    let (answer, _) = c
        .serve_with(&off, CacheKey("k2".into()), false, || async move {
            Ok(Fetched {
                body,
                ..fetched("", 60_000)
            })
        })
        .await;
    assert_eq!(
        answer.unwrap().as_ptr(),
        fetched_at,
        "nothing kept, nothing copied"
    );
}

#[tokio::test]
async fn the_layer_returns_the_vendor_facts_of_the_fetch_it_ran() {
    let c = MemoryCache::new(1 << 20);
    let fetch = |status| -> BoxFuture<'static, Fetch> {
        Box::pin(async move {
            Fetch {
                result: Ok(fetched("a", 60_000)),
                vendor: VendorFacts {
                    status: Some(status),
                    ..VendorFacts::default()
                },
            }
        })
    };
    let k = CacheKey("k".into());
    let miss = c.serve(&policy(0), k.clone(), false, fetch(200)).await;
    assert_eq!(miss.cache, CacheOutcome::MISS_STORED);
    assert_eq!(miss.vendor.and_then(|v| v.status), Some(200));
    let hit = c.serve(&policy(0), k.clone(), false, fetch(201)).await;
    assert_eq!(hit.cache, CacheOutcome::HIT);
    assert!(hit.vendor.is_none(), "a hit never reached the vendor");
    let refreshed = c.serve(&policy(0), k, true, fetch(202)).await;
    assert_eq!(refreshed.vendor.and_then(|v| v.status), Some(202));
}
