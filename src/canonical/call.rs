//! The canonical Call object (DESIGN.md, "Call object"): every field is always present, `null`
//! where the vendor supplies nothing. Field order here is the order clients see.

use serde::Serialize;
use serde_json::{Map, Value};

/// Canonical call status. A vendor value no adapter rule knows becomes [`CallStatus::Unknown`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Completed,
    Failed,
    Busy,
    NoAnswer,
    Canceled,
    Voicemail,
    #[default]
    Unknown,
}

impl CallStatus {
    pub const ALL: [CallStatus; 10] = [
        CallStatus::Queued,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Failed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Canceled,
        CallStatus::Voicemail,
        CallStatus::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::Failed => "failed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Canceled => "canceled",
            CallStatus::Voicemail => "voicemail",
            CallStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|v| v.name() == s)
    }

    /// A call in this status may still change (short or no caching; later issues use it).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress | CallStatus::Unknown
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Call,
    Sms,
    Whatsapp,
    Email,
    Webchat,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Call,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Email,
        Channel::Webchat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Call => "call",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Email => "email",
            Channel::Webchat => "webchat",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|v| v.name() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    Agent,
    Customer,
    System,
    Tool,
}

impl MessageRole {
    pub fn parse(s: &str) -> Option<MessageRole> {
        match s {
            "agent" => Some(MessageRole::Agent),
            "customer" => Some(MessageRole::Customer),
            "system" => Some(MessageRole::System),
            "tool" => Some(MessageRole::Tool),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Party {
    /// The canonical agent (config `[agents]`) this vendor agent is; `null` when it is none.
    pub key: Option<String>,
    pub id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Customer {
    pub id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Option<String>,
    pub role: Option<MessageRole>,
    pub content: Option<String>,
    pub created_at: Option<String>,
    pub attachments: Vec<Attachment>,
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub successful: Option<bool>,
    pub summary: Option<String>,
    pub sentiment: Option<String>,
    pub in_voicemail: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    pub amount: Option<f64>,
    pub currency: Option<String>,
}

/// One call, normalized. Built only by the adapter engine; serialized as-is to clients.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub id: String,
    pub provider: String,
    pub vendor: String,
    pub provider_call_id: String,
    pub status: CallStatus,
    pub provider_status: Option<String>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub agent: Party,
    pub customer: Customer,
    pub from: Option<String>,
    pub to: Option<String>,
    pub created_at: Option<String>,
    pub ringing_at: Option<String>,
    pub started_at: Option<String>,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub end_reason: Option<String>,
    pub provider_end_reason: Option<String>,
    pub recording_url: Option<String>,
    pub transcript: Option<String>,
    pub messages: Vec<Message>,
    pub analysis: Option<Analysis>,
    pub cost: Option<Cost>,
    pub metadata: Map<String, Value>,
    pub is_test: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

/// One page of a list (DESIGN.md, "Lists and pagination").
#[derive(Clone, Debug, Serialize)]
pub struct CallPage {
    pub data: Vec<Call>,
    pub pagination: Pagination,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub limit: u32,
    pub next_cursor: Option<String>,
    pub total_count: Option<u64>,
}
