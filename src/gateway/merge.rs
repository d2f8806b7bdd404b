//! Merged lists: one page of `GET /v1/calls` over several sources (providers, or a vendor's
//! agents), cut from each source's own pages.
//!
//! Each source's pages are read concurrently through the read path of a single-provider list
//! (cache, retries, breaker — a merged walk refetches nothing a page already cached). A source
//! is asked for at most what the page can use: the page its position is in, and the next one
//! only when the rest of that page is shorter than the limit.
//!
//! **Order.** Newest first by `createdAt`, by merging the sources' own orders (each vendor lists
//! newest first): the merged page takes, one at a time, the newest of the sources' next calls.
//! A call without a `createdAt` keeps its place in its own source's order; a provider whose
//! calls carry no time at all (Elemente) comes after the timed ones, provider by provider, in
//! the vendor's order. None is dropped. A page stops early rather than guess when a
//! source's next page was not read (its next call might be the newest).
//!
//! **Partial results.** A source that fails leaves its position unchanged in the next cursor
//! (the next page retries it from where it was) and is reported in `pagination.incomplete`
//! with its error code; the page is `200` with the others' calls. With
//! `Prefer: handling=strict`, any failure is the answer instead.

use super::listing::{page_plan, MergedPlan, SourceWalk};
use super::read::{self, Read, ReadLayers};
use super::upstream::{encode, Exchange};
use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::timestamp;
use crate::canonical::Problem;
use crate::config::Runtime;
use crate::layers::VendorFacts;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A merged page as answered, and what the vendor side saw for it.
pub struct MergedPage {
    pub result: Result<Bytes, Problem>,
    pub vendor: Option<VendorFacts>,
    /// Providers the page lacks, and why (for the metrics).
    pub incomplete: Vec<Incomplete>,
}

/// A provider a merged page could not cover.
#[derive(Debug, Clone, Serialize)]
pub struct Incomplete {
    pub provider: String,
    /// The agent of a vendor that lists per agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The problem code the provider would have answered.
    pub code: &'static str,
    pub detail: String,
}

#[derive(Serialize)]
struct Page<'a> {
    data: Vec<&'a Value>,
    pagination: Pagination<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pagination<'a> {
    limit: u32,
    next_cursor: Option<String>,
    total_count: Option<u64>,
    incomplete: &'a [Incomplete],
}

/// A single-provider page as the read path answers it.
#[derive(Deserialize)]
struct SourcePage {
    data: Vec<Value>,
    pagination: SourcePagination,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourcePagination {
    next_cursor: Option<String>,
    total_count: Option<u64>,
}

/// One source's calls for this page: the rest of the page its position is in, and maybe the
/// next page.
#[derive(Debug, Default)]
struct SourceRead {
    calls: Vec<Value>,
    /// How many of `calls` come from the first page.
    first_len: usize,
    /// Offset of the page after the first; `None`: the first was the last.
    after_first: Option<u64>,
    /// When a second page was read: the offset of the page after it.
    after_second: Option<Option<u64>>,
    total: Option<u64>,
    /// The snapshot the source's walk reads from (a vendor without paging).
    snapshot: Option<u64>,
}

impl SourceRead {
    /// Whether the source has calls beyond those read.
    fn more(&self) -> bool {
        match self.after_second {
            Some(after) => after.is_some(),
            None => self.after_first.is_some(),
        }
    }

    /// Where the source stands once `taken` of its calls are given out; `None`: finished.
    fn position_after(&self, at: &Position, taken: usize) -> Option<Position> {
        let at_offset = |offset: u64, skip: usize| Position {
            offset,
            skip: skip as u32,
            snapshot: self.snapshot.or(at.snapshot),
            ..at.clone()
        };
        if taken < self.first_len {
            return Some(at_offset(at.offset, at.skip as usize + taken));
        }
        let into_second = taken - self.first_len;
        match (self.after_first, self.after_second) {
            (Some(next), Some(_)) if into_second < self.calls.len() - self.first_len => {
                Some(at_offset(next, into_second))
            }
            (_, Some(after)) => after.map(|o| at_offset(o, 0)),
            (after, None) => after.map(|o| at_offset(o, 0)),
        }
    }
}

/// Serves one merged page.
pub async fn serve(
    layers: ReadLayers<'_>,
    rt: &Runtime,
    plan: &MergedPlan,
    cx: Exchange<'_>,
    refresh: bool,
    strict: bool,
) -> MergedPage {
    let limit = plan.limit as usize;
    let reads = futures_util::future::join_all(
        plan.walks
            .iter()
            .map(|walk| read_source(layers, rt, walk, limit, cx, refresh)),
    )
    .await;
    let mut vendor: Option<VendorFacts> = None;
    let mut incomplete: Vec<Incomplete> = plan
        .skipped
        .iter()
        .map(|(provider, p)| Incomplete {
            provider: provider.clone(),
            agent: None,
            code: p.code.name(),
            detail: p.detail.clone(),
        })
        .collect();
    let mut read_ok: Vec<(&SourceWalk, SourceRead)> = Vec::new();
    let mut failed: Vec<(&SourceWalk, Problem)> = Vec::new();
    for (walk, (result, facts)) in plan.walks.iter().zip(reads) {
        for f in facts {
            vendor = Some(combine(vendor, f));
        }
        match result {
            Ok(r) => read_ok.push((walk, r)),
            Err(p) => failed.push((walk, p)),
        }
    }
    let first_failure = failed.first().map(|(_, p)| p.clone());
    if let Some(problem) = first_failure.filter(|_| strict || read_ok.is_empty()) {
        return MergedPage {
            result: Err(problem),
            vendor,
            incomplete,
        };
    }
    if read_ok.is_empty() && failed.is_empty() {
        // Nothing to read: every provider was skipped.
        let problem = plan.skipped.first().map(|(_, p)| p.clone());
        if let Some(problem) = problem {
            return MergedPage {
                result: Err(problem),
                vendor,
                incomplete,
            };
        }
    }
    let buffers: Vec<(&[Value], bool)> = read_ok
        .iter()
        .map(|(_, r)| (r.calls.as_slice(), r.more()))
        .collect();
    let (picked, taken) = merge(&buffers, limit);
    let mut positions: Vec<Position> = Vec::new();
    for ((walk, read), taken) in read_ok.iter().zip(&taken) {
        positions.extend(read.position_after(&walk.at, *taken));
    }
    for (walk, problem) in &failed {
        positions.push(walk.at.clone());
        incomplete.push(Incomplete {
            provider: walk.provider.name.clone(),
            agent: walk.at.agent.clone(),
            code: problem.code.name(),
            detail: problem.detail.clone(),
        });
    }
    let next_cursor = (!positions.is_empty())
        .then(|| Cursor::new(plan.query.merged_fingerprint(), positions).encode());
    let complete = failed.is_empty() && plan.skipped.is_empty();
    let total_count = if complete {
        read_ok.iter().map(|(_, r)| r.total).sum::<Option<u64>>()
    } else {
        None
    };
    let page = Page {
        data: picked.iter().map(|(s, i)| &buffers[*s].0[*i]).collect(),
        pagination: Pagination {
            limit: plan.limit,
            next_cursor,
            total_count,
            incomplete: &incomplete,
        },
    };
    MergedPage {
        result: encode(&page).map(Bytes::from),
        vendor,
        incomplete,
    }
}

/// Reads one source: the page its position is in (from the position's skip on), and the next
/// page when that rest is shorter than the limit.
async fn read_source(
    layers: ReadLayers<'_>,
    rt: &Runtime,
    walk: &SourceWalk,
    limit: usize,
    cx: Exchange<'_>,
    refresh: bool,
) -> (Result<SourceRead, Problem>, Vec<VendorFacts>) {
    let mut facts = Vec::new();
    let provider = &*walk.provider;
    let first = read::serve(layers, provider, Read::Page(&walk.first), cx, refresh).await;
    facts.extend(first.vendor);
    let first = match first.result.and_then(|b| source_page(&b, walk)) {
        Ok(p) => p,
        Err(e) => return (Err(e), facts),
    };
    let skip = (walk.at.skip as usize).min(first.0.len());
    let mut read = SourceRead {
        calls: first.0.into_iter().skip(skip).collect(),
        after_first: first.1.as_ref().map(|p| p.offset),
        snapshot: first.1.and_then(|p| p.snapshot),
        total: first.2,
        ..SourceRead::default()
    };
    read.first_len = read.calls.len();
    if let (true, Some(next)) = (read.calls.len() < limit, read.after_first) {
        let at = Position {
            offset: next,
            skip: 0,
            agent: None,
            snapshot: read.snapshot,
            ..walk.at.clone()
        };
        let second = match page_plan(rt, provider, walk.query.clone(), at) {
            Ok(plan) => {
                let served = read::serve(layers, provider, Read::Page(&plan), cx, refresh).await;
                facts.extend(served.vendor);
                served.result.and_then(|b| source_page(&b, walk))
            }
            Err(e) => Err(e),
        };
        match second {
            Ok(PageRead(calls, after, _)) => {
                read.calls.extend(calls);
                read.after_second = Some(after.map(|p| p.offset));
            }
            // The first page stands; the page stops where it ends.
            Err(_) => read.after_second = None,
        }
    }
    (Ok(read), facts)
}

/// A single-provider page read back: its calls, where the page after it starts, its total.
struct PageRead(Vec<Value>, Option<Position>, Option<u64>);

/// A single-provider page's calls, the offset of the page after it, and its total.
fn source_page(body: &[u8], walk: &SourceWalk) -> Result<PageRead, Problem> {
    let page: SourcePage = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            crate::canonical::ErrorCode::ProviderError,
            format!("a cached page could not be read back: {e}"),
        )
    })?;
    let next = page
        .pagination
        .next_cursor
        .and_then(|raw| Cursor::decode(&raw, walk.query.fingerprint()).ok())
        .and_then(|c| c.positions.into_iter().next());
    Ok(PageRead(page.data, next, page.pagination.total_count))
}

/// Two reads' vendor facts as one: the longest wait, the first error, every drift.
fn combine(a: Option<VendorFacts>, b: VendorFacts) -> VendorFacts {
    match a {
        None => b,
        Some(mut a) => {
            a.waited = a.waited.max(b.waited);
            a.error = a.error.or(b.error);
            a.status = a.status.or(b.status);
            a.drift.extend(b.drift);
            a
        }
    }
}

/// The merge: up to `limit` calls, newest `createdAt` first, from sources each in its own order
/// (`buffers`: a source's calls read, and whether it has more beyond them). A call without a
/// `createdAt` takes the time of the call before it in its source; one with none before it
/// yields to every timed call at the other sources' heads, and to a source with timed calls
/// before one without (Elemente's calls come last); ties go to the earlier source. Stops when a source that has more has run out of read calls. Returns the picks
/// (source, index) and how many each source gave.
fn merge(buffers: &[(&[Value], bool)], limit: usize) -> (Vec<(usize, usize)>, Vec<usize>) {
    // A call without a createdAt keeps its place in its source: it takes its predecessor's.
    let keys: Vec<Vec<Option<time::OffsetDateTime>>> = buffers
        .iter()
        .map(|(calls, _)| {
            let mut last = None;
            calls
                .iter()
                .map(|c| {
                    let t = c["createdAt"].as_str().and_then(timestamp::parse_datetime);
                    last = t.or(last);
                    last
                })
                .collect()
        })
        .collect();
    // Among calls with no time at all, a source with timed calls goes before one without.
    let timed: Vec<bool> = keys.iter().map(|k| k.iter().any(Option::is_some)).collect();
    let mut taken = vec![0usize; buffers.len()];
    let mut picked = Vec::new();
    while picked.len() < limit {
        let blocked = buffers
            .iter()
            .zip(&taken)
            .any(|((calls, more), t)| *t >= calls.len() && *more);
        if blocked {
            break;
        }
        let mut best: Option<(usize, (Option<time::OffsetDateTime>, bool))> = None;
        for (s, (calls, _)) in buffers.iter().enumerate() {
            if taken[s] >= calls.len() {
                continue;
            }
            let key = (keys[s][taken[s]], timed[s]);
            if best.is_none_or(|(_, k)| key > k) {
                best = Some((s, key));
            }
        }
        let Some((s, _)) = best else { break };
        picked.push((s, taken[s]));
        taken[s] += 1;
    }
    (picked, taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn calls(times: &[Option<&str>], tag: &str) -> Vec<Value> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"id": format!("{tag}{i}"), "createdAt": t}))
            .collect()
    }

    fn ids(buffers: &[(&[Value], bool)], picked: &[(usize, usize)]) -> Vec<String> {
        picked
            .iter()
            .map(|(s, i)| buffers[*s].0[*i]["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn newest_first_and_untimed_calls_after_the_timed_ones() {
        let z = calls(
            &[
                Some("2026-10-03T00:00:00Z"),
                Some("2026-10-01T00:00:00.000Z"),
            ],
            "z",
        );
        let b = calls(&[Some("2026-10-02T12:00:00.500+02:00")], "b");
        let e = calls(&[None, None], "e");
        let buffers: Vec<(&[Value], bool)> = vec![(&e, false), (&b, false), (&z, false)];
        let (picked, taken) = merge(&buffers, 10);
        assert_eq!(ids(&buffers, &picked), ["z0", "b0", "z1", "e0", "e1"]);
        assert_eq!(taken, [2, 1, 2]);
        let (picked, taken) = merge(&buffers, 2);
        assert_eq!(ids(&buffers, &picked), ["z0", "b0"]);
        assert_eq!(taken, [0, 1, 1]);
    }

    #[test]
    fn an_untimed_call_of_a_timed_source_keeps_its_place() {
        let z = calls(
            &[
                Some("2026-10-03T00:00:00Z"),
                None,
                Some("2026-10-01T00:00:00Z"),
            ],
            "z",
        );
        let b = calls(&[Some("2026-10-02T00:00:00Z")], "b");
        let e = calls(&[None], "e");
        let buffers: Vec<(&[Value], bool)> = vec![(&e, false), (&z, false), (&b, false)];
        let (picked, _) = merge(&buffers, 10);
        assert_eq!(ids(&buffers, &picked), ["z0", "z1", "b0", "z2", "e0"]);
    }

    #[test]
    fn a_page_stops_where_a_source_with_more_ran_out() {
        let z = calls(&[Some("2026-10-03T00:00:00Z")], "z");
        let b = calls(
            &[Some("2026-10-02T00:00:00Z"), Some("2026-10-01T00:00:00Z")],
            "b",
        );
        // z has more beyond its one read call: after it, the page cannot know what is next.
        let buffers: Vec<(&[Value], bool)> = vec![(&z, true), (&b, false)];
        let (picked, _) = merge(&buffers, 10);
        assert_eq!(ids(&buffers, &picked), ["z0"]);
    }

    #[test]
    fn positions_continue_inside_or_after_the_pages_read() {
        let at = Position {
            offset: 10,
            skip: 3,
            ..Position::start("p", None, 10)
        };
        let read = SourceRead {
            calls: (0..12).map(|i| json!(i)).collect(),
            first_len: 7,
            after_first: Some(20),
            after_second: Some(Some(30)),
            total: None,
            snapshot: None,
        };
        let pos = |taken| read.position_after(&at, taken).map(|p| (p.offset, p.skip));
        assert_eq!(pos(0), Some((10, 3)));
        assert_eq!(pos(6), Some((10, 9)));
        assert_eq!(pos(7), Some((20, 0)));
        assert_eq!(pos(11), Some((20, 4)));
        assert_eq!(pos(12), Some((30, 0)));
        let last = SourceRead {
            calls: vec![json!(1)],
            first_len: 1,
            after_first: None,
            after_second: None,
            total: None,
            snapshot: None,
        };
        assert_eq!(last.position_after(&at, 1), None, "finished");
        assert!(!last.more());
    }
}
