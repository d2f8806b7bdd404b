//! The last room: what goes back to the client (status, headers, body) and the record the
//! request log and metrics keep of it. Errors become RFC 9457 problem documents here, and only
//! here ([`problem_answer`]).

use crate::adapter::rules::Drift;
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::layers::cache::CacheOutcome;
use crate::layers::idempotency::StoredAnswer;
use crate::layers::VendorFacts;
use bytes::Bytes;
use serde::Serialize;
use std::time::Duration;

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";
pub const EVENT_STREAM: &str = "text/event-stream";

/// What the request log and metrics learn about a request (labels from closed sets only),
/// assembled once per request by the gateway from what each stage returned.
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
    /// Why an event stream ended (`call_ended`, `max_duration`, …), for the log line.
    pub stream_end: Option<&'static str>,
}

impl Outcome {
    /// Takes in what the vendor side saw, when the request reached it.
    pub fn with_vendor(mut self, vendor: Option<VendorFacts>) -> Outcome {
        if let Some(v) = vendor {
            self.upstream = v.waited;
            self.upstream_error = v.error;
            self.drift = v.drift;
        }
        self
    }
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The problem code of an error answer.
    pub code: Option<ErrorCode>,
    pub content_type: &'static str,
    pub body: Bytes,
    pub retry_after: Option<String>,
    /// Other response headers (`Location`, `Idempotent-Replayed`).
    pub headers: Vec<(&'static str, String)>,
    /// The request's record, filled in once by the gateway when the answer is final.
    pub outcome: Outcome,
    /// A live event stream to write after the header instead of `body` (`text/event-stream`).
    pub stream: Option<super::events::EventStream>,
}

impl Answer {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Answer {
        match serde_json::to_vec(value) {
            Ok(body) => Answer {
                status,
                code: None,
                content_type: JSON,
                body: Bytes::from(body),
                retry_after: None,
                headers: Vec::new(),
                outcome: Outcome::default(),
                stream: None,
            },
            Err(e) => Answer::stored(problem_answer(
                Problem::new(
                    ErrorCode::ProviderError,
                    format!("the answer could not be encoded: {e}"),
                ),
                "",
            )),
        }
    }

    pub fn raw_json(body: Bytes) -> Answer {
        Answer {
            status: 200,
            code: None,
            content_type: JSON,
            body,
            retry_after: None,
            headers: Vec::new(),
            outcome: Outcome::default(),
            stream: None,
        }
    }

    /// A live event stream (`200 text/event-stream`).
    pub fn stream(stream: super::events::EventStream) -> Answer {
        Answer {
            status: 200,
            code: None,
            content_type: EVENT_STREAM,
            body: Bytes::new(),
            retry_after: None,
            headers: vec![("Cache-Control", "no-store".into())],
            outcome: Outcome::default(),
            stream: Some(stream),
        }
    }

    /// A stored (possibly replayed) write answer.
    pub fn stored(s: StoredAnswer) -> Answer {
        let mut headers = s.headers;
        let retry_after = headers
            .iter()
            .position(|(k, _)| *k == "Retry-After")
            .map(|i| headers.remove(i).1);
        Answer {
            status: s.status,
            code: s.code,
            content_type: s.content_type,
            body: s.body,
            retry_after,
            headers,
            outcome: Outcome::default(),
            stream: None,
        }
    }
}

/// A problem as the client gets it: an RFC 9457 document carrying the request id, its status,
/// and `Retry-After` when it says when to retry. Kept as a [`StoredAnswer`], so a write's problem
/// can be replayed byte for byte.
pub fn problem_answer(mut p: Problem, request_id: &str) -> StoredAnswer {
    p.request_id = request_id.to_string();
    let body = Bytes::from(serde_json::to_vec(&p).unwrap_or_default());
    StoredAnswer {
        status: p.status(),
        code: Some(p.code),
        content_type: PROBLEM_JSON,
        body,
        headers: p
            .retry_after
            .map(|r| ("Retry-After", r))
            .into_iter()
            .chain(p.allow.map(|a| ("Allow", a.header().to_string())))
            .collect(),
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
