//! Vendor request bodies as data: an adapter's `body` is the vendor's JSON written as TOML, where
//! a string `"$.path"` takes a value from the canonical request (keeping its JSON type) and a
//! table with `"$path"` takes one through a directive:
//! `{ "$path" = "$.status", "$map" = "status" }` (an outbound map: canonical → vendor value) or
//! `{ "$path" = "$.customer.fields", "$transform" = "entries" }` (`{k: v}` → `[{name, value}]`).
//! A reference that finds nothing is left out of the body. Strings that merely contain `$` or
//! `{{…}}` are literal. `$$` at the start of a string escapes a literal `$`.

use super::path::JsonPath;
use super::Json;
use crate::canonical::{ErrorCode, Problem};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Ref(Reference),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub path: JsonPath,
    /// The canonical field it reads ([`canonical_field`]), for "which fields can this vendor take".
    pub field: String,
    pub map: Option<(String, BTreeMap<String, String>)>,
    pub entries: bool,
}

/// Compiles a TOML template; `maps` are the adapter's outbound maps.
pub fn compile(
    v: &toml::Value,
    maps: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Template, String> {
    Ok(match v {
        toml::Value::String(s) if s.starts_with("$$") => {
            Template::Literal(Value::String(s[1..].to_string()))
        }
        toml::Value::String(s) if s.starts_with("$.") || s == "$" => {
            Template::Ref(reference(s, None, false)?)
        }
        toml::Value::Table(t) if t.contains_key("$path") => {
            let path = t
                .get("$path")
                .and_then(|p| p.as_str())
                .ok_or("\"$path\" must be a string")?;
            for k in t.keys() {
                if !["$path", "$map", "$transform"].contains(&k.as_str()) {
                    return Err(format!(
                        "unknown directive {k:?} (known: $path, $map, $transform)"
                    ));
                }
            }
            let map = match t.get("$map").map(|m| m.as_str()) {
                None => None,
                Some(Some(name)) => Some((
                    name.to_string(),
                    maps.get(name).cloned().ok_or_else(|| {
                        format!("outbound map {name:?} is not defined in [outbound_maps]")
                    })?,
                )),
                Some(None) => return Err("\"$map\" must be a string".into()),
            };
            let entries = match t.get("$transform").map(|m| m.as_str()) {
                None => false,
                Some(Some("entries")) => true,
                Some(other) => {
                    return Err(format!("unknown $transform {other:?} (known: entries)"))
                }
            };
            Template::Ref(reference(path, map, entries)?)
        }
        toml::Value::Table(t) => Template::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), compile(v, maps)?)))
                .collect::<Result<_, String>>()?,
        ),
        toml::Value::Array(a) => Template::Array(
            a.iter()
                .map(|v| compile(v, maps))
                .collect::<Result<_, _>>()?,
        ),
        other => Template::Literal(serde_json::to_value(other).map_err(|e| e.to_string())?),
    })
}

fn reference(
    path: &str,
    map: Option<(String, BTreeMap<String, String>)>,
    entries: bool,
) -> Result<Reference, String> {
    let compiled =
        JsonPath::compile(path).map_err(|e| format!("JSONPath {path:?} does not compile: {e}"))?;
    let field = canonical_field(path);
    Ok(Reference {
        path: compiled,
        field,
        map,
        entries,
    })
}

/// The canonical field a JSONPath into the request reads, as a dotted path of
/// [`crate::canonical::write::CREATE_FIELDS`]: `$.customer.name` → `customer.name`,
/// `$.customer.fields` → `customer.fields`, `$.metadata.x` → `metadata`, `$.customer` → `customer`.
pub fn canonical_field(path: &str) -> String {
    let mut segments = path.trim_start_matches("$.").split(['.', '[']);
    let first = segments.next().unwrap_or_default();
    match (first, segments.next()) {
        ("customer", Some(member)) if !member.is_empty() => format!("customer.{member}"),
        _ => first.to_string(),
    }
}

impl Template {
    /// Every canonical field the template reads.
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Template::Literal(_) => {}
            Template::Ref(r) => {
                if !out.contains(&r.field) {
                    out.push(r.field.clone());
                }
            }
            Template::Object(items) => items.iter().for_each(|(_, t)| t.fields(out)),
            Template::Array(items) => items.iter().for_each(|t| t.fields(out)),
        }
    }

    /// Renders the vendor body from the canonical request (read as a [`Json`] tree); `None`
    /// when nothing was found.
    pub fn render(&self, request: &Json) -> Result<Option<Value>, Problem> {
        Ok(match self {
            Template::Literal(v) => Some(v.clone()),
            Template::Ref(r) => match r.path.first(request).filter(|v| !v.is_null()) {
                None => None,
                Some(v) => Some(r.apply(v)?),
            },
            Template::Object(items) => {
                let mut out = Map::new();
                for (k, t) in items {
                    if let Some(v) = t.render(request)? {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Value::Object(out))
            }
            Template::Array(items) => {
                let mut out = Vec::new();
                for t in items {
                    if let Some(v) = t.render(request)? {
                        out.push(v);
                    }
                }
                Some(Value::Array(out))
            }
        })
    }
}

impl Reference {
    fn apply(&self, v: &Json) -> Result<Value, Problem> {
        if let Some((name, map)) = &self.map {
            let key = v.as_str().unwrap_or_default();
            return map.get(key).map(|s| Value::String(s.clone())).ok_or_else(|| {
                let known: Vec<&str> = map.keys().map(String::as_str).collect();
                Problem::field(
                    ErrorCode::InvalidRequest,
                    &self.field,
                    format!("{key:?} cannot be expressed by this provider (map {name}); it takes {}", known.join(", ")),
                )
            });
        }
        if self.entries {
            let entries = v
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| serde_json::json!({"name": k, "value": Value::from(v)}))
                        .collect()
                })
                .unwrap_or_default();
            return Ok(Value::Array(entries));
        }
        Ok(Value::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tpl(src: &str) -> Template {
        let v: toml::Value = toml::from_str(src).unwrap();
        let maps = BTreeMap::from([(
            "status".to_string(),
            BTreeMap::from([("completed".to_string(), "ENDED".to_string())]),
        )]);
        compile(&v, &maps).unwrap()
    }

    #[test]
    fn renders_references_keeping_types_and_leaving_out_what_is_missing() {
        let t = tpl(r#"
            to = "$.to"
            literal = "Hello {{Order ID}} $5"
            dollar = "$$.not.a.path"
            nested = { test = "$.test", missing = "$.nope" }
            custom = { "$path" = "$.customer.fields", "$transform" = "entries" }
            status = { "$path" = "$.status", "$map" = "status" }
        "#);
        let req = json!({"to": "+14155550100", "test": true, "status": "completed", "customer": {"fields": {"Order ID": "12345", "Amount": 150.75}}});
        let out = t.render(&Json::from(&req)).unwrap().unwrap();
        assert_eq!(out["to"], "+14155550100");
        assert_eq!(out["literal"], "Hello {{Order ID}} $5");
        assert_eq!(out["dollar"], "$.not.a.path");
        assert_eq!(out["nested"], json!({"test": true}));
        assert_eq!(
            out["custom"],
            json!([{"name": "Order ID", "value": "12345"}, {"name": "Amount", "value": 150.75}]),
            "the client's order, types kept"
        );
        assert_eq!(out["status"], "ENDED");
        let mut fields = Vec::new();
        t.fields(&mut fields);
        fields.sort();
        assert_eq!(
            fields,
            vec!["customer.fields", "nope", "status", "test", "to"]
        );
    }

    #[test]
    fn an_unmappable_value_is_a_problem_naming_the_field() {
        let t = tpl(r#"status = { "$path" = "$.status", "$map" = "status" }"#);
        let p = t
            .render(&Json::from(&json!({"status": "busy"})))
            .unwrap_err();
        assert_eq!(p.errors[0].field, "status");
    }
}
