//! `GET /v1/calls` and `GET /v1/calls/{id}`: route → plan → exchange → normalize → answer.
//! Each step is a call into its own module; this file only sequences them.

use super::answer::{Answer, Outcome};
use super::exchange::VendorAnswer;
use super::{route, Gateway, Incoming};
use crate::adapter::normalize::Context;
use crate::adapter::plan::VendorRequest;
use crate::adapter::rules::Params;
use crate::adapter::Json;
use crate::cache::{CacheKey, CachePolicy, EntryKind, Fetched};
use crate::canonical::call::{CallPage, Pagination};
use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::id::CallId;
use crate::canonical::list_query::{self, ListQuery, DEFAULT_LIMIT};
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::{Provider, Runtime, Tenant};

pub(super) struct CallCx<'a> {
    pub gateway: &'a Gateway,
    pub rt: &'a Runtime,
    pub tenant: &'a Tenant,
    pub req: Incoming<'a>,
}

impl CallCx<'_> {
    pub async fn get(&self, raw_id: &str, outcome: &mut Outcome) -> Result<Answer, Problem> {
        outcome.operation = Some(Operation::GetCall);
        let include_raw = list_query::parse_include(self.req.query)?;
        let (provider, id) = route::for_call_id(self.rt, self.tenant, raw_id)?;
        outcome.provider = Some(provider.name.clone());
        let adapter = &provider.adapter;
        let canonical_id = CallId::encode(
            &provider.name,
            &id.parts.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let params = adapter.id_params(id.parts)?;
        let request = adapter.plan_get(&params)?;
        let key = CacheKey(format!("get|{canonical_id}|raw={include_raw}"));
        let ttls = &self.rt.settings.cache;
        let mut facts = Outcome::default();
        let f = &mut facts;
        let (provider, request, params) = (&provider, &request, &params);
        let fetch = move || async move {
            let answer = self.exchange(provider, request, f).await?;
            let body = read_json(provider, &answer, f)?;
            let cx = Context {
                provider: &provider.name,
                params: Params(params),
                include_raw,
            };
            let call = adapter
                .extract_item(&body)
                .and_then(|item| adapter.normalize_call(item, cx, &mut f.drift))
                .map_err(|e| unnormalizable(provider, e, f))?;
            let ttl = if call.status.is_live() {
                ttls.live_call_ttl
            } else {
                ttls.finished_call_ttl
            };
            Ok(Fetched {
                body: encode(&call)?,
                ttl,
                kind: EntryKind::Get,
                provider: provider.name.clone(),
                call_id: Some(canonical_id.clone()),
            })
        };
        let result = self.through_cache(key, fetch, outcome).await;
        outcome.absorb(facts);
        result.map(|body| Answer::raw_json(body, std::mem::take(outcome)))
    }

    pub async fn list(&self, outcome: &mut Outcome) -> Result<Answer, Problem> {
        outcome.operation = Some(Operation::ListCalls);
        let q = ListQuery::parse(self.req.query)?;
        let fingerprint = q.fingerprint();
        let (provider, at) = match &q.cursor {
            Some(raw) => route::for_cursor(self.rt, self.tenant, raw, &q)?,
            None => {
                let provider = route::for_list(self.rt, self.tenant, &q)?;
                let size = provider.adapter.page_size(q.limit.unwrap_or(DEFAULT_LIMIT));
                let at = Position {
                    provider: provider.name.clone(),
                    offset: 0,
                    size,
                };
                (provider, at)
            }
        };
        outcome.provider = Some(provider.name.clone());
        let adapter = &provider.adapter;
        let plan = adapter.plan_list(&q, &at)?;
        let key = CacheKey(format!(
            "list|{}|{}|o={}|s={}|raw={}",
            provider.name,
            q.canonical_filters(),
            at.offset,
            at.size,
            q.include_raw
        ));
        let ttls = &self.rt.settings.cache;
        let mut facts = Outcome::default();
        let f = &mut facts;
        let (provider, plan, q, at) = (&provider, &plan, &q, &at);
        let fetch = move || async move {
            let answer = self.exchange(provider, &plan.request, f).await?;
            let body = adapter.read_list_answer(
                plan,
                &provider.name,
                answer.status,
                answer.retry_after.as_deref(),
                &answer.body,
            );
            let body = noted(f, body)?;
            let page = plan
                .assemble(
                    adapter,
                    &body,
                    &provider.name,
                    q.include_raw,
                    &q.filters,
                    &mut f.drift,
                )
                .map_err(|e| unnormalizable(provider, e, f))?;
            let next_cursor = page.next_offset.map(|offset| {
                let next = Position {
                    provider: provider.name.clone(),
                    offset,
                    size: at.size,
                };
                Cursor::new(fingerprint, vec![next]).encode()
            });
            let live = page.calls.iter().any(|c| c.status.is_live());
            let ttl = if live {
                ttls.list_ttl.min(ttls.live_call_ttl)
            } else {
                ttls.list_ttl
            };
            let body = CallPage {
                data: page.calls,
                pagination: Pagination {
                    limit: at.size,
                    next_cursor,
                    total_count: page.total,
                },
            };
            Ok(Fetched {
                body: encode(&body)?,
                ttl,
                kind: EntryKind::List,
                provider: provider.name.clone(),
                call_id: None,
            })
        };
        let result = self.through_cache(key, fetch, outcome).await;
        outcome.absorb(facts);
        result.map(|body| Answer::raw_json(body, std::mem::take(outcome)))
    }

    /// Answers from the response cache or through `fetch`, noting how in the outcome.
    async fn through_cache<F, Fut>(
        &self,
        key: CacheKey,
        fetch: F,
        outcome: &mut Outcome,
    ) -> Result<bytes::Bytes, Problem>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Fetched, Problem>>,
    {
        let policy = CachePolicy {
            enabled: self.rt.settings.cache.enabled,
            stale_if_error: self.rt.settings.cache.stale_if_error,
        };
        let (result, how) = self
            .gateway
            .cache
            .serve(&policy, key, self.req.no_cache, fetch)
            .await;
        outcome.cache = Some(how);
        result
    }

    /// Sends a planned request; the vendor's whole answer, or the problem a failed exchange
    /// maps to. The caller reads the answer with an adapter reader (which borrows the body)
    /// through [`noted`].
    pub(super) async fn exchange(
        &self,
        provider: &Provider,
        request: &VendorRequest,
        outcome: &mut Outcome,
    ) -> Result<VendorAnswer, Problem> {
        let max = self.rt.settings.max_vendor_body_bytes;
        // Boxed: the exchange future is ~10 KB (Pingora's connector), and every request future
        // that holds it inline is copied whole when Pingora boxes the request — a cache hit
        // included, which never sends.
        let (result, waited) = Box::pin(self.gateway.client.send(
            provider,
            request,
            self.req.request_id,
            max,
        ))
        .await;
        outcome.upstream += waited;
        let answer: VendorAnswer = result.map_err(|e| {
            tracing::warn!(provider = %provider.name, kind = e.kind(), "vendor exchange failed");
            self.gateway.health.record(&provider.name, false);
            outcome.upstream_error = Some(e.kind());
            e.into_problem(provider, request.is_write())
        })?;
        self.gateway.health.record(
            &provider.name,
            answer.status < 500 && answer.status != 401 && answer.status != 403,
        );
        Ok(answer)
    }
}

/// A vendor answer read as JSON (borrowing its body), or the problem it maps to.
pub(super) fn read_json<'j>(
    provider: &Provider,
    answer: &'j VendorAnswer,
    outcome: &mut Outcome,
) -> Result<Json<'j>, Problem> {
    let read = provider.adapter.read_answer(
        &provider.name,
        answer.status,
        answer.retry_after.as_deref(),
        &answer.body,
    );
    noted(outcome, read)
}

/// An adapter's reading of a vendor answer, its failure noted in the outcome
/// (`callgate_upstream_errors_total{kind}`).
fn noted<T>(outcome: &mut Outcome, read: Result<T, Problem>) -> Result<T, Problem> {
    read.inspect_err(|p| outcome.upstream_error = upstream_error_kind(p))
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

/// The canonical answer as JSON bytes.
fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value).map_err(|e| {
        Problem::new(
            ErrorCode::ProviderError,
            format!("the answer could not be encoded: {e}"),
        )
    })
}

pub(super) fn unnormalizable(
    provider: &Provider,
    e: crate::adapter::normalize::NormalizeError,
    outcome: &mut Outcome,
) -> Problem {
    tracing::warn!(provider = %provider.name, error = %e, "vendor answer could not be normalized");
    outcome.upstream_error = Some("bad_answer");
    Problem::new(
        ErrorCode::ProviderError,
        format!(
            "the answer of provider {:?} could not be normalized: {e}",
            provider.name
        ),
    )
    .with_provider(&provider.name)
}
