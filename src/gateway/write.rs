//! Writes — `POST /v1/calls` and `PATCH|PUT /v1/calls/{id}` — as planned: the idempotency layer
//! (when the request has a key) → the vendor side, sent at most once → normalize → the answer;
//! a write that succeeded drops what the cache knew of the call and its provider's lists.
//!
//! When a write may have arrived but no answer says what happened, its problem carries
//! `"outcome": "unknown"` ([`settle`]) so the caller reconciles instead of retrying blindly; such
//! an answer is kept for its idempotency key, so a retry is not a second call.

use super::answer::{problem_answer, JSON};
use super::exchange::VendorAnswer;
use super::plan::WritePlan;
use super::upstream::{encode, read_json, unnormalizable, Exchange, VendorSide};
use crate::adapter::normalize::Context;
use crate::adapter::plan::WriteKind;
use crate::adapter::rules::Params;
use crate::canonical::handling::Warning;
use crate::canonical::{Call, ErrorCode, Problem};
use crate::config::Provider;
use crate::layers::cache::{Change, ResponseCache};
use crate::layers::idempotency::{Caller, IdempotencyStore, Produced, Ran, StoredAnswer};
use crate::layers::VendorFacts;
use crate::telemetry;
use bytes::Bytes;
use tracing::Instrument;

/// The stores a write passes through.
#[derive(Clone, Copy)]
pub struct WriteLayers<'a> {
    pub idempotency: &'a dyn IdempotencyStore,
    pub cache: &'a dyn ResponseCache,
    pub vendor: &'a VendorSide,
}

/// Runs a planned write: its stored (or replayed) answer.
pub async fn write(
    layers: WriteLayers<'_>,
    provider: &Provider,
    plan: &WritePlan,
    cx: Exchange<'_>,
) -> Result<Ran, Problem> {
    let produce = Box::pin(async move {
        let (result, facts) = send(layers.vendor, provider, plan, cx).await;
        // A failure is kept only when the call may exist: a retry must not place a second one.
        let keep = match &result {
            Ok(_) => true,
            Err(p) => p.provider.as_deref().is_some_and(|pf| pf.outcome.is_some()),
        };
        let answer = match result {
            Ok((id, body)) => {
                let change = match plan.kind {
                    WriteKind::Create => Change::Created,
                    WriteKind::Update => Change::Updated,
                };
                layers
                    .cache
                    .invalidate_call(&provider.name, &id, change)
                    .await;
                let mut headers = vec![("Location", format!("/v1/calls/{id}"))];
                if let Some(h) = plan.preference_applied {
                    headers.push(("Preference-Applied", format!("handling={}", h.name())));
                }
                StoredAnswer {
                    status: plan.success,
                    code: None,
                    content_type: JSON,
                    body,
                    headers,
                }
            }
            Err(p) => problem_answer(p, cx.request_id),
        };
        (Produced { answer, keep }, facts)
    });
    match &plan.idempotency {
        Some(scope) => {
            let caller = Caller {
                request_id: cx.request_id,
                deadline: cx.deadline,
            };
            layers
                .idempotency
                .run(scope, caller, produce)
                .instrument(telemetry::room("idempotency"))
                .await
        }
        None => {
            let (produced, facts) = produce.await;
            Ok(Ran {
                answer: produced.answer,
                replayed: false,
                vendor: Some(facts),
            })
        }
    }
}

/// Sends the write once; the written call's id and canonical JSON, or the settled problem.
async fn send(
    vendor: &VendorSide,
    provider: &Provider,
    plan: &WritePlan,
    cx: Exchange<'_>,
) -> (Result<(String, Bytes), Problem>, VendorFacts) {
    let (answer, mut facts) = vendor.exchange(provider, &plan.request, cx).await;
    let result = telemetry::room("normalize")
        .in_scope(|| answer.and_then(|a| written_call(provider, plan, &a, &mut facts)))
        .map_err(settle);
    (result, facts)
}

/// The canonical call of a vendor's answer to a write.
fn written_call(
    provider: &Provider,
    plan: &WritePlan,
    answer: &VendorAnswer,
    facts: &mut VendorFacts,
) -> Result<(String, Bytes), Problem> {
    let adapter = &provider.adapter;
    let body = read_json(provider, answer, facts)?;
    let op = adapter.write_op(plan.kind)?;
    let cx = Context {
        provider: &provider.name,
        agents: &provider.agent_keys,
        params: Params(&plan.params),
        include_raw: false,
    };
    let call = adapter
        .normalize_write(op, &body, cx, &mut facts.drift)
        .map_err(|e| unnormalizable(provider, e, facts))?;
    let body = encode(&Written {
        call: &call,
        warnings: &plan.warnings,
    })?;
    Ok((call.id, Bytes::from(body)))
}

/// A written call as answered: the call, and the request fields the vendor did not receive.
#[derive(serde::Serialize)]
struct Written<'a> {
    #[serde(flatten)]
    call: &'a Call,
    #[serde(skip_serializing_if = "<[Warning]>::is_empty")]
    warnings: &'a [Warning],
}

/// The one decision whether a failed write's outcome is unknown: a vendor error or timeout
/// after the request may have arrived. (A connection that could not be made is
/// `provider_unavailable`: nothing arrived.)
fn settle(p: Problem) -> Problem {
    match p.code {
        ErrorCode::ProviderError | ErrorCode::ProviderTimeout => p.outcome_unknown(),
        _ => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_write_that_may_have_arrived_is_unknown() {
        let unknown = |code| {
            settle(Problem::new(code, "x").with_provider("p"))
                .provider
                .and_then(|pf| pf.outcome)
                .is_some()
        };
        assert!(unknown(ErrorCode::ProviderError));
        assert!(unknown(ErrorCode::ProviderTimeout));
        assert!(!unknown(ErrorCode::ProviderUnavailable));
        assert!(!unknown(ErrorCode::ProviderRateLimited));
        assert!(!unknown(ErrorCode::NotFound));
    }
}
