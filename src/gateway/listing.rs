//! Planning `GET /v1/calls`: which lists a request covers ([`route::for_list`]) and where each
//! walk stands. One source is a single-provider walk, planned as one page ([`PagePlan`]) as it
//! always was. Several sources — every provider the tenant may use, `provider=a,b`, a canonical
//! agent at its providers, a vendor that lists per agent fanned out over the agents the config
//! knows — are a merged walk ([`MergedPlan`]), run by [`super::merge`]: each source's pages are
//! read (and cached) as single-provider pages, and the merged page is cut from them.

use super::plan::{cache_plan, PagePlan, Plan, Planned, Refused, Work};
use super::route::{self, ListSources, Rule, Source};
use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::list_query::{ListQuery, DEFAULT_LIMIT};
use crate::canonical::{ErrorCode, Operation, Problem};
use crate::config::{Provider, Runtime, Tenant};
use crate::layers::retry::Resend;
use std::sync::Arc;

/// A merged walk: its sources still to read, each at its position, and what it cannot cover.
#[derive(Debug)]
pub struct MergedPlan {
    /// The client's query.
    pub query: ListQuery,
    /// Calls per merged page.
    pub limit: u32,
    pub rule: Rule,
    pub walks: Vec<SourceWalk>,
    /// Providers the walk does not cover, with the problem each would answer.
    pub skipped: Vec<(String, Problem)>,
}

/// One source of a merged walk: where it stands and the first page to read there.
#[derive(Debug)]
pub struct SourceWalk {
    pub provider: Arc<Provider>,
    /// The source's own query (the client's, scoped to the source's agent).
    pub query: ListQuery,
    pub at: Position,
    pub first: PagePlan,
}

/// Plans a list request; `strict`: a provider that cannot serve the list is an error, not a
/// skip.
pub fn plan(
    rt: &Runtime,
    tenant: &Tenant,
    query: ListQuery,
    strict: bool,
) -> Result<Plan, Refused> {
    let chosen = route::for_list(rt, tenant, &query)?;
    if let ([source], true) = (chosen.sources.as_slice(), chosen.skipped.is_empty()) {
        return single(rt, tenant, scoped(&query, source), chosen.rule).map(Plan::One);
    }
    merged(rt, query, chosen, strict).map(Plan::Merged)
}

/// The client's query as one source sees it: scoped to the source's agent.
fn scoped(query: &ListQuery, source: &Source) -> ListQuery {
    let mut q = query.clone();
    if source.agent.is_some() {
        q.filters.agent_id = source.agent.clone();
    }
    q.providers = vec![source.provider.name.clone()];
    q.agent = None;
    q
}

/// A single-provider walk: one page.
fn single(rt: &Runtime, tenant: &Tenant, query: ListQuery, rule: Rule) -> Result<Planned, Refused> {
    let (provider, at, rule) = match &query.cursor {
        Some(raw) => {
            let (provider, at) = route::for_cursor(rt, tenant, raw, &query)?;
            let offset = at.offset;
            (provider, at, Rule::Cursor { offset })
        }
        None => {
            let provider = route::named(rt, tenant, &query.providers[0])?;
            let size = provider
                .adapter
                .page_size(query.limit.unwrap_or(DEFAULT_LIMIT));
            (
                provider.clone(),
                Position::start(&provider.name, None, size),
                rule,
            )
        }
    };
    let page = page_plan(rt, &provider, query, at).map_err(|problem| Refused {
        problem,
        provider: Some(provider.clone()),
    })?;
    Ok(Planned {
        operation: Operation::ListCalls,
        provider,
        rule,
        resend: Resend::Read,
        work: Work::List(Box::new(page)),
    })
}

/// The page of `query` at `at` on `provider`: the vendor request, and its cache entry. Requests
/// sharing an entry share its page's next cursor: the cursor's fingerprint is made of the same
/// canonical filters (`ListQuery::fingerprint`), so it continues each one's walk.
pub fn page_plan(
    rt: &Runtime,
    provider: &Provider,
    query: ListQuery,
    at: Position,
) -> Result<PagePlan, Problem> {
    let list = provider.adapter.plan_list(&query, &at)?;
    let cache = cache_plan(
        rt,
        format!(
            "list|{}|{}|o={}|s={}|raw={}",
            provider.name,
            query.canonical_filters(),
            at.offset,
            at.size,
            query.include_raw
        ),
    );
    Ok(PagePlan {
        list,
        query,
        at,
        cache,
    })
}

fn merged(
    rt: &Runtime,
    query: ListQuery,
    chosen: ListSources,
    strict: bool,
) -> Result<MergedPlan, Refused> {
    if let (true, Some((provider, problem))) = (strict, chosen.skipped.first()) {
        return Err(Refused {
            problem: problem.clone(),
            provider: rt.provider(provider).cloned(),
        });
    }
    let bad = |message: String| Problem::field(ErrorCode::InvalidCursor, "cursor", message);
    // Where each source stands: at its start, or where the cursor says; a source the cursor
    // no longer names is finished.
    let positions: Option<Vec<Position>> = match &query.cursor {
        None => None,
        Some(raw) => Some(
            Cursor::decode(raw, query.merged_fingerprint())
                .map_err(|e| bad(e.to_string()))?
                .positions,
        ),
    };
    if let Some(positions) = &positions {
        for p in positions {
            let known = chosen
                .sources
                .iter()
                .any(|s| s.provider.name == p.provider && s.agent == p.agent);
            if !known {
                return Err(bad(format!(
                    "the cursor walks {:?}{}, which this request does not cover; repeat the first request's provider, agent and filters",
                    p.provider,
                    p.agent.as_deref().map(|a| format!(" (agent {a:?})")).unwrap_or_default()
                ))
                .into());
            }
        }
    }
    // A walk keeps its page size: without `limit`, the one its cursor started with.
    let limit = query
        .limit
        .or_else(|| positions.as_ref()?.first().map(|p| p.size))
        .unwrap_or(DEFAULT_LIMIT);
    let mut walks = Vec::new();
    let mut skipped = chosen.skipped;
    for source in &chosen.sources {
        let provider = &source.provider;
        let size = provider.adapter.page_size(limit);
        let at = match &positions {
            None => Position::start(&provider.name, source.agent.as_deref(), size),
            Some(all) => match all
                .iter()
                .find(|p| p.provider == provider.name && p.agent == source.agent)
            {
                Some(p) => {
                    route::page_size_kept(provider, &query, p)?;
                    p.clone()
                }
                None => continue,
            },
        };
        let q = scoped(&query, source);
        let vendor_at = Position {
            skip: 0,
            agent: None,
            ..at.clone()
        };
        match page_plan(rt, provider, q.clone(), vendor_at) {
            Ok(first) => walks.push(SourceWalk {
                provider: provider.clone(),
                query: q,
                at,
                first,
            }),
            Err(problem) if strict => {
                return Err(Refused {
                    problem,
                    provider: Some(provider.clone()),
                })
            }
            Err(problem) => skipped.push((provider.name.clone(), problem)),
        }
    }
    Ok(MergedPlan {
        query,
        limit,
        rule: chosen.rule,
        walks,
        skipped,
    })
}
