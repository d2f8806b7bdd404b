//! Turns an [`AdapterSpec`] into an [`Adapter`], checking everything a running gateway relies on:
//! JSONPaths compile, every field and filter name exists, every referenced map and parameter
//! resolves, enum targets are canonical values, and every documented vendor status is mapped.
//! All problems of a file are reported together, each with its place.

use super::compile_ops::{compile_get, compile_list, compile_write, template, WRITE_PARAMS};
use super::fields::{AttachmentField, CallField, EnumKind, Kind, MessageField};
use super::path::JsonPath;
use super::rules::{Alternative, Condition, EnumMap, EnumRule, Rule, Source, Test, Transform};
use super::spec::*;
use super::*;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) struct Ctx {
    pub(super) file: String,
    pub(super) errors: Vec<AdapterError>,
    pub(super) maps: BTreeMap<String, Arc<EnumMap>>,
    /// Placeholders of every operation path: what `param` sources may name.
    pub(super) params: Vec<String>,
}

impl Ctx {
    pub(super) fn err(&mut self, place: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(AdapterError {
            file: self.file.clone(),
            place: place.into(),
            reason: reason.into(),
        });
    }

    pub(super) fn path(&mut self, place: &str, source: &str) -> Option<JsonPath> {
        match JsonPath::compile(source) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(place, format!("JSONPath {source:?} does not compile: {e}"));
                None
            }
        }
    }

    pub(super) fn paths(&mut self, place: &str, spec: Option<&PathsSpec>) -> Vec<JsonPath> {
        spec.map(|s| s.to_vec())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| self.path(place, p))
            .collect()
    }
}

/// Compiles one adapter file's text.
pub fn compile(file: &Path, text: &str) -> Result<Adapter, Vec<AdapterError>> {
    let file_name = file.display().to_string();
    let spec: AdapterSpec = toml::from_str(text).map_err(|e| {
        let place = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].lines().count().max(1);
                format!("line {line}")
            })
            .unwrap_or_else(|| "file".into());
        vec![AdapterError {
            file: file_name.clone(),
            place,
            reason: e.message().to_string(),
        }]
    })?;
    let mut cx = Ctx {
        file: file_name,
        errors: Vec::new(),
        maps: BTreeMap::new(),
        params: Vec::new(),
    };
    if spec.vendor.is_empty()
        || !spec
            .vendor
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        cx.err(
            "vendor",
            "must be non-empty lowercase letters, digits, '-' or '_'",
        );
    }
    let auth = compile_auth(&mut cx, &spec.auth);
    for (name, op) in &spec.operations {
        if let Some(t) = template(&mut cx, &format!("operations.{name}.path"), &op.path) {
            cx.params.extend(t.params().map(str::to_string));
        }
    }
    for (name, m) in &spec.maps {
        let compiled = compile_map(&mut cx, name, m);
        cx.maps.insert(name.clone(), Arc::new(compiled));
    }
    // Writes may also read these request values in `param` rules of their answers.
    cx.params.extend(WRITE_PARAMS.iter().map(|p| p.to_string()));
    let mut get = None;
    let mut list = None;
    let mut create = None;
    let mut update = None;
    for (name, op) in &spec.operations {
        match name.as_str() {
            "get_call" => get = compile_get(&mut cx, op),
            "list_calls" => list = compile_list(&mut cx, op, &spec.filter_values),
            "create_call" | "update_call" => {
                let w = compile_write(&mut cx, name, op, &spec);
                if name == "create_call" {
                    create = w;
                } else {
                    update = w;
                }
            }
            other => cx.err(
                format!("operations.{other}"),
                "unknown operation (known: list_calls, get_call, create_call, update_call)",
            ),
        }
    }
    let call = compile_call_fields(&mut cx, &spec.fields, "fields");
    let id_parts = compile_id(&mut cx, &spec.id, get.as_ref(), &call);
    let messages = spec
        .messages
        .as_ref()
        .and_then(|m| compile_messages(&mut cx, m));
    let errors = ErrorRules {
        message: cx.paths("errors.message", spec.errors.message.as_ref()),
        code: cx.paths("errors.code", spec.errors.code.as_ref()),
        error_when: spec
            .errors
            .error_when
            .as_ref()
            .and_then(|c| condition(&mut cx, "errors.error_when", c)),
    };
    let id_params: Vec<String> = id_parts.iter().map(|p| p.param.clone()).collect();
    let events = super::events::compile_events(
        &mut cx,
        spec.events.as_ref(),
        &id_params,
        messages.is_some(),
    );
    check_statuses(&mut cx, &spec, &call);
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(Adapter {
        name: spec.name.clone().unwrap_or_else(|| spec.vendor.clone()),
        vendor: spec.vendor,
        file: file.to_path_buf(),
        auth,
        id_parts,
        list,
        get,
        create,
        update,
        errors,
        call,
        messages,
        statuses: spec.statuses,
        events,
    })
}

fn compile_auth(cx: &mut Ctx, spec: &AuthSpec) -> Auth {
    let want = match spec.scheme {
        AuthScheme::Basic => Some(2),
        AuthScheme::Bearer => Some(1),
        AuthScheme::Headers => None,
    };
    if let Some(n) = want {
        if spec.credentials.len() != n {
            cx.err(
                "auth.credentials",
                format!(
                    "{:?} auth takes exactly {n} credential name(s)",
                    spec.scheme
                ),
            );
        }
    }
    if spec.scheme == AuthScheme::Headers {
        if spec.headers.is_empty() {
            cx.err("auth.headers", "headers auth needs at least one header");
        }
        for (header, cred) in &spec.headers {
            if !spec.credentials.contains(cred) {
                cx.err(
                    format!("auth.headers.{header}"),
                    format!("credential {cred:?} is not listed in auth.credentials"),
                );
            }
        }
    }
    Auth {
        scheme: spec.scheme,
        credentials: spec.credentials.clone(),
        headers: spec
            .headers
            .iter()
            .map(|(h, c)| (h.clone(), c.clone()))
            .collect(),
    }
}

fn compile_map(cx: &mut Ctx, name: &str, spec: &EnumMapSpec) -> EnumMap {
    let place = format!("maps.{name}");
    let rules = spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| EnumRule {
            value: r.value.clone(),
            all: r
                .all
                .iter()
                .filter_map(|c| condition(cx, &format!("{place}.rules[{i}]"), c))
                .collect(),
            to: intern(&r.to),
        })
        .collect();
    EnumMap {
        name: name.to_string(),
        values: spec
            .values
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), intern(v)))
            .collect(),
        rules,
        default: spec.default.as_deref().map(intern),
    }
}

/// Canonical enum values are a closed set of static strings; anything else is checked (and
/// refused) where the map is used, so unknown names map to a placeholder here.
fn intern(s: &str) -> &'static str {
    for kind in [
        EnumKind::Status,
        EnumKind::Channel,
        EnumKind::Direction,
        EnumKind::Role,
    ] {
        if let Some(v) = kind.values().iter().find(|v| **v == s) {
            return v;
        }
    }
    "\u{0}invalid"
}

fn check_map_targets(cx: &mut Ctx, place: &str, map: &EnumMap, kind: EnumKind) {
    let allowed = kind.values();
    let mut bad: Vec<String> = Vec::new();
    let targets = map
        .values
        .iter()
        .map(|(_, v)| *v)
        .chain(map.rules.iter().map(|r| r.to))
        .chain(map.default);
    for t in targets {
        if !allowed.contains(&t) {
            bad.push(t.to_string());
        }
    }
    if !bad.is_empty() {
        cx.err(
            place,
            format!(
                "map {:?} targets values that are not canonical {kind:?} values (allowed: {})",
                map.name,
                allowed.join(", ")
            ),
        );
    }
}

fn condition(cx: &mut Ctx, place: &str, spec: &ConditionSpec) -> Option<Condition> {
    let path = cx.path(place, &spec.path)?;
    let given = [
        spec.is.is_some(),
        spec.equals.is_some(),
        spec.one_of.is_some(),
        spec.prefix.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        cx.err(
            place,
            "a condition takes exactly one of is, equals, in, prefix",
        );
        return None;
    }
    let test = if let Some(is) = &spec.is {
        match is.as_str() {
            "null" => Test::Null,
            "absent" => Test::Absent,
            "missing" => Test::Missing,
            "present" => Test::Present,
            "falsy" => Test::Falsy,
            other => {
                cx.err(
                    place,
                    format!("is = {other:?}: use null, absent, missing, present or falsy"),
                );
                return None;
            }
        }
    } else if let Some(eq) = &spec.equals {
        Test::Equals(eq.clone())
    } else if let Some(list) = &spec.one_of {
        Test::OneOf(list.clone())
    } else {
        Test::Prefix(spec.prefix.clone().unwrap_or_default())
    };
    Some(Condition { path, test })
}

fn rule(cx: &mut Ctx, place: &str, spec: &RuleSpec, kind: Kind) -> Option<Rule> {
    let tables: Vec<RuleTable> = flatten(spec);
    let mut alternatives = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let place = if tables.len() > 1 {
            format!("{place}[{i}]")
        } else {
            place.to_string()
        };
        let source = match (&t.path, &t.param, &t.constant) {
            (Some(p), None, None) => Source::Path(cx.path(&place, p)?),
            (None, Some(p), None) => {
                if !cx.params.contains(p) {
                    cx.err(
                        &place,
                        format!("param {p:?} is not a placeholder of any operation path"),
                    );
                }
                Source::Param(p.clone())
            }
            (None, None, Some(c)) => match serde_json::to_value(c)
                .and_then(<super::Json<'static> as serde::Deserialize>::deserialize)
            {
                Ok(v) => Source::Const(v),
                Err(e) => {
                    cx.err(&place, format!("const: {e}"));
                    return None;
                }
            },
            _ => {
                cx.err(&place, "a rule takes exactly one of path, param, const");
                return None;
            }
        };
        let transform = match Transform::parse(t.transform.as_deref(), kind) {
            Ok(t) => t,
            Err(e) => {
                cx.err(&place, e);
                Transform::None
            }
        };
        let map = match (&t.map, kind) {
            (Some(name), Kind::Enum(ek)) => match cx.maps.get(name).cloned() {
                Some(m) => {
                    check_map_targets(cx, &place, &m, ek);
                    Some(m)
                }
                None => {
                    cx.err(&place, format!("map {name:?} is not defined in [maps]"));
                    None
                }
            },
            (Some(_), _) => {
                cx.err(
                    &place,
                    "map applies only to enum fields (status, channel, direction, role)",
                );
                None
            }
            (None, _) => None,
        };
        let when = match &t.when {
            Some(c) => Some(condition(cx, &place, c)?),
            None => None,
        };
        alternatives.push(Alternative {
            source,
            transform,
            map,
            when,
        });
    }
    Some(Rule { alternatives })
}

fn flatten(spec: &RuleSpec) -> Vec<RuleTable> {
    match spec {
        RuleSpec::Path(p) => vec![RuleTable {
            path: Some(p.clone()),
            ..Default::default()
        }],
        RuleSpec::Alternatives(list) => list.iter().flat_map(flatten).collect(),
        RuleSpec::Table(t) => vec![RuleTable {
            path: t.path.clone(),
            param: t.param.clone(),
            constant: t.constant.clone(),
            transform: t.transform.clone(),
            map: t.map.clone(),
            when: t.when.clone(),
        }],
    }
}

pub(super) fn compile_call_fields(
    cx: &mut Ctx,
    specs: &BTreeMap<String, RuleSpec>,
    section: &str,
) -> CallMapping {
    let mut rules: Vec<Option<Rule>> = CallField::ALL.iter().map(|_| None).collect();
    for (name, spec) in specs {
        let place = format!("{section}.{name}");
        match CallField::parse(name) {
            Some(f) => rules[f.index()] = rule(cx, &place, spec, f.kind()),
            None => cx.err(
                place,
                "not a canonical Call field (see adapters/README.md for the list)",
            ),
        }
    }
    for required in [CallField::ProviderCallId, CallField::Status] {
        if rules[required.index()].is_none()
            && !cx
                .errors
                .iter()
                .any(|e| e.place == format!("fields.{}", required.name()))
        {
            cx.err(format!("fields.{}", required.name()), "required");
        }
    }
    CallMapping { rules }
}

fn compile_id(
    cx: &mut Ctx,
    spec: &IdSpec,
    get: Option<&GetOperation>,
    call: &CallMapping,
) -> Vec<IdPart> {
    if spec.parts.is_empty() {
        cx.err("id.parts", "needs at least one part");
    }
    let mut parts = Vec::new();
    for (i, p) in spec.parts.iter().enumerate() {
        let place = format!("id.parts[{i}]");
        let Some(field) = CallField::parse(&p.from).filter(|f| f.kind() == Kind::Text) else {
            cx.err(
                place,
                format!("from = {:?} is not a text field of the Call", p.from),
            );
            continue;
        };
        if call.rule(field).is_none() {
            cx.err(
                &place,
                format!("field {:?} has no rule in [fields]", p.from),
            );
        }
        if let Some(get) = get {
            if !get.endpoint.path.params().any(|x| x == p.param) {
                cx.err(
                    &place,
                    format!(
                        "param {:?} is not a placeholder of operations.get_call.path",
                        p.param
                    ),
                );
            }
        }
        parts.push(IdPart {
            param: p.param.clone(),
            field,
        });
    }
    if let Some(get) = get {
        for pp in get.endpoint.path.params() {
            if !spec.parts.iter().any(|p| p.param == pp) {
                cx.err(
                    "operations.get_call.path",
                    format!("placeholder {{{pp}}} is not filled by any id part"),
                );
            }
        }
    }
    parts
}

fn compile_messages(cx: &mut Ctx, spec: &MessagesSpec) -> Option<MessageMapping> {
    let path = cx.path("messages.path", &spec.path)?;
    let mut rules: Vec<Option<Rule>> = MessageField::ALL.iter().map(|_| None).collect();
    for (name, r) in &spec.fields {
        let place = format!("messages.fields.{name}");
        match MessageField::parse(name) {
            Some(f) => rules[f.index()] = rule(cx, &place, r, f.kind()),
            None => cx.err(
                place,
                "not a message field (id, role, content, createdAt, status)",
            ),
        }
    }
    let attachments = spec.attachments.as_ref().and_then(|a| {
        let path = cx.path("messages.attachments.path", &a.path)?;
        let mut rules: Vec<Option<Rule>> = AttachmentField::ALL.iter().map(|_| None).collect();
        for (name, r) in &a.fields {
            let place = format!("messages.attachments.fields.{name}");
            match AttachmentField::parse(name) {
                Some(f) => rules[f.index()] = rule(cx, &place, r, f.kind()),
                None => cx.err(place, "not an attachment field (type, url)"),
            }
        }
        if rules[AttachmentField::Url.index()].is_none() {
            cx.err("messages.attachments.fields.url", "required");
        }
        Some(AttachmentMapping { path, rules })
    });
    Some(MessageMapping {
        path,
        rules,
        attachments,
    })
}

fn check_statuses(cx: &mut Ctx, spec: &AdapterSpec, call: &CallMapping) {
    let Some(status) = call.rule(CallField::Status) else {
        return;
    };
    let Some(map) = status.map() else {
        if !spec.statuses.is_empty() {
            cx.err(
                "fields.status",
                "has no map, so the documented statuses cannot be mapped",
            );
        }
        return;
    };
    let unmapped: Vec<&str> = spec
        .statuses
        .iter()
        .filter(|s| !map.values.iter().any(|(k, _)| k.eq_ignore_ascii_case(s)))
        .map(String::as_str)
        .collect();
    if !unmapped.is_empty() {
        cx.err(
            format!("maps.{}.values", map.name),
            format!("documented status(es) not mapped: {}", unmapped.join(", ")),
        );
    }
}
