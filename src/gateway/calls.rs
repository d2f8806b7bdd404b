//! `GET /v1/calls` and `GET /v1/calls/{id}`: route → plan → exchange → normalize → answer.
//! Each step is a call into its own module; this file only sequences them.

use super::answer::{Answer, Outcome};
use super::exchange::VendorAnswer;
use super::{route, Gateway, Incoming};
use crate::adapter::normalize::Context;
use crate::adapter::plan::VendorRequest;
use crate::adapter::rules::{Drift, Params};
use crate::canonical::call::{CallPage, Pagination};
use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::id::{CallId, CallIdError};
use crate::canonical::list_query::{self, ListQuery, DEFAULT_LIMIT};
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::{Provider, Runtime, Tenant};
use percent_encoding::percent_decode_str;
use std::sync::Arc;

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
        let id = parse_id(raw_id)?;
        let provider = self.rt.provider(&id.provider).cloned().ok_or_else(|| {
            Problem::new(
                ErrorCode::NotFound,
                format!("no provider named {:?} (from the call id)", id.provider),
            )
        })?;
        outcome.provider = Some(provider.name.clone());
        route::authorize(self.tenant, &provider)?;
        let adapter = &provider.adapter;
        let params = adapter.id_params(id.parts)?;
        let request = adapter.plan_get(&params)?;
        let body = self.exchange(&provider, &request, outcome).await?;
        let mut drift = Vec::new();
        let cx = Context {
            provider: &provider.name,
            params: Params(&params),
            include_raw,
        };
        let call = adapter
            .extract_item(&body)
            .and_then(|item| adapter.normalize_call(item, cx, &mut drift))
            .map_err(|e| unnormalizable(&provider, e))?;
        note_drift(&provider, &drift, outcome);
        Ok(Answer::json(200, &call, std::mem::take(outcome)))
    }

    pub async fn list(&self, outcome: &mut Outcome) -> Result<Answer, Problem> {
        outcome.operation = Some(Operation::ListCalls);
        let q = ListQuery::parse(self.req.query)?;
        let fingerprint = q.fingerprint();
        let (provider, at) = match &q.cursor {
            Some(raw) => self.resume(raw, &q, fingerprint)?,
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
        let body = self.exchange(&provider, &plan.request, outcome).await?;
        let mut drift = Vec::new();
        let page = plan
            .assemble(
                adapter,
                &body,
                &provider.name,
                q.include_raw,
                &q.filters,
                &mut drift,
            )
            .map_err(|e| unnormalizable(&provider, e))?;
        note_drift(&provider, &drift, outcome);
        let next_cursor = page.next_offset.map(|offset| {
            Cursor::new(
                fingerprint,
                vec![Position {
                    provider: provider.name.clone(),
                    offset,
                    size: at.size,
                }],
            )
            .encode()
        });
        let body = CallPage {
            data: page.calls,
            pagination: Pagination {
                limit: at.size,
                next_cursor,
                total_count: page.total,
            },
        };
        Ok(Answer::json(200, &body, std::mem::take(outcome)))
    }

    /// Picks a walk up where its cursor left it.
    fn resume(
        &self,
        raw: &str,
        q: &ListQuery,
        fingerprint: u64,
    ) -> Result<(Arc<Provider>, Position), Problem> {
        let cursor = Cursor::decode(raw, fingerprint)
            .map_err(|e| Problem::field(ErrorCode::InvalidCursor, "cursor", e.to_string()))?;
        // One provider per walk until merged lists exist.
        let at = cursor.positions.into_iter().next().ok_or_else(|| {
            Problem::field(
                ErrorCode::InvalidCursor,
                "cursor",
                "the cursor holds no position",
            )
        })?;
        let provider = self.rt.provider(&at.provider).cloned().ok_or_else(|| {
            Problem::field(
                ErrorCode::InvalidCursor,
                "cursor",
                format!("provider {:?} is no longer configured", at.provider),
            )
        })?;
        route::authorize(self.tenant, &provider)?;
        if let Some(limit) = q.limit {
            if provider.adapter.page_size(limit) != at.size {
                return Err(Problem::field(
                    ErrorCode::InvalidRequest,
                    "limit",
                    format!("a cursor walk keeps the page size it started with ({}); omit limit or pass {}", at.size, at.size),
                ));
            }
        }
        Ok((provider, at))
    }

    /// Sends a planned request and reads the answer into JSON or the problem it maps to.
    async fn exchange(
        &self,
        provider: &Provider,
        request: &VendorRequest,
        outcome: &mut Outcome,
    ) -> Result<serde_json::Value, Problem> {
        let max = self.rt.settings.max_vendor_body_bytes;
        let (result, waited) = self
            .gateway
            .client
            .send(provider, request, self.req.request_id, max)
            .await;
        outcome.upstream += waited;
        let answer: VendorAnswer = result.map_err(|e| {
            tracing::warn!(provider = %provider.name, kind = e.kind(), "vendor exchange failed");
            self.gateway.health.record(&provider.name, false);
            e.into_problem(provider)
        })?;
        self.gateway.health.record(
            &provider.name,
            answer.status < 500 && answer.status != 401 && answer.status != 403,
        );
        provider.adapter.read_answer(
            &provider.name,
            answer.status,
            answer.retry_after.as_deref(),
            &answer.body,
        )
    }
}

fn parse_id(raw: &str) -> Result<CallId, Problem> {
    let bad = |e: CallIdError| Problem::field(ErrorCode::InvalidRequest, "id", e.to_string());
    match CallId::parse(raw) {
        // A client that percent-encoded the whole id (`zudu%3Acall-1`): decode once and retry.
        Err(CallIdError::NoSeparator) if raw.contains('%') => {
            let decoded = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| bad(CallIdError::BadEncoding))?;
            CallId::parse(&decoded).map_err(bad)
        }
        other => other.map_err(bad),
    }
}

fn unnormalizable(provider: &Provider, e: crate::adapter::normalize::NormalizeError) -> Problem {
    tracing::warn!(provider = %provider.name, error = %e, "vendor answer could not be normalized");
    Problem::new(
        ErrorCode::ProviderError,
        format!(
            "the answer of provider {:?} could not be normalized: {e}",
            provider.name
        ),
    )
    .with_provider(&provider.name)
}

fn note_drift(provider: &Provider, drift: &[Drift], outcome: &mut Outcome) {
    outcome.drift += drift.len();
    for d in drift {
        tracing::debug!(provider = %provider.name, field = d.field, kind = d.kind.name(), "vendor drift");
    }
}
