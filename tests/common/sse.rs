//! An SSE client for the event-stream tests: `ureq` for the request, the `sse-stream` crate's
//! decoder for the events, read on threads of its own so a test reads events with timeouts.

use super::{Harness, KEY};
use futures_util::StreamExt;
use serde_json::Value;
use sse_stream::Sse;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

/// An open stream: its events as they arrive (the channel closes when the stream ends).
/// Dropping it closes the connection.
pub struct Stream {
    events: mpsc::Receiver<Sse>,
    closed: Arc<AtomicBool>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

impl Stream {
    /// Opens `path` with `headers`; the problem answer instead when it is refused.
    pub fn open(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Result<Stream, (u16, Value)> {
        let mut req = ureq::get(&h.url(path)).set("Authorization", &format!("Bearer {KEY}"));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(s, r)) => {
                assert_eq!(r.content_type(), "application/problem+json");
                return Err((s, serde_json::from_str(&r.into_string().unwrap()).unwrap()));
            }
            Err(e) => panic!("transport error: {e}"),
        };
        assert_eq!(resp.content_type(), "text/event-stream");
        let mut body = resp.into_reader();
        let (tx, events) = mpsc::channel();
        let closed = Arc::new(AtomicBool::new(false));
        let reader_closed = closed.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (bytes_tx, bytes_rx) =
                    tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    // Each read returns at the latest with the next heartbeat; after the
                    // client dropped the stream the connection is closed (body dropped).
                    while !reader_closed.load(Ordering::Relaxed) {
                        match body.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let chunk = bytes::Bytes::copy_from_slice(&buf[..n]);
                                if bytes_tx.blocking_send(Ok(chunk)).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
                let chunks = futures_util::stream::unfold(bytes_rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                });
                let mut decoded = sse_stream::SseByteStream::new(Box::pin(chunks));
                while let Some(Ok(event)) = decoded.next().await {
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            });
        });
        Ok(Stream { events, closed })
    }

    /// Every event until the stream closes.
    pub fn all(self) -> Vec<Sse> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.recv_timeout(super::PATIENCE) {
            out.push(e);
        }
        out
    }

    /// The next event or retry hint, if one comes within `wait`.
    pub fn next_within(&self, wait: std::time::Duration) -> Option<Sse> {
        self.events.recv_timeout(wait).ok()
    }

    /// The next event with an `event:` name (retry hints and comments skipped).
    pub fn next_named(&self) -> Sse {
        loop {
            let e = self
                .events
                .recv_timeout(super::PATIENCE)
                .expect("an event in time");
            if e.event.is_some() {
                return e;
            }
        }
    }
}

pub fn named<'a>(events: &'a [Sse], name: &str) -> Vec<&'a Sse> {
    events
        .iter()
        .filter(|e| e.event.as_deref() == Some(name))
        .collect()
}

pub fn data(e: &Sse) -> Value {
    serde_json::from_str(e.data.as_deref().unwrap_or("null")).unwrap()
}

pub fn urlencode(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
