//! `Idempotency-Key` for writes: per tenant, the first answer to a key is stored and replayed to
//! every later request with the same key and the same body — without a second vendor request,
//! also when the duplicates arrive while the first is in flight (they wait for it). The same key
//! with another body is `409 idempotency_conflict`. Entries expire (default 24 h) and are bounded
//! in number (moka).
//!
//! Answers that prove nothing reached a vendor (the request was refused before, or no connection
//! could be made) are not stored, so the client may simply retry them.

use crate::canonical::{ErrorCode, Problem};
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

pub struct IdempotencyStore {
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

impl IdempotencyStore {
    pub fn new(ttl: Duration, max_entries: u64) -> IdempotencyStore {
        IdempotencyStore {
            cache: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Runs `produce` once per (tenant, key); returns the answer and whether it is a replay.
    pub async fn run<F, Fut>(
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
        if key.is_empty() || key.len() > 255 {
            return Err(Problem::field(
                ErrorCode::InvalidRequest,
                "Idempotency-Key",
                "must be 1 to 255 characters",
            ));
        }
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
        let store = IdempotencyStore::new(Duration::from_secs(60), 100);
        let calls = AtomicUsize::new(0);
        let produce = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Produced {
                answer: answer("a"),
                keep: true,
            }
        };
        let (a, replay) = store.run("t", "k", 1, produce).await.unwrap();
        assert_eq!((a.body.as_ref(), replay), (&b"a"[..], false));
        let (_, replay) = store
            .run("t", "k", 1, || async { unreachable!() })
            .await
            .unwrap();
        assert!(replay);
        let p = store
            .run("t", "k", 2, || async { unreachable!() })
            .await
            .unwrap_err();
        assert_eq!(p.code, ErrorCode::IdempotencyConflict);
        store
            .run("u", "k", 2, || async {
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
        let store = IdempotencyStore::new(Duration::from_secs(60), 100);
        let (_, replay) = store
            .run("t", "k", 1, || async {
                Produced {
                    answer: answer("no"),
                    keep: false,
                }
            })
            .await
            .unwrap();
        assert!(!replay);
        let (a, replay) = store
            .run("t", "k", 1, || async {
                Produced {
                    answer: answer("yes"),
                    keep: true,
                }
            })
            .await
            .unwrap();
        assert_eq!((a.body.as_ref(), replay), (&b"yes"[..], false));
    }
}
