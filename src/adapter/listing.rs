//! Turning one vendor list answer into one canonical page: normalize, apply the filters callgate
//! owns, slice when the vendor does not page, and decide where the next page starts.

use super::normalize::{Context, ListMeta, NormalizeError};
use super::plan::ListPlan;
use super::rules::Drift;
use super::spec::PaginationStyle;
use super::Adapter;
use super::Json;
use crate::canonical::list_query::{FilterName, Filters};
use crate::canonical::{timestamp, Call};

/// A vendor's list answer, read: whole, or with only the page's items built (see `window`).
#[derive(Debug)]
pub struct ListBody<'j> {
    pub value: Json<'j>,
    /// When the item array holds only the page: how many items the vendor sent in all.
    windowed_total: Option<usize>,
}

impl<'j> ListBody<'j> {
    /// How many items the vendor sent in all, when the body holds only the page's.
    pub fn windowed_total(&self) -> Option<usize> {
        self.windowed_total
    }

    pub fn whole(value: Json<'j>) -> ListBody<'j> {
        ListBody {
            value,
            windowed_total: None,
        }
    }

    pub(super) fn windowed(value: Json<'j>, total: usize) -> ListBody<'j> {
        ListBody {
            value,
            windowed_total: Some(total),
        }
    }
}

/// One canonical page before it gets its cursor.
#[derive(Debug)]
pub struct ListPage {
    pub calls: Vec<Call>,
    /// Where the next page starts, or `None` at the end.
    pub next_offset: Option<u64>,
    pub total: Option<u64>,
}

impl ListPlan {
    /// The items `[start, end)` of the vendor's answer that make the page, when callgate can
    /// tell before normalizing: an unpaged vendor and no filter callgate applies itself.
    pub fn window(&self) -> Option<(usize, usize)> {
        if self.style != PaginationStyle::None || !self.local.is_empty() {
            return None;
        }
        let start = usize::try_from(self.offset).ok()?;
        Some((start, start.saturating_add(self.size as usize)))
    }

    pub fn assemble(
        &self,
        adapter: &Adapter,
        body: &ListBody<'_>,
        cx: Context<'_>,
        filters: &Filters,
        drift: &mut Vec<Drift>,
    ) -> Result<ListPage, NormalizeError> {
        let (items, meta) = adapter.extract_list(&body.value)?;
        let normalize =
            |items: &[&Json], drift: &mut Vec<Drift>| -> Result<Vec<Call>, NormalizeError> {
                // Sized up front: collecting `Result`s gives no size hint, and growing a
                // `Vec<Call>` moves every call made so far (measured: ~2% of a page).
                let mut calls = Vec::with_capacity(items.len());
                for it in items {
                    calls.push(adapter.normalize_call(it, cx, drift)?);
                }
                Ok(calls)
            };
        let keep = |c: &Call| self.local.iter().all(|f| matches(c, *f, filters));
        let offset = self.offset;
        let size = u64::from(self.size);
        match self.style {
            // A page cut from a filtered walk's snapshot: its items are the page, already
            // selected by the filters callgate applies.
            PaginationStyle::None if body.windowed_total.is_some() && !self.local.is_empty() => {
                let total = body.windowed_total.unwrap_or_default() as u64;
                let calls = normalize(&items, drift)?;
                let end = offset.saturating_add(calls.len() as u64);
                Ok(ListPage {
                    calls,
                    next_offset: (end < total).then_some(end),
                    total: Some(total),
                })
            }
            PaginationStyle::None => {
                // The vendor returned everything; callgate owns the window. Without local
                // filters the page is cut before normalizing (a windowed body holds only it).
                let all: Vec<Call> = if let Some((start, end)) = self.window() {
                    let (page, total) = match body.windowed_total {
                        Some(total) => (&items[..], total),
                        None => {
                            let start = start.min(items.len());
                            (&items[start..end.min(items.len())], items.len())
                        }
                    };
                    let end = start.saturating_add(page.len());
                    return Ok(ListPage {
                        calls: normalize(page, drift)?,
                        next_offset: (end < total).then_some(end as u64),
                        total: Some(total as u64),
                    });
                } else {
                    normalize(&items, drift)?.into_iter().filter(keep).collect()
                };
                let total = all.len() as u64;
                let calls: Vec<Call> = all
                    .into_iter()
                    .skip(offset as usize)
                    .take(size as usize)
                    .collect();
                let end = offset.saturating_add(size);
                Ok(ListPage {
                    calls,
                    next_offset: (end < total).then_some(end),
                    total: Some(total),
                })
            }
            PaginationStyle::Page => {
                let raw_count = items.len() as u64;
                let calls: Vec<Call> = normalize(&items, drift)?.into_iter().filter(keep).collect();
                let more = has_more(&meta, offset, size, raw_count);
                Ok(ListPage {
                    calls,
                    next_offset: more.then_some(offset.saturating_add(size)),
                    total: if self.local.is_empty() {
                        meta.total
                    } else {
                        None
                    },
                })
            }
        }
    }
}

impl ListPlan {
    /// Whether the vendor answers every request with its whole list (callgate pages it).
    pub fn unpaged(&self) -> bool {
        self.style == PaginationStyle::None
    }

    /// The indices of the records (each one's JSON, in the vendor's order) that pass the
    /// filters callgate applies itself; `None` when a record cannot be read or normalized (the
    /// page itself then fails the same way).
    pub fn select<'r>(
        &self,
        adapter: &Adapter,
        records: impl Iterator<Item = &'r [u8]>,
        cx: Context<'_>,
        filters: &Filters,
    ) -> Option<Vec<u32>> {
        let mut drift = Vec::new();
        let mut out = Vec::new();
        for (i, raw) in records.enumerate() {
            let json: Json<'_> = serde_json::from_slice(raw).ok()?;
            let call = adapter.normalize_call(&json, cx, &mut drift).ok()?;
            if self.local.iter().all(|f| matches(&call, *f, filters)) {
                out.push(u32::try_from(i).ok()?);
            }
        }
        Some(out)
    }
}

/// Whether a paged vendor has a page after this one, from the best signal it gave.
fn has_more(meta: &ListMeta, offset: u64, size: u64, raw_count: u64) -> bool {
    if raw_count == 0 {
        return false;
    }
    if let Some(b) = meta.has_next {
        return b;
    }
    if let Some(pages) = meta.total_pages {
        return (offset / size).saturating_add(1) < pages;
    }
    if let Some(total) = meta.total {
        return offset.saturating_add(raw_count) < total;
    }
    raw_count >= size
}

/// Whether a normalized call passes one canonical filter.
pub fn matches(call: &Call, filter: FilterName, f: &Filters) -> bool {
    let created = || {
        call.created_at
            .as_deref()
            .and_then(timestamp::parse_datetime)
    };
    match filter {
        FilterName::AgentId => call.agent.id.as_deref() == f.agent_id.as_deref(),
        FilterName::Status => f.status.is_empty() || f.status.contains(&call.status),
        FilterName::Channel => call.channel == f.channel,
        FilterName::Direction => call.direction == f.direction,
        FilterName::From => match (created(), &f.from) {
            (Some(t), Some(b)) => t >= b.instant,
            (_, None) => true,
            (None, Some(_)) => false,
        },
        FilterName::To => match (created(), &f.to) {
            (Some(t), Some(b)) => t < b.instant,
            (_, None) => true,
            (None, Some(_)) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_more_prefers_explicit_signals() {
        let m = |has_next, total, total_pages| ListMeta {
            has_next,
            total,
            total_pages,
        };
        assert!(!has_more(&m(Some(false), Some(100), None), 0, 10, 10));
        assert!(has_more(&m(None, None, Some(3)), 10, 10, 10));
        assert!(!has_more(&m(None, None, Some(2)), 10, 10, 10));
        assert!(!has_more(&m(None, Some(25), None), 20, 10, 5));
        assert!(has_more(&m(None, None, None), 0, 10, 10));
        assert!(!has_more(&m(None, None, None), 0, 10, 9));
        assert!(
            !has_more(&m(Some(true), None, None), 0, 10, 0),
            "an empty page ends the walk"
        );
    }
}
