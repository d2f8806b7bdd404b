//! The canonical fields an adapter can fill, with the kind of value each holds.
//!
//! The names are the Call object's own (dotted for nested objects), so an adapter file reads like
//! the contract it fills. The kind decides which transforms are allowed and how a vendor value
//! is converted.

/// Which enum a field's values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumKind {
    Status,
    Channel,
    Direction,
    Role,
}

impl EnumKind {
    /// The canonical values of this enum.
    pub fn values(self) -> &'static [&'static str] {
        match self {
            EnumKind::Status => &[
                "queued",
                "ringing",
                "in_progress",
                "completed",
                "failed",
                "busy",
                "no_answer",
                "canceled",
                "voicemail",
                "unknown",
            ],
            EnumKind::Channel => &["call", "sms", "whatsapp", "email", "webchat"],
            EnumKind::Direction => &["inbound", "outbound"],
            EnumKind::Role => &["agent", "customer", "system", "tool"],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Timestamp,
    Number,
    Bool,
    Object,
    Enum(EnumKind),
}

macro_rules! field_set {
    ($ty:ident { $($variant:ident => $name:literal : $kind:expr),* $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $ty { $($variant),* }
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];
            pub fn name(self) -> &'static str { match self { $($ty::$variant => $name),* } }
            pub fn kind(self) -> Kind { match self { $($ty::$variant => $kind),* } }
            pub fn parse(name: &str) -> Option<$ty> { Self::ALL.iter().copied().find(|f| f.name() == name) }
            pub fn index(self) -> usize { self as usize }
        }
    };
}

type K = Kind;
type E = EnumKind;

field_set!(CallField {
    ProviderCallId => "providerCallId": K::Text,
    Status => "status": K::Enum(E::Status),
    ProviderStatus => "providerStatus": K::Text,
    Channel => "channel": K::Enum(E::Channel),
    Direction => "direction": K::Enum(E::Direction),
    AgentId => "agent.id": K::Text,
    AgentPhone => "agent.phone": K::Text,
    AgentEmail => "agent.email": K::Text,
    CustomerId => "customer.id": K::Text,
    CustomerName => "customer.name": K::Text,
    CustomerPhone => "customer.phone": K::Text,
    CustomerEmail => "customer.email": K::Text,
    From => "from": K::Text,
    To => "to": K::Text,
    CreatedAt => "createdAt": K::Timestamp,
    RingingAt => "ringingAt": K::Timestamp,
    StartedAt => "startedAt": K::Timestamp,
    AnsweredAt => "answeredAt": K::Timestamp,
    EndedAt => "endedAt": K::Timestamp,
    DurationSeconds => "durationSeconds": K::Number,
    EndReason => "endReason": K::Text,
    ProviderEndReason => "providerEndReason": K::Text,
    RecordingUrl => "recordingUrl": K::Text,
    Transcript => "transcript": K::Text,
    AnalysisSuccessful => "analysis.successful": K::Bool,
    AnalysisSummary => "analysis.summary": K::Text,
    AnalysisSentiment => "analysis.sentiment": K::Text,
    AnalysisInVoicemail => "analysis.inVoicemail": K::Bool,
    CostAmount => "cost.amount": K::Number,
    CostCurrency => "cost.currency": K::Text,
    Metadata => "metadata": K::Object,
    IsTest => "isTest": K::Bool,
});

field_set!(MessageField {
    Id => "id": K::Text,
    Role => "role": K::Enum(E::Role),
    Content => "content": K::Text,
    CreatedAt => "createdAt": K::Timestamp,
    Status => "status": K::Text,
});

field_set!(AttachmentField {
    Type => "type": K::Text,
    Url => "url": K::Text,
});
