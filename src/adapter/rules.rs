//! Compiled field rules: where a value comes from, when a rule applies, how it is transformed and
//! which enum map translates it — and the typed evaluation that turns a vendor value into a
//! canonical one, reporting drift instead of failing.

use super::fields::{EnumKind, Kind};
use super::path::JsonPath;
use super::Json;
use crate::canonical::timestamp;
use std::borrow::Cow;
use std::sync::Arc;

/// What was wrong with a vendor value (DESIGN.md: `callgate_vendor_drift_total{field,kind}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftKind {
    UnknownEnum,
    MissingRequired,
    WrongType,
}

impl DriftKind {
    pub fn name(self) -> &'static str {
        match self {
            DriftKind::UnknownEnum => "unknown_enum",
            DriftKind::MissingRequired => "missing_required",
            DriftKind::WrongType => "wrong_type",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drift {
    pub field: &'static str,
    pub kind: DriftKind,
}

/// What a request knows that the vendor body may not carry (path parameters such as an agent id).
#[derive(Clone, Copy, Debug)]
pub struct Params<'a>(pub &'a [(String, String)]);

impl<'a> Params<'a> {
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    None,
    SnakeCase,
    Lowercase,
    Email,
    Phone,
    Iso8601,
    EpochMs,
    EpochSeconds,
    MsToSeconds,
}

impl Transform {
    /// Parses a transform name and checks it suits the field kind.
    pub fn parse(name: Option<&str>, kind: Kind) -> Result<Transform, String> {
        let t = match name {
            None => {
                return Ok(match kind {
                    Kind::Timestamp => Transform::Iso8601,
                    _ => Transform::None,
                })
            }
            Some("snake_case") => Transform::SnakeCase,
            Some("lowercase") => Transform::Lowercase,
            Some("email") => Transform::Email,
            Some("phone") => Transform::Phone,
            Some("iso8601") => Transform::Iso8601,
            Some("epoch_ms") => Transform::EpochMs,
            Some("epoch_seconds") => Transform::EpochSeconds,
            Some("ms_to_seconds") => Transform::MsToSeconds,
            Some(other) => return Err(format!("unknown transform {other:?} (known: snake_case, lowercase, email, phone, iso8601, epoch_ms, epoch_seconds, ms_to_seconds)")),
        };
        let fits = match t {
            Transform::SnakeCase | Transform::Lowercase | Transform::Email | Transform::Phone => {
                kind == Kind::Text
            }
            Transform::Iso8601 | Transform::EpochMs | Transform::EpochSeconds => {
                kind == Kind::Timestamp
            }
            Transform::MsToSeconds => kind == Kind::Number,
            Transform::None => true,
        };
        if fits {
            Ok(t)
        } else {
            Err(format!(
                "transform {:?} does not apply to a {kind:?} field",
                name.unwrap_or_default()
            ))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    Null,
    Absent,
    Missing,
    Present,
    Falsy,
    Equals(String),
    OneOf(Vec<String>),
    Prefix(String),
}

/// A condition on a node of the vendor body.
#[derive(Clone, Debug)]
pub struct Condition {
    pub path: JsonPath,
    pub test: Test,
}

impl Condition {
    pub fn holds(&self, node: &Json) -> bool {
        let found = self.path.first(node);
        match &self.test {
            Test::Null => matches!(found, Some(Json::Null)),
            Test::Absent => found.is_none(),
            Test::Missing => matches!(found, None | Some(Json::Null)),
            Test::Present => !matches!(found, None | Some(Json::Null)),
            Test::Falsy => match found {
                None | Some(Json::Null) | Some(Json::Bool(false)) => true,
                Some(Json::Number(n)) => n.as_f64() == Some(0.0),
                Some(Json::Str(s)) => s.is_empty(),
                _ => false,
            },
            Test::Equals(want) => found
                .and_then(scalar_text)
                .is_some_and(|s| s.eq_ignore_ascii_case(want)),
            Test::Prefix(p) => found.and_then(scalar_text).is_some_and(|s| {
                s.len() >= p.len()
                    && s.is_char_boundary(p.len())
                    && s[..p.len()].eq_ignore_ascii_case(p)
            }),
            Test::OneOf(wants) => found
                .and_then(scalar_text)
                .is_some_and(|s| wants.iter().any(|w| s.eq_ignore_ascii_case(w))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EnumRule {
    pub value: Option<String>,
    pub all: Vec<Condition>,
    pub to: &'static str,
}

/// A case-insensitive vendor-value → canonical-value map with conditional rules.
#[derive(Clone, Debug)]
pub struct EnumMap {
    pub name: String,
    /// Lowercased vendor value → canonical value.
    pub values: Vec<(String, &'static str)>,
    pub rules: Vec<EnumRule>,
    pub default: Option<&'static str>,
}

impl EnumMap {
    /// The canonical value for `raw` as found in `node`, if any rule or value knows it.
    pub fn lookup(&self, raw: &str, node: &Json) -> Option<&'static str> {
        for rule in &self.rules {
            let value_ok = rule
                .value
                .as_deref()
                .is_none_or(|v| v.eq_ignore_ascii_case(raw));
            if value_ok && rule.all.iter().all(|c| c.holds(node)) {
                return Some(rule.to);
            }
        }
        // Keys are stored lowercased: comparing ignoring ASCII case needs no lowercased copy.
        self.values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(raw))
            .map(|(_, v)| *v)
    }
}

#[derive(Clone, Debug)]
pub enum Source {
    Path(JsonPath),
    Param(String),
    /// A constant of the adapter file (owned, so it lives as long as the adapter).
    Const(Json<'static>),
}

#[derive(Clone, Debug)]
pub struct Alternative {
    pub source: Source,
    pub transform: Transform,
    pub map: Option<Arc<EnumMap>>,
    pub when: Option<Condition>,
}

/// A compiled rule for one field: alternatives tried in order; the first that applies and finds a
/// non-null, non-empty value wins.
#[derive(Clone, Debug)]
pub struct Rule {
    pub alternatives: Vec<Alternative>,
}

/// A raw value a rule found: a node of the vendor's answer (or an adapter constant), or the
/// text of a request parameter.
#[derive(Clone, Copy, Debug)]
pub enum Raw<'a> {
    Node(&'a Json<'a>),
    Param(&'a str),
}

impl<'a> Raw<'a> {
    /// A scalar as text: strings as they are, numbers and booleans written out.
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Raw::Node(v) => scalar_text(v),
            Raw::Param(s) => Some(Cow::Borrowed(s)),
        }
    }

    /// The string it is: a JSON string or a parameter's text; `None` for other JSON values.
    fn string(self) -> Option<&'a str> {
        match self {
            Raw::Node(Json::Str(s)) => Some(s),
            Raw::Param(s) => Some(s),
            Raw::Node(_) => None,
        }
    }
}

/// The raw value a rule found, and the alternative that found it.
pub struct Found<'a> {
    pub value: Raw<'a>,
    pub alt: &'a Alternative,
}

impl Rule {
    pub fn find<'a>(&'a self, node: &'a Json<'a>, params: Params<'a>) -> Option<Found<'a>> {
        self.alternatives.iter().find_map(move |alt| {
            if alt.when.as_ref().is_some_and(|c| !c.holds(node)) {
                return None;
            }
            let value = match &alt.source {
                Source::Path(p) => Raw::Node(p.first(node)?),
                Source::Param(name) => Raw::Param(params.get(name)?),
                Source::Const(v) => Raw::Node(v),
            };
            let empty = matches!(value, Raw::Node(Json::Null))
                || value.string().is_some_and(|s| s.trim().is_empty());
            (!empty).then_some(Found { value, alt })
        })
    }

    /// The first map any alternative names (for enum defaults when nothing is found).
    pub fn map(&self) -> Option<&EnumMap> {
        self.alternatives.iter().find_map(|a| a.map.as_deref())
    }
}

/// Evaluates rules to typed canonical values, collecting drift.
pub struct Evaluator<'d> {
    pub params: Params<'d>,
    pub drift: &'d mut Vec<Drift>,
}

impl Evaluator<'_> {
    fn drift(&mut self, field: &'static str, kind: DriftKind) {
        self.drift.push(Drift { field, kind });
    }

    /// `out`, noting drift of the wrong type when a value was found but could not be read.
    fn read_as<T>(&mut self, field: &'static str, out: Option<T>) -> Option<T> {
        if out.is_none() {
            self.drift(field, DriftKind::WrongType);
        }
        out
    }

    pub fn text(
        &mut self,
        field: &'static str,
        rule: Option<&Rule>,
        node: &Json,
    ) -> Option<String> {
        let found = rule?.find(node, self.params)?;
        let Some(text) = found.value.text() else {
            self.drift(field, DriftKind::WrongType);
            return None;
        };
        let text = text.trim();
        let out = match found.alt.transform {
            Transform::SnakeCase => Some(snake_case(text)),
            Transform::Lowercase => Some(text.to_lowercase()),
            Transform::Email => (text.contains('@') && !text.contains(char::is_whitespace))
                .then(|| text.to_string()),
            Transform::Phone => e164(text),
            _ => Some(text.to_string()),
        };
        self.read_as(field, out)
    }

    pub fn timestamp(
        &mut self,
        field: &'static str,
        rule: Option<&Rule>,
        node: &Json,
    ) -> Option<String> {
        let found = rule?.find(node, self.params)?;
        let instant = match (found.alt.transform, found.value) {
            (Transform::EpochMs, v) => {
                number(v).and_then(|n| timestamp::from_epoch_millis(n as i128))
            }
            (Transform::EpochSeconds, v) => {
                number(v).and_then(|n| timestamp::from_epoch_millis((n * 1000.0) as i128))
            }
            (_, v) => v.string().and_then(|s| timestamp::parse_datetime(s.trim())),
        };
        // An instant past 9999-12-31 in UTC (`9999-12-31T23:59:59-01:00`) has no canonical form.
        self.read_as(field, instant.and_then(timestamp::format_utc))
    }

    pub fn number(&mut self, field: &'static str, rule: Option<&Rule>, node: &Json) -> Option<f64> {
        let found = rule?.find(node, self.params)?;
        let Some(n) = number(found.value) else {
            self.drift(field, DriftKind::WrongType);
            return None;
        };
        Some(match found.alt.transform {
            Transform::MsToSeconds => n / 1000.0,
            _ => n,
        })
    }

    pub fn boolean(
        &mut self,
        field: &'static str,
        rule: Option<&Rule>,
        node: &Json,
    ) -> Option<bool> {
        let found = rule?.find(node, self.params)?;
        if let Raw::Node(Json::Bool(b)) = found.value {
            return Some(*b);
        }
        let out = match found.value.string() {
            Some(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        };
        self.read_as(field, out)
    }

    pub fn object(
        &mut self,
        field: &'static str,
        rule: Option<&Rule>,
        node: &Json,
    ) -> serde_json::Map<String, serde_json::Value> {
        match rule.and_then(|r| r.find(node, self.params)) {
            Some(Found {
                value: Raw::Node(Json::Object(map)),
                ..
            }) => map.into(),
            Some(_) => {
                self.drift(field, DriftKind::WrongType);
                serde_json::Map::new()
            }
            None => serde_json::Map::new(),
        }
    }

    /// An enum value: the canonical name, or `None` with drift for values no rule knows. A field
    /// with no value at all takes the map's `default`.
    pub fn enumerated(
        &mut self,
        field: &'static str,
        kind: EnumKind,
        rule: Option<&Rule>,
        node: &Json,
    ) -> Option<&'static str> {
        let rule = rule?;
        let Some(found) = rule.find(node, self.params) else {
            return rule.map().and_then(|m| m.default);
        };
        let raw = found.value.text();
        let mapped = match (raw, &found.alt.map) {
            (Some(raw), Some(map)) => map.lookup(raw.trim(), node),
            // A rule without a map passes canonical values through.
            (Some(raw), None) => kind.values().iter().copied().find(|v| *v == raw.trim()),
            (None, _) => None,
        };
        if mapped.is_none() {
            self.drift(field, DriftKind::UnknownEnum);
        }
        mapped
    }
}

/// A scalar as text: strings as they are, numbers (written as `serde_json` writes them) and
/// booleans written out.
pub fn scalar_text<'a>(v: &'a Json) -> Option<Cow<'a, str>> {
    match v {
        Json::Str(s) => Some(Cow::Borrowed(s.as_ref())),
        Json::Number(n) => Some(Cow::Owned(serde_json::Number::from(*n).to_string())),
        Json::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// A number, or a string holding one (vendors send `"7200"` for 7200).
fn number(v: Raw) -> Option<f64> {
    match v {
        Raw::Node(Json::Number(n)) => n.as_f64(),
        v => v.string().and_then(|s| s.trim().parse::<f64>().ok()),
    }
    .filter(|n| n.is_finite())
}

/// `USER_HANGUP`, `user-hangup`, `User Hangup` → `user_hangup`.
pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if ch.is_alphanumeric() {
            out.extend(ch.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// An E.164 number from a vendor phone string (spaces, dashes, dots and parentheses removed).
fn e164(s: &str) -> Option<String> {
    let punctuation = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')');
    let digits: String = if s.contains(punctuation) {
        s.chars().filter(|c| !punctuation(*c)).collect()
    } else {
        s.to_string()
    };
    let rest = digits.strip_prefix('+')?;
    let ok = (7..=15).contains(&rest.len())
        && rest.chars().all(|c| c.is_ascii_digit())
        && !rest.starts_with('0');
    ok.then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_and_e164() {
        assert_eq!(snake_case("USER_HANGUP"), "user_hangup");
        assert_eq!(snake_case(" Dial no-answer!"), "dial_no_answer");
        assert_eq!(e164("+1 (415) 555-0100").as_deref(), Some("+14155550100"));
        assert_eq!(e164("admin@email.com"), None);
        assert_eq!(e164("0123456789"), None);
    }

    #[test]
    fn enum_lookup_ignores_ascii_case() {
        let map = EnumMap {
            name: "status".into(),
            values: vec![("in-progress".into(), "in_progress")],
            rules: Vec::new(),
            default: None,
        };
        assert_eq!(map.lookup("IN-Progress", &Json::Null), Some("in_progress"));
        assert_eq!(map.lookup("done", &Json::Null), None);
    }

    #[test]
    fn numbers_accept_numeric_strings_only() {
        let node = |v: Json<'static>| number(Raw::Node(&v));
        assert_eq!(node(Json::from("7200")), Some(7200.0));
        assert_eq!(node(Json::from(1.5)), Some(1.5));
        assert_eq!(node(Json::from("7200s")), None);
        assert_eq!(node(Json::from("NaN")), None);
        assert_eq!(number(Raw::Param(" 30 ")), Some(30.0));
    }

    #[test]
    fn numbers_as_text_are_written_as_serde_json_writes_them() {
        let text = |v: &str| {
            let owned: serde_json::Value = serde_json::from_str(v).unwrap();
            let borrowed: Json = serde_json::from_str(v).unwrap();
            assert_eq!(
                scalar_text(&borrowed).map(Cow::into_owned),
                Some(owned.to_string())
            );
        };
        for v in [
            "1",
            "-7",
            "1.0",
            "1.5",
            "1e20",
            "18446744073709551615",
            "true",
        ] {
            text(v);
        }
    }
}
