//! Bimpe's per-conversation message stream (Server-Sent Events), the parts that live in the
//! simulator's state: single-use stream tickets bound to an agent, a conversation and the API
//! key that asked for them; the per-key count of open streams (at most
//! [`MAX_STREAMS_PER_KEY`]); and the resume position (`Last-Event-ID` or `after`: a chat id or
//! an ISO-8601 instant) turned into a [`Cursor`] over the conversation's messages. `bimpe.rs`
//! routes the two endpoints here; `stream.rs` writes the stream itself.

use crate::server::SimRequest;
use crate::stream::StreamEvent;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Streams one API key may have open at once; one more answers 429 `too_many_streams`.
pub const MAX_STREAMS_PER_KEY: usize = 25;

/// How long a stream ticket is valid after it was issued.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// Why a stream request was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `ticket` query parameter.
    Missing,
    /// Unknown, already used, expired, or issued for another agent or conversation.
    Invalid,
    /// The ticket's API key already has [`MAX_STREAMS_PER_KEY`] streams open.
    TooMany,
}

struct Ticket {
    agent: String,
    conversation: String,
    key: String,
    expires: Instant,
}

/// The tickets issued and not yet used, and the open streams per API key.
#[derive(Default)]
pub(crate) struct StreamBook {
    tickets: HashMap<String, Ticket>,
    open: HashMap<String, usize>,
}

impl StreamBook {
    /// A new ticket for a stream of `conversation` of `agent`, on behalf of `key`.
    pub fn issue(&mut self, agent: &str, conversation: &str, key: &str, now: Instant) -> String {
        self.tickets.retain(|_, t| t.expires > now);
        let ticket = format!("tk_{}", uuid::Uuid::new_v4().simple());
        self.tickets.insert(
            ticket.clone(),
            Ticket {
                agent: agent.to_string(),
                conversation: conversation.to_string(),
                key: key.to_string(),
                expires: now + TICKET_TTL,
            },
        );
        ticket
    }

    /// Uses up `ticket` (any presentation of a ticket consumes it, whatever the outcome) and,
    /// when it is good for this stream and its key has a free slot, counts one more open stream
    /// for that key and returns the key. The caller gives the slot back with [`close`].
    ///
    /// [`close`]: StreamBook::close
    pub fn redeem(
        &mut self,
        ticket: Option<&str>,
        agent: &str,
        conversation: &str,
        now: Instant,
    ) -> Result<String, Refusal> {
        let ticket = ticket.filter(|t| !t.is_empty()).ok_or(Refusal::Missing)?;
        let t = self.tickets.remove(ticket).ok_or(Refusal::Invalid)?;
        if t.expires <= now || t.agent != agent || t.conversation != conversation {
            return Err(Refusal::Invalid);
        }
        let open = self.open.entry(t.key.clone()).or_default();
        if *open >= MAX_STREAMS_PER_KEY {
            return Err(Refusal::TooMany);
        }
        *open += 1;
        Ok(t.key)
    }

    /// A stream of `key` has ended.
    pub fn close(&mut self, key: &str) {
        if let Some(open) = self.open.get_mut(key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.open.remove(key);
            }
        }
    }

    /// Streams open now, all keys together.
    pub fn open_total(&self) -> usize {
        self.open.values().sum()
    }
}

/// Where a stream resumes: the `Last-Event-ID` header, else the `after` query parameter (an
/// empty one counts as absent).
pub(crate) fn position(req: &SimRequest) -> Option<String> {
    let header = req.header("last-event-id").map(str::trim);
    header
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .or_else(|| req.query_param("after").filter(|a| !a.trim().is_empty()))
}

/// Which of a conversation's messages a stream has still to send. Logs only grow, so the index
/// of the next unseen entry is enough to send each message once.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub agent: String,
    pub conversation: String,
    /// Index in the conversation's logs of the first message not looked at yet.
    next: usize,
    /// Resumed at an instant: only messages created strictly after it are sent.
    after: Option<OffsetDateTime>,
}

impl Cursor {
    /// A cursor at `position` in `logs`: after that chat id (from the start when the id is not
    /// in the conversation), after that RFC 3339 instant, or at the start.
    pub fn new(agent: &str, conversation: &str, position: Option<&str>, logs: &[Value]) -> Cursor {
        let mut cursor = Cursor {
            agent: agent.to_string(),
            conversation: conversation.to_string(),
            next: 0,
            after: None,
        };
        match position {
            None => {}
            Some(p) => match OffsetDateTime::parse(p.trim(), &Rfc3339) {
                Ok(instant) => cursor.after = Some(instant),
                Err(_) => {
                    cursor.next = logs
                        .iter()
                        .position(|m| m["id"].as_str() == Some(p.trim()))
                        .map_or(0, |i| i + 1);
                }
            },
        }
        cursor
    }

    /// The message events of `logs` (the conversation's entries now) not sent yet, in order.
    pub fn take(&mut self, logs: &[Value]) -> Vec<StreamEvent> {
        let fresh = logs.get(self.next..).unwrap_or_default();
        self.next = self.next.max(logs.len());
        fresh
            .iter()
            .filter(|m| {
                self.after.is_none_or(|after| {
                    m["created_at"]
                        .as_str()
                        .and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok())
                        .is_some_and(|created| created > after)
                })
            })
            .map(|m| StreamEvent {
                id: m["id"].as_str().unwrap_or_default().to_string(),
                data: json!({
                    "id": m["id"],
                    "conversation_id": self.conversation,
                    "role": m["role"],
                    "message": m["message"],
                    "message_type": m["message_type"],
                    "created_at": m["created_at"],
                })
                .to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Vec<Value> {
        (0..4)
            .map(|n| {
                json!({"id": format!("chat_{n}"), "role": "user", "message": format!("line {n}"),
                    "message_type": "text", "created_at": format!("2026-10-05T12:00:0{n}Z"),
                    "attachments": []})
            })
            .collect()
    }

    fn ids(events: &[StreamEvent]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn a_ticket_is_single_use_bound_and_expires() {
        let mut book = StreamBook::default();
        let now = Instant::now();
        let t = book.issue("a", "c", "key", now);
        assert!(t.starts_with("tk_") && t.len() == 35, "{t}");
        assert_eq!(book.redeem(Some(&t), "a", "c", now), Ok("key".into()));
        assert_eq!(book.redeem(Some(&t), "a", "c", now), Err(Refusal::Invalid));
        assert_eq!(book.redeem(None, "a", "c", now), Err(Refusal::Missing));
        assert_eq!(book.redeem(Some(""), "a", "c", now), Err(Refusal::Missing));
        let t = book.issue("a", "c", "key", now);
        assert_eq!(
            book.redeem(Some(&t), "a", "other", now),
            Err(Refusal::Invalid)
        );
        assert_eq!(book.redeem(Some(&t), "a", "c", now), Err(Refusal::Invalid));
        let t = book.issue("a", "c", "key", now);
        let later = now + TICKET_TTL + Duration::from_secs(1);
        assert_eq!(
            book.redeem(Some(&t), "a", "c", later),
            Err(Refusal::Invalid)
        );
        assert_eq!(book.open_total(), 1);
        book.close("key");
        assert_eq!(book.open_total(), 0);
    }

    #[test]
    fn streams_are_counted_per_key() {
        let mut book = StreamBook::default();
        let now = Instant::now();
        for _ in 0..MAX_STREAMS_PER_KEY {
            let t = book.issue("a", "c", "key", now);
            assert!(book.redeem(Some(&t), "a", "c", now).is_ok());
        }
        let t = book.issue("a", "c", "key", now);
        assert_eq!(book.redeem(Some(&t), "a", "c", now), Err(Refusal::TooMany));
        assert_eq!(book.redeem(Some(&t), "a", "c", now), Err(Refusal::Invalid));
        let t = book.issue("a", "c", "other-key", now);
        assert!(book.redeem(Some(&t), "a", "c", now).is_ok());
        book.close("key");
        let t = book.issue("a", "c", "key", now);
        assert!(book.redeem(Some(&t), "a", "c", now).is_ok());
        assert_eq!(book.open_total(), MAX_STREAMS_PER_KEY + 1);
    }

    #[test]
    fn positions_resume_after_a_chat_id_or_an_instant() {
        let all = logs();
        let take = |p: Option<&str>| {
            let mut c = Cursor::new("a", "c", p, &all);
            c.take(&all)
        };
        assert_eq!(ids(&take(None)), ["chat_0", "chat_1", "chat_2", "chat_3"]);
        assert_eq!(ids(&take(Some("chat_1"))), ["chat_2", "chat_3"]);
        assert_eq!(ids(&take(Some("chat_3"))), Vec::<&str>::new());
        assert_eq!(ids(&take(Some("chat_nope"))).len(), 4);
        assert_eq!(
            ids(&take(Some("2026-10-05T12:00:01Z"))),
            ["chat_2", "chat_3"]
        );
        assert_eq!(
            ids(&take(Some("2026-10-05T12:00:01.5Z"))),
            ["chat_2", "chat_3"]
        );
        assert_eq!(ids(&take(Some("2026-01-01T00:00:00+01:00"))).len(), 4);
        let data: Value = serde_json::from_str(&take(Some("chat_2"))[0].data).unwrap();
        assert_eq!(
            data,
            json!({"id": "chat_3", "conversation_id": "c", "role": "user", "message": "line 3",
                "message_type": "text", "created_at": "2026-10-05T12:00:03Z"})
        );
    }

    #[test]
    fn a_cursor_sends_each_new_message_once() {
        let all = logs();
        let mut c = Cursor::new("a", "c", None, &all[..1]);
        assert_eq!(ids(&c.take(&all[..1])), ["chat_0"]);
        assert!(c.take(&all[..1]).is_empty());
        assert_eq!(ids(&c.take(&all[..3])), ["chat_1", "chat_2"]);
        assert_eq!(ids(&c.take(&all)), ["chat_3"]);
        assert!(c.take(&all).is_empty());
    }
}
