//! Planning: one pure function, [`plan`], from (config snapshot, tenant, canonical request) to a
//! [`Planned`] value — the operation, the provider and the routing rule that chose it, the exact
//! vendor request, the cache key and freshness policy of a read, the idempotency scope and resend
//! policy of a write. Every decision about a request is made here, once, before any layer runs:
//! `serve` executes the `Planned`, `callgate explain` prints it.

use super::endpoint::CallOp;
use super::listing::{self, MergedPlan};
use super::portable;
use super::route::{self, Rule};
use crate::adapter::plan::{ListPlan, VendorRequest, WriteKind};
use crate::canonical::cursor::Position;
use crate::canonical::handling::{Handling, Warning};
use crate::canonical::id::CallId;
use crate::canonical::list_query::{self, ListQuery};
use crate::canonical::write::{CreateCall, UpdateCall};
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::{Agent, CacheSettings, Provider, Runtime, Tenant};
use crate::layers::cache::{CacheKey, CachePolicy};
use crate::layers::idempotency::{fingerprint, Scope};
use crate::layers::retry::Resend;
use std::sync::Arc;
use std::time::Duration;

/// One canonical request to plan.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub op: CallOp<'a>,
    /// As the client sent them (the idempotency fingerprint covers method, path and body).
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    /// The `Content-Type` header's bytes, as sent.
    pub content_type: Option<&'a [u8]>,
    /// The `Idempotency-Key` header's bytes, as sent.
    pub idempotency_key: Option<&'a [u8]>,
    /// The client's `Prefer: handling=…`, if it sent one.
    pub prefer: Option<Handling>,
    /// The id sent to the vendor (some adapters read it back into the answer).
    pub request_id: &'a str,
}

/// Everything decided about one request.
#[derive(Debug)]
pub struct Planned {
    pub operation: Operation,
    pub provider: Arc<Provider>,
    pub rule: Rule,
    /// What may be sent again after a failed attempt.
    pub resend: Resend,
    pub work: Work,
}

/// What running the request takes.
#[derive(Debug)]
pub enum Work {
    /// `GET /v1/calls/{id}`, through the cache.
    Get(GetPlan),
    /// One page of `GET /v1/calls`, through the cache.
    List(Box<PagePlan>),
    /// `POST /v1/calls` or `PATCH /v1/calls/{id}`: sent at most once.
    Write(WritePlan),
}

#[derive(Debug)]
pub struct GetPlan {
    pub request: VendorRequest,
    /// The id's params, for normalization.
    pub params: Vec<(String, String)>,
    pub include_raw: bool,
    /// The canonical call id (the cache drops it when the call is written).
    pub call_id: String,
    pub cache: CachePlan,
}

#[derive(Debug)]
pub struct PagePlan {
    pub list: ListPlan,
    pub query: ListQuery,
    /// Where the walk stands.
    pub at: Position,
    pub cache: CachePlan,
}

#[derive(Debug)]
pub struct WritePlan {
    pub kind: WriteKind,
    pub request: VendorRequest,
    /// Values the vendor's answer is normalized with.
    pub params: Vec<(String, String)>,
    /// The status of a successful answer.
    pub success: u16,
    /// Where the answer is kept for the request's `Idempotency-Key`, if it has one.
    pub idempotency: Option<Scope>,
    /// Request fields not sent because the vendor cannot take them (lenient handling).
    pub warnings: Vec<Warning>,
    /// The handling to report in `Preference-Applied`: when the client asked for one, or when
    /// fields were dropped under the default.
    pub preference_applied: Option<Handling>,
}

/// How a read is cached.
#[derive(Debug, Clone)]
pub struct CachePlan {
    /// The normalized canonical request.
    pub key: CacheKey,
    pub policy: CachePolicy,
    pub freshness: Freshness,
}

/// How long an answer stays fresh, decided by what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// A call (or a page holding one) that is still live.
    pub live: Duration,
    /// A call that has ended.
    pub finished: Duration,
    /// A page of finished calls.
    pub page: Duration,
    /// How long a finished call may answer past its freshness when the vendor fails.
    pub finished_stale: Duration,
}

impl Freshness {
    fn from(settings: &CacheSettings) -> Freshness {
        Freshness {
            live: settings.live_call_ttl,
            finished: settings.finished_call_ttl,
            page: settings.list_ttl,
            finished_stale: settings.stale_if_error_finished,
        }
    }

    /// The stale window a call earns of its own: a finished one no longer changes.
    pub fn stale_for_call(&self, live: bool) -> Duration {
        if live {
            Duration::ZERO
        } else {
            self.finished_stale
        }
    }

    pub fn for_call(&self, live: bool) -> Duration {
        if live {
            self.live
        } else {
            self.finished
        }
    }

    pub fn for_page(&self, any_live: bool) -> Duration {
        if any_live {
            self.page.min(self.live)
        } else {
            self.page
        }
    }
}

/// A request refused while planning; `provider` is the one it was routed to, if it got that far
/// (for the request's log line and metrics).
#[derive(Debug)]
pub struct Refused {
    pub problem: Problem,
    pub provider: Option<Arc<Provider>>,
}

impl From<Problem> for Refused {
    fn from(problem: Problem) -> Refused {
        Refused {
            problem,
            provider: None,
        }
    }
}

/// Tags a problem raised after routing with the provider it concerns.
fn at(provider: &Arc<Provider>) -> impl Fn(Problem) -> Refused + '_ {
    move |problem| Refused {
        problem,
        provider: Some(provider.clone()),
    }
}

/// What a request comes to: one plan, or (a list over several providers) a merged walk.
#[derive(Debug)]
pub enum Plan {
    One(Planned),
    Merged(MergedPlan),
}

/// Plans `req` for `tenant` over the snapshot `rt`.
pub fn plan(rt: &Runtime, tenant: &Tenant, req: &CallRequest<'_>) -> Result<Plan, Refused> {
    let one = match req.op {
        CallOp::Get(raw_id) => get(rt, tenant, raw_id, req),
        // A stream reads the call as a get does, again and again; its query (`after`) is the
        // stream's, checked when it opens.
        CallOp::Watch(raw_id) => {
            crate::canonical::events::after(req.query)?;
            let req = CallRequest {
                query: None,
                ..*req
            };
            get(rt, tenant, raw_id, &req)
        }
        CallOp::List => {
            let query = ListQuery::parse(req.query)?;
            let strict = req.prefer == Some(Handling::Strict);
            return listing::plan(rt, tenant, query, strict);
        }
        CallOp::Create => create(rt, tenant, req),
        CallOp::Update(raw_id) => update(rt, tenant, raw_id, req),
    };
    one.map(Plan::One)
}

pub(super) fn cache_plan(rt: &Runtime, key: String) -> CachePlan {
    let settings = &rt.settings.cache;
    CachePlan {
        key: CacheKey(key),
        policy: CachePolicy {
            enabled: settings.enabled,
            stale_if_error: settings.stale_if_error,
        },
        freshness: Freshness::from(settings),
    }
}

fn get(
    rt: &Runtime,
    tenant: &Tenant,
    raw_id: &str,
    req: &CallRequest<'_>,
) -> Result<Planned, Refused> {
    let include_raw = list_query::parse_include(req.query)?;
    let (provider, id) = route::for_call_id(rt, tenant, raw_id)?;
    let call_id = CallId::encode(
        &provider.name,
        &id.parts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let params = provider
        .adapter
        .id_params(id.parts)
        .map_err(at(&provider))?;
    let request = provider.adapter.plan_get(&params).map_err(at(&provider))?;
    let cache = cache_plan(rt, format!("get|{call_id}|raw={include_raw}"));
    Ok(Planned {
        operation: Operation::GetCall,
        rule: Rule::CallId,
        resend: Resend::Read,
        work: Work::Get(GetPlan {
            request,
            params,
            include_raw,
            call_id,
            cache,
        }),
        provider,
    })
}

/// A write's body is JSON: a `Content-Type` of `application/json` or `…+json` (parameters such as
/// `charset` allowed), or none. Anything else — a form, `text/plain` — is `415`, naming the header.
fn json_body(req: &CallRequest<'_>) -> Result<(), Problem> {
    let Some(raw) = req.content_type else {
        return Ok(());
    };
    let essence = std::str::from_utf8(raw)
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(Problem::field(
        ErrorCode::UnsupportedMediaType,
        "Content-Type",
        format!("the body is read as JSON; send Content-Type: application/json (not {essence:?})"),
    ))
}

/// The request's `Idempotency-Key` as text: 1 to 255 printable ASCII characters. A key that
/// is not is refused — a write must never go out without the protection the client asked for.
fn idempotency_key<'a>(req: &CallRequest<'a>) -> Result<Option<&'a str>, Problem> {
    let Some(raw) = req.idempotency_key else {
        return Ok(None);
    };
    let printable = raw.iter().all(|b| (0x20..0x7f).contains(b));
    match std::str::from_utf8(raw) {
        Ok(key) if printable && (1..=255).contains(&key.len()) => Ok(Some(key)),
        _ => Err(Problem::field(
            ErrorCode::InvalidRequest,
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        )),
    }
}

/// The idempotency scope of a write with a (checked) key.
fn idempotency(
    tenant: &Tenant,
    req: &CallRequest<'_>,
    key: Option<&str>,
    provider: &Provider,
) -> Option<Scope> {
    key.map(|key| Scope {
        tenant: tenant.name.clone(),
        key: key.to_string(),
        fingerprint: fingerprint(req.method, req.path, req.body),
        provider: provider.name.clone(),
    })
}

fn create(rt: &Runtime, tenant: &Tenant, req: &CallRequest<'_>) -> Result<Planned, Refused> {
    json_body(req)?;
    let key = idempotency_key(req)?;
    let create = CreateCall::parse(req.body)?;
    let agent = portable::agent_of(rt, tenant, &create)?;
    let whom = portable::whom(&create, agent.as_deref());
    let (provider, rule) = route::for_create(rt, tenant, create.provider.as_deref(), whom, key)?;
    create_at(tenant, req, &create, agent.as_deref(), provider, rule)
}

/// Plans a create that `failed` planned once more, on the split's next provider, after the
/// providers `tried` refused it with nothing sent (open circuit, bound reached, no connection).
/// `None`: not a create of a split, or no provider left.
pub fn failover(
    rt: &Runtime,
    tenant: &Tenant,
    req: &CallRequest<'_>,
    failed: &Planned,
    tried: &[String],
) -> Option<Result<Planned, Refused>> {
    if failed.operation != Operation::CreateCall {
        return None;
    }
    let create = CreateCall::parse(req.body).ok()?;
    let agent = portable::agent_of(rt, tenant, &create).ok()?;
    let whom = portable::whom(&create, agent.as_deref());
    let provider = match route::failover_for_create(rt, tenant, &failed.rule, whom, tried)? {
        Ok(p) => p,
        Err(problem) => return Some(Err(problem.into())),
    };
    let rule = Rule::Failover {
        from: failed.provider.name.clone(),
    };
    Some(create_at(
        tenant,
        req,
        &create,
        agent.as_deref(),
        provider,
        rule,
    ))
}

/// The same create planned at each provider of the split that routed it (for `explain`: what
/// each would receive and drop). Empty when no split chose the provider.
pub fn create_alternatives(
    rt: &Runtime,
    tenant: &Tenant,
    req: &CallRequest<'_>,
    planned: &Planned,
) -> Vec<(String, Result<Planned, Refused>)> {
    if !matches!(planned.rule, Rule::Split { .. }) {
        return Vec::new();
    }
    let Ok(create) = CreateCall::parse(req.body) else {
        return Vec::new();
    };
    let Ok(agent) = portable::agent_of(rt, tenant, &create) else {
        return Vec::new();
    };
    let whom = portable::whom(&create, agent.as_deref());
    route::split_of(tenant, whom)
        .into_iter()
        .map(|name| {
            let rule = planned.rule.clone();
            let planned = match route::named(rt, tenant, &name) {
                Ok(provider) => create_at(tenant, req, &create, agent.as_deref(), provider, rule),
                Err(p) => Err(p.into()),
            };
            (name, planned)
        })
        .collect()
}

/// Plans a create on a chosen provider: made portable for it, then planned by its adapter.
fn create_at(
    tenant: &Tenant,
    req: &CallRequest<'_>,
    create: &CreateCall,
    agent: Option<&Agent>,
    provider: Arc<Provider>,
    rule: Rule,
) -> Result<Planned, Refused> {
    let key = idempotency_key(req)?;
    // A pool default is drawn by the key, so a retried create is the same call.
    let draw = key.map_or_else(
        || fastrand::u64(..),
        |k| route::draw(tenant, k, b"defaults"),
    );
    let fitted = portable::create_for(create, agent, &provider, draw).map_err(at(&provider))?;
    let handling = portable::handling(tenant, &rule, req.prefer);
    let planned = provider
        .adapter
        .plan_create(&provider.name, &fitted, handling, key)
        .map_err(at(&provider))?;
    let mut params = planned.params;
    params.push(("request_id".into(), req.request_id.to_string()));
    let idempotency = idempotency(tenant, req, key, &provider);
    Ok(Planned {
        operation: Operation::CreateCall,
        provider,
        rule,
        resend: Resend::WriteNeverSent,
        work: Work::Write(WritePlan {
            kind: WriteKind::Create,
            request: planned.request,
            params,
            success: 201,
            idempotency,
            preference_applied: applied(req.prefer, handling, &planned.dropped),
            warnings: planned.dropped,
        }),
    })
}

/// The handling a write reports as applied.
fn applied(prefer: Option<Handling>, handling: Handling, dropped: &[Warning]) -> Option<Handling> {
    (prefer.is_some() || !dropped.is_empty()).then_some(handling)
}

fn update(
    rt: &Runtime,
    tenant: &Tenant,
    raw_id: &str,
    req: &CallRequest<'_>,
) -> Result<Planned, Refused> {
    json_body(req)?;
    let key = idempotency_key(req)?;
    let (provider, id) = route::for_call_id(rt, tenant, raw_id)?;
    let rule = Rule::CallId;
    let handling = portable::handling(tenant, &rule, req.prefer);
    let plan = || {
        let update = UpdateCall::parse(req.body)?;
        let update = portable::update_for(rt, tenant, &update, &provider)?;
        let params = provider.adapter.id_params(id.parts)?;
        provider
            .adapter
            .plan_update(&provider.name, &params, &update, handling, key)
    };
    let planned = plan().map_err(at(&provider))?;
    Ok(Planned {
        operation: Operation::UpdateCall,
        rule,
        resend: Resend::WriteNeverSent,
        work: Work::Write(WritePlan {
            kind: WriteKind::Update,
            request: planned.request,
            params: planned.params,
            success: 200,
            idempotency: idempotency(tenant, req, key, &provider),
            preference_applied: applied(req.prefer, handling, &planned.dropped),
            warnings: planned.dropped,
        }),
        provider,
    })
}

impl Work {
    /// The vendor request the work sends.
    pub fn request(&self) -> &VendorRequest {
        match self {
            Work::Get(g) => &g.request,
            Work::List(p) => &p.list.request,
            Work::Write(w) => &w.request,
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
