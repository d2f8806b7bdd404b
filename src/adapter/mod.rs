//! Adapters: each vendor's API described as data (`adapters/<vendor>.toml`), compiled once at
//! load into an [`Adapter`] that plans vendor requests and normalizes vendor answers.
//!
//! Nothing here does I/O except [`load_dir`]; planning ([`plan`]) and normalization
//! ([`normalize`]) are pure functions over the compiled adapter, tested without a network.

mod compile;
mod compile_ops;
pub mod events;
pub mod fields;
pub mod fit;
pub mod listing;
pub mod normalize;
pub mod path;
pub mod plan;
pub mod rules;
pub mod spec;
pub mod template;
pub mod vendor_error;
mod window;

use crate::canonical::list_query::FilterName;
use fields::CallField;
use path::JsonPath;
use rules::{Condition, Rule};
use spec::{AuthScheme, FilterFormat, PaginationStyle};
use std::path::{Path, PathBuf};

pub use compile::compile;

/// A vendor answer as read: a JSON tree whose strings borrow from the answer's bytes, objects
/// kept as field vectors in the vendor's order (`serde_json_borrow`). Building it costs less
/// than half of a `serde_json::Value` (measured on the simulators' 100-call pages: bimpe 195 →
/// 86 µs, zudu 787 → 378 µs): no allocation per string or key, no hash map per object. The
/// answer's bytes outlive the tree; callgate's canonical output owns what it keeps.
pub type Json<'a> = serde_json_borrow::Value<'a>;

/// A problem in an adapter file, with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}: {reason}")]
pub struct AdapterError {
    pub file: String,
    /// Dotted key path inside the file (`fields.status`, `operations.list_calls.path`).
    pub place: String,
    pub reason: String,
}

/// One vendor's compiled adapter.
#[derive(Debug)]
pub struct Adapter {
    pub vendor: String,
    pub name: String,
    pub file: PathBuf,
    pub auth: Auth,
    pub id_parts: Vec<IdPart>,
    pub list: Option<ListOperation>,
    pub get: Option<GetOperation>,
    pub create: Option<WriteOperation>,
    pub update: Option<WriteOperation>,
    pub errors: ErrorRules,
    pub call: CallMapping,
    pub messages: Option<MessageMapping>,
    /// The vendor's documented status values (all mapped; `check` lists them).
    pub statuses: Vec<String>,
    /// How live events are read (`[events]`).
    pub events: events::EventSource,
}

#[derive(Debug)]
pub struct Auth {
    pub scheme: AuthScheme,
    pub credentials: Vec<String>,
    /// For [`AuthScheme::Headers`]: header name → credential name.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct IdPart {
    pub param: String,
    pub field: CallField,
}

/// A path template such as `/agents/{agent_id}/calls`.
#[derive(Debug, Clone)]
pub struct PathTemplate {
    pub pieces: Vec<PathPiece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPiece {
    Literal(String),
    Param(String),
}

impl PathTemplate {
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            PathPiece::Param(name) => Some(name.as_str()),
            PathPiece::Literal(_) => None,
        })
    }
}

#[derive(Debug)]
pub struct Endpoint {
    pub method: String,
    pub path: PathTemplate,
    pub query: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct GetOperation {
    pub endpoint: Endpoint,
    pub item: Vec<JsonPath>,
}

/// `create_call` or `update_call`: a vendor request built from the canonical request.
#[derive(Debug)]
pub struct WriteOperation {
    pub endpoint: Endpoint,
    /// Path placeholder → where its value is in the canonical request (create).
    pub path_params: Vec<(String, JsonPath)>,
    pub body: Option<template::Template>,
    /// Where the call (or the vendor's answer about it) sits in the answer.
    pub item: Vec<JsonPath>,
    pub idempotency_header: Option<String>,
    /// Canonical fields this vendor needs beyond the canonical minimum.
    pub require: Vec<String>,
    /// Channels it can start (create); `None`: all.
    pub channels: Option<Vec<String>>,
    /// Canonical request fields the vendor request uses; others are refused (update).
    pub accepts: Vec<String>,
    /// `[fields]` with this operation's overrides, for normalizing its answer.
    pub call: CallMapping,
}

#[derive(Debug)]
pub struct ListOperation {
    pub endpoint: Endpoint,
    /// The filtered list, for filters that go into a body.
    pub filtered: Option<FilteredList>,
    pub items: Vec<JsonPath>,
    pub pagination: Pagination,
    pub filters: Vec<(FilterName, FilterRule)>,
}

impl ListOperation {
    pub fn filter(&self, name: FilterName) -> Option<&FilterRule> {
        self.filters
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r)
    }
}

#[derive(Debug)]
pub struct Pagination {
    pub style: PaginationStyle,
    pub page_param: String,
    pub size_param: String,
    pub first_page: u32,
    pub max_size: u32,
    pub has_next: Vec<JsonPath>,
    pub total: Vec<JsonPath>,
    pub total_pages: Vec<JsonPath>,
}

#[derive(Debug, Clone)]
pub struct FilterRule {
    pub query: Option<String>,
    pub path_param: Option<String>,
    /// Where it goes in the filtered list's body (path segments).
    pub body: Option<Vec<String>>,
    /// For a body filter: canonical value → vendor values (the body gets a list).
    pub values: Option<std::collections::BTreeMap<String, Vec<String>>>,
    pub format: FilterFormat,
    pub local: bool,
}

/// A vendor's filtered list: its request, and the fixed fields of its body.
#[derive(Debug)]
pub struct FilteredList {
    pub endpoint: Endpoint,
    pub body: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug)]
pub struct ErrorRules {
    pub message: Vec<JsonPath>,
    pub code: Vec<JsonPath>,
    pub error_when: Option<Condition>,
}

/// One optional rule per canonical field, indexed by [`CallField::index`].
#[derive(Debug)]
pub struct CallMapping {
    pub rules: Vec<Option<Rule>>,
}

impl CallMapping {
    pub fn rule(&self, field: CallField) -> Option<&Rule> {
        self.rules[field.index()].as_ref()
    }
}

#[derive(Debug)]
pub struct MessageMapping {
    pub path: JsonPath,
    /// Indexed by [`fields::MessageField::index`].
    pub rules: Vec<Option<Rule>>,
    pub attachments: Option<AttachmentMapping>,
}

#[derive(Debug)]
pub struct AttachmentMapping {
    pub path: JsonPath,
    /// Indexed by [`fields::AttachmentField::index`].
    pub rules: Vec<Option<Rule>>,
}

/// Reads and compiles every `*.toml` in `dir`, refusing two adapters for one vendor.
pub fn load_dir(dir: &Path) -> Result<Vec<Adapter>, Vec<AdapterError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![AdapterError {
            file: dir.display().to_string(),
            place: "adapters directory".into(),
            reason: e.to_string(),
        }]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut adapters: Vec<Adapter> = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(AdapterError {
                    file: file.display().to_string(),
                    place: "file".into(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        match compile(&file, &text) {
            Ok(a) if adapters.iter().any(|b| b.vendor == a.vendor) => errors.push(AdapterError {
                file: file.display().to_string(),
                place: "vendor".into(),
                reason: format!("another adapter already describes vendor {:?}", a.vendor),
            }),
            Ok(a) => adapters.push(a),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(adapters)
    } else {
        Err(errors)
    }
}
