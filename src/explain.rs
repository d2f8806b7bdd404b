//! `callgate explain`: what the gateway would do with one canonical request — the tenant, the
//! routing rule that fired, the provider, and the exact vendor request (credentials redacted) —
//! without touching the network.
//!
//! It owns no routing or planning of its own: it reads the request through the gateway's
//! dispatch table ([`Endpoint::parse`]), authenticates like it, and prints the [`Planned`] value
//! of the gateway's one planning function ([`plan::plan`]), with the headers the vendor client
//! would send ([`exchange::outgoing_headers`]), so what it prints is what is sent. A request the
//! gateway would refuse yields the same canonical [`Problem`].

use crate::adapter::plan::VendorRequest;
use crate::adapter::spec::PaginationStyle;
use crate::canonical::handling::{Handling, Warning};
use crate::canonical::{ErrorCode, Problem};
use crate::config::{Provider, Runtime, Tenant};
use crate::gateway::endpoint::Endpoint;
use crate::gateway::listing::MergedPlan;
use crate::gateway::plan::{self, CachePlan, CallRequest, Plan, Planned, Work};
use crate::gateway::{auth, exchange};
use crate::layers::retry::Resend;
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
    /// The request's `Prefer: handling=…`.
    pub prefer: Option<Handling>,
}

/// The vendor request the gateway would send.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub tenant: String,
    /// `list_calls`, `get_call`.
    pub operation: &'static str,
    /// Which routing rule fired: `explicit provider`, `agent rule … → p`, `tenant default`,
    /// `call id names provider p`.
    pub rule: String,
    pub provider: String,
    pub vendor: String,
    pub adapter_file: String,
    pub request: Outgoing,
    /// What may be sent again after a failed attempt (`read`, `write_never_sent`).
    pub resend: Resend,
    /// For lists: the page and what callgate does with the answer.
    pub list: Option<ListDetails>,
    /// For reads: how the answer is cached.
    pub cache: Option<CacheDetails>,
    /// For writes: what a successful answer is and where it is kept for an idempotency key.
    pub write: Option<WriteDetails>,
    /// For a create a weighted split routed: what each provider of the split would receive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<SplitOutcome>,
    /// For a list over several providers (a merged list): each source's first page request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedSource>,
    /// Providers a merged list cannot cover, and the problem each would answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedSource>,
}

/// One source of a merged list.
#[derive(Debug, Clone, Serialize)]
pub struct MergedSource {
    pub provider: String,
    /// The agent of a vendor that lists per agent.
    pub agent: Option<String>,
    pub request: Outgoing,
    pub local_filters: Vec<&'static str>,
}

/// A provider a merged list cannot cover.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedSource {
    pub provider: String,
    pub refused: Problem,
}

/// The create at one provider of its split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitOutcome {
    pub provider: String,
    /// The vendor request, when the provider can take the create.
    pub request: Option<Outgoing>,
    /// The request fields that provider would not receive (lenient handling).
    pub dropped: Vec<Warning>,
    /// What the gateway would answer instead, when it cannot.
    pub refused: Option<Problem>,
}

/// How a read's answer is cached.
#[derive(Debug, Clone, Serialize)]
pub struct CacheDetails {
    pub enabled: bool,
    /// The normalized canonical request.
    pub key: String,
    /// Seconds the answer stays fresh while a call in it is live.
    pub fresh_while_live_s: f64,
    /// Seconds it stays fresh otherwise.
    pub fresh_s: f64,
    /// Seconds past freshness it may still answer when the vendor fails.
    pub stale_if_error_s: f64,
}

/// A write's semantics.
#[derive(Debug, Clone, Serialize)]
pub struct WriteDetails {
    pub success_status: u16,
    /// Request fields not sent because the vendor cannot take them (lenient handling).
    pub dropped: Vec<Warning>,
    /// The handling reported in `Preference-Applied`, if any.
    pub preference_applied: Option<Handling>,
    /// Where the answer is kept for the request's `Idempotency-Key` (explain sends none).
    pub idempotency_scope: Option<String>,
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

/// Explains `req` against `rt`: the plan the gateway would run, or the problem it would answer.
pub fn explain(rt: &Runtime, req: Request<'_>) -> Result<Explanation, Problem> {
    let method = req.method.to_ascii_uppercase();
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.target, None),
    };
    let op = match Endpoint::parse(&method, path) {
        Ok(Endpoint::Call(op)) => Ok(op),
        Ok(Endpoint::Providers | Endpoint::Agents | Endpoint::OpenApi) => Err(Problem::new(
            ErrorCode::InvalidRequest,
            format!("{method} {path} is answered by callgate itself; no vendor request is sent"),
        )),
        Err(p) => Err(p),
    };
    // Like the gateway: a path outside /v1 is refused before any key is looked at.
    if let (false, Err(problem)) = (Endpoint::is_api_path(path), &op) {
        return Err(problem.clone());
    }
    let tenant = tenant(rt, req.key)?;
    let call = CallRequest {
        op: op?,
        method: &method,
        path,
        query,
        body: req.body.unwrap_or_default().as_bytes(),
        content_type: None,
        // Without a key a weighted split draws at random (the rule says so).
        idempotency_key: None,
        prefer: req.prefer,
        request_id: REQUEST_ID_PLACEHOLDER,
    };
    let planned = match plan::plan(rt, &tenant, &call).map_err(|r| r.problem)? {
        Plan::One(p) => p,
        Plan::Merged(m) => return Ok(merged_explanation(&tenant, &m)),
    };
    let mut explained = explanation(&tenant, &planned);
    explained.split = plan::create_alternatives(rt, &tenant, &call, &planned)
        .into_iter()
        .map(|(provider, alt)| match alt {
            Ok(p) => SplitOutcome {
                request: Some(outgoing(&p.provider, p.work.request())),
                dropped: match &p.work {
                    Work::Write(w) => w.warnings.clone(),
                    _ => Vec::new(),
                },
                refused: None,
                provider,
            },
            Err(r) => SplitOutcome {
                provider,
                request: None,
                dropped: Vec::new(),
                refused: Some(r.problem),
            },
        })
        .collect();
    Ok(explained)
}

/// A merged list: the first page of every source. `provider` lists them; `request` is the
/// first source's, `merged` has each.
fn merged_explanation(tenant: &Tenant, m: &MergedPlan) -> Explanation {
    let sources: Vec<MergedSource> = m
        .walks
        .iter()
        .map(|w| MergedSource {
            provider: w.provider.name.clone(),
            agent: w.at.agent.clone(),
            request: outgoing(&w.provider, &w.first.list.request),
            local_filters: w.first.list.local.iter().map(|f| f.name()).collect(),
        })
        .collect();
    let skipped = m
        .skipped
        .iter()
        .map(|(provider, p)| SkippedSource {
            provider: provider.clone(),
            refused: p.clone(),
        })
        .collect();
    let first = m.walks.first();
    let mut names: Vec<&str> = m.walks.iter().map(|w| w.provider.name.as_str()).collect();
    names.dedup();
    Explanation {
        tenant: tenant.name.clone(),
        operation: "list_calls",
        rule: m.rule.describe(""),
        provider: names.join(", "),
        vendor: String::new(),
        adapter_file: String::new(),
        request: sources
            .first()
            .map(|s| s.request.clone())
            .unwrap_or_else(|| Outgoing {
                method: "GET".into(),
                url: String::new(),
                headers: Vec::new(),
                body: None,
            }),
        resend: Resend::Read,
        list: first.map(|w| ListDetails {
            page_size: m.limit,
            offset: w.at.offset,
            sliced_by_callgate: false,
            local_filters: Vec::new(),
        }),
        cache: first.map(|w| cache_details(&w.first.cache, true)),
        write: None,
        split: Vec::new(),
        merged: sources,
        skipped,
    }
}

/// The vendor request as sent, credentials redacted.
fn outgoing(provider: &Provider, request: &VendorRequest) -> Outgoing {
    let headers = exchange::outgoing_headers(provider, request, REQUEST_ID_PLACEHOLDER)
        .into_iter()
        .map(|(name, value, secret)| (name, if secret { REDACTED.into() } else { value }))
        .collect();
    let body = request
        .body
        .as_deref()
        .map(|b| serde_json::from_slice(b).unwrap_or_else(|_| String::from_utf8_lossy(b).into()));
    Outgoing {
        method: request.method.clone(),
        url: format!(
            "{}{}",
            provider.upstream.base_url.trim_end_matches('/'),
            request.path_and_query
        ),
        headers,
        body,
    }
}

/// The tenant making the request: the owner of `key`, else the config's only tenant.
fn tenant(rt: &Runtime, key: Option<&str>) -> Result<Arc<Tenant>, Problem> {
    if let Some(key) = key {
        let header = format!("Bearer {key}");
        return auth::authenticate(rt, auth::Authorization::Value(header.as_bytes()));
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

fn explanation(tenant: &Tenant, planned: &Planned) -> Explanation {
    let provider = &planned.provider;
    let (list, cache, write) = match &planned.work {
        Work::Get(g) => (None, Some(cache_details(&g.cache, false)), None),
        Work::List(p) => {
            let list = ListDetails {
                page_size: p.list.size,
                offset: p.list.offset,
                sliced_by_callgate: p.list.style == PaginationStyle::None,
                local_filters: p.list.local.iter().map(|f| f.name()).collect(),
            };
            (Some(list), Some(cache_details(&p.cache, true)), None)
        }
        Work::Write(w) => {
            let write = WriteDetails {
                success_status: w.success,
                dropped: w.warnings.clone(),
                preference_applied: w.preference_applied,
                idempotency_scope: w
                    .idempotency
                    .as_ref()
                    .map(|s| format!("tenant {}, key {}", s.tenant, s.key)),
            };
            (None, None, Some(write))
        }
    };
    Explanation {
        tenant: tenant.name.clone(),
        operation: planned.operation.name(),
        rule: planned.rule.describe(&provider.name),
        provider: provider.name.clone(),
        vendor: provider.adapter.vendor.clone(),
        adapter_file: provider.adapter.file.display().to_string(),
        request: outgoing(provider, planned.work.request()),
        resend: planned.resend,
        list,
        cache,
        write,
        split: Vec::new(),
        merged: Vec::new(),
        skipped: Vec::new(),
    }
}

fn cache_details(c: &CachePlan, page: bool) -> CacheDetails {
    let f = &c.freshness;
    let fresh_s = |live| {
        let ttl = if page {
            f.for_page(live)
        } else {
            f.for_call(live)
        };
        ttl.as_secs_f64()
    };
    CacheDetails {
        enabled: c.policy.enabled,
        key: c.key.0.clone(),
        fresh_while_live_s: fresh_s(true),
        fresh_s: fresh_s(false),
        stale_if_error_s: c.policy.stale_if_error.as_secs_f64(),
    }
}
