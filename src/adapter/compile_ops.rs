//! Compiling the operations of an adapter file (`[operations.*]`): endpoints and path templates,
//! list paging and filters, and write bodies. Part of [`super::compile`], split out by concern.

use super::compile::{compile_call_fields, Ctx};
use super::spec::*;
use super::*;
use crate::canonical::list_query::FilterName;
use std::collections::BTreeMap;

pub(super) fn template(cx: &mut Ctx, place: &str, path: &str) -> Option<PathTemplate> {
    if !path.starts_with('/') {
        cx.err(place, "must start with '/'");
        return None;
    }
    let mut pieces = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            cx.err(place, "unclosed '{'");
            return None;
        };
        if open > 0 {
            pieces.push(PathPiece::Literal(rest[..open].to_string()));
        }
        let name = &rest[open + 1..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            cx.err(
                place,
                format!("placeholder {{{name}}} must be letters, digits or '_'"),
            );
            return None;
        }
        pieces.push(PathPiece::Param(name.to_string()));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(PathPiece::Literal(rest.to_string()));
    }
    Some(PathTemplate { pieces })
}

pub(super) fn endpoint(cx: &mut Ctx, name: &str, op: &OperationSpec) -> Option<Endpoint> {
    let method = op.method.to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
        cx.err(
            format!("operations.{name}.method"),
            format!("unknown HTTP method {:?}", op.method),
        );
    }
    let path = template(cx, &format!("operations.{name}.path"), &op.path)?;
    Some(Endpoint {
        method,
        path,
        query: op
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

/// `[operations.list_calls.filtered]`: the endpoint and the fixed fields of its body.
fn filtered_list(cx: &mut Ctx, f: &super::spec::FilteredSpec) -> Option<super::FilteredList> {
    let place = "operations.list_calls.filtered";
    let method = f.method.to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH"].contains(&method.as_str()) {
        cx.err(
            format!("{place}.method"),
            format!("unknown HTTP method {:?}", f.method),
        );
    }
    let path = template(cx, &format!("{place}.path"), &f.path)?;
    let body = match f.body.as_ref().map(serde_json::to_value) {
        None => serde_json::Map::new(),
        Some(Ok(serde_json::Value::Object(m))) => m,
        Some(_) => {
            cx.err(format!("{place}.body"), "must be a table");
            return None;
        }
    };
    Some(super::FilteredList {
        endpoint: Endpoint {
            method,
            path,
            query: Vec::new(),
        },
        body,
    })
}

pub(super) fn compile_get(cx: &mut Ctx, op: &OperationSpec) -> Option<GetOperation> {
    let endpoint = endpoint(cx, "get_call", op)?;
    let item = cx.paths("operations.get_call.item", op.item.as_ref());
    if op.item.is_none() {
        cx.err(
            "operations.get_call.item",
            "required: where the call object sits in the answer (\"$\" for the whole body)",
        );
    }
    Some(GetOperation { endpoint, item })
}

pub(super) fn compile_list(
    cx: &mut Ctx,
    op: &OperationSpec,
    filter_values: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
) -> Option<ListOperation> {
    let endpoint = endpoint(cx, "list_calls", op)?;
    let filtered = op.filtered.as_ref().and_then(|f| filtered_list(cx, f));
    if op.items.is_none() {
        cx.err(
            "operations.list_calls.items",
            "required: where the call objects sit in the answer",
        );
    }
    let items = cx.paths("operations.list_calls.items", op.items.as_ref());
    let pagination = match &op.pagination {
        None => {
            cx.err(
                "operations.list_calls.pagination",
                "required (style = \"none\" or \"page\")",
            );
            return None;
        }
        Some(p) => {
            let place = "operations.list_calls.pagination";
            if p.style == PaginationStyle::Page
                && (p.page_param.is_none() || p.size_param.is_none())
            {
                cx.err(place, "style \"page\" needs page_param and size_param");
            }
            Pagination {
                style: p.style,
                page_param: p.page_param.clone().unwrap_or_default(),
                size_param: p.size_param.clone().unwrap_or_default(),
                first_page: p.first_page,
                max_size: p.max_size.unwrap_or(100).clamp(1, 100),
                has_next: cx.paths(&format!("{place}.has_next"), p.has_next.as_ref()),
                total: cx.paths(&format!("{place}.total"), p.total.as_ref()),
                total_pages: cx.paths(&format!("{place}.total_pages"), p.total_pages.as_ref()),
            }
        }
    };
    let path_params: Vec<String> = endpoint.path.params().map(str::to_string).collect();
    let mut filters = Vec::new();
    for (name, spec) in &op.filters {
        let place = format!("operations.list_calls.filters.{name}");
        let Some(filter) = FilterName::parse(name) else {
            cx.err(
                place,
                "unknown canonical filter (known: agentId, status, channel, direction, from, to)",
            );
            continue;
        };
        let table = match spec {
            FilterSpec::Word(w) if w == "local" => FilterTable {
                local: true,
                ..Default::default()
            },
            FilterSpec::Word(w) => {
                cx.err(
                    place,
                    format!("{w:?} is not a filter rule; write \"local\" or a table"),
                );
                continue;
            }
            FilterSpec::Table(t) => FilterTable {
                query: t.query.clone(),
                path_param: t.path_param.clone(),
                body: t.body.clone(),
                values: t.values.clone(),
                format: t.format,
                local: t.local,
            },
        };
        if table.query.is_none()
            && table.path_param.is_none()
            && table.body.is_none()
            && !table.local
        {
            cx.err(
                &place,
                "does nothing: give query, path_param, body or local = true",
            );
        }
        if table.body.is_some() && op.filtered.is_none() {
            cx.err(
                &place,
                "body filters need [operations.list_calls.filtered] (the request they go into)",
            );
        }
        let values = match &table.values {
            None => None,
            Some(name) => match filter_values.get(name) {
                Some(map) => Some(map.clone()),
                None => {
                    cx.err(
                        &place,
                        format!("values {name:?} is not defined in [filter_values]"),
                    );
                    None
                }
            },
        };
        if let Some(pp) = &table.path_param {
            if !path_params.contains(pp) {
                cx.err(
                    &place,
                    format!("path_param {pp:?} is not a placeholder of operations.list_calls.path"),
                );
            }
        }
        let format = table.format.unwrap_or(FilterFormat::Value);
        if format == FilterFormat::Date && !matches!(filter, FilterName::From | FilterName::To) {
            cx.err(&place, "format \"date\" applies only to from and to");
        }
        filters.push((
            filter,
            FilterRule {
                query: table.query,
                path_param: table.path_param,
                body: table
                    .body
                    .map(|b| b.split('.').map(str::to_string).collect()),
                values,
                format,
                local: table.local,
            },
        ));
    }
    for pp in &path_params {
        if !filters
            .iter()
            .any(|(_, f)| f.path_param.as_deref() == Some(pp.as_str()))
        {
            cx.err(
                "operations.list_calls.path",
                format!("placeholder {{{pp}}} is not filled by any filter's path_param"),
            );
        }
    }
    Some(ListOperation {
        endpoint,
        filtered,
        items,
        pagination,
        filters,
    })
}

/// Request values a write's answer rules may read with `param` (besides path placeholders).
pub(super) const WRITE_PARAMS: [&str; 6] =
    ["request_id", "to", "from", "agent_id", "test", "channel"];

pub(super) fn compile_write(
    cx: &mut Ctx,
    name: &str,
    op: &OperationSpec,
    spec: &AdapterSpec,
) -> Option<WriteOperation> {
    let endpoint = endpoint(cx, name, op)?;
    let place = format!("operations.{name}");
    // The canonical request fields of writes that templates and `require` may name.
    let known: &[&str] = if name == "create_call" {
        &crate::canonical::write::CREATE_FIELDS
    } else {
        &crate::canonical::write::UPDATE_FIELDS
    };
    let mut accepts = Vec::new();
    let mut path_params = Vec::new();
    for (param, path) in &op.path_params {
        if !endpoint.path.params().any(|p| p == param) {
            cx.err(
                format!("{place}.path_params.{param}"),
                "not a placeholder of the path",
            );
        }
        if let Some(p) = cx.path(&format!("{place}.path_params.{param}"), path) {
            accepts.push(super::template::canonical_field(path));
            path_params.push((param.clone(), p));
        }
    }
    if name == "create_call" {
        for p in endpoint.path.params() {
            if !op.path_params.contains_key(p) {
                cx.err(
                    format!("{place}.path"),
                    format!("placeholder {{{p}}} is not filled by path_params"),
                );
            }
        }
    }
    let body = match &op.body {
        None => None,
        Some(b) => match super::template::compile(b, &spec.outbound_maps) {
            Ok(t) => {
                t.fields(&mut accepts);
                Some(t)
            }
            Err(e) => {
                cx.err(format!("{place}.body"), e);
                None
            }
        },
    };
    for f in accepts.iter().chain(op.require.iter()) {
        if !known.contains(&f.as_str()) {
            cx.err(
                place.clone(),
                format!(
                    "{f:?} is not a field of the canonical request (known: {})",
                    known.join(", ")
                ),
            );
        }
    }
    if let Some(channels) = &op.channels {
        for c in channels {
            if crate::canonical::Channel::parse(c).is_none() {
                cx.err(
                    format!("{place}.channels"),
                    format!("{c:?} is not a canonical channel"),
                );
            }
        }
    }
    if op.item.is_none() {
        cx.err(
            format!("{place}.item"),
            "required: where the call sits in the answer (\"$\" for the whole body)",
        );
    }
    let item = cx.paths(&format!("{place}.item"), op.item.as_ref());
    let mut merged = spec.fields.clone();
    merged.extend(op.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    let call = compile_call_fields(cx, &merged, &format!("{place}.fields"));
    Some(WriteOperation {
        endpoint,
        path_params,
        body,
        item,
        idempotency_header: op.idempotency_header.clone(),
        require: op.require.clone(),
        channels: op.channels.clone(),
        accepts,
        call,
    })
}
