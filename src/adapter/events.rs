//! How a vendor gives a call's live events (`[events]` of an adapter file): by being read again
//! (`poll`, the default: callgate compares successive `get_call` answers), or by a Server-Sent
//! Events stream of the call's messages (`sse`), optionally behind a single-use ticket.
//!
//! Compiled and checked here like the operations; planning the ticket and stream requests and
//! reading a stream event's message are pure functions over the compiled adapter. The gateway
//! (`gateway::events`) does the I/O. A fourth vendor with a stream of its own is a new `[events]`
//! table, not new Rust.

use super::compile::Ctx;
use super::compile_ops::template;
use super::path::JsonPath;
use super::plan::VendorRequest;
use super::rules::{Drift, Params};
use super::spec::{EventStyle, EventsSpec};
use super::{Adapter, Endpoint, Json};
use crate::canonical::call::Message;
use crate::canonical::{ErrorCode, Problem};
use std::time::Duration;

/// How live events of a call are read from a vendor.
#[derive(Debug, Default)]
pub enum EventSource {
    /// `get_call`, read again and compared.
    #[default]
    Poll,
    /// The vendor's stream of messages (status still from `get_call`).
    Sse(Box<SseSource>),
}

/// A vendor's Server-Sent Events stream of one call's messages.
#[derive(Debug)]
pub struct SseSource {
    pub ticket: Option<Ticket>,
    pub stream: Endpoint,
    pub resume: ResumeBy,
    pub message_event: String,
    pub message: JsonPath,
    pub heartbeat_event: Option<String>,
    pub idle_timeout: Duration,
}

/// The single-use credential a stream (re)connect needs.
#[derive(Debug)]
pub struct Ticket {
    pub endpoint: Endpoint,
    pub value: Vec<JsonPath>,
    pub param: String,
}

/// How a reconnect names the last message it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeBy {
    Header(String),
    Query(String),
}

const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;

/// Compiles `[events]`; `id_params` are the placeholders a call's id fills.
pub(super) fn compile_events(
    cx: &mut Ctx,
    spec: Option<&EventsSpec>,
    id_params: &[String],
    has_messages: bool,
) -> EventSource {
    let Some(spec) = spec else {
        return EventSource::Poll;
    };
    if spec.style == EventStyle::Poll {
        if spec.ticket.is_some() || spec.stream.is_some() {
            cx.err(
                "events",
                "style = \"poll\" takes no ticket or stream (they are for style = \"sse\")",
            );
        }
        return EventSource::Poll;
    }
    let Some(s) = &spec.stream else {
        cx.err("events.stream", "style = \"sse\" needs [events.stream]");
        return EventSource::Poll;
    };
    if !has_messages {
        cx.err(
            "events.stream",
            "a message stream is read with [messages.fields]; this adapter has no [messages]",
        );
    }
    let endpoint = |cx: &mut Ctx, place: &str, method: &str, path: &str| {
        let method = method.to_ascii_uppercase();
        if !["GET", "POST"].contains(&method.as_str()) {
            cx.err(
                format!("{place}.method"),
                format!("{method:?}: a stream or its ticket is a GET or a POST"),
            );
        }
        let t = template(cx, &format!("{place}.path"), path)?;
        for p in t.params() {
            if !id_params.iter().any(|x| x == p) {
                cx.err(
                    format!("{place}.path"),
                    format!("placeholder {{{p}}} is not a param of the call's id (id.parts)"),
                );
            }
        }
        Some(Endpoint {
            method,
            path: t,
            query: Vec::new(),
        })
    };
    let ticket = spec.ticket.as_ref().and_then(|t| {
        let e = endpoint(cx, "events.ticket", &t.method, &t.path)?;
        let value = cx.paths("events.ticket.value", Some(&t.value));
        if t.param.is_empty() {
            cx.err(
                "events.ticket.param",
                "must name the stream's query parameter",
            );
        }
        Some(Ticket {
            endpoint: e,
            value,
            param: t.param.clone(),
        })
    });
    let stream = endpoint(cx, "events.stream", "GET", &s.path).map(|mut e| {
        e.query = s
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        e
    });
    let resume = match (&s.resume_header, &s.resume_param) {
        (Some(_), Some(_)) => {
            cx.err(
                "events.stream",
                "resume_header and resume_param: a reconnect resumes one way; give one",
            );
            ResumeBy::Header("Last-Event-ID".into())
        }
        (_, Some(q)) => ResumeBy::Query(q.clone()),
        (h, None) => ResumeBy::Header(h.clone().unwrap_or_else(|| "Last-Event-ID".into())),
    };
    let message = cx.path("events.stream.message", s.message.as_deref().unwrap_or("$"));
    let idle = s.idle_timeout_ms.unwrap_or(DEFAULT_IDLE_TIMEOUT_MS);
    if idle < 1000 {
        cx.err(
            "events.stream.idle_timeout_ms",
            "at least 1000: above the vendor's heartbeat interval",
        );
    }
    match (stream, message) {
        (Some(stream), Some(message)) => EventSource::Sse(Box::new(SseSource {
            ticket,
            stream,
            resume,
            message_event: s.message_event.clone().unwrap_or_else(|| "message".into()),
            message,
            heartbeat_event: s.heartbeat_event.clone(),
            idle_timeout: Duration::from_millis(idle),
        })),
        _ => EventSource::Poll,
    }
}

/// What one event of a vendor stream is.
#[derive(Debug, PartialEq)]
pub enum StreamEvent {
    /// A message of the call.
    Message(Message),
    /// The vendor's keep-alive.
    Heartbeat,
    /// An event type the adapter does not name (skipped).
    Other,
}

impl Adapter {
    /// The vendor's stream, when it has one.
    pub fn sse(&self) -> Option<&SseSource> {
        match &self.events {
            EventSource::Sse(s) => Some(s),
            EventSource::Poll => None,
        }
    }

    /// The ticket request of a call's stream (`params`: the id's params).
    pub fn plan_ticket(&self, params: &[(String, String)]) -> Option<VendorRequest> {
        let t = self.sse()?.ticket.as_ref()?;
        super::plan::build_request(&t.endpoint, Params(params), Vec::new()).ok()
    }

    /// The ticket in the ticket request's answer.
    pub fn read_ticket(&self, body: &Json) -> Option<String> {
        let t = self.sse()?.ticket.as_ref()?;
        t.value
            .iter()
            .find_map(|p| p.first(body).and_then(|v| v.as_str()).map(str::to_string))
            .filter(|t| !t.is_empty())
    }

    /// The stream request: with the ticket, resuming after the message `after` (its vendor id).
    pub fn plan_stream(
        &self,
        params: &[(String, String)],
        ticket: Option<&str>,
        after: Option<&str>,
    ) -> Result<VendorRequest, Problem> {
        let s = self.sse().ok_or_else(|| {
            Problem::new(
                ErrorCode::UnsupportedOperation,
                format!("vendor {:?} has no event stream", self.vendor),
            )
        })?;
        let mut query = Vec::new();
        if let (Some(t), Some(value)) = (&s.ticket, ticket) {
            query.push((t.param.clone(), value.to_string()));
        }
        let mut headers = vec![("Accept".to_string(), "text/event-stream".to_string())];
        match (&s.resume, after) {
            (ResumeBy::Query(q), Some(a)) => query.push((q.clone(), a.to_string())),
            (ResumeBy::Header(h), Some(a)) => headers.push((h.clone(), a.to_string())),
            (_, None) => {}
        }
        let mut req = super::plan::build_request(&s.stream, Params(params), query)?;
        req.headers = headers;
        Ok(req)
    }

    /// Reads one stream event: its type and JSON data. A message whose data is not JSON or
    /// holds no message object is an error naming what was wrong (the event is skipped).
    pub fn stream_event(
        &self,
        event: Option<&str>,
        data: Option<&str>,
        drift: &mut Vec<Drift>,
    ) -> Result<StreamEvent, String> {
        let Some(s) = self.sse() else {
            return Ok(StreamEvent::Other);
        };
        let event = event.unwrap_or("message");
        if s.heartbeat_event.as_deref() == Some(event) {
            return Ok(StreamEvent::Heartbeat);
        }
        if event != s.message_event {
            return Ok(StreamEvent::Other);
        }
        let data = data.unwrap_or_default();
        let json: Json = serde_json::from_str(data)
            .map_err(|e| format!("a {event:?} event's data is not JSON ({e})"))?;
        let node = s
            .message
            .first(&json)
            .filter(|n| n.is_object())
            .ok_or_else(|| format!("no message object at {}", s.message.source()))?;
        self.normalize_message(node, drift)
            .map(StreamEvent::Message)
            .ok_or_else(|| "the adapter has no [messages]".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::{EventSource, ResumeBy, StreamEvent};
    use crate::adapter::{compile, Adapter, AdapterError};
    use std::path::Path;

    const BIMPE: &str = include_str!("../../adapters/bimpe.toml");

    fn compiled(text: &str) -> Result<Adapter, Vec<AdapterError>> {
        compile(Path::new("bimpe.toml"), text)
    }

    fn places(text: &str) -> Vec<String> {
        compiled(text)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| format!("{}: {}", e.place, e.reason))
            .collect()
    }

    #[test]
    fn bimpe_streams_behind_a_ticket_and_plans_both_requests() {
        let a = compiled(BIMPE).unwrap();
        let s = a.sse().expect("bimpe streams");
        assert_eq!(s.resume, ResumeBy::Header("Last-Event-ID".into()));
        let params = vec![
            ("agent_id".to_string(), "agt 1".to_string()),
            ("call_id".to_string(), "c1".to_string()),
        ];
        let ticket = a.plan_ticket(&params).unwrap();
        assert_eq!(ticket.method, "POST");
        assert_eq!(
            ticket.path_and_query,
            "/api/v1/console/agents/agt%201/conversations/c1/stream-ticket"
        );
        let stream = a
            .plan_stream(&params, Some("tk_1"), Some("chat_9"))
            .unwrap();
        assert_eq!(
            stream.path_and_query,
            "/api/v1/console/agents/agt%201/conversations/c1/stream?ticket=tk_1"
        );
        assert_eq!(stream.header("last-event-id"), Some("chat_9"));
        assert_eq!(stream.header("accept"), Some("text/event-stream"));
        let answer: crate::adapter::Json =
            serde_json::from_str(r#"{"ticket": "tk_2", "expires_in": 60}"#).unwrap();
        assert_eq!(a.read_ticket(&answer).as_deref(), Some("tk_2"));
    }

    #[test]
    fn stream_events_are_read_with_the_message_fields() {
        let a = compiled(BIMPE).unwrap();
        let mut drift = Vec::new();
        let data = r#"{"id": "chat_1", "conversation_id": "c1", "role": "assistant", "message": "Hello", "message_type": "text", "created_at": "2026-12-05T10:00:00Z"}"#;
        let Ok(StreamEvent::Message(m)) = a.stream_event(Some("message"), Some(data), &mut drift)
        else {
            panic!("a message");
        };
        assert_eq!(m.id.as_deref(), Some("chat_1"));
        assert_eq!(m.content.as_deref(), Some("Hello"));
        assert_eq!(
            serde_json::to_value(m.role).unwrap(),
            serde_json::json!("agent")
        );
        let beat = a.stream_event(Some("heartbeat"), Some(r#"{"ts": 1}"#), &mut drift);
        assert_eq!(beat, Ok(StreamEvent::Heartbeat));
        assert_eq!(
            a.stream_event(Some("typing"), None, &mut drift),
            Ok(StreamEvent::Other)
        );
        let bad = a.stream_event(Some("message"), Some("not json"), &mut drift);
        assert!(bad.unwrap_err().contains("not JSON"));
    }

    #[test]
    fn a_wrong_events_table_is_refused_with_its_place() {
        let no_stream = BIMPE.replace(
            "[events.stream]\npath = \"/api/v1/console/agents/{agent_id}/conversations/{call_id}/stream\"",
            "[events.other]\npath = \"/x\"",
        );
        assert!(!places(&no_stream).is_empty());
        let bad_param = BIMPE.replace(
            "conversations/{call_id}/stream\"",
            "conversations/{chat}/stream\"",
        );
        assert!(
            places(&bad_param)
                .iter()
                .any(|p| p.starts_with("events.stream.path: placeholder {chat}")),
            "{:?}",
            places(&bad_param)
        );
        let both = BIMPE.replace(
            "resume_header = \"Last-Event-ID\"",
            "resume_header = \"Last-Event-ID\"\nresume_param = \"after\"",
        );
        assert!(places(&both)
            .iter()
            .any(|p| p.starts_with("events.stream: resume_header and resume_param")));
        let short = BIMPE.replace("idle_timeout_ms = 60000", "idle_timeout_ms = 10");
        assert!(places(&short)
            .iter()
            .any(|p| p.starts_with("events.stream.idle_timeout_ms")));
        let polled = BIMPE.replace("style = \"sse\"", "style = \"poll\"");
        assert!(places(&polled)
            .iter()
            .any(|p| p.starts_with("events: style = \"poll\" takes no")));
        let none = BIMPE.split("[events]").next().unwrap().to_string()
            + BIMPE
                .split("[maps.status]")
                .nth(1)
                .map(|r| format!("[maps.status]{r}"))
                .unwrap()
                .as_str();
        assert!(matches!(compiled(&none).unwrap().events, EventSource::Poll));
    }
}
