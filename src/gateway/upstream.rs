//! The vendor side of the stack, below the cache and idempotency layers: the bulkhead → the
//! circuit breaker and health → retry → the vendor client. It returns the vendor's whole answer, or the
//! problem a failed exchange maps to, with the [`VendorFacts`] it saw. Also here: reading an
//! answer with the adapter, and the `callgate_upstream_errors_total{kind}` taxonomy of failures.

use super::exchange::{ExchangeError, VendorAnswer, VendorClient};
use crate::adapter::normalize::NormalizeError;
use crate::adapter::plan::VendorRequest;
use crate::adapter::Json;
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::Provider;
use crate::layers::breaker::Breakers;
use crate::layers::bulkhead::Bulkheads;
use crate::layers::health::HealthBoard;
use crate::layers::retry::{self, Resend, RetryBudget};
use crate::layers::VendorFacts;
use crate::telemetry;
use futures_util::FutureExt;
use std::time::Instant;
use tracing::Instrument;

/// The layers between the cache (or idempotency) layer and the network.
#[derive(Default)]
pub struct VendorSide {
    pub bulkheads: Bulkheads,
    pub retry_budget: RetryBudget,
    pub breakers: Breakers,
    pub health: HealthBoard,
    pub client: VendorClient,
}

/// What an exchange needs of the request beyond its plan.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub request_id: &'a str,
    /// `server.max_vendor_body_bytes` of the request's snapshot.
    pub max_body: usize,
    /// What may be resent (planned).
    pub resend: Resend,
    /// The operation (each has its own circuit).
    pub operation: Operation,
    /// When the client stops waiting (`X-Request-Timeout-Ms`), if it said.
    pub deadline: Option<tokio::time::Instant>,
}

impl VendorSide {
    /// Sends `request` to `provider` (resent only as `resend` allows) and reads the whole answer.
    pub async fn exchange(
        &self,
        provider: &Provider,
        request: &VendorRequest,
        cx: Exchange<'_>,
    ) -> (Result<VendorAnswer, Problem>, VendorFacts) {
        let _slot = match self.bulkheads.enter(&provider.name, provider.max_in_flight) {
            Ok(slot) => slot,
            Err(refused) => return (Err(refused), VendorFacts::default()),
        };
        let breaker = &provider.breaker;
        let admitted = self.breakers.admit(
            &provider.name,
            cx.operation,
            breaker,
            tokio::time::Instant::now(),
        );
        if let Err(refused) = admitted {
            return (Err(refused), VendorFacts::default());
        }
        let started = Instant::now();
        // The provider's timeout, or the client's deadline when that comes first.
        let own = tokio::time::Instant::now() + provider.timeout;
        let (deadline, client_bound) = match cx.deadline {
            Some(d) if d < own => (d, true),
            _ => (own, false),
        };
        let result = self.attempts(provider, request, cx, deadline).await;
        let mut facts = VendorFacts {
            waited: started.elapsed(),
            ..VendorFacts::default()
        };
        if client_bound && result.as_ref().err() == Some(&ExchangeError::Timeout) {
            // The client's limit, not the vendor's failure: health and circuit learn nothing.
            facts.error = Some(ExchangeError::Timeout.kind());
            let p = Problem::new(
                ErrorCode::ProviderTimeout,
                format!(
                    "provider {:?} did not answer within the time the request allowed (X-Request-Timeout-Ms)",
                    provider.name
                ),
            );
            return (Err(p.with_provider(&provider.name)), facts);
        }
        match &result {
            Ok(answer) => facts.status = Some(answer.status),
            Err(e) => {
                tracing::warn!(provider = %provider.name, kind = e.kind(), "vendor exchange failed");
                facts.error = Some(e.kind());
            }
        }
        self.health.record_exchange(&provider.name, facts.status);
        let failed = facts.status.is_none_or(|s| s >= 500);
        let now = tokio::time::Instant::now();
        self.breakers
            .record(&provider.name, cx.operation, breaker, failed, now);
        (result.map_err(|e| e.into_problem(provider)), facts)
    }
}

impl VendorSide {
    /// The attempts of one exchange before `deadline`: resends of what never left
    /// ([`retry::run`]), and for reads, tries again on answers that say so, within the budget.
    async fn attempts(
        &self,
        provider: &Provider,
        request: &VendorRequest,
        cx: Exchange<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<VendorAnswer, ExchangeError> {
        let reads = cx.resend == Resend::Read;
        if reads {
            self.retry_budget.deposit(&provider.name);
        }
        let mut attempt = 0;
        // Every request sent (resends of what never left included) is a span of its own.
        let sent = std::sync::atomic::AtomicU32::new(0);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = retry::run(
                cx.resend,
                left,
                || ExchangeError::Timeout,
                || {
                    let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let span = telemetry::vendor_span(&provider.name, cx.operation.name(), n);
                    let noted = span.clone();
                    self.client
                        .send_once(provider, request, cx.request_id, cx.max_body)
                        .inspect(move |r| {
                            let kind = r.as_ref().map(|a| a.status).map_err(|(e, _)| e.kind());
                            telemetry::record_vendor(&noted, kind);
                        })
                        .instrument(span)
                },
            )
            .await;
            let again = match &result {
                Ok(a) if reads && attempt + 1 < retry::MAX_READ_ATTEMPTS => {
                    retry::after_answer(a.status, a.retry_after.as_deref(), attempt)
                }
                _ => None,
            };
            match again {
                Some(wait)
                    if tokio::time::Instant::now() + wait < deadline
                        && self.retry_budget.withdraw(&provider.name) =>
                {
                    tracing::debug!(provider = %provider.name, ?wait, "vendor answer says try again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return result,
            }
        }
    }
}

/// A vendor answer read as JSON (borrowing its body), or the problem it maps to (noted).
pub fn read_json<'j>(
    provider: &Provider,
    answer: &'j VendorAnswer,
    facts: &mut VendorFacts,
) -> Result<Json<'j>, Problem> {
    let read = provider.adapter.read_answer(
        &provider.name,
        answer.status,
        answer.retry_after.as_deref(),
        &answer.body,
    );
    noted(provider, facts, read)
}

/// An adapter's reading of a vendor answer: its failure noted in the facts, and any of the
/// provider's own credentials the vendor echoed in its message redacted.
pub fn noted<T>(
    provider: &Provider,
    facts: &mut VendorFacts,
    read: Result<T, Problem>,
) -> Result<T, Problem> {
    read.map_err(|mut p| {
        facts.error = upstream_error_kind(&p);
        for (_, value) in &provider.auth_headers {
            let value = value.expose();
            // The header's value, and its credential after a scheme (`Bearer x`, `Basic x`).
            let credential = value.split_once(' ').map_or(value, |(_, c)| c);
            for secret in [value, credential] {
                if secret.len() >= 4 && p.detail.contains(secret) {
                    p.detail = p.detail.replace(secret, "[redacted]");
                }
            }
        }
        p
    })
}

/// The `callgate_upstream_errors_total{kind}` of a vendor answer that failed; `None` for answers
/// that are about the client's request (not found, refused parameters).
fn upstream_error_kind(p: &Problem) -> Option<&'static str> {
    let status = p
        .provider
        .as_deref()
        .and_then(|f| f.status)
        .unwrap_or_default();
    match p.code {
        ErrorCode::ProviderAuthFailed => Some("auth"),
        ErrorCode::ProviderRateLimited => Some("rate_limited"),
        ErrorCode::ProviderTimeout => Some("timeout"),
        ErrorCode::ProviderError if status >= 500 => Some("server_error"),
        ErrorCode::ProviderError => Some("bad_answer"),
        _ => None,
    }
}

/// A vendor answer that could not be normalized: a `provider_error`, noted as `bad_answer`.
pub fn unnormalizable(provider: &Provider, e: NormalizeError, facts: &mut VendorFacts) -> Problem {
    tracing::warn!(provider = %provider.name, error = %e, "vendor answer could not be normalized");
    facts.error = Some("bad_answer");
    Problem::new(
        ErrorCode::ProviderError,
        format!(
            "the answer of provider {:?} could not be normalized: {e}",
            provider.name
        ),
    )
    .with_provider(&provider.name)
}

/// A canonical answer as JSON bytes.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value).map_err(|e| {
        Problem::new(
            ErrorCode::ProviderError,
            format!("the answer could not be encoded: {e}"),
        )
    })
}
