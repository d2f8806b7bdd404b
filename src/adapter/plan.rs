//! Request planning: a canonical request → the exact vendor request (method, path, query, body).
//!
//! Pure: no credentials (the provider adds its auth headers), no network. `explain` and the
//! exchange both use these plans, so what `explain` prints is what is sent.

use super::fit::{self, FitFor};
use super::rules::Params;
use super::spec::{FilterFormat, PaginationStyle};
use super::{Adapter, Endpoint, PathPiece};
use crate::canonical::cursor::Position;
use crate::canonical::handling::{Handling, Warning};
use crate::canonical::list_query::{FilterName, ListQuery, TimeBound};
use crate::canonical::timestamp;
use crate::canonical::write::{CreateCall, UpdateCall};
use crate::canonical::{ErrorCode, Problem};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A vendor request without credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorRequest {
    pub method: String,
    /// Path and query, relative to the provider's base URL.
    pub path_and_query: String,
    pub body: Option<Vec<u8>>,
    /// Headers beyond the provider's auth and callgate's own (e.g. the idempotency key).
    pub headers: Vec<(String, String)>,
}

impl VendorRequest {
    /// The value of one of the request's own headers (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A planned list page: the request, and what callgate must do with the answer.
#[derive(Clone, Debug)]
pub struct ListPlan {
    pub request: VendorRequest,
    /// Path parameters, for normalization (e.g. the agent of an agent-scoped list).
    pub params: Vec<(String, String)>,
    /// Filters callgate applies itself after normalization.
    pub local: Vec<FilterName>,
    pub style: PaginationStyle,
    pub offset: u64,
    pub size: u32,
}

impl Adapter {
    /// Plans `get_call` for the id parts after the provider (already checked to be the right
    /// number by the caller via [`Adapter::id_params`]).
    pub fn plan_get(&self, params: &[(String, String)]) -> Result<VendorRequest, Problem> {
        let get = self
            .get
            .as_ref()
            .ok_or_else(|| unsupported(&self.vendor, "get_call"))?;
        build(&get.endpoint, Params(params), Vec::new(), &|_| "id".into())
    }

    /// Pairs an id's parts with the adapter's id params, or explains what is wrong with the id.
    pub fn id_params(&self, parts: Vec<String>) -> Result<Vec<(String, String)>, Problem> {
        if parts.len() != self.id_parts.len() {
            let shape: Vec<&str> = self.id_parts.iter().map(|p| p.param.as_str()).collect();
            return Err(Problem::field(
                ErrorCode::InvalidRequest,
                "id",
                format!(
                    "ids of this provider look like \"<provider>:{}\"",
                    shape.join(":")
                ),
            ));
        }
        Ok(self
            .id_parts
            .iter()
            .map(|p| p.param.clone())
            .zip(parts)
            .collect())
    }

    /// Whether this vendor lists calls per agent (the agent is a path parameter of its list).
    pub fn lists_per_agent(&self) -> bool {
        self.list.as_ref().is_some_and(|l| {
            l.filters
                .iter()
                .any(|(name, rule)| *name == FilterName::AgentId && rule.path_param.is_some())
        })
    }

    /// The page size a walk over this vendor uses for a requested limit.
    pub fn page_size(&self, limit: u32) -> u32 {
        let max = self.list.as_ref().map_or(100, |l| l.pagination.max_size);
        limit.clamp(1, max)
    }

    /// Plans one page of `list_calls`.
    pub fn plan_list(&self, q: &ListQuery, at: &Position) -> Result<ListPlan, Problem> {
        let list = self
            .list
            .as_ref()
            .ok_or_else(|| unsupported(&self.vendor, "list_calls"))?;
        let f = &q.filters;
        let mut params = Vec::new();
        let mut query = Vec::new();
        let mut local = Vec::new();
        let mut criteria: Vec<(Vec<String>, serde_json::Value)> = Vec::new();
        for name in f.present() {
            let Some(rule) = list.filter(name) else {
                return Err(Problem::field(
                    ErrorCode::UnsupportedFilter,
                    name.name(),
                    format!(
                        "provider {:?} ({}) cannot filter by {}",
                        at.provider,
                        self.vendor,
                        name.name()
                    ),
                ));
            };
            let value = match name {
                FilterName::AgentId => f.agent_id.clone().unwrap_or_default(),
                FilterName::Status => f
                    .status
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(","),
                FilterName::Channel => f.channel.map(|c| c.name().to_string()).unwrap_or_default(),
                FilterName::Direction => f
                    .direction
                    .map(|d| d.name().to_string())
                    .unwrap_or_default(),
                FilterName::From => bound(f.from.as_ref(), rule.format, name, &self.vendor)?,
                FilterName::To => bound(f.to.as_ref(), rule.format, name, &self.vendor)?,
            };
            if let Some(path) = &rule.body {
                if let Some(v) = body_value(rule, name, f, &value) {
                    criteria.push((path.clone(), v));
                }
            }
            if let Some(pp) = &rule.path_param {
                params.push((pp.clone(), value.clone()));
            }
            if let Some(qp) = &rule.query {
                query.push((qp.clone(), value));
            }
            if rule.local {
                local.push(name);
            }
        }
        for (name, rule) in &list.filters {
            if rule.path_param.is_some() && !f.present().contains(name) {
                return Err(Problem::field(
                    ErrorCode::InvalidRequest,
                    name.name(),
                    format!(
                        "required by provider {:?}: {} lists calls per {}",
                        at.provider,
                        self.vendor,
                        name.name()
                    ),
                ));
            }
        }
        let pg = &list.pagination;
        let mut paging = Vec::new();
        if pg.style == PaginationStyle::Page {
            let page =
                u64::from(pg.first_page).saturating_add(at.offset / u64::from(at.size.max(1)));
            paging.push((pg.page_param.clone(), page));
            paging.push((pg.size_param.clone(), u64::from(at.size)));
        }
        let field = |param: &str| {
            list.filters
                .iter()
                .find(|(_, rule)| rule.path_param.as_deref() == Some(param))
                .map_or(param.to_string(), |(name, _)| name.name().to_string())
        };
        let request = match (&list.filtered, criteria.is_empty()) {
            // A filter that goes into a body: the vendor's filtered list, paged in its body.
            (Some(filtered), false) => {
                let mut body = serde_json::Value::Object(filtered.body.clone());
                for (k, v) in paging {
                    body[k.as_str()] = serde_json::Value::from(v);
                }
                for (path, v) in criteria {
                    put(&mut body, &path, v);
                }
                let mut request = build(&filtered.endpoint, Params(&params), Vec::new(), &field)?;
                request.body = Some(serde_json::to_vec(&body).unwrap_or_default());
                request
            }
            _ => {
                query.extend(paging.into_iter().map(|(k, v)| (k, v.to_string())));
                build(&list.endpoint, Params(&params), query, &field)?
            }
        };
        Ok(ListPlan {
            request,
            params,
            local,
            style: pg.style,
            offset: at.offset,
            size: at.size,
        })
    }
}

/// What a body filter puts in the filtered list's body: the value as given, or (with `values`)
/// the list of vendor values that may hold any of the canonical values; `None` when no vendor
/// value can (then only the local filter applies, if any).
fn body_value(
    rule: &super::FilterRule,
    name: FilterName,
    f: &crate::canonical::list_query::Filters,
    value: &str,
) -> Option<serde_json::Value> {
    let Some(map) = &rule.values else {
        return Some(serde_json::Value::from(value));
    };
    let canonical: Vec<&str> = match name {
        FilterName::Status => f.status.iter().map(|s| s.name()).collect(),
        _ => vec![value],
    };
    let mut out: Vec<&str> = Vec::new();
    for v in canonical.iter().filter_map(|c| map.get(*c)).flatten() {
        if !out.contains(&v.as_str()) {
            out.push(v);
        }
    }
    (!out.is_empty()).then(|| serde_json::Value::from(out))
}

/// Sets `value` at the object path `path` of `body`, making the objects on the way.
fn put(body: &mut serde_json::Value, path: &[String], value: serde_json::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = body;
    for p in parents {
        if !at.get(p.as_str()).is_some_and(serde_json::Value::is_object) {
            at[p.as_str()] = serde_json::Value::Object(Default::default());
        }
        at = &mut at[p.as_str()];
    }
    at[last.as_str()] = value;
}

/// Which write operation of an adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
}

impl Adapter {
    /// The adapter's write operation of `kind`, or `unsupported_operation`: the one place that
    /// decides whether a vendor can do a write.
    pub fn write_op(&self, kind: WriteKind) -> Result<&super::WriteOperation, Problem> {
        let (op, name) = match kind {
            WriteKind::Create => (&self.create, "create_call"),
            WriteKind::Update => (&self.update, "update_call"),
        };
        op.as_ref().ok_or_else(|| unsupported(&self.vendor, name))
    }

    /// Plans `create_call` at `provider` for a request already made portable (its agent is this
    /// vendor's `agentId`, its defaults filled in): the request, the values its answer may be
    /// read with, and the fields `handling` let drop.
    pub fn plan_create(
        &self,
        provider: &str,
        req: &CreateCall,
        handling: Handling,
        idempotency_key: Option<&str>,
    ) -> Result<PlannedWrite, Problem> {
        let op = self.write_op(WriteKind::Create)?;
        let who = FitFor {
            provider,
            vendor: &self.vendor,
            doing: "place a call",
        };
        if let Some(channels) = &op.channels {
            // Another channel is another kind of interaction: never dropped, always refused.
            if !channels.iter().any(|c| c == req.channel.name()) {
                return Err(Problem::field(
                    ErrorCode::InvalidRequest,
                    "channel",
                    format!(
                        "provider {provider:?} (vendor {:?}) can start only {}",
                        self.vendor,
                        channels.join(", ")
                    ),
                ));
            }
        }
        fit::required(op, &req.json, who)?;
        let (fitted, dropped) = fit::fit(op, &req.json, handling, who)?;
        let mut params: Vec<(String, String)> = Vec::new();
        let json = super::Json::from(&fitted);
        for (param, path) in &op.path_params {
            let value = path
                .first(&json)
                .and_then(super::rules::scalar_text)
                .unwrap_or_default();
            params.push((param.clone(), value.into_owned()));
        }
        let field = |param: &str| {
            op.path_params
                .iter()
                .find(|(p, _)| p == param)
                .map_or(param.to_string(), |(_, path)| {
                    path.source().trim_start_matches("$.").to_string()
                })
        };
        let mut request = build(&op.endpoint, Params(&params), Vec::new(), &field)?;
        request.body = render(op, &json)?;
        if let (Some(h), Some(k)) = (&op.idempotency_header, idempotency_key) {
            request.headers.push((h.clone(), k.to_string()));
        }
        for (name, field) in [
            ("to", "to"),
            ("from", "from"),
            ("agent_id", "agentId"),
            ("test", "test"),
            ("channel", "channel"),
        ] {
            let found = json.as_object().and_then(|o| o.get(field));
            if let Some(v) = found.and_then(super::rules::scalar_text) {
                params.push((name.to_string(), v.into_owned()));
            }
        }
        Ok(PlannedWrite {
            request,
            params,
            dropped,
        })
    }

    /// Plans `update_call` at `provider` for the id's params.
    pub fn plan_update(
        &self,
        provider: &str,
        id_params: &[(String, String)],
        req: &UpdateCall,
        handling: Handling,
        idempotency_key: Option<&str>,
    ) -> Result<PlannedWrite, Problem> {
        let op = self.write_op(WriteKind::Update)?;
        let who = FitFor {
            provider,
            vendor: &self.vendor,
            doing: "update a call",
        };
        let (fitted, dropped) = fit::fit(op, &req.json, handling, who)?;
        if fitted.as_object().is_none_or(|o| o.is_empty()) {
            // Nothing the vendor can take is left: an update of nothing is refused, naming
            // the fields it cannot take, whatever the handling.
            fit::fit(op, &req.json, Handling::Strict, who)?;
        }
        let mut request = build(&op.endpoint, Params(id_params), Vec::new(), &|_| {
            "id".into()
        })?;
        request.body = render(op, &super::Json::from(&fitted))?;
        if let (Some(h), Some(k)) = (&op.idempotency_header, idempotency_key) {
            request.headers.push((h.clone(), k.to_string()));
        }
        Ok(PlannedWrite {
            request,
            params: id_params.to_vec(),
            dropped,
        })
    }
}

/// A planned write: the vendor request, the values its answer is normalized with, and the
/// request fields left out of it (lenient handling).
#[derive(Clone, Debug)]
pub struct PlannedWrite {
    pub request: VendorRequest,
    pub params: Vec<(String, String)>,
    pub dropped: Vec<Warning>,
}

/// The vendor body of a write from the canonical request, read as a [`super::Json`] tree.
fn render(op: &super::WriteOperation, json: &super::Json) -> Result<Option<Vec<u8>>, Problem> {
    let Some(t) = &op.body else { return Ok(None) };
    let body = t
        .render(json)?
        .unwrap_or(serde_json::Value::Object(Default::default()));
    Ok(Some(serde_json::to_vec(&body).unwrap_or_default()))
}

fn unsupported(vendor: &str, op: &str) -> Problem {
    Problem::new(
        ErrorCode::UnsupportedOperation,
        format!("vendor {vendor:?} has no {op} operation"),
    )
}

fn bound(
    b: Option<&TimeBound>,
    format: FilterFormat,
    name: FilterName,
    vendor: &str,
) -> Result<String, Problem> {
    let Some(b) = b else { return Ok(String::new()) };
    match format {
        FilterFormat::Value => Ok(b.raw.clone()),
        FilterFormat::Date if b.date_only => Ok(b.raw.clone()),
        FilterFormat::Date => {
            let hint = timestamp::format_date(b.instant.date());
            Err(Problem::field(
                ErrorCode::UnsupportedFilter,
                name.name(),
                format!("vendor {vendor:?} filters by whole days only; give a date such as {hint}"),
            ))
        }
    }
}

/// The vendor request of an endpoint whose placeholders are the id's params (event streams).
pub(super) fn build_request(
    ep: &Endpoint,
    params: Params<'_>,
    query: Vec<(String, String)>,
) -> Result<VendorRequest, Problem> {
    build(ep, params, query, &|_| "id".into())
}

/// The vendor request of an endpoint for `params`. A value that would be a path step of its own
/// (`.` or `..`, which percent-encoding cannot hide: `%2E` is `.` to a URL normalizer) is refused,
/// naming the canonical field it came from (`field_of` the param).
fn build(
    ep: &Endpoint,
    params: Params<'_>,
    mut query: Vec<(String, String)>,
    field_of: &dyn Fn(&str) -> String,
) -> Result<VendorRequest, Problem> {
    let mut path = String::new();
    for piece in &ep.path.pieces {
        match piece {
            PathPiece::Literal(l) => path.push_str(l),
            PathPiece::Param(p) => {
                let value = params.get(p).unwrap_or_default();
                if matches!(value, "." | "..") {
                    return Err(Problem::field(
                        ErrorCode::InvalidRequest,
                        &field_of(p),
                        format!("{value:?} cannot be used here: it would be a path step in the vendor's URL"),
                    ));
                }
                path.extend(utf8_percent_encode(value, SEGMENT));
            }
        }
    }
    let mut all = ep.query.clone();
    all.append(&mut query);
    if !all.is_empty() {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &all {
            ser.append_pair(k, v);
        }
        path.push('?');
        path.push_str(&ser.finish());
    }
    Ok(VendorRequest {
        method: ep.method.clone(),
        path_and_query: path,
        body: None,
        headers: Vec::new(),
    })
}
