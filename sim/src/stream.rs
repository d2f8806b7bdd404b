//! Serving a Server-Sent Events stream on a simulator's connection (Bimpe's message stream):
//! the 200 header with chunked transfer encoding, the backlog and then live messages as the
//! state produces them, heartbeats, and the three ways a stream ends: the client goes away, the
//! simulator shuts down (a clean end of the body), or a `disconnect` fault cuts it after so many
//! messages. The open stream holds a [`StreamSlot`], so every end gives its slot back.

use crate::bimpe_stream::Cursor;
use crate::VendorSim;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::{interval, interval_at, Instant, MissedTickBehavior};

/// One `message` event to send: its id and its one-line JSON data.
#[derive(Clone, Debug)]
pub(crate) struct StreamEvent {
    pub id: String,
    pub data: String,
}

/// A stream request the vendor module accepted: what to answer it with.
pub(crate) struct StreamGrant {
    /// Response headers besides the framing ones (content type, rate limit, request id).
    pub headers: Vec<(String, String)>,
    /// The API key whose slot the stream holds.
    pub key: String,
    pub cursor: Cursor,
    pub heartbeat: Duration,
    /// How often the state is asked for new messages.
    pub poll: Duration,
}

/// One counted open stream of an API key; dropping it gives the slot back.
pub(crate) struct StreamSlot {
    sim: Arc<VendorSim>,
    key: String,
}

impl StreamSlot {
    /// Takes over a slot the vendor module has already counted.
    pub fn counted(sim: Arc<VendorSim>, key: String) -> StreamSlot {
        StreamSlot { sim, key }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.sim.close_stream(&self.key);
    }
}

/// An accepted stream and the slot it holds.
pub(crate) struct OpenStream {
    pub grant: StreamGrant,
    pub slot: StreamSlot,
}

/// What woke the stream's loop.
enum Wake {
    Poll,
    Heartbeat,
    ClientGone,
    Shutdown,
}

/// Serves `open` on `session` until the client leaves, the simulator shuts down, or, with
/// `cut_after`, that many message events have been sent (then the connection is dropped
/// without ending the body). The connection is never reused.
pub(crate) async fn serve(
    session: &mut ServerSession,
    open: OpenStream,
    shutdown: &ShutdownWatch,
    cut_after: Option<u32>,
) {
    let OpenStream { grant, slot } = open;
    let StreamGrant {
        headers,
        mut cursor,
        heartbeat,
        poll,
        ..
    } = grant;
    session.set_keepalive(None);
    let Ok(header) = stream_header(&headers) else {
        return;
    };
    if session
        .write_response_header(Box::new(header))
        .await
        .is_err()
    {
        return;
    }
    let mut sent = 0u32;
    if cut_after == Some(0) {
        session.shutdown().await;
        return;
    }
    let mut polls = interval(poll);
    polls.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut beats = interval_at(Instant::now() + heartbeat, heartbeat);
    beats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shutdown = shutdown.clone();
    loop {
        // In this order when several are ready: an end first, and the backlog (the first poll,
        // due at once) always before the first heartbeat.
        let wake = tokio::select! {
            biased;
            _ = shutdown.wait_for(|down| *down) => Wake::Shutdown,
            // After the request, the client only ever closes; anything it sends ends it too.
            _ = session.read_body_or_idle(true) => Wake::ClientGone,
            _ = polls.tick() => Wake::Poll,
            _ = beats.tick() => Wake::Heartbeat,
        };
        let chunks = match wake {
            Wake::ClientGone => return,
            Wake::Shutdown => {
                // A clean end: the terminating chunk, then the connection closes.
                let _ = session.write_response_body(Bytes::new(), true).await;
                return;
            }
            Wake::Heartbeat => {
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let data = serde_json::json!({ "ts": ts }).to_string();
                let beat = sse_stream::Sse::default().event("heartbeat").data(data);
                vec![(false, beat)]
            }
            Wake::Poll => slot
                .sim
                .poll_stream(&mut cursor)
                .into_iter()
                .map(|e| {
                    let sse = sse_stream::Sse::default()
                        .event("message")
                        .id(e.id)
                        .data(e.data);
                    (true, sse)
                })
                .collect(),
        };
        for (is_message, sse) in chunks {
            // An event that cannot be framed (an id with a line break) is skipped.
            let Ok(bytes) = sse.encode() else { continue };
            if session.write_response_body(bytes, false).await.is_err() {
                return;
            }
            if is_message {
                sent += 1;
                if cut_after == Some(sent) {
                    session.shutdown().await;
                    return;
                }
            }
        }
    }
}

fn stream_header(headers: &[(String, String)]) -> pingora::Result<ResponseHeader> {
    let mut header = ResponseHeader::build(200, Some(headers.len() + 4))?;
    for (name, value) in headers {
        let _ = header.append_header(name.clone(), value.as_str());
    }
    header.insert_header("Content-Type", "text/event-stream")?;
    header.insert_header("Cache-Control", "no-cache")?;
    header.insert_header("Transfer-Encoding", "chunked")?;
    header.insert_header("Connection", "close")?;
    Ok(header)
}
