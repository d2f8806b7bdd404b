//! JSONPath expressions of adapter files, compiled once at load with jsonpath-rust.
//!
//! Almost every path an adapter uses is a plain walk (`$.data.calls`, `$.meta.total_count`,
//! `$.items[0]`); those run as a direct lookup in the borrowed answer tree ([`Json`]) with no
//! allocation. Anything richer (filters, wildcards, descendants) runs through jsonpath-rust's
//! compiled query, which works on `serde_json::Value`: the node is converted, queried, and each
//! match's normalized path (`$['data'][0]`) walked back in the borrowed tree. That costs a copy
//! of the node per lookup, paid only by adapters that use such paths (none of the shipped ones).

use super::Json;
use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json_borrow::ObjectAsVec;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Debug)]
enum Step {
    Key(Key),
    Index(i64),
}

/// A name to look up, and where it was found last time. A vendor writes every record of an
/// answer with its fields in one order, and the answer tree keeps that order, so one comparison
/// at the remembered position usually finds the field; a miss scans and remembers the new
/// position. The position is only a hint: a stale or foreign one costs one comparison, never a
/// wrong answer. Threads share it with relaxed atomics and write it only on a miss, so steady
/// traffic only reads it. A name that occurs twice in one object finds its first occurrence.
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

    fn find_in<'a, 'j>(&self, map: &'a ObjectAsVec<'j>) -> Option<&'a Json<'j>> {
        let hint = self.seen_at.load(Ordering::Relaxed);
        if let Some((name, value)) = map.get_key_value_at(hint) {
            if name == self.name {
                return Some(value);
            }
        }
        let (at, (_, value)) = map
            .iter()
            .enumerate()
            .find(|(_, (name, _))| *name == self.name)?;
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
    pub fn first<'a, 'j>(&self, root: &'a Json<'j>) -> Option<&'a Json<'j>> {
        match &self.plan {
            Plan::Walk(steps) => walk(root, steps),
            Plan::Query(q) => query(q, root).into_iter().next(),
        }
    }

    /// The nodes a list-valued path selects: when the path selects one array, its elements; one
    /// non-null value, that value; several nodes, those nodes; nothing or `null`, nothing.
    pub fn elements<'a, 'j>(&self, root: &'a Json<'j>) -> Vec<&'a Json<'j>> {
        let nodes: Vec<&Json> = match &self.plan {
            Plan::Walk(steps) => walk(root, steps).into_iter().collect(),
            Plan::Query(q) => query(q, root),
        };
        match nodes.as_slice() {
            [Json::Array(items)] => items.iter().collect(),
            [Json::Null] => Vec::new(),
            _ => nodes,
        }
    }
}

/// The nodes a jsonpath-rust query selects in `root`, in its order (see the module doc).
fn query<'a, 'j>(q: &JpQuery, root: &'a Json<'j>) -> Vec<&'a Json<'j>> {
    let owned = serde_json::Value::from(root);
    let Ok(found) = js_path_process(q, &owned) else {
        return Vec::new();
    };
    found
        .into_iter()
        .filter_map(|r| match JsonPath::compile(&r.path()).ok()?.plan {
            Plan::Walk(steps) => walk(root, &steps),
            Plan::Query(_) => None,
        })
        .collect()
}

fn walk<'a, 'j>(mut node: &'a Json<'j>, steps: &[Step]) -> Option<&'a Json<'j>> {
    for step in steps {
        node = match (step, node) {
            (Step::Key(key), Json::Object(map)) => key.find_in(map)?,
            (Step::Index(i), Json::Array(items)) => {
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
    use serde_json::{json, Value};

    fn doc() -> Value {
        json!({"data": {"calls": [{"id": 1, "tags": ["a"]}, {"id": 2}], "odd key": 5}, "n": null})
    }

    /// `path`'s first node in `doc`, as a `serde_json::Value` to compare.
    fn first(path: &JsonPath, doc: &Value) -> Option<Value> {
        path.first(&Json::from(doc)).map(Value::from)
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
            assert_eq!(
                first(&compiled, &d),
                expected.first().copied().cloned(),
                "{p}"
            );
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
        assert_eq!(first(&filtered, &d), Some(json!(2)));
        let many = JsonPath::compile("$.data.calls[*].id").unwrap();
        let d = Json::from(&d);
        let ids: Vec<Value> = many.elements(&d).into_iter().map(Value::from).collect();
        assert_eq!(
            ids,
            [json!(1), json!(2)],
            "query matches walked back in order"
        );
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
            assert_eq!(first(&path, &ordered), Some(json!("first")));
            assert_eq!(first(&path, &reordered), Some(json!("second")));
            assert_eq!(first(&path, &without), None);
            assert_eq!(first(&path, &wide), Some(json!("wide")));
            assert_eq!(first(&path.clone(), &ordered), Some(json!("first")));
        }
    }

    #[test]
    fn elements_flatten_one_array_and_skip_null() {
        let owned = doc();
        let d = Json::from(&owned);
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
    fn a_field_named_twice_is_read_by_its_first_occurrence() {
        let doc: Json = serde_json::from_str(r#"{"a": 1, "b": {"c": "x"}, "a": 2}"#).unwrap();
        let a = JsonPath::compile("$.a").unwrap();
        assert_eq!(a.first(&doc).map(Value::from), Some(json!(1)));
    }

    #[test]
    fn bad_paths_fail_to_compile_with_a_message() {
        let err = JsonPath::compile("$.data[").unwrap_err();
        assert!(!err.is_empty());
        assert!(JsonPath::compile("data.calls").is_err());
    }
}
