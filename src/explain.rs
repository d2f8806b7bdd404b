//! `callgate explain`: what the gateway would do with one canonical request — the tenant, the
//! routing rule that fired, the provider, and the exact vendor request (credentials redacted) —
//! without touching the network.
//!
//! It owns no routing or planning of its own: it runs the gateway's real pieces
//! ([`auth::authenticate`], [`route::for_list`], [`route::authorize`], the adapter's planners and
//! [`exchange::outgoing_headers`]) over a loaded [`Runtime`], so what it prints is what is sent. A
//! request the gateway would refuse yields the same canonical [`Problem`].

use crate::adapter::plan::VendorRequest;
use crate::adapter::spec::PaginationStyle;
use crate::canonical::cursor::Position;
use crate::canonical::list_query::{self, ListQuery, DEFAULT_LIMIT};
use crate::canonical::write::{CreateCall, UpdateCall};
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::{Provider, Runtime, Tenant};
use crate::gateway::{auth, exchange, route};
use serde::Serialize;
use std::sync::Arc;

/// What replaces a credential's value in every explanation.
pub const REDACTED: &str = "[redacted]";

/// The `X-Request-Id` shown: the gateway sends the client's id, or a fresh UUID.
pub const REQUEST_ID_PLACEHOLDER: &str = "<request id>";

/// One canonical request to explain.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, `PATCH`, `PUT` (case-insensitive).
    pub method: &'a str,
    /// Path with an optional query: `/v1/calls?provider=zudu&limit=5`.
    pub target: &'a str,
    /// A JSON body (for writes).
    pub body: Option<&'a str>,
    /// The gateway key whose tenant makes the request; without it the config's only tenant.
    pub key: Option<&'a str>,
}

/// The vendor request the gateway would send.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub tenant: String,
    /// `list_calls`, `get_call`.
    pub operation: &'static str,
    /// Which routing rule fired: `explicit provider`, `agent rule agentId=… → p`, `tenant default`,
    /// `call id names provider p`.
    pub rule: String,
    pub provider: String,
    pub vendor: String,
    pub adapter_file: String,
    pub request: Outgoing,
    /// For lists: the page and what callgate does with the answer.
    pub list: Option<ListDetails>,
}

/// How a list page is fetched and finished.
#[derive(Debug, Clone, Serialize)]
pub struct ListDetails {
    /// The page size of this walk.
    pub page_size: u32,
    /// Items before this page.
    pub offset: u64,
    /// The vendor returns every call and callgate slices the page (no vendor paging).
    pub sliced_by_callgate: bool,
    /// Filters callgate applies to the normalized calls (pages may be short).
    pub local_filters: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outgoing {
    pub method: String,
    /// Base URL + path + query.
    pub url: String,
    /// In the order sent; credential values are [`REDACTED`].
    pub headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<serde_json::Value>,
}

/// The canonical operation a method and path name, as the gateway dispatches them.
enum Route<'a> {
    List,
    Get(&'a str),
    Create,
    Update(&'a str),
}

/// Explains `req` against `rt`: the vendor request, or the problem the gateway would answer.
pub fn explain(rt: &Runtime, req: Request<'_>) -> Result<Explanation, Problem> {
    let method = req.method.to_ascii_uppercase();
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.target, None),
    };
    let route = route(&method, path);
    // Like the gateway: a path outside /v1 is refused before any key is looked at.
    if let (false, Err(problem)) = (path.starts_with("/v1/"), &route) {
        return Err(problem.clone());
    }
    let tenant = tenant(rt, req.key)?;
    let body = req.body.unwrap_or_default().as_bytes();
    match route? {
        Route::List => list(rt, &tenant, query),
        Route::Get(id) => get(rt, &tenant, id, query),
        Route::Create => create(rt, &tenant, body),
        Route::Update(id) => update(rt, &tenant, id, body),
    }
}

/// `POST /v1/calls`: the create the gateway would send (no idempotency key: with one, a
/// weighted split is decided by the key; without, at random — said in the rule).
fn create(rt: &Runtime, tenant: &Tenant, body: &[u8]) -> Result<Explanation, Problem> {
    let req = CreateCall::parse(body)?;
    let (provider, rule) =
        route::for_create(rt, tenant, req.provider.as_deref(), &req.agent_id, None)?;
    let rule = match rule {
        route::Rule::Explicit => "explicit provider".to_string(),
        route::Rule::Agent(a) => format!("agent rule agentId={a} → {}", provider.name),
        route::Rule::Default => "tenant default".to_string(),
        route::Rule::Split(_) => format!(
            "tenant default (weighted split; without an Idempotency-Key the draw is random — {} this time)",
            provider.name
        ),
    };
    let (request, _) = provider.adapter.plan_create(&req, None)?;
    Ok(explanation(
        tenant,
        Operation::CreateCall,
        rule,
        &provider,
        &request,
    ))
}

/// `PATCH|PUT /v1/calls/{id}`: the update the gateway would send.
fn update(
    rt: &Runtime,
    tenant: &Tenant,
    raw_id: &str,
    body: &[u8],
) -> Result<Explanation, Problem> {
    let (provider, id) = route::for_call_id(rt, tenant, raw_id)?;
    let req = UpdateCall::parse(body)?;
    let params = provider.adapter.id_params(id.parts)?;
    let request = provider.adapter.plan_update(&params, &req, None)?;
    let rule = format!("call id names provider {}", provider.name);
    Ok(explanation(
        tenant,
        Operation::UpdateCall,
        rule,
        &provider,
        &request,
    ))
}

fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, Problem> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["v1", "calls"]) => Ok(Route::List),
        ("GET", ["v1", "calls", id]) if !id.is_empty() => Ok(Route::Get(id)),
        ("POST", ["v1", "calls"]) => Ok(Route::Create),
        ("PATCH" | "PUT", ["v1", "calls", id]) if !id.is_empty() => Ok(Route::Update(id)),
        ("GET", ["v1", "providers"]) | ("GET", ["openapi.json"]) => Err(Problem::new(
            ErrorCode::InvalidRequest,
            format!("{method} {path} is answered by callgate itself; no vendor request is sent"),
        )),
        _ => Err(Problem::new(
            ErrorCode::NotFound,
            format!("{method} {path} is not a route of callgate (see /openapi.json)"),
        )),
    }
}

/// The tenant making the request: the owner of `key`, else the config's only tenant.
fn tenant(rt: &Runtime, key: Option<&str>) -> Result<Arc<Tenant>, Problem> {
    if let Some(key) = key {
        return auth::authenticate(rt, Some(&format!("Bearer {key}")));
    }
    let mut all = rt.tenants.values();
    match (all.next(), all.next()) {
        (Some(only), None) => Ok(only.clone()),
        _ => {
            let names: Vec<&str> = rt.tenants.keys().map(String::as_str).collect();
            Err(Problem::new(
                ErrorCode::Unauthorized,
                format!(
                    "this config has {} tenants ({}); pass --key with the gateway key of the one making the request",
                    names.len(),
                    names.join(", ")
                ),
            ))
        }
    }
}

fn list(rt: &Runtime, tenant: &Tenant, query: Option<&str>) -> Result<Explanation, Problem> {
    let q = ListQuery::parse(query)?;
    let (provider, at, rule) = match &q.cursor {
        Some(raw) => {
            let (provider, at) = route::for_cursor(rt, tenant, raw, &q)?;
            let rule = format!(
                "cursor names provider {} (offset {})",
                at.provider, at.offset
            );
            (provider, at, rule)
        }
        None => {
            let provider = route::for_list(rt, tenant, &q)?;
            let rule = list_rule(tenant, &q, &provider);
            let size = provider.adapter.page_size(q.limit.unwrap_or(DEFAULT_LIMIT));
            let at = Position {
                provider: provider.name.clone(),
                offset: 0,
                size,
            };
            (provider, at, rule)
        }
    };
    let plan = provider.adapter.plan_list(&q, &at)?;
    let mut e = explanation(tenant, Operation::ListCalls, rule, &provider, &plan.request);
    e.list = Some(ListDetails {
        page_size: plan.size,
        offset: plan.offset,
        sliced_by_callgate: plan.style == PaginationStyle::None,
        local_filters: plan.local.iter().map(|f| f.name()).collect(),
    });
    Ok(e)
}

/// Names the rule [`route::for_list`] applied (it decides; this only labels its decision).
fn list_rule(tenant: &Tenant, q: &ListQuery, provider: &Provider) -> String {
    if q.provider.is_some() {
        return "explicit provider".into();
    }
    let agent_rule = q
        .filters
        .agent_id
        .as_deref()
        .and_then(|a| tenant.agent_routes.iter().find(|(agent, _)| agent == a));
    match agent_rule {
        Some((agent, p)) if *p == provider.name => format!("agent rule agentId={agent} → {p}"),
        _ => "tenant default".into(),
    }
}

fn get(
    rt: &Runtime,
    tenant: &Tenant,
    raw_id: &str,
    query: Option<&str>,
) -> Result<Explanation, Problem> {
    list_query::parse_include(query)?;
    let (provider, id) = route::for_call_id(rt, tenant, raw_id)?;
    let params = provider.adapter.id_params(id.parts)?;
    let request = provider.adapter.plan_get(&params)?;
    let rule = format!("call id names provider {}", provider.name);
    Ok(explanation(
        tenant,
        Operation::GetCall,
        rule,
        &provider,
        &request,
    ))
}

fn explanation(
    tenant: &Tenant,
    operation: Operation,
    rule: String,
    provider: &Provider,
    request: &VendorRequest,
) -> Explanation {
    let headers = exchange::outgoing_headers(provider, request, REQUEST_ID_PLACEHOLDER)
        .into_iter()
        .map(|(name, value, secret)| (name, if secret { REDACTED.into() } else { value }))
        .collect();
    let body = request
        .body
        .as_deref()
        .map(|b| serde_json::from_slice(b).unwrap_or_else(|_| String::from_utf8_lossy(b).into()));
    Explanation {
        tenant: tenant.name.clone(),
        operation: operation.name(),
        rule,
        provider: provider.name.clone(),
        vendor: provider.adapter.vendor.clone(),
        adapter_file: provider.adapter.file.display().to_string(),
        request: Outgoing {
            method: request.method.clone(),
            url: format!(
                "{}{}",
                provider.upstream.base_url.trim_end_matches('/'),
                request.path_and_query
            ),
            headers,
            body,
        },
        list: None,
    }
}
