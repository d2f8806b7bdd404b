//! `POST /v1/calls` and `PATCH|PUT /v1/calls/{id}`: validate → route → plan → (idempotency) →
//! exchange once → normalize → answer, then drop what the cache knew of the call's provider.
//!
//! A write is sent to the vendor at most once; when it may have arrived but no answer says what
//! happened, the problem carries `"outcome": "unknown"` so the caller reconciles instead of
//! retrying blindly. With an `Idempotency-Key`, duplicates get the first answer, not a second call.

use super::answer::{Answer, Outcome, JSON, PROBLEM_JSON};
use super::calls::CallCx;
use super::route;
use crate::adapter::normalize::Context;
use crate::adapter::plan::VendorRequest;
use crate::adapter::rules::Params;
use crate::adapter::WriteOperation;
use crate::canonical::write::{CreateCall, UpdateCall};
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::Provider;
use crate::idempotency::{fingerprint, Produced, StoredAnswer};
use bytes::Bytes;

impl CallCx<'_> {
    pub async fn create(&self, outcome: &mut Outcome) -> Result<Answer, Problem> {
        outcome.operation = Some(Operation::CreateCall);
        let req = CreateCall::parse(self.req.body.unwrap_or_default())?;
        let key = self.req.idempotency_key;
        let (provider, rule) = route::for_create(
            self.rt,
            self.tenant,
            req.provider.as_deref(),
            &req.agent_id,
            key,
        )?;
        outcome.provider = Some(provider.name.clone());
        tracing::debug!(provider = %provider.name, rule = ?rule, "create routed");
        let (request, mut params) = provider.adapter.plan_create(&req, key)?;
        params.push(("request_id".into(), self.req.request_id.to_string()));
        let op = provider
            .adapter
            .create
            .as_ref()
            .ok_or_else(|| Problem::new(ErrorCode::UnsupportedOperation, "no create_call"))?;
        self.write(&provider, op, &request, &params, 201, outcome)
            .await
    }

    pub async fn update(&self, raw_id: &str, outcome: &mut Outcome) -> Result<Answer, Problem> {
        outcome.operation = Some(Operation::UpdateCall);
        let (provider, id) = route::for_call_id(self.rt, self.tenant, raw_id)?;
        outcome.provider = Some(provider.name.clone());
        let req = UpdateCall::parse(self.req.body.unwrap_or_default())?;
        let params = provider.adapter.id_params(id.parts)?;
        let request = provider
            .adapter
            .plan_update(&params, &req, self.req.idempotency_key)?;
        let op = provider
            .adapter
            .update
            .as_ref()
            .ok_or_else(|| Problem::new(ErrorCode::UnsupportedOperation, "no update_call"))?;
        self.write(&provider, op, &request, &params, 200, outcome)
            .await
    }

    /// Sends a planned write once (or replays the stored answer of its idempotency key).
    async fn write(
        &self,
        provider: &Provider,
        op: &WriteOperation,
        request: &VendorRequest,
        params: &[(String, String)],
        success: u16,
        outcome: &mut Outcome,
    ) -> Result<Answer, Problem> {
        let mut facts = Outcome::default();
        let f = &mut facts;
        let produce = move || async move {
            let result = self.send_write(provider, op, request, params, f).await;
            let keep = match &result {
                Ok(_) => true,
                // Kept only when the call may exist: a retry must not place a second one.
                Err(p) => p.provider.as_deref().is_some_and(|pf| pf.outcome.is_some()),
            };
            let answer = match result {
                Ok((id, call_json)) => {
                    self.gateway.cache.invalidate_call(&provider.name, &id);
                    StoredAnswer {
                        status: success,
                        code: None,
                        content_type: JSON,
                        body: call_json,
                        headers: vec![("Location", format!("/v1/calls/{id}"))],
                    }
                }
                Err(mut p) => {
                    p.request_id = self.req.request_id.to_string();
                    let retry = p.retry_after.clone();
                    StoredAnswer {
                        status: p.status(),
                        code: Some(p.code),
                        content_type: PROBLEM_JSON,
                        body: Bytes::from(serde_json::to_vec(&p).unwrap_or_default()),
                        headers: retry.map(|r| ("Retry-After", r)).into_iter().collect(),
                    }
                }
            };
            Produced { answer, keep }
        };
        let (stored, replayed) = match self.req.idempotency_key {
            Some(key) => {
                let fp = fingerprint(
                    self.req.method,
                    self.req.path,
                    self.req.body.unwrap_or_default(),
                );
                self.gateway
                    .idempotency
                    .run(&self.tenant.name, key, fp, produce)
                    .await?
            }
            None => (produce().await.answer, false),
        };
        outcome.absorb(facts);
        outcome.code = stored.code;
        let mut answer = Answer::stored(stored, std::mem::take(outcome));
        if replayed {
            answer.headers.push(("Idempotent-Replayed", "true".into()));
        }
        Ok(answer)
    }

    async fn send_write(
        &self,
        provider: &Provider,
        op: &WriteOperation,
        request: &VendorRequest,
        params: &[(String, String)],
        facts: &mut Outcome,
    ) -> Result<(String, Bytes), Problem> {
        let unknown = |p: Problem| match p.code {
            ErrorCode::ProviderError | ErrorCode::ProviderTimeout => p.outcome_unknown(),
            _ => p,
        };
        let answer = self
            .exchange(provider, request, facts)
            .await
            .map_err(unknown)?;
        let body = super::calls::read_json(provider, &answer, facts).map_err(unknown)?;
        let cx = Context {
            provider: &provider.name,
            params: Params(params),
            include_raw: false,
        };
        let call = provider
            .adapter
            .normalize_write(op, &body, cx, &mut facts.drift)
            .map_err(|e| super::calls::unnormalizable(provider, e, facts).outcome_unknown())?;
        let body = serde_json::to_vec(&call).map(Bytes::from).map_err(|e| {
            Problem::new(
                ErrorCode::ProviderError,
                format!("the answer could not be encoded: {e}"),
            )
        })?;
        Ok((call.id, body))
    }
}
