//! The reader of a watched call whose vendor streams its messages (adapter `[events] style =
//! "sse"`, e.g. Bimpe): one upstream stream per watched call, shared by all its clients.
//!
//! - **Open**: the call is read once (`get_call`), then the vendor stream is opened — a new
//!   ticket first when the adapter says (never shown to a client, never logged), resuming after
//!   the last message known. Only then does the first client get its first byte, so a refusal
//!   (`too_many_streams`, a bad key, an unknown call) is its problem answer.
//! - **Messages** come from the stream as they are said; the call is still read every
//!   `[events] stream_status_poll_ms` for its status and end (the stream carries messages only).
//!   Views are the last read call with the stream's newer messages after its own ([`Merged`]),
//!   so a client's [`Tracker`](crate::canonical::events::Tracker) sees one growing list.
//! - **Reconnects**: a stream that ends, breaks or stays silent past the adapter's
//!   `idle_timeout_ms` (the vendor's heartbeats keep it alive; they are never forwarded) is
//!   opened again with a new ticket, after the last message seen, backing off while it fails;
//!   meanwhile the call is read every `poll_ms`, so no message waits for the stream. A vendor
//!   that refuses the reconnect (an answer, not a network failure) ends the clients' streams
//!   with a retry hint; they resume from their last id.

use super::source::Reader;
use crate::adapter::events::{SseSource, StreamEvent};
use crate::canonical::call::Message;
use crate::canonical::{Call, ErrorCode, Operation, Problem};
use crate::gateway::exchange::{Opened, VendorAnswer, VendorStream};
use crate::gateway::upstream::{read_json, Exchange};
use crate::layers::retry::Resend;
use crate::layers::VendorFacts;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use std::time::Duration;
use tokio::time::Instant;

/// The first pause before opening a failed stream again; it doubles up to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// The decoded events of an open vendor stream.
type Events = BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>;

/// Why a stream could not be opened.
enum Failure {
    /// The vendor answered no (a 4xx): its problem, for the clients.
    Refused(Problem),
    /// The network or the vendor failed (connect, timeout, 5xx): worth another try.
    Failed(Problem),
}

impl Failure {
    fn of(p: Problem) -> Failure {
        let status = p.provider.as_deref().and_then(|f| f.status);
        match status {
            Some(s) if (400..500).contains(&s) => Failure::Refused(p),
            _ => Failure::Failed(p),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Failure::Refused(_) => "refused",
            Failure::Failed(_) => "failed",
        }
    }

    fn problem(self) -> Problem {
        match self {
            Failure::Refused(p) | Failure::Failed(p) => p,
        }
    }
}

/// The last read call and the messages its vendor streamed since.
#[derive(Debug)]
pub(super) struct Merged {
    call: Call,
    newer: Vec<Message>,
}

impl Merged {
    pub fn new(call: Call) -> Merged {
        Merged {
            call,
            newer: Vec::new(),
        }
    }

    /// The view clients see: the call, its messages followed by the newer streamed ones.
    pub fn view(&self) -> Call {
        let mut call = self.call.clone();
        call.messages.extend(self.newer.iter().cloned());
        call
    }

    /// The vendor id of the last message known, to resume the stream after.
    pub fn last_id(&self) -> Option<&str> {
        self.newer
            .last()
            .or(self.call.messages.last())
            .and_then(|m| m.id.as_deref())
    }

    /// A streamed message; false when it is already known (a resumed stream may repeat).
    pub fn add(&mut self, m: Message) -> bool {
        let known = m.id.is_some()
            && self
                .call
                .messages
                .iter()
                .chain(&self.newer)
                .any(|k| k.id == m.id);
        if !known {
            self.newer.push(m);
        }
        !known
    }

    /// A new read of the call: streamed messages it now holds are its own.
    pub fn update(&mut self, call: Call) {
        self.call = call;
        let own = &self.call.messages;
        self.newer
            .retain(|m| m.id.is_none() || !own.iter().any(|k| k.id == m.id));
    }
}

/// Reads the call from its vendor's stream and `get_call` until it ends or nobody watches it.
pub(super) async fn stream(r: Reader) {
    let provider = r.provider.clone();
    let Some(sse) = provider.adapter.sse() else {
        return super::source::poll(r).await;
    };
    let mut merged = match Box::pin(r.read()).await {
        Ok(call) if call.status.is_live() => Merged::new(call),
        // Ended (its messages are all there) or unreadable: the opening client's answer.
        view => {
            r.finish();
            return r.publish(view);
        }
    };
    let mut upstream = match Box::pin(connect(&r, sse, merged.last_id())).await {
        Ok(events) => Some(events),
        Err(f) => {
            r.finish();
            return r.publish(Err(f.problem()));
        }
    };
    r.publish(Ok(merged.view()));
    let mut backoff = RECONNECT_MIN;
    let mut reconnect_at: Option<Instant> = None;
    let mut next_read = Instant::now() + r.status_poll;
    while r.watched() {
        tokio::select! {
            event = next(&mut upstream) => match event {
                Some(Ok(event)) => {
                    backoff = RECONNECT_MIN;
                    if let Some(m) = message(&r, &event) {
                        if merged.add(m) {
                            r.publish(Ok(merged.view()));
                        }
                    }
                }
                // Ended, broke, or silent past its idle timeout.
                _ => {
                    tracing::info!(provider = %r.provider.name, "vendor event stream ended; reconnecting");
                    upstream = None;
                    reconnect_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    next_read = next_read.min(Instant::now() + r.fast);
                }
            },
            _ = tokio::time::sleep_until(next_read) => {
                if let Ok(call) = Box::pin(r.read()).await {
                    let over = !call.status.is_live();
                    merged.update(call);
                    r.publish(Ok(merged.view()));
                    if over {
                        break;
                    }
                }
                let pause = if upstream.is_some() { r.status_poll } else { r.fast };
                next_read = Instant::now() + pause;
            },
            _ = sleep_until(reconnect_at) => match Box::pin(connect(&r, sse, merged.last_id())).await {
                Ok(events) => {
                    upstream = Some(events);
                    reconnect_at = None;
                }
                Err(Failure::Refused(p)) => {
                    // The clients end with a retry hint and resume from their last id (a
                    // client arriving now starts a new reader: this one is gone first).
                    r.finish();
                    return r.publish(Err(p));
                }
                Err(Failure::Failed(_)) => {
                    reconnect_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                }
            },
            _ = r.abandoned() => break,
        }
    }
    r.finish();
}

/// The next event of the open stream; never resolves without one.
async fn next(upstream: &mut Option<Events>) -> Option<Result<sse_stream::Sse, sse_stream::Error>> {
    match upstream {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The message an event carries, if it is one (heartbeats and other types are not).
fn message(r: &Reader, event: &sse_stream::Sse) -> Option<Message> {
    let mut drift = Vec::new();
    let read =
        r.provider
            .adapter
            .stream_event(event.event.as_deref(), event.data.as_deref(), &mut drift);
    match read {
        Ok(StreamEvent::Message(m)) => Some(m),
        Ok(StreamEvent::Heartbeat | StreamEvent::Other) => None,
        Err(why) => {
            tracing::warn!(provider = %r.provider.name, %why, "vendor stream event skipped");
            None
        }
    }
}

/// Opens the vendor stream (a new ticket first, when the adapter says), resuming after `after`.
async fn connect(r: &Reader, sse: &SseSource, after: Option<&str>) -> Result<Events, Failure> {
    let opened = open(r, sse, after).await;
    let result = match &opened {
        Ok(_) => "ok",
        Err(f) => f.label(),
    };
    r.hub
        .metrics
        .upstream
        .with_label_values(&[&r.provider.name, result])
        .inc();
    let stream = opened?;
    let bytes =
        futures_util::stream::unfold(Some(stream), |s: Option<Box<VendorStream>>| async move {
            let mut s = s?;
            match s.chunk().await {
                Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), Some(s))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.kind())), None)),
            }
        });
    Ok(sse_stream::SseByteStream::new(bytes).boxed())
}

async fn open(
    r: &Reader,
    sse: &SseSource,
    after: Option<&str>,
) -> Result<Box<VendorStream>, Failure> {
    let provider = &r.provider;
    let adapter = &provider.adapter;
    let params = &r.plan.params;
    let request_id = crate::gateway::answer::request_id(None);
    let ticket = match adapter.plan_ticket(params) {
        None => None,
        Some(req) => {
            let cx = Exchange {
                request_id: &request_id,
                max_body: r.max_body,
                resend: Resend::Read,
                operation: Operation::WatchCall,
                deadline: None,
            };
            let (answer, mut facts) = r.vendor.exchange(provider, &req, cx).await;
            let answer = answer.map_err(Failure::of)?;
            let json = read_json(provider, &answer, &mut facts).map_err(Failure::of)?;
            let ticket = adapter.read_ticket(&json).ok_or_else(|| {
                Failure::Failed(
                    Problem::new(
                        ErrorCode::ProviderError,
                        format!(
                            "provider {:?} gave no stream ticket where its adapter says (events.ticket.value)",
                            provider.name
                        ),
                    )
                    .with_provider(&provider.name),
                )
            })?;
            Some(ticket)
        }
    };
    let req = adapter
        .plan_stream(params, ticket.as_deref(), after)
        .map_err(Failure::Refused)?;
    let opened = r
        .vendor
        .client
        .open_stream(provider, &req, &request_id, sse.idle_timeout, r.max_body)
        .await
        .map_err(|e| Failure::Failed(e.into_problem(provider)))?;
    match opened {
        Opened::Stream(s) => Ok(s),
        Opened::Refused(answer) => Err(refusal(r, &answer)),
    }
}

/// The problem a vendor's non-2xx answer to a stream request maps to.
fn refusal(r: &Reader, answer: &VendorAnswer) -> Failure {
    let mut facts = VendorFacts::default();
    match read_json(&r.provider, answer, &mut facts) {
        Err(p) => Failure::of(p),
        Ok(_) => Failure::Failed(
            Problem::new(
                ErrorCode::ProviderError,
                format!(
                    "provider {:?} answered its event stream with status {}",
                    r.provider.name, answer.status
                ),
            )
            .with_provider(&r.provider.name),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::Merged;
    use crate::canonical::call::Message;
    use crate::canonical::Call;

    fn msg(id: &str) -> Message {
        Message {
            id: Some(id.to_string()),
            content: Some(format!("line {id}")),
            ..Message::default()
        }
    }

    fn call(ids: &[&str]) -> Call {
        Call {
            messages: ids.iter().map(|i| msg(i)).collect(),
            ..Call::default()
        }
    }

    fn ids(c: &Call) -> Vec<String> {
        c.messages.iter().filter_map(|m| m.id.clone()).collect()
    }

    #[test]
    fn streamed_messages_follow_the_read_ones_once() {
        let mut m = Merged::new(call(&["a", "b"]));
        assert_eq!(m.last_id(), Some("b"));
        // A resumed stream repeats what the read already had.
        assert!(!m.add(msg("b")));
        assert!(m.add(msg("c")));
        assert!(m.add(msg("d")));
        assert!(!m.add(msg("c")));
        assert_eq!(ids(&m.view()), ["a", "b", "c", "d"]);
        assert_eq!(m.last_id(), Some("d"));
        // A read that caught up takes the streamed ones as its own; one that lags keeps them.
        m.update(call(&["a", "b", "c"]));
        assert_eq!(ids(&m.view()), ["a", "b", "c", "d"]);
        m.update(call(&["a", "b", "c", "d", "e"]));
        assert_eq!(ids(&m.view()), ["a", "b", "c", "d", "e"]);
        assert!(!m.add(msg("e")));
        assert_eq!(m.last_id(), Some("e"));
    }
}
