//! The gateway: one canonical request in, one answer out, over the config snapshot the request
//! started with. Pingora-free: [`crate::proxy`] feeds it requests and writes its answers.
//!
//! A request meets, in this order:
//!
//! 1. [`endpoint`] — which route the method and path name (the dispatch table `explain` shares);
//! 2. [`auth`] — the gateway key → the tenant;
//! 3. the rate-limit layer ([`crate::layers::rate_limit`]) — the tenant's allowance;
//! 4. [`plan`] — one pure function: provider ([`route`]), routing rule, the exact vendor request
//!    (the adapter's planners), cache key and freshness, idempotency scope, resend policy;
//! 5. the idempotency layer ([`crate::layers::idempotency`]) — writes with a key ([`write`]);
//! 6. the cache layer ([`crate::layers::cache`]) — reads ([`read`]);
//! 7. the vendor side ([`upstream`]): the bulkhead ([`crate::layers::bulkhead`]), the circuit
//!    breaker ([`crate::layers::breaker`]) and health ([`crate::layers::health`]) → the retry layer ([`crate::layers::retry`]) → the
//!    vendor client ([`exchange`], over idle connections kept by `vendor_pool`);
//! 8. normalization of the vendor's answer (pure, in [`read`] and [`write`], by the adapter);
//! 9. [`answer`] — status, headers, body; problems become RFC 9457 documents there only.
//!
//! Each stage returns what it saw with its result; [`Gateway::handle`] assembles the request's
//! log and metrics record ([`answer::Outcome`]) once, from those results.

mod agents;
pub mod answer;
pub mod auth;
mod body;
pub mod endpoint;
pub mod events;
pub mod exchange;
pub mod listing;
mod merge;
pub mod plan;
mod portable;
mod providers;
mod read;
pub mod route;
pub mod upstream;
mod vendor_pool;
mod write;

use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::{Runtime, Tenant};
use crate::layers::cache::{CacheOutcome, ResponseCache};
use crate::layers::idempotency::IdempotencyStore;
use crate::layers::rate_limit::RateLimiter;
use crate::layers::snapshot::SnapshotStore;
use crate::layers::VendorFacts;
use crate::metrics::Metrics;
use answer::{problem_answer, Answer, Outcome};
use arc_swap::ArcSwap;
use bytes::Bytes;
use endpoint::{CallOp, Endpoint};
use plan::{CallRequest, Plan, Planned, Work};
use read::{Read, ReadLayers};
use std::sync::Arc;
use upstream::{Exchange, VendorSide};

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi/openapi.json");

/// A client request, as the gateway needs it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: auth::Authorization<'a>,
    pub request_id: &'a str,
    /// The client sent `Cache-Control: no-cache`: answer fresh (and refresh the cache).
    pub no_cache: bool,
    pub body: Body<'a>,
    /// The `Content-Type` header's bytes, as sent.
    pub content_type: Option<&'a [u8]>,
    /// The `Idempotency-Key` header's bytes as sent (checked while planning: an unusable key is
    /// refused, never ignored).
    pub idempotency_key: Option<&'a [u8]>,
    /// The `handling` preference of the `Prefer` headers (RFC 7240), if any.
    pub prefer: Option<crate::canonical::handling::Handling>,
    /// The `X-Request-Timeout-Ms` header's bytes as sent: how long the client waits.
    pub timeout: Option<&'a [u8]>,
    /// The `Last-Event-ID` header's bytes as sent (an event stream resumes after it).
    pub last_event_id: Option<&'a [u8]>,
}

/// The request body, as far as it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// No body (a GET), or an empty one.
    None,
    /// The whole body, within `server.max_body_bytes`.
    Read(&'a [u8]),
    /// Over `server.max_body_bytes` (not read).
    TooLarge,
    /// The client's framing broke (bad chunk encoding, cut short): the reason.
    Unreadable(&'static str),
}

/// The gateway's state: the config snapshot, and each stateful layer behind its interface.
pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    rate_limiter: Box<dyn RateLimiter>,
    idempotency: Box<dyn IdempotencyStore>,
    cache: Box<dyn ResponseCache>,
    state: crate::state::StateStatus,
    snapshots: SnapshotStore,
    vendor: Arc<VendorSide>,
    events: Arc<events::Hub>,
    metrics: Metrics,
}

impl Gateway {
    /// A gateway whose stateful layers are those `[state]` asks for (in memory, or shared
    /// through Redis).
    pub fn new(runtime: Runtime) -> Gateway {
        let metrics = Metrics::new();
        metrics.config_loaded_now();
        let settings = &runtime.settings;
        let layers = crate::state::build(settings, metrics.registry());
        Gateway {
            rate_limiter: layers.rate_limiter,
            idempotency: layers.idempotency,
            cache: layers.cache,
            state: layers.status,
            snapshots: SnapshotStore::new(
                settings.cache.snapshot_max_bytes,
                settings.cache.snapshot_ttl,
            ),
            runtime: ArcSwap::from_pointee(runtime),
            vendor: Arc::new(VendorSide::default()),
            events: events::Hub::new(metrics.registry()),
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn cache(&self) -> &dyn ResponseCache {
        &*self.cache
    }

    /// The shared state backend, as readiness and the server see it.
    pub fn state(&self) -> &crate::state::StateStatus {
        &self.state
    }

    /// Every circuit of the configured providers (closed ones included), for the metrics.
    pub fn circuits(&self) -> Vec<crate::layers::breaker::CircuitView> {
        self.vendor.breakers.views(tokio::time::Instant::now())
    }

    /// The current config snapshot.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new, already validated snapshot; requests in flight keep theirs. Rate-limit
    /// buckets of tenants still configured are kept (a changed limit starts afresh on first use).
    pub fn replace_runtime(&self, rt: Runtime) {
        self.rate_limiter
            .retain(&|tenant| rt.tenants.contains_key(tenant));
        self.runtime.store(Arc::new(rt));
    }

    /// Whether `authorization` names a tenant (the proxy reads a body only for one).
    pub fn authenticates(&self, authorization: auth::Authorization<'_>) -> bool {
        auth::authenticate(&self.runtime(), authorization).is_ok()
    }

    /// Answers one request; the answer carries the request's record for the log and metrics.
    pub async fn handle(&self, req: Incoming<'_>) -> Answer {
        let rt = self.runtime();
        self.serve(&rt, req).await.into_answer(req.request_id)
    }

    async fn serve(&self, rt: &Runtime, req: Incoming<'_>) -> Served {
        let endpoint = match Endpoint::parse(req.method, req.path) {
            // The API's description is public.
            Ok(Endpoint::OpenApi) => return Seen::default().finish(Ok(openapi())),
            // Outside /v1 a wrong route is refused before any key is looked at.
            Err(p) if !Endpoint::is_api_path(req.path) => return Seen::default().finish(Err(p)),
            other => other,
        };
        let refused = match req.body {
            Body::TooLarge => Some(Problem::field(
                ErrorCode::PayloadTooLarge,
                "body",
                format!(
                    "the body is over the limit of {} bytes",
                    rt.settings.max_body_bytes
                ),
            )),
            Body::Unreadable(why) => Some(Problem::field(
                ErrorCode::InvalidRequest,
                "body",
                format!("the request body could not be read ({why}); send it whole, with a valid Content-Length or chunked encoding"),
            )),
            Body::None | Body::Read(_) => None,
        };
        if let Some(p) = refused {
            return Seen::default().finish(Err(p));
        }
        let tenant = match auth::authenticate(rt, req.authorization) {
            Ok(t) => t,
            Err(p) => return Seen::default().finish(Err(p)),
        };
        let seen = Seen {
            tenant: Some(tenant.name.clone()),
            ..Seen::default()
        };
        if let Some(limit) = tenant.rate_limit {
            if let Err(p) = self.rate_limiter.check(&tenant.name, limit).await {
                return seen.finish(Err(p));
            }
        }
        match endpoint {
            Ok(Endpoint::Call(op)) => self.call(rt, &tenant, op, req, seen).await,
            Ok(Endpoint::Providers) => Seen {
                operation: Some(Operation::ListProviders),
                ..seen
            }
            .finish(Ok(providers::list(rt, &tenant, &self.vendor.health))),
            Ok(Endpoint::Agents) => Seen {
                operation: Some(Operation::ListAgents),
                ..seen
            }
            .finish(Ok(agents::list(rt, &tenant))),
            Ok(Endpoint::OpenApi) => seen.finish(Ok(openapi())),
            Err(p) => seen.finish(Err(p)),
        }
    }

    /// An operation on calls: plan it, then run the plan through the layers.
    async fn call(
        &self,
        rt: &Runtime,
        tenant: &Tenant,
        op: CallOp<'_>,
        req: Incoming<'_>,
        seen: Seen,
    ) -> Served {
        let seen = Seen {
            operation: Some(op.operation()),
            ..seen
        };
        let deadline = match client_deadline(req.timeout) {
            Ok(d) => d,
            Err(p) => return seen.finish(Err(p)),
        };
        let request = CallRequest {
            op,
            method: req.method,
            path: req.path,
            query: req.query,
            body: match req.body {
                Body::Read(b) => b,
                _ => &[],
            },
            content_type: req.content_type,
            idempotency_key: req.idempotency_key,
            prefer: req.prefer,
            request_id: req.request_id,
        };
        let mut planned =
            match crate::telemetry::room("plan").in_scope(|| plan::plan(rt, tenant, &request)) {
                Ok(Plan::One(p)) if matches!(op, CallOp::Watch(_)) => {
                    return self.watch(rt, tenant, p, req, seen).await
                }
                Ok(Plan::One(p)) => p,
                Ok(Plan::Merged(m)) => return self.merged(rt, &m, req, deadline, seen).await,
                Err(refused) => {
                    let seen = Seen {
                        provider: refused.provider.map(|p| p.name.clone()),
                        ..seen
                    };
                    return seen.finish(Err(refused.problem));
                }
            };
        // A create a split routed to a provider that refused it with nothing sent (open
        // circuit, bound reached, no connection) goes to the split's next provider.
        let mut tried: Vec<String> = Vec::new();
        let mut seen = seen;
        loop {
            let cx = Exchange {
                request_id: req.request_id,
                max_body: rt.settings.max_vendor_body_bytes,
                resend: planned.resend,
                operation: planned.operation,
                deadline,
            };
            let at = Seen {
                provider: Some(planned.provider.name.clone()),
                ..seen
            };
            let mut served = self.execute(&planned, cx, req.no_cache, at).await;
            if !served.refused_unsent() {
                served.failed_over_from(&tried);
                return served;
            }
            tried.push(planned.provider.name.clone());
            match plan::failover(rt, tenant, &request, &planned, &tried) {
                Some(Ok(next)) => planned = next,
                // Nowhere else to go: the refusal stands.
                _ => return served,
            }
            // The next attempt starts from what was known before this one.
            seen = Seen {
                provider: None,
                vendor: None,
                cache: None,
                ..served.seen
            };
        }
    }

    /// A live event stream of one call (planned as its get).
    async fn watch(
        &self,
        rt: &Runtime,
        tenant: &Tenant,
        planned: Planned,
        req: Incoming<'_>,
        seen: Seen,
    ) -> Served {
        let seen = Seen {
            provider: Some(planned.provider.name.clone()),
            ..seen
        };
        let Work::Get(plan) = planned.work else {
            return seen.finish(Err(Problem::new(
                ErrorCode::NotFound,
                "this route streams one call's events",
            )));
        };
        let after = crate::canonical::events::after(req.query).ok().flatten();
        let last_event_id = req.last_event_id.map(String::from_utf8_lossy);
        let resume = match (&last_event_id, &after) {
            (Some(id), _) => Some((id.as_ref(), "Last-Event-ID")),
            (None, Some(a)) => Some((a.as_str(), "after")),
            (None, None) => None,
        };
        let opening = events::Opening {
            tenant: &tenant.name,
            provider: planned.provider.clone(),
            plan,
            resume,
            max_body: rt.settings.max_vendor_body_bytes,
            settings: &rt.settings.events,
        };
        let opened = self.events.open(&self.vendor, opening).await;
        seen.finish(opened.map(Answer::stream))
    }

    /// Ends every event stream with a retry hint (the process stops or hands over).
    pub fn drain_streams(&self) {
        self.events.drain();
    }

    /// A merged list page: each source's pages through the read path, merged.
    async fn merged(
        &self,
        rt: &Runtime,
        plan: &listing::MergedPlan,
        req: Incoming<'_>,
        deadline: Option<tokio::time::Instant>,
        seen: Seen,
    ) -> Served {
        let reads = ReadLayers {
            cache: &*self.cache,
            snapshots: &self.snapshots,
            vendor: &self.vendor,
        };
        let cx = Exchange {
            request_id: req.request_id,
            max_body: rt.settings.max_vendor_body_bytes,
            resend: crate::layers::retry::Resend::Read,
            operation: Operation::ListCalls,
            deadline,
        };
        let strict = req.prefer == Some(crate::canonical::handling::Handling::Strict);
        let page = merge::serve(reads, rt, plan, cx, req.no_cache, strict).await;
        for i in &page.incomplete {
            self.metrics.list_incomplete(&i.provider, i.code);
        }
        Seen {
            vendor: page.vendor,
            ..seen
        }
        .finish(page.result.map(Answer::raw_json))
    }

    /// Runs a plan through the stack below planning: cache or idempotency, then the vendor side.
    async fn execute(
        &self,
        planned: &Planned,
        cx: Exchange<'_>,
        refresh: bool,
        seen: Seen,
    ) -> Served {
        let (cache, vendor, provider) = (&*self.cache, &self.vendor, &*planned.provider);
        let reads = ReadLayers {
            cache,
            snapshots: &self.snapshots,
            vendor,
        };
        let read = match &planned.work {
            Work::Get(plan) => read::serve(reads, provider, Read::Get(plan), cx, refresh).await,
            Work::List(plan) => read::serve(reads, provider, Read::Page(plan), cx, refresh).await,
            Work::Write(plan) => {
                let layers = write::WriteLayers {
                    idempotency: &*self.idempotency,
                    cache,
                    vendor,
                };
                return match write::write(layers, provider, plan, cx).await {
                    Ok(ran) => {
                        if !ran.replayed {
                            for w in &plan.warnings {
                                self.metrics.field_dropped(&provider.name, &w.field);
                            }
                        }
                        let mut answer = Answer::stored(ran.answer);
                        if ran.replayed {
                            answer.headers.push(("Idempotent-Replayed", "true".into()));
                        }
                        Seen {
                            vendor: ran.vendor,
                            ..seen
                        }
                        .finish(Ok(answer))
                    }
                    Err(p) => seen.finish(Err(p)),
                };
            }
        };
        Seen {
            vendor: read.vendor,
            cache: Some(read.cache),
            ..seen
        }
        .finish(read.result.map(Answer::raw_json))
    }
}

/// The longest `X-Request-Timeout-Ms` callgate takes (ten minutes).
const MAX_CLIENT_TIMEOUT_MS: u64 = 600_000;

/// When the client stops waiting, from `X-Request-Timeout-Ms` (1 to 600000): the vendor is
/// given at most what is left of it. Not a number in that range: 400 naming the header.
fn client_deadline(raw: Option<&[u8]>) -> Result<Option<tokio::time::Instant>, Problem> {
    let Some(raw) = raw else { return Ok(None) };
    let ms = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|ms| (1..=MAX_CLIENT_TIMEOUT_MS).contains(ms))
        .ok_or_else(|| {
            Problem::field(
                ErrorCode::InvalidRequest,
                "X-Request-Timeout-Ms",
                format!("must be a whole number of milliseconds from 1 to {MAX_CLIENT_TIMEOUT_MS}"),
            )
        })?;
    Ok(Some(
        tokio::time::Instant::now() + std::time::Duration::from_millis(ms),
    ))
}

fn openapi() -> Answer {
    Answer::raw_json(Bytes::from_static(OPENAPI.as_bytes()))
}

/// What the stages of a request returned on the way (for its record).
#[derive(Default)]
struct Seen {
    tenant: Option<String>,
    operation: Option<Operation>,
    provider: Option<String>,
    vendor: Option<VendorFacts>,
    cache: Option<CacheOutcome>,
}

/// What a request came to: its answer (or problem), and what was seen on the way.
struct Served {
    seen: Seen,
    result: Result<Answer, Problem>,
}

impl Seen {
    fn finish(self, result: Result<Answer, Problem>) -> Served {
        Served { seen: self, result }
    }
}

impl Served {
    /// A `provider_unavailable` answer: the provider refused before anything was sent.
    fn refused_unsent(&self) -> bool {
        matches!(&self.result, Ok(a) if a.code == Some(ErrorCode::ProviderUnavailable))
    }

    /// Says in the answer which providers refused before the one that answered
    /// (`Callgate-Failover: <provider>[, <provider>]`).
    fn failed_over_from(&mut self, tried: &[String]) {
        if let (Ok(answer), false) = (&mut self.result, tried.is_empty()) {
            answer.headers.push(("Callgate-Failover", tried.join(", ")));
        }
    }

    /// The answer, with the request's record assembled — here, once.
    fn into_answer(self, request_id: &str) -> Answer {
        let seen = self.seen;
        let mut provider = seen.provider;
        let mut answer = match self.result {
            Ok(answer) => answer,
            Err(p) => {
                provider = provider.or_else(|| p.provider_name().map(str::to_string));
                Answer::stored(problem_answer(p, request_id))
            }
        };
        answer.outcome = Outcome {
            tenant: seen.tenant,
            provider,
            operation: seen.operation,
            code: answer.code,
            cache: seen.cache,
            ..Outcome::default()
        }
        .with_vendor(seen.vendor);
        answer
    }
}

#[cfg(test)]
mod tests;
