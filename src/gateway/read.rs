//! Reads — `GET /v1/calls/{id}` and a page of `GET /v1/calls` — as planned: through the cache
//! layer; a miss goes to the vendor side, and the vendor's answer is normalized into the
//! canonical answer the cache keeps. Normalization here is pure: answer in, bytes out.

use super::exchange::VendorAnswer;
use super::plan::{CachePlan, GetPlan, PagePlan};
use super::upstream::{encode, noted, read_json, unnormalizable, Exchange, VendorSide};
use crate::adapter::normalize::Context;
use crate::adapter::plan::VendorRequest;
use crate::adapter::rules::Params;
use crate::canonical::call::{CallPage, Pagination};
use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::Problem;
use crate::config::Provider;
use crate::layers::cache::{EntryKind, Fetch, Fetched, ResponseCache, Served};
use crate::layers::VendorFacts;

/// Serves a planned get through `cache`.
pub async fn get(
    cache: &dyn ResponseCache,
    vendor: &VendorSide,
    provider: &Provider,
    plan: &GetPlan,
    cx: Exchange<'_>,
    refresh: bool,
) -> Served {
    let normalize = |a: &VendorAnswer, f: &mut VendorFacts| call_answer(provider, plan, a, f);
    let read = Read {
        request: &plan.request,
        cache: &plan.cache,
    };
    through_cache(cache, vendor, provider, read, cx, refresh, normalize).await
}

/// Serves a planned list page through `cache`.
pub async fn list(
    cache: &dyn ResponseCache,
    vendor: &VendorSide,
    provider: &Provider,
    plan: &PagePlan,
    cx: Exchange<'_>,
    refresh: bool,
) -> Served {
    let normalize = |a: &VendorAnswer, f: &mut VendorFacts| page_answer(provider, plan, a, f);
    let read = Read {
        request: &plan.list.request,
        cache: &plan.cache,
    };
    through_cache(cache, vendor, provider, read, cx, refresh, normalize).await
}

/// What any read sends and how it is cached.
struct Read<'a> {
    request: &'a VendorRequest,
    cache: &'a CachePlan,
}

/// The cache layer over the vendor side: a miss sends `read.request` and `normalize`s the answer.
async fn through_cache<N>(
    cache: &dyn ResponseCache,
    vendor: &VendorSide,
    provider: &Provider,
    read: Read<'_>,
    cx: Exchange<'_>,
    refresh: bool,
    normalize: N,
) -> Served
where
    N: FnOnce(&VendorAnswer, &mut VendorFacts) -> Result<Fetched, Problem> + Send,
{
    let request = read.request;
    let fetch = Box::pin(async move {
        let (answer, mut facts) = vendor.exchange(provider, request, cx).await;
        let result = answer.and_then(|a| normalize(&a, &mut facts));
        Fetch {
            result,
            vendor: facts,
        }
    });
    let c = read.cache;
    cache.serve(&c.policy, c.key.clone(), refresh, fetch).await
}

/// The canonical call of a vendor's get answer, with the freshness its status earns.
fn call_answer(
    provider: &Provider,
    plan: &GetPlan,
    answer: &VendorAnswer,
    facts: &mut VendorFacts,
) -> Result<Fetched, Problem> {
    let adapter = &provider.adapter;
    let body = read_json(provider, answer, facts)?;
    let cx = Context {
        provider: &provider.name,
        params: Params(&plan.params),
        include_raw: plan.include_raw,
    };
    let call = adapter
        .extract_item(&body)
        .and_then(|item| adapter.normalize_call(item, cx, &mut facts.drift))
        .map_err(|e| unnormalizable(provider, e, facts))?;
    Ok(Fetched {
        body: encode(&call)?,
        ttl: plan.cache.freshness.for_call(call.status.is_live()),
        kind: EntryKind::Get,
        provider: provider.name.clone(),
        call_id: Some(plan.call_id.clone()),
    })
}

/// The canonical page of a vendor's list answer, with the cursor of the next page.
fn page_answer(
    provider: &Provider,
    plan: &PagePlan,
    answer: &VendorAnswer,
    facts: &mut VendorFacts,
) -> Result<Fetched, Problem> {
    let adapter = &provider.adapter;
    let q = &plan.query;
    let body = adapter.read_list_answer(
        &plan.list,
        &provider.name,
        answer.status,
        answer.retry_after.as_deref(),
        &answer.body,
    );
    let body = noted(facts, body)?;
    let page = plan
        .list
        .assemble(
            adapter,
            &body,
            &provider.name,
            q.include_raw,
            &q.filters,
            &mut facts.drift,
        )
        .map_err(|e| unnormalizable(provider, e, facts))?;
    let next_cursor = page.next_offset.map(|offset| {
        let next = Position {
            provider: provider.name.clone(),
            offset,
            size: plan.at.size,
        };
        Cursor::new(q.fingerprint(), vec![next]).encode()
    });
    let live = page.calls.iter().any(|c| c.status.is_live());
    let body = CallPage {
        data: page.calls,
        pagination: Pagination {
            limit: plan.at.size,
            next_cursor,
            total_count: page.total,
        },
    };
    Ok(Fetched {
        body: encode(&body)?,
        ttl: plan.cache.freshness.for_page(live),
        kind: EntryKind::List,
        provider: provider.name.clone(),
        call_id: None,
    })
}
