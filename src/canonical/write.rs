//! The canonical write requests: `POST /v1/calls` (create) and `PATCH /v1/calls/{id}` (update).
//!
//! Parsing is strict and names the field of every mistake (`customer.email`, `to`): malformed
//! JSON, wrong types, unknown or missing fields, a `to` that is not E.164, an unknown `channel`.
//! Nothing reaches a vendor before this passes. The parsed request is kept as JSON too: adapters
//! build vendor bodies from it with JSONPath.

use super::problem::{FieldError, Problem};
use super::{CallStatus, Channel};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    provider: Option<String>,
    agent_id: String,
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
    agent_id: Option<String>,
    metadata: Option<Map<String, Value>>,
}

/// A validated create request.
#[derive(Debug, Clone)]
pub struct CreateCall {
    pub provider: Option<String>,
    pub agent_id: String,
    pub channel: Channel,
    /// The request as JSON, normalized (`channel` filled in), for adapter body templates.
    pub json: Value,
}

/// A validated update request.
#[derive(Debug, Clone)]
pub struct UpdateCall {
    pub status: Option<CallStatus>,
    /// The request as JSON, for adapter body templates; the fields given, and only those.
    pub json: Value,
}

impl UpdateCall {
    /// Top-level fields the client set.
    pub fn fields(&self) -> Vec<&str> {
        self.json
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
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
        if b.agent_id.trim().is_empty() {
            errors.push(field("agentId", "must not be empty"));
        }
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
        if !errors.is_empty() {
            return Err(Problem::invalid(errors));
        }
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
            agent_id: b.agent_id,
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
        if b.agent_id.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(Problem::invalid(vec![field(
                "agentId",
                "must not be empty",
            )]));
        }
        let mut json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if let Some(obj) = json.as_object_mut() {
            obj.retain(|_, v| !v.is_null());
            if obj.is_empty() {
                return Err(Problem::invalid(vec![field(
                    "body",
                    "nothing to update: give status, note, agentId or metadata",
                )]));
            }
        }
        let _ = (b.note, b.metadata);
        Ok(UpdateCall { status, json })
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
        assert_eq!(err_field(r#"{"to": "+14155550100"}"#), "agentId");
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
        assert_eq!(u.fields(), vec!["status", "note"]);
    }
}
