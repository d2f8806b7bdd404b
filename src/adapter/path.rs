//! JSONPath expressions of adapter files, compiled once at load with jsonpath-rust.
//!
//! Almost every path an adapter uses is a plain walk (`$.data.calls`, `$.meta.total_count`,
//! `$.items[0]`); those run as a direct lookup with no allocation. Anything richer (filters,
//! wildcards, descendants) runs through jsonpath-rust's compiled query.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Debug)]
enum Step {
    Key(Key),
    Index(i64),
}

/// A name to look up, and where it was found last time. A vendor writes every record of an
/// answer with its fields in one order, and `serde_json`'s `preserve_order` map keeps that order,
/// so one comparison at the remembered position usually finds the field; a miss scans and
/// remembers the new position. The position is only a hint: a stale or foreign one costs one
/// comparison, never a wrong answer. Threads share it with relaxed atomics and write it only on a
/// miss, so steady traffic only reads it.
#[derive(Debug)]
struct Key {
    name: String,
    seen_at: AtomicUsize,
}

impl Clone for Key {
    fn clone(&self) -> Key {
        Key {
            name: self.name.clone(),
            seen_at: AtomicUsize::new(self.seen_at.load(Ordering::Relaxed)),
        }
    }
}

impl Key {
    fn new(name: &str) -> Key {
        Key {
            name: name.to_string(),
            seen_at: AtomicUsize::new(0),
        }
    }

    fn find_in<'a>(&self, map: &'a Map<String, Value>) -> Option<&'a Value> {
        let hint = self.seen_at.load(Ordering::Relaxed);
        if let Some((name, value)) = map.iter().nth(hint) {
            if *name == self.name {
                return Some(value);
            }
        }
        if map.len() > SCAN_UP_TO {
            return map.get(&self.name);
        }
        let (at, (_, value)) = map
            .iter()
            .enumerate()
            .find(|(_, (name, _))| **name == self.name)?;
        self.seen_at.store(at, Ordering::Relaxed);
        Some(value)
    }
}

#[derive(Clone, Debug)]
enum Plan {
    /// A walk of names and indexes; `$` alone is an empty walk.
    Walk(Vec<Step>),
    Query(JpQuery),
}

/// A compiled JSONPath.
#[derive(Clone, Debug)]
pub struct JsonPath {
    source: String,
    plan: Plan,
}

impl JsonPath {
    /// Compiles `source`; the error is jsonpath-rust's own message.
    pub fn compile(source: &str) -> Result<JsonPath, String> {
        let query = parse_json_path(source).map_err(|e| e.to_string())?;
        let walk: Option<Vec<Step>> = query
            .segments
            .iter()
            .map(|seg| match seg {
                Segment::Selector(Selector::Name(n)) => Some(Step::Key(Key::new(n))),
                Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
                _ => None,
            })
            .collect();
        let plan = match walk {
            Some(steps) => Plan::Walk(steps),
            None => Plan::Query(query),
        };
        Ok(JsonPath {
            source: source.to_string(),
            plan,
        })
    }

    /// The names this path walks, when it is a walk of names only (`$` → `[]`,
    /// `$.data.calls` → `["data", "calls"]`; `$.items[0]` or a filter → `None`).
    pub fn plain_keys(&self) -> Option<Vec<&str>> {
        match &self.plan {
            Plan::Walk(steps) => steps
                .iter()
                .map(|s| match s {
                    Step::Key(k) => Some(k.name.as_str()),
                    Step::Index(_) => None,
                })
                .collect(),
            Plan::Query(_) => None,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first node the path selects, if any.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        match &self.plan {
            Plan::Walk(steps) => walk(root, steps),
            Plan::Query(q) => js_path_process(q, root)
                .ok()
                .and_then(|nodes| nodes.into_iter().next().map(|n| n.val())),
        }
    }

    /// The nodes a list-valued path selects: when the path selects one array, its elements; one
    /// non-null value, that value; several nodes, those nodes; nothing or `null`, nothing.
    pub fn elements<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let nodes: Vec<&Value> = match &self.plan {
            Plan::Walk(steps) => walk(root, steps).into_iter().collect(),
            Plan::Query(q) => js_path_process(q, root)
                .map(|nodes| nodes.into_iter().map(|n| n.val()).collect())
                .unwrap_or_default(),
        };
        match nodes.as_slice() {
            [Value::Array(items)] => items.iter().collect(),
            [Value::Null] => Vec::new(),
            _ => nodes,
        }
    }
}

/// Objects up to this many fields are searched by comparing names, not by hashing the name:
/// `serde_json`'s ordered map hashes with SipHash, which costs more than a few length-first
/// string comparisons (measured on the adapters' call records, ~15–30 fields).
const SCAN_UP_TO: usize = 32;

fn walk<'a>(mut node: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    for step in steps {
        node = match (step, node) {
            (Step::Key(key), Value::Object(map)) => key.find_in(map)?,
            (Step::Index(i), Value::Array(items)) => {
                let idx = if *i < 0 {
                    items.len().checked_sub(i.unsigned_abs() as usize)?
                } else {
                    *i as usize
                };
                items.get(idx)?
            }
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"data": {"calls": [{"id": 1, "tags": ["a"]}, {"id": 2}], "odd key": 5}, "n": null})
    }

    #[test]
    fn walk_and_query_agree_with_jsonpath_rust() {
        let d = doc();
        for p in [
            "$.data.calls[1].id",
            "$.data['odd key']",
            "$.data.calls[-1].id",
            "$",
        ] {
            let compiled = JsonPath::compile(p).unwrap();
            assert!(
                matches!(compiled.plan, Plan::Walk(_)),
                "{p} should take the fast path"
            );
            let expected = jsonpath_rust::query::js_path_vals(p, &d).unwrap();
            assert_eq!(compiled.first(&d), expected.first().copied(), "{p}");
        }
        let keys = |p: &str| {
            JsonPath::compile(p)
                .unwrap()
                .plain_keys()
                .map(|k| k.join("."))
        };
        assert_eq!(keys("$.data.calls").as_deref(), Some("data.calls"));
        assert_eq!(keys("$").as_deref(), Some(""));
        assert_eq!(keys("$.items[0]"), None);
        let filtered = JsonPath::compile("$.data.calls[?@.id > 1].id").unwrap();
        assert!(matches!(filtered.plan, Plan::Query(_)));
        assert_eq!(filtered.first(&d), Some(&json!(2)));
    }

    #[test]
    fn a_remembered_position_never_gives_a_wrong_answer() {
        let path = JsonPath::compile("$.b.c").unwrap();
        let ordered = json!({"a": 1, "b": {"x": 0, "c": "first"}});
        let reordered = json!({"b": {"c": "second"}, "a": 2});
        let without = json!({"a": 1, "b": {"x": 0, "y": "c"}});
        let wide: Value = (0..40)
            .map(|i| (format!("k{i}"), json!(i)))
            .chain([("b".to_string(), json!({"c": "wide"}))])
            .collect::<serde_json::Map<_, _>>()
            .into();
        for _ in 0..3 {
            assert_eq!(path.first(&ordered), Some(&json!("first")));
            assert_eq!(path.first(&reordered), Some(&json!("second")));
            assert_eq!(path.first(&without), None);
            assert_eq!(path.first(&wide), Some(&json!("wide")));
            assert_eq!(path.clone().first(&ordered), Some(&json!("first")));
        }
    }

    #[test]
    fn elements_flatten_one_array_and_skip_null() {
        let d = doc();
        assert_eq!(
            JsonPath::compile("$.data.calls")
                .unwrap()
                .elements(&d)
                .len(),
            2
        );
        assert_eq!(
            JsonPath::compile("$.data.calls[*].id")
                .unwrap()
                .elements(&d)
                .len(),
            2
        );
        assert_eq!(
            JsonPath::compile("$.data.calls[0]")
                .unwrap()
                .elements(&d)
                .len(),
            1
        );
        assert!(JsonPath::compile("$.n").unwrap().elements(&d).is_empty());
        assert!(JsonPath::compile("$.missing")
            .unwrap()
            .elements(&d)
            .is_empty());
    }

    #[test]
    fn bad_paths_fail_to_compile_with_a_message() {
        let err = JsonPath::compile("$.data[").unwrap_err();
        assert!(!err.is_empty());
        assert!(JsonPath::compile("data.calls").is_err());
    }
}
