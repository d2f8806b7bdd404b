//! Reads — `GET /v1/calls/{id}` and a page of `GET /v1/calls` — as planned: through the cache
//! layer; a miss goes to the vendor side, and the vendor's answer is normalized into the
//! canonical answer the cache keeps. Normalization here is pure: answer in, bytes out.

use super::exchange::VendorAnswer;
use super::plan::{GetPlan, PagePlan};
use super::upstream::{encode, noted, read_json, unnormalizable, Exchange, VendorSide};
use crate::adapter::listing::ListBody;
use crate::adapter::normalize::Context;
use crate::adapter::rules::Params;
use crate::canonical::call::{CallPage, Pagination};
use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::{Call, Problem};
use crate::config::Provider;
use crate::layers::cache::{EntryKind, Fetch, Fetched, ResponseCache, Served};
use crate::layers::snapshot::{Snapshot, SnapshotStore};
use crate::layers::VendorFacts;
use crate::telemetry;
use tracing::Instrument;

/// A planned read.
#[derive(Clone, Copy)]
pub enum Read<'a> {
    Get(&'a GetPlan),
    Page(&'a PagePlan),
}

/// The layers a read passes through.
#[derive(Clone, Copy)]
pub struct ReadLayers<'a> {
    pub cache: &'a dyn ResponseCache,
    pub snapshots: &'a SnapshotStore,
    pub vendor: &'a VendorSide,
}

/// Serves a planned read through the cache layer: a miss sends the read's request through the
/// vendor side and normalizes the answer. `refresh`: the client asked for a fresh answer.
pub async fn serve(
    layers: ReadLayers<'_>,
    provider: &Provider,
    read: Read<'_>,
    cx: Exchange<'_>,
    refresh: bool,
) -> Served {
    let (request, plan) = match read {
        Read::Get(g) => (&g.request, &g.cache),
        Read::Page(p) => (&p.list.request, &p.cache),
    };
    let fetch = Box::pin(async move {
        // A later page of a walk over an unpaged vendor is cut from the walk's snapshot.
        if let Some(result) = match read {
            Read::Page(p) => from_snapshot(layers.snapshots, provider, p),
            Read::Get(_) => None,
        } {
            return Fetch {
                result,
                vendor: VendorFacts::default(),
            };
        }
        let (answer, mut facts) = layers.vendor.exchange(provider, request, cx).await;
        let result = telemetry::room("normalize").in_scope(|| {
            answer.and_then(|a| match read {
                Read::Get(g) => call_answer(provider, g, &a, &mut facts),
                Read::Page(p) => page_answer(layers.snapshots, provider, p, &a, &mut facts),
            })
        });
        Fetch {
            result,
            vendor: facts,
        }
    });
    layers
        .cache
        .serve(&plan.policy, plan.key.clone(), refresh, fetch)
        .instrument(telemetry::room("cache"))
        .await
}

/// The canonical call of a vendor's get answer (or the problem it maps to).
pub(super) fn normalized_call(
    provider: &Provider,
    plan: &GetPlan,
    answer: &VendorAnswer,
    facts: &mut VendorFacts,
) -> Result<Call, Problem> {
    let adapter = &provider.adapter;
    let body = read_json(provider, answer, facts)?;
    let cx = Context {
        provider: &provider.name,
        agents: &provider.agent_keys,
        params: Params(&plan.params),
        include_raw: plan.include_raw,
    };
    adapter
        .extract_item(&body)
        .and_then(|item| adapter.normalize_call(item, cx, &mut facts.drift))
        .map_err(|e| unnormalizable(provider, e, facts))
}

/// The canonical call of a vendor's get answer, with the freshness its status earns.
fn call_answer(
    provider: &Provider,
    plan: &GetPlan,
    answer: &VendorAnswer,
    facts: &mut VendorFacts,
) -> Result<Fetched, Problem> {
    let call = normalized_call(provider, plan, answer, facts)?;
    Ok(Fetched {
        body: encode(&call)?,
        ttl: plan.cache.freshness.for_call(call.status.is_live()),
        stale: plan.cache.freshness.stale_for_call(call.status.is_live()),
        kind: EntryKind::Get,
        provider: provider.name.clone(),
        call_id: Some(plan.call_id.clone()),
    })
}

/// Keeps the whole answer of an unpaged vendor as the walk's snapshot when the walk goes on
/// past this page; the snapshot's id, for the next cursor.
fn keep_snapshot(
    store: &SnapshotStore,
    provider: &Provider,
    plan: &PagePlan,
    answer: &VendorAnswer,
) -> Option<u64> {
    if !plan.list.unpaged() || !(200..300).contains(&answer.status) {
        return None;
    }
    let keys = provider.adapter.list_item_keys()?;
    let mut snapshot = Snapshot::build(&provider.name, answer.body.clone(), &keys)?;
    if !plan.list.local.is_empty() {
        // A walk callgate filters: its offsets count the calls that pass, chosen once here.
        let cx = Context {
            provider: &provider.name,
            agents: &provider.agent_keys,
            params: Params(&plan.list.params),
            include_raw: false,
        };
        let selected = plan.list.select(
            &provider.adapter,
            snapshot.records(),
            cx,
            &plan.query.filters,
        )?;
        snapshot = snapshot.selecting(selected);
    }
    let end = plan.list.offset.saturating_add(u64::from(plan.list.size));
    (snapshot.len() as u64 > end).then(|| store.keep(snapshot))
}

/// The page, cut from the snapshot its position names, if that is still kept.
fn from_snapshot(
    store: &SnapshotStore,
    provider: &Provider,
    plan: &PagePlan,
) -> Option<Result<Fetched, Problem>> {
    let id = plan.at.snapshot?;
    if !plan.list.unpaged() {
        return None;
    }
    let start = usize::try_from(plan.list.offset).ok()?;
    let end = start.saturating_add(plan.list.size as usize);
    let keys = provider.adapter.list_item_keys()?;
    let snapshot = store.get(&provider.name, id)?;
    let bytes = snapshot.window(&keys, start, end);
    let body = provider
        .adapter
        .snapshot_list_body(&bytes, snapshot.len())?;
    let mut facts = VendorFacts::default();
    Some(page_of(provider, plan, &body, Some(id), &mut facts))
}

/// The canonical page of a vendor's list answer, with the cursor of the next page (and, for an
/// unpaged vendor whose list goes on past this page, the snapshot the walk goes on from).
fn page_answer(
    snapshots: &SnapshotStore,
    provider: &Provider,
    plan: &PagePlan,
    answer: &VendorAnswer,
    facts: &mut VendorFacts,
) -> Result<Fetched, Problem> {
    let body = provider.adapter.read_list_answer(
        &plan.list,
        &provider.name,
        answer.status,
        answer.retry_after.as_deref(),
        &answer.body,
    );
    let body = noted(provider, facts, body)?;
    // A list that ends on this page needs no snapshot: its answer is not scanned again.
    let end = plan.list.offset.saturating_add(u64::from(plan.list.size));
    let ends_here = body.windowed_total().is_some_and(|t| t as u64 <= end);
    let snapshot = if ends_here {
        None
    } else {
        keep_snapshot(snapshots, provider, plan, answer)
    };
    page_of(provider, plan, &body, snapshot, facts)
}

/// A page from a vendor list answer (or a snapshot's cut of one).
fn page_of(
    provider: &Provider,
    plan: &PagePlan,
    body: &ListBody<'_>,
    snapshot: Option<u64>,
    facts: &mut VendorFacts,
) -> Result<Fetched, Problem> {
    let adapter = &provider.adapter;
    let q = &plan.query;
    let page = plan
        .list
        .assemble(
            adapter,
            body,
            Context {
                provider: &provider.name,
                agents: &provider.agent_keys,
                params: Params(&plan.list.params),
                include_raw: q.include_raw,
            },
            &q.filters,
            &mut facts.drift,
        )
        .map_err(|e| unnormalizable(provider, e, facts))?;
    let next_cursor = page.next_offset.map(|offset| {
        let next = Position {
            agent: None,
            skip: 0,
            snapshot,
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
        stale: std::time::Duration::ZERO,
        kind: EntryKind::List,
        provider: provider.name.clone(),
        call_id: None,
    })
}
