//! Normalization: a vendor's answer → canonical [`Call`]s, driven only by the compiled adapter.
//!
//! A field the vendor lacks is `null`; a value of the wrong type or an enum value no rule knows is
//! reported as [`Drift`] and does not fail the call. What does fail (→ `502 provider_error`) is an
//! answer with no call object where the adapter says one is, or a call without the fields its
//! canonical id is made of.

use super::fields::{AttachmentField, CallField, EnumKind, MessageField};
use super::rules::{Drift, Evaluator, Params};
use super::Json;
use super::{Adapter, MessageMapping};
use crate::canonical::call::{Analysis, Attachment, Cost, Customer, Message, MessageRole, Party};
use crate::canonical::id::CallId;
use crate::canonical::{Call, CallStatus, Channel, Direction};

/// What a request contributes to normalization.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub provider: &'a str,
    /// The provider's vendor agent ids that are canonical agents (for `agent.key`).
    pub agents: &'a AgentKeys,
    /// Request parameters the vendor body may not repeat (e.g. `agent_id` of an agent-scoped API).
    pub params: Params<'a>,
    pub include_raw: bool,
}

/// Vendor agent id → canonical agent name, at one provider (config `[agents]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentKeys(pub std::collections::BTreeMap<String, String>);

impl AgentKeys {
    /// No canonical agents.
    pub const NONE: &'static AgentKeys = &AgentKeys(std::collections::BTreeMap::new());

    /// The canonical name of a vendor agent id, if it is one.
    pub fn key(&self, agent_id: &str) -> Option<&str> {
        self.0.get(agent_id).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("the answer holds no call object where the adapter expects one ({0})")]
    NoItem(String),
    #[error("a call record is not a JSON object")]
    NotAnObject,
    #[error("a call record lacks {0}, which its canonical id is made of")]
    NoId(&'static str),
}

/// The page-level facts of a list answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ListMeta {
    pub has_next: Option<bool>,
    pub total: Option<u64>,
    pub total_pages: Option<u64>,
}

impl Adapter {
    /// The call object of a `get_call` answer.
    pub fn extract_item<'a, 'j>(&self, body: &'a Json<'j>) -> Result<&'a Json<'j>, NormalizeError> {
        let paths = self
            .get
            .as_ref()
            .map(|g| g.item.as_slice())
            .unwrap_or_default();
        paths
            .iter()
            .find_map(|p| p.first(body).filter(|v| v.is_object()))
            .ok_or_else(|| NormalizeError::NoItem(sources(paths)))
    }

    /// The call records of a `list_calls` answer, in the vendor's order, and its paging facts.
    pub fn extract_list<'a, 'j>(
        &self,
        body: &'a Json<'j>,
    ) -> Result<(Vec<&'a Json<'j>>, ListMeta), NormalizeError> {
        let Some(list) = &self.list else {
            return Err(NormalizeError::NoItem("no list_calls operation".into()));
        };
        let found = list
            .items
            .iter()
            .find(|p| matches!(p.first(body), Some(Json::Array(_)) | Some(Json::Object(_))));
        let Some(path) = found else {
            return Err(NormalizeError::NoItem(sources(&list.items)));
        };
        let items = path.elements(body);
        if items.iter().any(|v| !v.is_object()) {
            return Err(NormalizeError::NotAnObject);
        }
        let pg = &list.pagination;
        let first_u64 =
            |paths: &[super::path::JsonPath]| paths.iter().find_map(|p| p.first(body)?.as_u64());
        let meta = ListMeta {
            has_next: pg.has_next.iter().find_map(|p| p.first(body)?.as_bool()),
            total: first_u64(&pg.total),
            total_pages: first_u64(&pg.total_pages),
        };
        Ok((items, meta))
    }

    /// Normalizes one call record, appending drift to `drift`.
    pub fn normalize_call(
        &self,
        item: &Json,
        cx: Context<'_>,
        drift: &mut Vec<Drift>,
    ) -> Result<Call, NormalizeError> {
        self.normalize_with(&self.call, item, cx, drift)
    }

    /// Normalizes the answer of a write operation with that operation's field rules.
    pub fn normalize_write(
        &self,
        op: &super::WriteOperation,
        body: &Json,
        cx: Context<'_>,
        drift: &mut Vec<Drift>,
    ) -> Result<Call, NormalizeError> {
        let item = op
            .item
            .iter()
            .find_map(|p| p.first(body).filter(|v| v.is_object()))
            .ok_or_else(|| NormalizeError::NoItem(sources(&op.item)))?;
        self.normalize_with(&op.call, item, cx, drift)
    }

    fn normalize_with(
        &self,
        m: &super::CallMapping,
        item: &Json,
        cx: Context<'_>,
        drift: &mut Vec<Drift>,
    ) -> Result<Call, NormalizeError> {
        if !item.is_object() {
            return Err(NormalizeError::NotAnObject);
        }
        let mut ev = Evaluator {
            params: cx.params,
            drift,
        };
        let mut text = |f: CallField| ev.text(f.name(), m.rule(f), item);
        let provider_call_id = text(CallField::ProviderCallId);
        let provider_status = text(CallField::ProviderStatus);
        let agent_id = text(CallField::AgentId);
        let agent = Party {
            key: agent_id
                .as_deref()
                .and_then(|id| cx.agents.key(id))
                .map(str::to_string),
            id: agent_id,
            phone: text(CallField::AgentPhone),
            email: text(CallField::AgentEmail),
        };
        let customer = Customer {
            id: text(CallField::CustomerId),
            name: text(CallField::CustomerName),
            phone: text(CallField::CustomerPhone),
            email: text(CallField::CustomerEmail),
        };
        let (from, to) = (text(CallField::From), text(CallField::To));
        let end_reason = text(CallField::EndReason);
        let provider_end_reason = text(CallField::ProviderEndReason);
        let recording_url = text(CallField::RecordingUrl);
        let transcript = text(CallField::Transcript);
        let summary = text(CallField::AnalysisSummary);
        let sentiment = text(CallField::AnalysisSentiment);
        let currency = text(CallField::CostCurrency);

        // The id is made of fields already normalized above (or of request parameters).
        let mut parts: Vec<&str> = Vec::with_capacity(self.id_parts.len());
        for part in &self.id_parts {
            let value = match part.field {
                CallField::ProviderCallId => provider_call_id.as_deref(),
                CallField::AgentId => agent.id.as_deref(),
                CallField::CustomerId => customer.id.as_deref(),
                _ => cx.params.get(&part.param),
            };
            parts.push(value.ok_or(NormalizeError::NoId(part.field.name()))?);
        }
        let id = CallId::encode(cx.provider, &parts);
        let provider_call_id = provider_call_id.ok_or(NormalizeError::NoId("providerCallId"))?;

        let mut ts = |f: CallField| ev.timestamp(f.name(), m.rule(f), item);
        let (created_at, ringing_at, started_at, answered_at, ended_at) = (
            ts(CallField::CreatedAt),
            ts(CallField::RingingAt),
            ts(CallField::StartedAt),
            ts(CallField::AnsweredAt),
            ts(CallField::EndedAt),
        );
        let status =
            match ev.enumerated("status", EnumKind::Status, m.rule(CallField::Status), item) {
                Some(s) => CallStatus::parse(s).unwrap_or(CallStatus::Unknown),
                None => {
                    if m.rule(CallField::Status)
                        .and_then(|r| r.find(item, cx.params))
                        .is_none()
                    {
                        ev.drift.push(Drift {
                            field: "status",
                            kind: super::rules::DriftKind::MissingRequired,
                        });
                    }
                    CallStatus::Unknown
                }
            };
        let channel = ev
            .enumerated(
                "channel",
                EnumKind::Channel,
                m.rule(CallField::Channel),
                item,
            )
            .and_then(Channel::parse);
        let direction = ev
            .enumerated(
                "direction",
                EnumKind::Direction,
                m.rule(CallField::Direction),
                item,
            )
            .and_then(Direction::parse);
        let duration_seconds =
            ev.number("durationSeconds", m.rule(CallField::DurationSeconds), item);
        let amount = ev.number("cost.amount", m.rule(CallField::CostAmount), item);
        let successful = ev.boolean(
            "analysis.successful",
            m.rule(CallField::AnalysisSuccessful),
            item,
        );
        let in_voicemail = ev.boolean(
            "analysis.inVoicemail",
            m.rule(CallField::AnalysisInVoicemail),
            item,
        );
        let is_test = ev.boolean("isTest", m.rule(CallField::IsTest), item);
        let metadata = ev.object("metadata", m.rule(CallField::Metadata), item);
        let messages = match &self.messages {
            Some(mm) => messages(mm, item, &mut ev),
            None => Vec::new(),
        };
        let analysis = Analysis {
            successful,
            summary,
            sentiment,
            in_voicemail,
        };
        let cost = Cost { amount, currency };
        Ok(Call {
            id,
            provider: cx.provider.to_string(),
            vendor: self.vendor.clone(),
            provider_call_id,
            status,
            provider_status,
            channel,
            direction,
            agent,
            customer,
            from,
            to,
            created_at,
            ringing_at,
            started_at,
            answered_at,
            ended_at,
            duration_seconds,
            end_reason,
            provider_end_reason,
            recording_url,
            transcript,
            messages,
            analysis: (analysis != Analysis::default()).then_some(analysis),
            cost: (cost != Cost::default()).then_some(cost),
            metadata,
            is_test,
            raw: cx.include_raw.then(|| serde_json::Value::from(item)),
        })
    }
}

impl Adapter {
    /// Normalizes one message node (as `[messages]` finds them in a call, or a vendor stream
    /// sends them); `None` when the adapter has no `[messages]`.
    pub fn normalize_message(&self, node: &Json, drift: &mut Vec<Drift>) -> Option<Message> {
        let mm = self.messages.as_ref()?;
        let mut ev = Evaluator {
            params: Params(&[]),
            drift,
        };
        Some(message(mm, node, &mut ev))
    }
}

fn messages(mm: &MessageMapping, item: &Json, ev: &mut Evaluator<'_>) -> Vec<Message> {
    mm.path
        .elements(item)
        .into_iter()
        .map(|node| message(mm, node, ev))
        .collect()
}

fn message(mm: &MessageMapping, node: &Json, ev: &mut Evaluator<'_>) -> Message {
    let rule = |f: MessageField| mm.rules[f.index()].as_ref();
    let attachments = mm
        .attachments
        .as_ref()
        .map(|am| {
            am.path
                .elements(node)
                .into_iter()
                .filter_map(|a| {
                    let r = |f: AttachmentField| am.rules[f.index()].as_ref();
                    Some(Attachment {
                        url: ev.text("messages.attachments.url", r(AttachmentField::Url), a)?,
                        kind: ev.text("messages.attachments.type", r(AttachmentField::Type), a),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Message {
        id: ev.text("messages.id", rule(MessageField::Id), node),
        role: ev
            .enumerated(
                "messages.role",
                EnumKind::Role,
                rule(MessageField::Role),
                node,
            )
            .and_then(MessageRole::parse),
        content: ev.text("messages.content", rule(MessageField::Content), node),
        created_at: ev.timestamp("messages.createdAt", rule(MessageField::CreatedAt), node),
        attachments,
        status: ev.text("messages.status", rule(MessageField::Status), node),
    }
}

fn sources(paths: &[super::path::JsonPath]) -> String {
    paths
        .iter()
        .map(|p| p.source())
        .collect::<Vec<_>>()
        .join(", ")
}
