//! The canonical write requests: `POST /v1/calls` (create) and `PATCH /v1/calls/{id}` (update).
//!
//! Parsing is strict and names the field of every mistake (`customer.email`, `to`): malformed
//! JSON, wrong types, unknown or missing fields, a `to` that is not E.164, an unknown `channel`.
//! Nothing reaches a vendor before this passes. The parsed request is kept as JSON too: adapters
//! build vendor bodies from it with JSONPath.
//!
//! A create names its agent either as a canonical agent (`agent`, configured in `[agents]`, which
//! runs at several providers) or as one vendor's agent id (`agentId`). The body is the same
//! whichever provider is picked; which of its fields a vendor can express is the adapter's to say
//! ([`CREATE_FIELDS`] are the names it says it in).

use super::problem::{FieldError, Problem};
use super::{CallStatus, Channel};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    provider: Option<String>,
    agent: Option<String>,
    agent_id: Option<String>,
    channel: Option<String>,
    to: String,
    from: Option<String>,
    customer: Option<CustomerBody>,
    skill_id: Option<String>,
    agent_override: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
    test: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CustomerBody {
    first_name: Option<String>,
    last_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    language: Option<String>,
    /// Template variables by name; values keep their JSON type (string, number, boolean).
    fields: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateBody {
    status: Option<String>,
    note: Option<String>,
    agent: Option<String>,
    agent_id: Option<String>,
    metadata: Option<Map<String, Value>>,
}

/// The canonical fields of a create that an adapter may map, as dotted paths: `customer` is the
/// one nested object whose members are fields of their own; `metadata`, `agentOverride` and
/// `customer.fields` are opaque maps. `agent` and `provider` are routing, never sent as such.
pub const CREATE_FIELDS: [&str; 15] = [
    "agentId",
    "channel",
    "to",
    "from",
    "customer",
    "customer.name",
    "customer.firstName",
    "customer.lastName",
    "customer.email",
    "customer.language",
    "customer.fields",
    "skillId",
    "agentOverride",
    "metadata",
    "test",
];

/// The canonical fields of an update an adapter may map (`agent` becomes `agentId`).
pub const UPDATE_FIELDS: [&str; 4] = ["status", "note", "agentId", "metadata"];

/// Fields of a request that route it rather than describe the call.
const ROUTING_FIELDS: [&str; 3] = ["provider", "agent", "channel"];

/// The fields a request sets, as the dotted paths of [`CREATE_FIELDS`]: top-level fields, and
/// `customer`'s members one by one. Routing fields are left out.
pub fn present_fields(json: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in json.as_object().into_iter().flatten() {
        if ROUTING_FIELDS.contains(&name.as_str()) || value.is_null() {
            continue;
        }
        match (name.as_str(), value.as_object()) {
            ("customer", Some(members)) => out.extend(
                members
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, _)| format!("customer.{k}")),
            ),
            _ => out.push(name.clone()),
        }
    }
    out
}

/// Removes a dotted field from a request (and `customer` when it is left empty).
pub fn remove_field(json: &mut Value, field: &str) {
    let Some(obj) = json.as_object_mut() else {
        return;
    };
    match field.split_once('.') {
        None => {
            obj.remove(field);
        }
        Some((parent, child)) => {
            if let Some(members) = obj.get_mut(parent).and_then(Value::as_object_mut) {
                members.remove(child);
                if members.is_empty() {
                    obj.remove(parent);
                }
            }
        }
    }
}

/// Whom a create is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRef {
    /// A canonical agent of the config (`"agent": "support-bot"`).
    Canonical(String),
    /// One vendor's agent id (`"agentId": "agt_…"`).
    Vendor(String),
}

/// A validated create request.
#[derive(Debug, Clone)]
pub struct CreateCall {
    pub provider: Option<String>,
    pub agent: AgentRef,
    pub channel: Channel,
    /// The request as JSON, normalized (`channel` filled in), for adapter body templates.
    pub json: Value,
}

/// A validated update request.
#[derive(Debug, Clone)]
pub struct UpdateCall {
    pub status: Option<CallStatus>,
    /// A canonical agent to hand the call to (becomes the vendor's `agentId` when planned).
    pub agent: Option<String>,
    /// The request as JSON, for adapter body templates; the fields given, and only those.
    pub json: Value,
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses JSON into `T`, naming the field of the first mistake.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::invalid(vec![field(
            "body",
            "a JSON object is required",
        )]));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (name, message) = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ("body".to_string(), format!("malformed JSON: {inner}"))
            }
            _ => {
                let text = inner.to_string();
                // serde reports a missing field at its parent; name the field itself.
                let missing = text
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next());
                let name = match (missing, path.as_str()) {
                    (Some(m), ".") => m.to_string(),
                    (Some(m), p) => format!("{p}.{m}"),
                    (None, ".") => "body".to_string(),
                    (None, p) => p.to_string(),
                };
                let message = text.split(" at line ").next().unwrap_or(&text).to_string();
                (name, message)
            }
        };
        Problem::invalid(vec![field(&name, message)])
    })
}

/// E.164: `+` then 8 to 15 digits, not starting with 0.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

impl CreateCall {
    pub fn parse(body: &[u8]) -> Result<CreateCall, Problem> {
        let b: CreateBody = parse(body)?;
        let mut errors = Vec::new();
        let agent = match (b.agent, b.agent_id) {
            (Some(_), Some(_)) => {
                errors.push(field(
                    "agentId",
                    "give agent (a canonical agent) or agentId (a vendor's agent id), not both",
                ));
                None
            }
            (None, None) => {
                errors.push(field(
                    "agent",
                    "required: the canonical agent to place the call (or agentId, a vendor's agent id, with provider)",
                ));
                None
            }
            (Some(a), None) if a.trim().is_empty() => {
                errors.push(field("agent", "must not be empty"));
                None
            }
            (None, Some(a)) if a.trim().is_empty() => {
                errors.push(field("agentId", "must not be empty"));
                None
            }
            (Some(a), None) => Some(AgentRef::Canonical(a)),
            (None, Some(a)) => Some(AgentRef::Vendor(a)),
        };
        if !is_e164(&b.to) {
            errors.push(field(
                "to",
                "must be an E.164 phone number such as +14155550100",
            ));
        }
        if let Some(from) = &b.from {
            if !is_e164(from) {
                errors.push(field(
                    "from",
                    "must be an E.164 phone number such as +14155550100",
                ));
            }
        }
        let channel = match b.channel.as_deref() {
            None => Some(Channel::Call),
            Some(c) => Channel::parse(c),
        };
        if channel.is_none() {
            errors.push(field(
                "channel",
                "must be one of call, sms, whatsapp, email, webchat",
            ));
        }
        if let Some(email) = b.customer.as_ref().and_then(|c| c.email.as_deref()) {
            if !email.contains('@') || email.contains(char::is_whitespace) {
                errors.push(field("customer.email", "must be an email address"));
            }
        }
        if let Some(fields) = b.customer.as_ref().and_then(|c| c.fields.as_ref()) {
            for (name, v) in fields {
                if !(v.is_string() || v.is_number() || v.is_boolean()) {
                    errors.push(field(
                        &format!("customer.fields.{name}"),
                        "must be a string, number or boolean",
                    ));
                }
            }
        }
        let Some(agent) = agent.filter(|_| errors.is_empty()) else {
            return Err(Problem::invalid(errors));
        };
        let channel = channel.unwrap_or(Channel::Call);
        // Re-read the body as JSON (it parsed above) and fill in the defaults.
        let mut json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if let Some(obj) = json.as_object_mut() {
            obj.insert("channel".into(), Value::from(channel.name()));
            obj.retain(|_, v| !v.is_null());
        }
        let _ = (
            b.customer
                .map(|c| (c.first_name, c.last_name, c.name, c.language)),
            b.skill_id,
            b.agent_override,
            b.metadata,
            b.test,
            b.from,
        );
        Ok(CreateCall {
            provider: b.provider,
            agent,
            channel,
            json,
        })
    }
}

impl UpdateCall {
    pub fn parse(body: &[u8]) -> Result<UpdateCall, Problem> {
        let b: UpdateBody = parse(body)?;
        let status = match b.status.as_deref() {
            None => None,
            Some(s) => match CallStatus::parse(s).filter(|s| *s != CallStatus::Unknown) {
                Some(st) => Some(st),
                None => {
                    return Err(Problem::invalid(vec![field(
                        "status",
                        format!("unknown status {s:?}"),
                    )]))
                }
            },
        };
        for (name, value) in [("agent", &b.agent), ("agentId", &b.agent_id)] {
            if value.as_deref().is_some_and(|a| a.trim().is_empty()) {
                return Err(Problem::invalid(vec![field(name, "must not be empty")]));
            }
        }
        if b.agent.is_some() && b.agent_id.is_some() {
            return Err(Problem::invalid(vec![field(
                "agentId",
                "give agent (a canonical agent) or agentId (a vendor's agent id), not both",
            )]));
        }
        let mut json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if let Some(obj) = json.as_object_mut() {
            obj.retain(|_, v| !v.is_null());
            if obj.is_empty() {
                return Err(Problem::invalid(vec![field(
                    "body",
                    "nothing to update: give status, note, agent, agentId or metadata",
                )]));
            }
        }
        let _ = (b.note, b.metadata);
        Ok(UpdateCall {
            status,
            agent: b.agent,
            json,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_field(body: &str) -> String {
        CreateCall::parse(body.as_bytes()).unwrap_err().errors[0]
            .field
            .clone()
    }

    #[test]
    fn every_mistake_names_its_field() {
        assert_eq!(err_field("{"), "body");
        assert_eq!(err_field(""), "body");
        assert_eq!(err_field(r#"{"to": "+14155550100"}"#), "agent");
        assert_eq!(
            err_field(r#"{"agent": "bot", "agentId": "a", "to": "+14155550100"}"#),
            "agentId"
        );
        assert_eq!(
            err_field(r#"{"agent": " ", "to": "+14155550100"}"#),
            "agent"
        );
        assert_eq!(err_field(r#"{"agentId": "a"}"#), "to");
        assert_eq!(
            err_field(r#"{"agentId": 5, "to": "+14155550100"}"#),
            "agentId"
        );
        assert_eq!(err_field(r#"{"agentId": "a", "to": "0155"}"#), "to");
        assert_eq!(
            err_field(r#"{"agentId": "a", "to": "+14155550100", "channel": "fax"}"#),
            "channel"
        );
        assert_eq!(
            err_field(r#"{"agentId": "a", "to": "+14155550100", "customer": {"email": 3}}"#),
            "customer.email"
        );
        assert_eq!(
            err_field(r#"{"agentId": "a", "to": "+14155550100", "customer": {"nick": "x"}}"#),
            "customer.nick"
        );
        assert_eq!(
            err_field(r#"{"agentId": "a", "to": "+14155550100", "colour": "red"}"#),
            "colour"
        );
        assert_eq!(
            err_field(
                r#"{"agentId": "a", "to": "+14155550100", "customer": {"fields": {"x": [1]}}}"#
            ),
            "customer.fields.x"
        );
    }

    #[test]
    fn defaults_and_types_are_kept() {
        let c = CreateCall::parse(br#"{"agentId": "a", "to": "+14155550100", "customer": {"fields": {"Order ID": "12345", "Amount": 150.75, "Active": true}}}"#).unwrap();
        assert_eq!(c.channel, Channel::Call);
        assert_eq!(c.json["channel"], "call");
        assert_eq!(c.json["customer"]["fields"]["Amount"], 150.75);
        assert_eq!(c.json["customer"]["fields"]["Active"], true);
    }

    #[test]
    fn updates_need_something_and_a_known_status() {
        assert!(UpdateCall::parse(b"{}").is_err());
        assert_eq!(
            UpdateCall::parse(br#"{"status": "done"}"#)
                .unwrap_err()
                .errors[0]
                .field,
            "status"
        );
        let u = UpdateCall::parse(br#"{"status": "completed", "note": "ok"}"#).unwrap();
        assert_eq!(u.status, Some(CallStatus::Completed));
        assert_eq!(present_fields(&u.json), vec!["status", "note"]);
    }

    #[test]
    fn present_fields_name_customer_members_and_skip_routing() {
        let c = CreateCall::parse(br#"{"agent": "bot", "provider": "p", "to": "+14155550100", "customer": {"name": "Ada", "email": "a@b.c"}, "test": true}"#).unwrap();
        assert_eq!(c.agent, AgentRef::Canonical("bot".into()));
        assert_eq!(
            present_fields(&c.json),
            vec!["to", "customer.name", "customer.email", "test"]
        );
        let mut json = c.json.clone();
        remove_field(&mut json, "customer.name");
        remove_field(&mut json, "customer.email");
        remove_field(&mut json, "test");
        assert!(json.get("customer").is_none() && json.get("test").is_none());
        assert_eq!(json["to"], "+14155550100");
    }
}
