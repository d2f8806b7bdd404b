//! List snapshots: one walk over a vendor without paging (Elemente) fetches the vendor's list
//! once. The first page of a walk keeps the answer — the body as received, and where each of
//! its records lies in it — under a fresh id that its next cursor carries; later pages of that
//! walk are cut from it without asking the vendor, so a walk costs O(N), not a full list per
//! page (O(N²)). The body is held once (the records are ranges into it, not copies).
//!
//! Snapshots are bounded in bytes (`cache.snapshot_max_bytes`) and live a short time
//! (`cache.snapshot_ttl_ms`); a cursor whose snapshot is gone (expired, evicted, another
//! replica) fetches the list again and goes on from its offset, as without snapshots.

use bytes::Bytes;
use moka::sync::Cache;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// A vendor's whole list answer, with its records located.
#[derive(Debug)]
pub struct Snapshot {
    /// The provider it is of (a cursor naming another provider's snapshot gets nothing).
    pub provider: String,
    body: Bytes,
    records: Vec<Range<usize>>,
    /// For a walk callgate filters itself: the records that pass, in order (the walk's offsets
    /// count these).
    selected: Option<Vec<u32>>,
}

impl Snapshot {
    /// Locates the records of the array at `keys` (plain object keys from the root; none: the
    /// root) in `body`. A single object there is one record (a vendor that answers one call
    /// where it documents a list). `None`: not JSON, or nothing list-like at `keys`.
    pub fn build(provider: &str, body: Bytes, keys: &[&str]) -> Option<Snapshot> {
        let mut at: &RawValue = serde_json::from_slice(&body).ok()?;
        for key in keys {
            let map: HashMap<&str, &RawValue> = serde_json::from_str(at.get()).ok()?;
            at = map.get(key)?;
        }
        let text = at.get();
        let items: Vec<&RawValue> = match text.trim_start().as_bytes().first() {
            Some(b'[') => {
                Vec::<&RawValue>::deserialize(&mut serde_json::Deserializer::from_str(text)).ok()?
            }
            Some(b'{') => vec![at],
            _ => return None,
        };
        let base = body.as_ptr() as usize;
        let records = items
            .iter()
            .map(|r| {
                let start = r.get().as_ptr() as usize - base;
                start..start + r.get().len()
            })
            .collect();
        Some(Snapshot {
            provider: provider.to_string(),
            body,
            records,
            selected: None,
        })
    }

    /// Every record's JSON, in order.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.records.iter().map(|r| &self.body[r.clone()])
    }

    /// The snapshot of a filtered walk: only the records at `indices` count.
    pub fn selecting(mut self, indices: Vec<u32>) -> Snapshot {
        self.selected = Some(indices);
        self
    }

    /// How many records the walk has: the list's, or those selected.
    pub fn len(&self) -> usize {
        self.selected.as_ref().map_or(self.records.len(), Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records `[start, end)` as a JSON array, nested under `keys` as the vendor nests it.
    pub fn window(&self, keys: &[&str], start: usize, end: usize) -> Vec<u8> {
        let end = end.min(self.len());
        let start = start.min(end);
        let picked: Vec<&Range<usize>> = match &self.selected {
            None => self.records[start..end].iter().collect(),
            Some(sel) => sel[start..end]
                .iter()
                .filter_map(|i| self.records.get(*i as usize))
                .collect(),
        };
        let mut out = Vec::new();
        for key in keys {
            out.push(b'{');
            // Keys are plain identifiers from the adapter; serde writes them as JSON strings.
            out.extend(serde_json::to_vec(key).unwrap_or_default());
            out.push(b':');
        }
        out.push(b'[');
        for (i, r) in picked.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.body[r.clone()]);
        }
        out.push(b']');
        out.extend(std::iter::repeat_n(b'}', keys.len()));
        out
    }

    fn weight(&self) -> u32 {
        let ranges = self.records.len() * std::mem::size_of::<Range<usize>>()
            + self.selected.as_ref().map_or(0, |s| s.len() * 4);
        u32::try_from(self.body.len() + ranges + 128).unwrap_or(u32::MAX)
    }
}

/// Where snapshots are kept: in this process, bounded in bytes, for a short time.
pub struct SnapshotStore {
    cache: Cache<u64, Arc<Snapshot>>,
}

impl SnapshotStore {
    pub fn new(max_bytes: u64, ttl: Duration) -> SnapshotStore {
        SnapshotStore {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_: &u64, s: &Arc<Snapshot>| s.weight())
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
        }
    }

    /// Keeps a snapshot; its id, for the cursor.
    pub fn keep(&self, snapshot: Snapshot) -> u64 {
        // Never 0 (no snapshot) — and unguessable enough not to collide across walks.
        let id = fastrand::u64(1..);
        self.cache.insert(id, Arc::new(snapshot));
        id
    }

    /// The snapshot `id` of `provider`, if still kept.
    pub fn get(&self, provider: &str, id: u64) -> Option<Arc<Snapshot>> {
        self.cache.get(&id).filter(|s| s.provider == provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_once_and_cut_without_copying_the_rest() {
        let body = Bytes::from_static(
            br#" [ {"id": "a"}, {"id": "b", "x": [1, {"y": "]"}]} ,{"id":"c"} ] "#,
        );
        let s = Snapshot::build("p", body, &[]).unwrap();
        assert_eq!(s.len(), 3);
        let page: serde_json::Value = serde_json::from_slice(&s.window(&[], 1, 5)).unwrap();
        assert_eq!(
            page,
            serde_json::json!([{"id": "b", "x": [1, {"y": "]"}]}, {"id": "c"}])
        );
        let nested =
            Bytes::from_static(br#"{"meta": 1, "data": {"calls": [{"id": 1}, {"id": 2}]}}"#);
        let s = Snapshot::build("p", nested, &["data", "calls"]).unwrap();
        let page: serde_json::Value =
            serde_json::from_slice(&s.window(&["data", "calls"], 0, 1)).unwrap();
        assert_eq!(page, serde_json::json!({"data": {"calls": [{"id": 1}]}}));
        // A filtered walk counts only its selection.
        let body = Bytes::from_static(br#"[{"id": 0}, {"id": 1}, {"id": 2}, {"id": 3}]"#);
        let s = Snapshot::build("p", body, &[])
            .unwrap()
            .selecting(vec![1, 3]);
        assert_eq!(s.len(), 2);
        let page: serde_json::Value = serde_json::from_slice(&s.window(&[], 1, 9)).unwrap();
        assert_eq!(page, serde_json::json!([{"id": 3}]));
        // One object where a list is documented is one record; anything else is no snapshot.
        assert_eq!(
            Snapshot::build("p", Bytes::from_static(br#"{"id": 1}"#), &[])
                .unwrap()
                .len(),
            1
        );
        assert!(Snapshot::build("p", Bytes::from_static(b"[1, "), &[]).is_none());
        assert!(Snapshot::build("p", Bytes::from_static(b"\"x\""), &[]).is_none());
    }

    #[test]
    fn a_snapshot_is_found_by_its_id_and_provider_only() {
        let store = SnapshotStore::new(1 << 20, Duration::from_secs(60));
        let s = Snapshot::build("p", Bytes::from_static(b"[{}]"), &[]).unwrap();
        let id = store.keep(s);
        assert!(store.get("p", id).is_some());
        assert!(store.get("q", id).is_none());
        assert!(store.get("p", id.wrapping_add(1)).is_none());
    }
}
