//! `Idempotency-Key` for a fleet: the same contract as the in-memory store
//! ([`crate::layers::idempotency`]) with the key's claim and answer kept in Redis, so a retried
//! write is sent once whichever replica it reaches.
//!
//! - The first request with a key **claims** it atomically (one Lua script: the key is created
//!   only if absent, with a random claim token and a lease measured on Redis's clock), sends the
//!   write, and stores the answer in place of the claim if the claim is still its own — while
//!   the answer goes out to the client, so the claim is the only round trip on its path.
//! - A duplicate finds the claim and **waits**, polling the same script with a growing pause
//!   (5 ms → 100 ms), until the answer is there (replayed byte for byte), the key is free again
//!   (the first request proved nothing was sent: the duplicate claims it and sends), its client's
//!   deadline passes (409, still in progress), or the lease passes.
//! - A lease that passed without an answer means the claiming replica died mid-write: the vendor
//!   may or may not have placed the call. The first duplicate to see it replaces the claim with a
//!   `504 provider_timeout` problem marked `"outcome": "unknown"`, kept under the key like any
//!   answer, so every later duplicate gets the same answer — never a blind resend.
//! - The same key with another request is `409 idempotency_conflict`, at once.
//!
//! While Redis is unreachable, `[state.on_failure] idempotency` decides: `fail_closed` refuses a
//! keyed write with `503 state_unavailable` before anything is sent; `fail_open_local` keeps
//! keys in this replica's memory.

use super::link::{Function, RedisLink, StateError};
use crate::canonical::{ErrorCode, Problem};
use crate::config::IdempotencyFailure;
use crate::gateway::answer::{problem_answer, JSON, PROBLEM_JSON};
use crate::layers::idempotency::{
    Caller, IdempotencyStore, MemoryIdempotencyStore, Produced, Ran, Scope, StoredAnswer,
};
use crate::layers::{BoxFuture, VendorFacts};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use redis::Script;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::time::Instant;

/// Claims KEYS[1] if it is free; else reports what holds it.
/// ARGV: token, fingerprint, provider, lease ms, key TTL ms.
/// Returns `{"claimed"}` or `{state, fingerprint, lease ms left, answer}`.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'claimed', 'token', ARGV[1], 'fp', ARGV[2],
    'provider', ARGV[3], 'lease', tostring(now + tonumber(ARGV[4])))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'claimed'}
end
local h = redis.call('HMGET', KEYS[1], 'state', 'fp', 'lease', 'answer', 'provider')
local left = tonumber(h[3] or '0') - now
return {h[1] or '', h[2] or '', tostring(left), h[4] or '', h[5] or ''}
",
    )
});

/// Stores the answer if the claim is still ours. ARGV: token, answer, key TTL ms.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'answer', ARGV[2])
redis.call('HDEL', KEYS[1], 'token', 'lease')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
",
    )
});

/// Frees the key if the claim is still ours (nothing was sent). ARGV: token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
",
    )
});

/// Replaces a claim whose lease passed with an answer. ARGV: answer, key TTL ms.
static TAKE_OVER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'lease')
if h[1] ~= 'claimed' or tonumber(h[2] or '0') > now then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'answer', ARGV[1])
redis.call('HDEL', KEYS[1], 'token', 'lease')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// How a claim ends: the answer stored in its place, or (nothing was sent) the key freed.
struct Settle {
    link: Arc<RedisLink>,
    key: String,
    token: String,
    /// The answer to keep, or `None` to free the key.
    answer: Option<String>,
    ttl: u64,
}

impl Settle {
    async fn once(&self) -> Result<(), StateError> {
        let (key, token, ttl) = (&self.key, &self.token, self.ttl);
        let answer = self.answer.as_deref();
        self.link
            .exec(Function::Idempotency, |mut c| async move {
                match answer {
                    Some(a) => {
                        FINISH
                            .key(key)
                            .arg(token)
                            .arg(a)
                            .arg(ttl)
                            .invoke_async::<i64>(&mut c)
                            .await
                    }
                    None => {
                        RELEASE
                            .key(key)
                            .arg(token)
                            .invoke_async::<i64>(&mut c)
                            .await
                    }
                }
            })
            .await
            .map(drop)
    }

    /// Tries again in the background until Redis takes it or the claim's lease is over (then
    /// the claim's duplicates answer `outcome: unknown`, as for a replica that died). Without
    /// it, a claim Redis took just before it failed would hold its key for the whole lease.
    fn later(self, lease: Duration) {
        tokio::spawn(async move {
            let until = Instant::now() + lease;
            while Instant::now() < until {
                tokio::time::sleep(SETTLE_PAUSE).await;
                if self.once().await.is_ok() {
                    return;
                }
            }
        });
    }
}

/// Pause between background attempts to settle a claim while Redis is unreachable.
const SETTLE_PAUSE: Duration = Duration::from_millis(250);

/// Pauses between polls of a claim held by another request.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// What the claim script found.
enum Claim {
    Ours,
    Done {
        fingerprint: u64,
        answer: String,
    },
    Held {
        fingerprint: u64,
        left: Duration,
        expired: bool,
        provider: String,
    },
    /// A holder another version wrote, or garbage: treated as a conflict, never overwritten.
    Unknown,
}

/// A stored answer as kept in Redis.
#[derive(Serialize, Deserialize)]
struct Wire {
    status: u16,
    code: Option<String>,
    problem: bool,
    body: String,
    headers: Vec<(String, String)>,
}

/// Header names an answer may carry, so a stored one is rebuilt with the same names.
const HEADERS: [&str; 5] = [
    "Location",
    "Preference-Applied",
    "Retry-After",
    "Allow",
    "Callgate-Failover",
];

fn encode(a: &StoredAnswer) -> String {
    serde_json::to_string(&Wire {
        status: a.status,
        code: a.code.map(|c| c.name().to_string()),
        problem: a.content_type == PROBLEM_JSON,
        body: STANDARD.encode(&a.body),
        headers: a
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
    })
    .unwrap_or_default()
}

fn decode(text: &str) -> Option<StoredAnswer> {
    let w: Wire = serde_json::from_str(text).ok()?;
    Some(StoredAnswer {
        status: w.status,
        code: w.code.as_deref().and_then(ErrorCode::from_name),
        content_type: if w.problem { PROBLEM_JSON } else { JSON },
        body: STANDARD.decode(w.body).ok()?.into(),
        headers: w
            .headers
            .into_iter()
            .filter_map(|(n, v)| HEADERS.iter().find(|h| **h == n).map(|h| (*h, v)))
            .collect(),
    })
}

fn conflict() -> Problem {
    Problem::field(
        ErrorCode::IdempotencyConflict,
        "Idempotency-Key",
        "this key was used with another request; use a new key for a new request",
    )
}

/// Keys and answers in Redis, with this replica's memory as the `fail_open_local` fallback.
pub struct RedisIdempotencyStore {
    link: Arc<RedisLink>,
    local: MemoryIdempotencyStore,
    on_failure: IdempotencyFailure,
    ttl: Duration,
}

impl RedisIdempotencyStore {
    pub fn new(
        link: Arc<RedisLink>,
        local: MemoryIdempotencyStore,
        ttl: Duration,
    ) -> RedisIdempotencyStore {
        RedisIdempotencyStore {
            on_failure: link.settings().on_failure.idempotency,
            link,
            local,
            ttl,
        }
    }

    fn ms(d: Duration) -> u64 {
        d.as_millis().max(1) as u64
    }

    async fn claim(&self, key: &str, token: &str, scope: &Scope) -> Result<Claim, StateError> {
        let lease = Self::ms(self.link.settings().claim_ttl);
        let ttl = Self::ms(self.ttl).max(lease);
        let fp = scope.fingerprint.to_string();
        let found: Vec<String> = self
            .link
            .exec(Function::Idempotency, |mut c| async move {
                CLAIM
                    .key(key)
                    .arg(token)
                    .arg(&fp)
                    .arg(&scope.provider)
                    .arg(lease)
                    .arg(ttl)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let fingerprint = |s: &str| s.parse::<u64>().ok();
        Ok(match found.as_slice() {
            [s] if s == "claimed" => Claim::Ours,
            [state, fp, _, answer, _] if state == "done" => match fingerprint(fp) {
                Some(fingerprint) => Claim::Done {
                    fingerprint,
                    answer: answer.clone(),
                },
                None => Claim::Unknown,
            },
            [state, fp, left, _, provider] if state == "claimed" => {
                match (fingerprint(fp), left.parse::<f64>()) {
                    (Some(fingerprint), Ok(left)) => Claim::Held {
                        fingerprint,
                        left: Duration::from_millis(left.max(0.0) as u64),
                        expired: left <= 0.0,
                        provider: provider.clone(),
                    },
                    _ => Claim::Unknown,
                }
            }
            _ => Claim::Unknown,
        })
    }

    /// Runs `produce` as the key's owner, then stores (or frees) the key.
    async fn produce_owned(
        &self,
        key: &str,
        token: &str,
        produce: BoxFuture<'_, (Produced, VendorFacts)>,
    ) -> Ran {
        let (produced, facts) = produce.await;
        let settle = Settle {
            link: self.link.clone(),
            key: key.to_string(),
            token: token.to_string(),
            answer: produced.keep.then(|| encode(&produced.answer)),
            ttl: Self::ms(self.ttl),
        };
        // Stored while the answer goes out: duplicates wait on the claim until it lands, so
        // the client need not wait for it too (one Redis round trip less per keyed write).
        let lease = self.link.settings().claim_ttl;
        tokio::spawn(async move {
            if let Err(e) = settle.once().await {
                tracing::warn!(error = %e, kept = settle.answer.is_some(), "could not store an idempotent write's answer in Redis yet; retrying in the background");
                settle.later(lease);
            }
        });
        Ran {
            answer: produced.answer,
            replayed: false,
            vendor: Some(facts),
        }
    }

    /// Turns a claim whose lease ran out into the answer every duplicate gets from now on.
    async fn take_over(
        &self,
        key: &str,
        provider: &str,
        request_id: &str,
    ) -> Result<(), StateError> {
        let p = Problem::new(
            ErrorCode::ProviderTimeout,
            "the replica that sent the first request with this Idempotency-Key stopped before the vendor's answer was stored",
        )
        .with_provider(provider)
        .outcome_unknown();
        let answer = encode(&problem_answer(p, request_id));
        let ttl = Self::ms(self.ttl);
        self.link
            .exec(Function::Idempotency, |mut c| async move {
                TAKE_OVER
                    .key(key)
                    .arg(answer)
                    .arg(ttl)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(drop)
    }

    async fn fall_back(
        &self,
        scope: &Scope,
        caller: Caller<'_>,
        produce: BoxFuture<'_, (Produced, VendorFacts)>,
        e: StateError,
    ) -> Result<Ran, Problem> {
        self.link.metrics.fell_back(Function::Idempotency);
        match self.on_failure {
            IdempotencyFailure::FailOpenLocal => self.local.run(scope, caller, produce).await,
            IdempotencyFailure::FailClosed => Err(Problem::field(
                ErrorCode::StateUnavailable,
                "Idempotency-Key",
                format!("{e}: a write carrying an Idempotency-Key is not sent without it, so nothing was sent and retrying later is safe"),
            )),
        }
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn run(
        &self,
        scope: &Scope,
        caller: Caller<'_>,
        produce: BoxFuture<'_, (Produced, VendorFacts)>,
    ) -> Result<Ran, Problem> {
        let key = self
            .link
            .key(&format!("idem:{{{}}}:{}", scope.tenant, scope.key));
        let token = uuid::Uuid::new_v4().to_string();
        let mut pause = FIRST_PAUSE;
        loop {
            let claim = match self.claim(&key, &token, scope).await {
                Ok(c) => c,
                Err(e) => {
                    // Redis may have taken the claim and failed before answering: free it
                    // when Redis is back (nothing is sent under it), else it holds the key.
                    if !matches!(e, StateError::BackingOff) {
                        let free = Settle {
                            link: self.link.clone(),
                            key: key.clone(),
                            token: token.clone(),
                            answer: None,
                            ttl: 0,
                        };
                        free.later(self.link.settings().claim_ttl);
                    }
                    return self.fall_back(scope, caller, produce, e).await;
                }
            };
            match claim {
                Claim::Ours => return Ok(self.produce_owned(&key, &token, produce).await),
                Claim::Done {
                    fingerprint,
                    answer,
                } => {
                    if fingerprint != scope.fingerprint {
                        return Err(conflict());
                    }
                    let answer = decode(&answer).ok_or_else(|| {
                        Problem::new(
                            ErrorCode::IdempotencyConflict,
                            "the answer stored under this Idempotency-Key cannot be read (written by another callgate version?); use a new key after checking whether the call exists",
                        )
                    })?;
                    return Ok(Ran {
                        answer,
                        replayed: true,
                        vendor: None,
                    });
                }
                Claim::Held { fingerprint, .. } if fingerprint != scope.fingerprint => {
                    return Err(conflict())
                }
                Claim::Held {
                    expired: true,
                    provider,
                    ..
                } => {
                    if let Err(e) = self.take_over(&key, &provider, caller.request_id).await {
                        return self.fall_back(scope, caller, produce, e).await;
                    }
                }
                Claim::Held { left, .. } => {
                    let now = Instant::now();
                    let mut wake = now + pause.min(left + Duration::from_millis(1));
                    if let Some(d) = caller.deadline {
                        if d <= now {
                            return Err(Problem::field(
                                ErrorCode::IdempotencyConflict,
                                "Idempotency-Key",
                                "a request with this key is still in progress; ask again later for its answer",
                            ));
                        }
                        wake = wake.min(d);
                    }
                    tokio::time::sleep_until(wake).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Claim::Unknown => return Err(conflict()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_stored_answer_reads_back_as_it_was() {
        let a = StoredAnswer {
            status: 201,
            code: None,
            content_type: JSON,
            body: Bytes::from_static(br#"{"id":"x"}"#),
            headers: vec![
                ("Location", "/v1/calls/x".into()),
                ("Preference-Applied", "handling=lenient".into()),
            ],
        };
        assert_eq!(decode(&encode(&a)), Some(a));
        let p = problem_answer(Problem::new(ErrorCode::ProviderTimeout, "slow"), "r1");
        assert_eq!(decode(&encode(&p)), Some(p));
        assert_eq!(decode("not json"), None);
    }
}
