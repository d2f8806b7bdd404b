//! Live call events — the canonical content of `GET /v1/calls/{id}/events`, whatever the vendor:
//!
//! - `message`: `{callId, message}` (a canonical message), once per message, in order;
//! - `status`: `{callId, status, providerStatus, at}` when the canonical status changes;
//! - `end`: the final canonical call, once, after its messages; the stream closes after it.
//!
//! A [`Tracker`] turns successive views of one call (a vendor's get answer, polled; or a call
//! whose messages a vendor stream extended) into these events. Every event's id is a [`Resume`]
//! position — what the client has seen, not a key into server memory — so `Last-Event-ID`
//! resumes with no duplicate and no gap on any replica and after a restart: a tracker started
//! from it emits exactly what follows. Messages are found again by their vendor id when they
//! have one (a list that shifts does not repeat them), else by count. Pure: no I/O, no clock.

use super::{Call, ErrorCode, Message, Problem};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;

/// Where a client stands in a call's events; encoded as every event's `id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    #[serde(rename = "v")]
    version: u8,
    /// Messages sent so far, counted in the call's message order.
    #[serde(rename = "m")]
    pub messages: u32,
    /// The vendor id of the last message sent, when it had one.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    /// The canonical status last sent, if any.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `end` was sent.
    #[serde(rename = "e", default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
}

impl Resume {
    /// The start of a stream: nothing seen.
    pub fn start() -> Resume {
        Resume {
            version: VERSION,
            ..Resume::default()
        }
    }

    /// The event id: base64url of a small JSON document.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a `Last-Event-ID` (or `after`) this gateway gave out; `field` names it in the
    /// problem when it is not one.
    pub fn decode(text: &str, field: &str) -> Result<Resume, Problem> {
        let bad = || {
            Problem::field(
                ErrorCode::InvalidRequest,
                field,
                "not an event id of this stream; reconnect without it to start from the beginning",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let r: Resume = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if r.version != VERSION {
            return Err(bad());
        }
        Ok(r)
    }
}

/// The `after` query parameter of a stream (an event id to resume after), the only one it takes.
pub fn after(query: Option<&str>) -> Result<Option<String>, Problem> {
    let mut after = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "after" => after = Some(value.into_owned()),
            other => {
                return Err(Problem::field(
                    ErrorCode::InvalidRequest,
                    other,
                    "unknown query parameter; a stream takes only `after` (an event id)",
                ))
            }
        }
    }
    Ok(after)
}

/// What an event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Message,
    Status,
    End,
}

impl EventKind {
    /// The SSE `event:` name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Status => "status",
            EventKind::End => "end",
        }
    }
}

/// One event: its kind, its id (the position after it) and its JSON data.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub id: String,
    pub data: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageData<'a> {
    call_id: &'a str,
    message: &'a Message,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusData<'a> {
    call_id: &'a str,
    status: &'a str,
    provider_status: Option<&'a str>,
    at: &'a str,
}

/// Turns views of one call into its events, from a position on.
#[derive(Clone, Debug)]
pub struct Tracker {
    at: Resume,
}

impl Tracker {
    pub fn new(from: Resume) -> Tracker {
        Tracker { at: from }
    }

    /// Where the events given out so far leave a client.
    pub fn position(&self) -> &Resume {
        &self.at
    }

    /// `end` was given out: nothing follows.
    pub fn ended(&self) -> bool {
        self.at.ended
    }

    /// The events `call` (the call as the vendor shows it now) brings after the position, in
    /// order: a status the call reached, its new messages, and, once it is over, the final
    /// status and `end`. `now` (RFC 3339) is the `at` of a status change.
    pub fn observe(&mut self, call: &Call, now: &str) -> Vec<Event> {
        let mut out = Vec::new();
        if self.at.ended {
            return out;
        }
        let live = call.status.is_live();
        if live {
            self.status(call, now, &mut out);
        }
        for m in &call.messages[self.first_new(&call.messages)..] {
            self.at.messages = self.at.messages.saturating_add(1);
            self.at.last_message = m.id.clone();
            let data = MessageData {
                call_id: &call.id,
                message: m,
            };
            out.push(self.event(EventKind::Message, &data));
        }
        if !live {
            self.status(call, now, &mut out);
            self.at.ended = true;
            out.push(self.event(EventKind::End, call));
        }
        out
    }

    /// Index of the first message not given out yet.
    fn first_new(&self, messages: &[Message]) -> usize {
        let by_id = self.at.last_message.as_deref().and_then(|last| {
            messages
                .iter()
                .rposition(|m| m.id.as_deref() == Some(last))
                .map(|i| i + 1)
        });
        by_id
            .unwrap_or(self.at.messages as usize)
            .min(messages.len())
    }

    fn status(&mut self, call: &Call, now: &str, out: &mut Vec<Event>) {
        let status = call.status.name();
        if self.at.status.as_deref() == Some(status) {
            return;
        }
        self.at.status = Some(status.to_string());
        let data = StatusData {
            call_id: &call.id,
            status,
            provider_status: call.provider_status.as_deref(),
            at: now,
        };
        out.push(self.event(EventKind::Status, &data));
    }

    fn event<T: Serialize>(&self, kind: EventKind, data: &T) -> Event {
        Event {
            kind,
            id: self.at.encode(),
            data: serde_json::to_string(data).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::CallStatus;
    use proptest::prelude::*;

    fn call(status: CallStatus, messages: usize, with_ids: bool) -> Call {
        Call {
            id: "p:1".into(),
            status,
            messages: (0..messages)
                .map(|i| Message {
                    id: with_ids.then(|| format!("chat_{i}")),
                    content: Some(format!("line {i}")),
                    ..Message::default()
                })
                .collect(),
            ..Call::default()
        }
    }

    fn contents(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Message)
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                v["message"]["content"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn a_live_call_gives_status_then_messages_and_an_ended_one_messages_then_end() {
        let mut t = Tracker::new(Resume::start());
        let e = t.observe(&call(CallStatus::InProgress, 2, true), "t1");
        let kinds: Vec<_> = e.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventKind::Status, EventKind::Message, EventKind::Message]
        );
        assert!(t
            .observe(&call(CallStatus::InProgress, 2, true), "t2")
            .is_empty());
        let e = t.observe(&call(CallStatus::Completed, 3, true), "t3");
        let kinds: Vec<_> = e.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventKind::Message, EventKind::Status, EventKind::End]
        );
        assert!(t.ended());
        assert!(t
            .observe(&call(CallStatus::Completed, 4, true), "t4")
            .is_empty());
    }

    #[test]
    fn an_event_id_resumes_right_after_its_event() {
        let mut t = Tracker::new(Resume::start());
        let e = t.observe(&call(CallStatus::InProgress, 3, true), "t");
        let second = Resume::decode(&e[2].id, "Last-Event-ID").unwrap();
        let mut resumed = Tracker::new(second);
        assert_eq!(
            contents(&resumed.observe(&call(CallStatus::InProgress, 4, true), "t")),
            ["line 2", "line 3"]
        );
        assert_eq!(
            Resume::decode("garbage", "Last-Event-ID")
                .unwrap_err()
                .errors[0]
                .field,
            "Last-Event-ID"
        );
    }

    #[test]
    fn messages_are_found_by_id_when_older_ones_drop_out_of_the_view() {
        let mut t = Tracker::new(Resume::start());
        t.observe(&call(CallStatus::InProgress, 3, true), "t");
        // The vendor now shows only the last two messages and a new one.
        let mut c = call(CallStatus::InProgress, 4, true);
        c.messages.remove(0);
        c.messages.remove(0);
        assert_eq!(contents(&t.observe(&c, "t")), ["line 3"]);
    }

    proptest! {
        /// Whatever the views (messages only ever added, a status walk that ends) and wherever
        /// a client drops and resumes with the last id it saw: every message exactly once, in
        /// order, and `end` exactly once.
        #[test]
        fn resuming_anywhere_loses_nothing_and_repeats_nothing(
            steps in proptest::collection::vec((0usize..4, 0usize..3), 1..12),
            cut in any::<prop::sample::Index>(),
            with_ids in any::<bool>(),
        ) {
            let live = [CallStatus::Queued, CallStatus::Ringing, CallStatus::InProgress];
            let mut views = Vec::new();
            let mut n = 0;
            for (added, status) in &steps {
                n += added;
                views.push(call(live[*status], n, with_ids));
            }
            views.push(call(CallStatus::Completed, n + 1, with_ids));
            let mut first = Tracker::new(Resume::start());
            let mut all = Vec::new();
            let mut view_of = Vec::new();
            for (i, v) in views.iter().enumerate() {
                for e in first.observe(v, "t") {
                    all.push(e);
                    view_of.push(i);
                }
            }
            let k = cut.index(all.len());
            let seen = &all[..=k];
            // The client reconnects some views later and sees what is shown then.
            let mut again = Tracker::new(Resume::decode(&seen[k].id, "Last-Event-ID").unwrap());
            let mut rest = Vec::new();
            for v in &views[view_of[k]..] {
                rest.extend(again.observe(v, "t"));
            }
            let got: Vec<Event> = seen.iter().cloned().chain(rest).collect();
            let want: Vec<String> = (0..=n).map(|i| format!("line {i}")).collect();
            prop_assert_eq!(contents(&got), want);
            prop_assert_eq!(got.iter().filter(|e| e.kind == EventKind::End).count(), 1);
        }
    }
}
