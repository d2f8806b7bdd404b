//! Reading only the page of an unpaged vendor list.
//!
//! A vendor without paging (Elemente) answers every list request with all its calls; callgate
//! cuts the page out itself. Building a `serde_json::Value` for each of hundreds of records only
//! to keep twenty was the largest cost of such a page (a 300-record answer is ~250 KB). Here the
//! answer is parsed once, in one pass: every field outside the item array, and the items of the
//! page, become values as usual; the other items are checked (valid JSON, an object) and
//! skipped without being built, and counted for the page's `totalCount`.
//!
//! Used only where the page is known before the answer is read: an unpaged list, no filter
//! callgate applies itself, one plain item path (`$`, `$.data`, …). Anything else (or an answer
//! of another shape, which then fails or succeeds exactly as a whole parse would) is parsed whole.
//! A skipped record is still checked to be JSON, UTF-8 and an object, so a page is never served
//! from an answer the whole parse would refuse. An envelope field name written with escapes
//! (`"da\u0074a"`) cannot be borrowed from the answer, so such an answer is parsed whole.

use super::listing::ListBody;
use super::plan::ListPlan;
use super::{Adapter, Json};
use crate::canonical::Problem;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json_borrow::ObjectAsVec;
use std::cell::Cell;
use std::fmt;

/// Which items of the array at `keys` to build.
#[derive(Debug, Clone, Copy)]
struct Window<'a> {
    keys: &'a [&'a str],
    start: usize,
    end: usize,
}

impl Adapter {
    /// [`Adapter::read_answer`] for a list page: for a 2xx answer of an unpaged list that
    /// callgate does not filter, only the page's items are built (the [`ListBody`] then says
    /// how many there were in all).
    pub fn read_list_answer<'j>(
        &self,
        plan: &ListPlan,
        provider: &str,
        status: u16,
        retry_after: Option<&str>,
        body: &'j [u8],
    ) -> Result<ListBody<'j>, Problem> {
        // Cheapest test first: a paged or filtered list never builds the key list.
        let window = plan.window().filter(|_| (200..300).contains(&status));
        let keys = match (window, self.list.as_ref().map(|l| l.items.as_slice())) {
            (Some(_), Some([items])) => items.plain_keys(),
            _ => None,
        };
        if let (Some((start, end)), Some(keys)) = (window, keys) {
            let window = Window {
                keys: &keys,
                start,
                end,
            };
            if let Some((value, total)) = window.parse(body) {
                let value = self.judge_answer(provider, status, retry_after, Some(value))?;
                return Ok(ListBody::windowed(value, total));
            }
        }
        self.read_answer(provider, status, retry_after, body)
            .map(ListBody::whole)
    }
}

impl Adapter {
    /// The plain keys of the list's one item path (`$` → none, `$.data` → `data`), when an
    /// answer's records can be located without evaluating JSONPath (see [`Window`]).
    pub fn list_item_keys(&self) -> Option<Vec<&str>> {
        match self.list.as_ref().map(|l| l.items.as_slice()) {
            Some([items]) => items.plain_keys(),
            _ => None,
        }
    }

    /// A page cut from a list snapshot (`bytes`: the page's records nested as the vendor nests
    /// them; `total`: how many records the whole list has), read as a windowed answer.
    pub fn snapshot_list_body<'j>(&self, bytes: &'j [u8], total: usize) -> Option<ListBody<'j>> {
        let value: Json<'j> = serde_json::from_slice(bytes).ok()?;
        Some(ListBody::windowed(value, total))
    }
}

impl Window<'_> {
    /// The answer with only the window's items in the item array, and the number of items the
    /// array had; `None` when `bytes` is not JSON or has no array at the item path.
    fn parse<'j>(self, bytes: &'j [u8]) -> Option<(Json<'j>, usize)> {
        let total = Cell::new(None);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = At {
            window: self,
            depth: 0,
            total: &total,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        Some((value, total.get()?))
    }
}

/// Deserializes the value at `window.keys[depth..]` below the current one.
struct At<'w, 'a> {
    window: Window<'a>,
    depth: usize,
    total: &'w Cell<Option<usize>>,
}

impl<'de> DeserializeSeed<'de> for At<'_, '_> {
    type Value = Json<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        if self.depth == self.window.keys.len() {
            d.deserialize_seq(self)
        } else {
            d.deserialize_map(self)
        }
    }
}

impl<'de> Visitor<'de> for At<'_, '_> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.depth == self.window.keys.len() {
            f.write_str("an array of calls")
        } else {
            f.write_str("an object")
        }
    }

    /// The envelope on the way to the items: every field a value, the one on the path windowed.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut out: Vec<(&'de str, Json<'de>)> = Vec::new();
        // A name with escapes cannot be borrowed: the error sends the answer to a whole parse.
        while let Some(key) = map.next_key::<&'de str>()? {
            let value = if key == self.window.keys[self.depth] {
                map.next_value_seed(At {
                    window: self.window,
                    depth: self.depth + 1,
                    total: self.total,
                })?
            } else {
                map.next_value::<Json<'de>>()?
            };
            out.push((key, value));
        }
        Ok(Json::Object(ObjectAsVec::from(out)))
    }

    /// The item array: the window's items built, the others checked and counted.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let Window { start, end, .. } = self.window;
        let mut kept = Vec::with_capacity(end.saturating_sub(start).min(1024));
        let mut n = 0usize;
        loop {
            let more = if (start..end).contains(&n) {
                seq.next_element::<Json<'de>>()?
                    .map(|v| kept.push(v))
                    .is_some()
            } else {
                seq.next_element_seed(SkipObject)?.is_some()
            };
            if !more {
                break;
            }
            n += 1;
        }
        self.total.set(Some(n));
        Ok(Json::Array(kept))
    }
}

/// A skipped item: it must be an object (as a whole parse would insist), but nothing is built.
/// serde_json skips it as a [`RawValue`] (checked JSON and UTF-8, its bytes borrowed, no field
/// visited one by one: about half the time of walking its fields with `IgnoredAny`), and the
/// first byte says whether it is an object. A non-object fails the windowed parse, and the
/// whole parse then reports it.
struct SkipObject;

impl<'de> DeserializeSeed<'de> for SkipObject {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        if raw.get().starts_with('{') {
            Ok(())
        } else {
            Err(de::Error::invalid_type(
                de::Unexpected::Other("a non-object item"),
                &"a call object",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn window<'a>(keys: &'a [&'a str], start: usize, end: usize) -> Window<'a> {
        Window { keys, start, end }
    }

    /// The windowed parse of `body`, as a `serde_json::Value` to compare.
    fn parse(w: Window, body: &[u8]) -> Option<(Value, usize)> {
        w.parse(body).map(|(v, n)| (Value::from(v), n))
    }

    #[test]
    fn a_bare_array_keeps_only_the_window_and_counts_all() {
        let body = br#"[{"id":1},{"id":2,"x":[1,{"y":"z"}]},{"id":3},{"id":4}]"#;
        let none: &[&str] = &[];
        let (v, total) = parse(window(none, 1, 3), body).unwrap();
        assert_eq!(v, serde_json::json!([{"id":2,"x":[1,{"y":"z"}]},{"id":3}]));
        assert_eq!(total, 4);
        let (v, total) = parse(window(none, 3, 10), body).unwrap();
        assert_eq!(v, serde_json::json!([{"id":4}]));
        assert_eq!(total, 4);
        let (v, _) = parse(window(none, 9, 12), body).unwrap();
        assert_eq!(v, serde_json::json!([]));
    }

    #[test]
    fn an_envelope_keeps_every_other_field() {
        let body =
            br#"{"meta":{"total":3},"data":{"calls":[{"a":1},{"a":2},{"a":3}],"n":3},"ok":true}"#;
        let (v, total) = parse(window(&["data", "calls"], 0, 1), body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"meta":{"total":3},"data":{"calls":[{"a":1}],"n":3},"ok":true})
        );
        assert_eq!(total, 3);
    }

    #[test]
    fn other_shapes_and_bad_json_are_left_to_the_whole_parse() {
        let k: &[&str] = &["data"];
        let none: &[&str] = &[];
        for (keys, body) in [
            (none, &br#"{"data":[]}"#[..]),
            (k, br#"{"other":[]}"#),
            (k, br#"{"data":{"a":1}}"#),
            (k, br#"[{"a":1}]"#),
            (none, br#"[{"a":1},2]"#),
            (none, br#"[{"a":1},{"b":]"#),
            (none, b"[{\"a\":1},{\"b\":\"\xff\"}]"),
            (none, br#"[{"a":1}] trailing"#),
            (none, b"not json"),
            (k, br#"{"d\u0061ta":[{"a":1}]}"#),
        ] {
            assert!(
                parse(window(keys, 0, 1), body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn windowed_and_whole_parses_agree_on_every_window() {
        let items: Vec<Value> = (0..25)
            .map(|i| serde_json::json!({"id": i, "s": format!("é\"{i}"), "n": [i, null, 1.5]}))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({"data": items})).unwrap();
        let k: &[&str] = &["data"];
        for start in 0..27 {
            for len in [0, 1, 7, 20, 30] {
                let (v, total) = parse(window(k, start, start + len), &body).unwrap();
                let want: Vec<Value> = items.iter().skip(start).take(len).cloned().collect();
                assert_eq!(v, serde_json::json!({ "data": want }));
                assert_eq!(total, 25);
            }
        }
    }
}
