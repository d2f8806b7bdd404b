//! The last room: what goes back to the client (status, headers, body) and the facts the
//! request log records about it. Errors become RFC 9457 problem documents here, and only here.

use crate::adapter::rules::Drift;
use crate::cache::CacheOutcome;
use crate::canonical::{ErrorCode, Operation, Problem};
use bytes::Bytes;
use serde::Serialize;
use std::time::Duration;

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What the request log and metrics learn about a request (labels from closed sets only).
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub tenant: Option<String>,
    pub provider: Option<String>,
    pub operation: Option<Operation>,
    pub code: Option<ErrorCode>,
    /// Time spent waiting on the vendor.
    pub upstream: Duration,
    /// What went wrong with the vendor, as a `callgate_upstream_errors_total{kind}` label.
    pub upstream_error: Option<&'static str>,
    /// How the response cache answered (GETs of calls only).
    pub cache: Option<CacheOutcome>,
    /// Vendor fields that did not match the adapter.
    pub drift: Vec<Drift>,
}

impl Outcome {
    /// Takes in what a vendor fetch learned.
    pub fn absorb(&mut self, fetch: Outcome) {
        self.upstream += fetch.upstream;
        self.upstream_error = self.upstream_error.or(fetch.upstream_error);
        self.drift.extend(fetch.drift);
    }
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub retry_after: Option<String>,
    /// Other response headers (`Location`, `Idempotent-Replayed`).
    pub headers: Vec<(&'static str, String)>,
    pub outcome: Outcome,
}

impl Answer {
    pub fn json<T: Serialize>(status: u16, value: &T, outcome: Outcome) -> Answer {
        match serde_json::to_vec(value) {
            Ok(body) => Answer {
                status,
                content_type: JSON,
                body: Bytes::from(body),
                retry_after: None,
                headers: Vec::new(),
                outcome,
            },
            Err(e) => Answer::problem(
                Problem::new(
                    ErrorCode::ProviderError,
                    format!("the answer could not be encoded: {e}"),
                ),
                "",
                outcome,
            ),
        }
    }

    pub fn raw_json(body: Bytes, outcome: Outcome) -> Answer {
        Answer {
            status: 200,
            content_type: JSON,
            body,
            retry_after: None,
            headers: Vec::new(),
            outcome,
        }
    }

    /// A stored (possibly replayed) write answer.
    pub fn stored(s: crate::idempotency::StoredAnswer, outcome: Outcome) -> Answer {
        let mut headers = s.headers;
        let retry_after = headers
            .iter()
            .position(|(k, _)| *k == "Retry-After")
            .map(|i| headers.remove(i).1);
        Answer {
            status: s.status,
            content_type: s.content_type,
            body: s.body,
            retry_after,
            headers,
            outcome,
        }
    }

    pub fn problem(mut p: Problem, request_id: &str, mut outcome: Outcome) -> Answer {
        p.request_id = request_id.to_string();
        outcome.code = Some(p.code);
        if outcome.provider.is_none() {
            outcome.provider = p.provider_name().map(str::to_string);
        }
        let body = serde_json::to_vec(&p).unwrap_or_default();
        Answer {
            status: p.status(),
            content_type: PROBLEM_JSON,
            body: Bytes::from(body),
            retry_after: p.retry_after.clone(),
            headers: Vec::new(),
            outcome,
        }
    }
}

/// The request id to use: the client's, when it is a sane token, else a new UUID.
pub fn request_id(from_client: Option<&str>) -> String {
    match from_client {
        Some(id)
            if (1..=200).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b)) =>
        {
            id.to_string()
        }
        // A version-4 UUID from the thread's fast generator: request ids must be unique, not
        // unguessable, and `Uuid::new_v4` costs a `getrandom` syscall per request.
        _ => uuid::Builder::from_random_bytes(fastrand::u128(..).to_ne_bytes())
            .into_uuid()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_taken_only_when_sane() {
        assert_eq!(request_id(Some("abc-123")), "abc-123");
        assert_ne!(request_id(Some("bad id\r\nX: y")), "bad id\r\nX: y");
        assert_eq!(request_id(None).len(), 36);
        let a = uuid::Uuid::parse_str(&request_id(None)).unwrap();
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(request_id(None), request_id(None));
        assert_eq!(request_id(Some(&"x".repeat(201))).len(), 36);
    }
}
