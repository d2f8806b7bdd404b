//! The idempotency layer — `Idempotency-Key` for writes: per tenant, the first answer to a key is stored and replayed to
//! every later request with the same key and the same body — without a second vendor request,
//! also when the duplicates arrive while the first is in flight (they wait for it). The same key
//! with another body is `409 idempotency_conflict`. Entries expire (default 24 h) and are bounded
//! in number and in bytes (moka, weighed like the response cache): a tenant sending large bodies
//! under ever new keys cannot grow the store past `idempotency.max_bytes`.
//!
//! [`IdempotencyStore`] is the layer's interface; [`MemoryIdempotencyStore`] (moka, in this
//! process) the embedded implementation. The key's scope and the request's fingerprint are
//! planned (and the key validated) before this layer: it only keeps answers.
//!
//! Answers that prove nothing reached a vendor (the request was refused before, or no connection
//! could be made) are not stored, so the client may simply retry them.

use super::{BoxFuture, VendorFacts};
use crate::canonical::{ErrorCode, Problem};
use async_trait::async_trait;
use bytes::Bytes;
use moka::future::Cache;
use std::future::Future;
use std::hash::Hasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A stored answer, replayed byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    /// The problem code of an error answer (for metrics and logs of replays).
    pub code: Option<crate::canonical::ErrorCode>,
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug)]
struct Stored {
    fingerprint: u64,
    answer: StoredAnswer,
}

/// What the first request with a key produced, and whether to keep it.
pub struct Produced {
    pub answer: StoredAnswer,
    pub keep: bool,
}

/// Where a key's answer is kept: per tenant, per key, for one request (its fingerprint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub tenant: String,
    pub key: String,
    /// [`fingerprint`] of the request: the same key with another request is a conflict.
    pub fingerprint: u64,
    /// The provider the write was planned for (named when a shared store must say that the
    /// write's outcome is unknown).
    pub provider: String,
}

/// The request running a write, as a store may need it while it waits for a duplicate's
/// first request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caller<'a> {
    pub request_id: &'a str,
    /// When the client stops waiting, if it said.
    pub deadline: Option<tokio::time::Instant>,
}

/// A write as this layer ran it.
#[derive(Debug)]
pub struct Ran {
    pub answer: StoredAnswer,
    /// The answer is the stored one of an earlier request with the key.
    pub replayed: bool,
    /// What the vendor side saw, when this request produced the answer.
    pub vendor: Option<VendorFacts>,
}

/// The idempotency layer's interface.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Runs `produce` once per scope's (tenant, key); later requests get its answer.
    async fn run(
        &self,
        scope: &Scope,
        caller: Caller<'_>,
        produce: BoxFuture<'_, (Produced, VendorFacts)>,
    ) -> Result<Ran, Problem>;
}

/// Bytes counted per entry on top of its key and answer (moka's bookkeeping, our structs).
const ENTRY_OVERHEAD: u64 = 256;

/// Answers kept in this process's memory (moka), bounded in number and bytes, expiring after a TTL.
pub struct MemoryIdempotencyStore {
    cache: Cache<(String, String), Arc<Stored>>,
}

/// The fingerprint of a request: method (PUT counts as PATCH, its alias), path, and the body as
/// JSON — whitespace and key order do not matter — or its bytes when it is not JSON.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(if method == "PUT" {
        b"PATCH"
    } else {
        method.as_bytes()
    });
    h.write(b" ");
    h.write(path.as_bytes());
    h.write(b"\n");
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => h.write(canonical_json(&v).as_bytes()),
        Err(_) => h.write(body),
    }
    h.finish()
}

/// JSON with object keys sorted, so two spellings of one body compare equal.
fn canonical_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&m[k])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

impl MemoryIdempotencyStore {
    /// At most `max_entries` keys and `max_bytes` bytes: each entry weighs its size, and at
    /// least `max_bytes / max_entries`, so a bound of bytes also bounds the count.
    pub fn new(ttl: Duration, max_entries: u64, max_bytes: u64) -> MemoryIdempotencyStore {
        let floor = max_bytes / max_entries.max(1);
        MemoryIdempotencyStore {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(move |k: &(String, String), v: &Arc<Stored>| {
                    let size = (k.0.len() + k.1.len()) as u64
                        + v.answer.body.len() as u64
                        + v.answer
                            .headers
                            .iter()
                            .map(|(n, h)| (n.len() + h.len()) as u64)
                            .sum::<u64>()
                        + ENTRY_OVERHEAD;
                    u32::try_from(size.max(floor)).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Weighed bytes held now, and the number of entries (after pending evictions).
    pub async fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks().await;
        (self.cache.weighted_size(), self.cache.entry_count())
    }

    /// Runs `produce` once per (tenant, key); returns the answer and whether it is a replay.
    pub async fn run_with<F, Fut>(
        &self,
        tenant: &str,
        key: &str,
        fingerprint: u64,
        produce: F,
    ) -> Result<(StoredAnswer, bool), Problem>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Produced>,
    {
        let led = AtomicBool::new(false);
        let init = async {
            led.store(true, Ordering::Relaxed);
            let p = produce().await;
            let stored = Arc::new(Stored {
                fingerprint,
                answer: p.answer,
            });
            if p.keep {
                Ok(stored)
            } else {
                Err(stored)
            }
        };
        let stored = match self
            .cache
            .try_get_with((tenant.to_string(), key.to_string()), init)
            .await
        {
            Ok(s) => s,
            // Not kept: the leader and the requests that waited for it all see its answer.
            Err(s) => Arc::clone(&*s),
        };
        if stored.fingerprint != fingerprint {
            return Err(Problem::field(
                ErrorCode::IdempotencyConflict,
                "Idempotency-Key",
                "this key was used with another request; use a new key for a new request",
            ));
        }
        Ok((stored.answer.clone(), !led.load(Ordering::Relaxed)))
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn run(
        &self,
        scope: &Scope,
        _caller: Caller<'_>,
        produce: BoxFuture<'_, (Produced, VendorFacts)>,
    ) -> Result<Ran, Problem> {
        let mut vendor = None;
        let ran = &mut vendor;
        let (answer, replayed) = self
            .run_with(
                &scope.tenant,
                &scope.key,
                scope.fingerprint,
                move || async move {
                    let (produced, facts) = produce.await;
                    *ran = Some(facts);
                    produced
                },
            )
            .await?;
        Ok(Ran {
            answer,
            replayed,
            vendor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn answer(body: &'static str) -> StoredAnswer {
        StoredAnswer {
            status: 201,
            code: None,
            content_type: "application/json",
            body: Bytes::from_static(body.as_bytes()),
            headers: vec![],
        }
    }

    #[test]
    fn fingerprints_ignore_spelling_but_not_meaning() {
        let a = fingerprint("POST", "/v1/calls", br#"{"to": "+1", "agentId": "a"}"#);
        assert_eq!(
            a,
            fingerprint("POST", "/v1/calls", br#"{"agentId":"a","to":"+1"}"#)
        );
        assert_ne!(
            a,
            fingerprint("POST", "/v1/calls", br#"{"agentId":"b","to":"+1"}"#)
        );
        assert_eq!(
            fingerprint("PUT", "/v1/calls/x", b"{}"),
            fingerprint("PATCH", "/v1/calls/x", b"{}")
        );
    }

    #[tokio::test]
    async fn replays_conflicts_and_scopes_by_tenant() {
        let store = MemoryIdempotencyStore::new(Duration::from_secs(60), 100, 1 << 20);
        let calls = AtomicUsize::new(0);
        let produce = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Produced {
                answer: answer("a"),
                keep: true,
            }
        };
        let (a, replay) = store.run_with("t", "k", 1, produce).await.unwrap();
        assert_eq!((a.body.as_ref(), replay), (&b"a"[..], false));
        let (_, replay) = store
            .run_with("t", "k", 1, || async { unreachable!() })
            .await
            .unwrap();
        assert!(replay);
        let p = store
            .run_with("t", "k", 2, || async { unreachable!() })
            .await
            .unwrap_err();
        assert_eq!(p.code, ErrorCode::IdempotencyConflict);
        store
            .run_with("u", "k", 2, || async {
                Produced {
                    answer: answer("b"),
                    keep: true,
                }
            })
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn answers_that_are_not_kept_can_be_retried() {
        let store = MemoryIdempotencyStore::new(Duration::from_secs(60), 100, 1 << 20);
        let run = |body, keep| {
            store.run_with("t", "k", 1, move || async move {
                Produced {
                    answer: answer(body),
                    keep,
                }
            })
        };
        let (_, replay) = run("no", false).await.unwrap();
        assert!(!replay);
        let (a, replay) = run("yes", true).await.unwrap();
        assert_eq!((a.body.as_ref(), replay), (&b"yes"[..], false));
    }

    #[tokio::test]
    async fn the_layer_returns_the_vendor_facts_only_of_the_request_that_produced() {
        let store = MemoryIdempotencyStore::new(Duration::from_secs(60), 100, 1 << 20);
        let scope = Scope {
            tenant: "t".into(),
            key: "k".into(),
            fingerprint: 1,
            provider: "p".into(),
        };
        let produce = |status| -> BoxFuture<'static, (Produced, VendorFacts)> {
            Box::pin(async move {
                let facts = VendorFacts {
                    status: Some(status),
                    ..VendorFacts::default()
                };
                let produced = Produced {
                    answer: answer("a"),
                    keep: true,
                };
                (produced, facts)
            })
        };
        let first = store
            .run(&scope, Caller::default(), produce(201))
            .await
            .unwrap();
        assert!(!first.replayed);
        assert_eq!(first.vendor.and_then(|v| v.status), Some(201));
        let again = store
            .run(&scope, Caller::default(), produce(500))
            .await
            .unwrap();
        assert!(again.replayed);
        assert!(again.vendor.is_none(), "a replay never reached the vendor");
        assert_eq!(again.answer, first.answer);
    }

    #[tokio::test]
    async fn the_store_is_bounded_in_bytes_as_well_as_in_entries() {
        // 1,000 answers of 50 KB under new keys (50 MB) into a store of 1 MiB.
        let store = MemoryIdempotencyStore::new(Duration::from_secs(60), 100_000, 1 << 20);
        let big = Bytes::from(vec![b'x'; 50_000]);
        for i in 0..1_000 {
            let body = big.clone();
            store
                .run_with("t", &format!("k{i}"), 1, || async move {
                    Produced {
                        answer: StoredAnswer { body, ..answer("") },
                        keep: true,
                    }
                })
                .await
                .unwrap();
        }
        let (bytes, entries) = store.usage().await;
        assert!(bytes <= 1 << 20, "{bytes} bytes");
        assert!(entries <= 21, "{entries} entries of 50 KB in 1 MiB");
        // Small answers: the count bound holds too (100 entries of a 1 MiB store).
        let store = MemoryIdempotencyStore::new(Duration::from_secs(60), 100, 1 << 20);
        for i in 0..1_000 {
            store
                .run_with("t", &format!("k{i}"), 1, || async {
                    Produced {
                        answer: answer("a"),
                        keep: true,
                    }
                })
                .await
                .unwrap();
        }
        let (_, entries) = store.usage().await;
        assert!(entries <= 100, "{entries} entries");
    }
}
