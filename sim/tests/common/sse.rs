//! A small Server-Sent Events client over `std::net::TcpStream` for the stream tests. It reads
//! the response head with `httparse`, undoes the chunked transfer encoding itself (each
//! chunk-size line read by `httparse`), so a test can tell a stream the server ended cleanly
//! (terminating chunk) from one that was cut, and decodes the events with `sse-stream`, with a
//! deadline for each.
//!
//! The chunks are read on demand, blocking, by an iterator that `sse-stream`'s decoder consumes
//! as a stream: that stream is never pending, so polling it once with a no-op waker always
//! yields its next item, and no async runtime is needed.

use super::Resp;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use httparse::Status;
use sse_stream::SseByteStream;
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// One event block as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The terminating chunk arrived.
    Clean,
    /// The connection closed (or was reset) in the middle of the body.
    Abrupt,
}

/// What opening a stream gave.
#[derive(Debug)]
pub enum Opened {
    /// A 200 with a chunked body: the stream, and the response's status and headers.
    Stream(Sse, Resp),
    /// Any other answer, read whole.
    Refused(Resp),
}

impl Opened {
    pub fn stream(self) -> (Sse, Resp) {
        match self {
            Opened::Stream(s, r) => (s, r),
            Opened::Refused(r) => panic!(
                "stream refused: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
        }
    }

    pub fn refused(self) -> Resp {
        match self {
            Opened::Refused(r) => r,
            Opened::Stream(_, r) => panic!("expected a refusal, got a stream: {r:?}"),
        }
    }
}

/// The connection and the bytes received on it and not yet used.
#[derive(Debug)]
struct Wire {
    socket: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Reads more bytes; false at the end of the connection. Panics at the deadline.
    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for the stream");
        self.socket.set_read_timeout(Some(left)).unwrap();
        let mut buf = [0u8; 8192];
        match self.socket.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("timed out waiting for the stream")
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => false,
        }
    }
}

/// The data of a chunked body, one chunk at a time, read when asked for. It ends (`None`) after
/// the terminating chunk; a connection that ends before it gives one `UnexpectedEof` error.
struct Chunks {
    wire: Wire,
    /// When the read under way must be done by; set by [`Sse::next`].
    deadline: Arc<Mutex<Instant>>,
    done: bool,
}

impl Iterator for Chunks {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        if self.done {
            return None;
        }
        let deadline = *self.deadline.lock().unwrap();
        loop {
            let buf = &self.wire.buf;
            match httparse::parse_chunk_size(buf) {
                Ok(Status::Complete((_, 0))) => {
                    // The terminating chunk (its trailer section is of no interest).
                    self.done = true;
                    return None;
                }
                Ok(Status::Complete((start, size))) => {
                    let size = usize::try_from(size).expect("chunk size");
                    let end = start + size;
                    if buf.len() >= end + 2 {
                        assert_eq!(&buf[end..end + 2], b"\r\n", "chunk data not ended by CRLF");
                        let data = Bytes::copy_from_slice(&buf[start..end]);
                        self.wire.buf.drain(..end + 2);
                        return Some(Ok(data));
                    }
                }
                Ok(Status::Partial) => {}
                Err(e) => panic!(
                    "bad chunk size line ({e}): {:?}",
                    String::from_utf8_lossy(&buf[..buf.len().min(40)])
                ),
            }
            if !self.wire.fill(deadline) {
                self.done = true;
                return Some(Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the connection ended inside the chunked body",
                )));
            }
        }
    }
}

/// An open event stream.
pub struct Sse {
    /// Boxed: the decoder's state is large beside a refusal's.
    events: Box<SseByteStream<stream::Iter<Chunks>>>,
    /// Shared with the [`Chunks`] inside `events`.
    deadline: Arc<Mutex<Instant>>,
    end: Option<End>,
}

impl fmt::Debug for Sse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sse").field("end", &self.end).finish()
    }
}

/// A response head.
struct Head {
    /// Its length in bytes, blank line included.
    len: usize,
    status: u16,
    headers: Vec<(String, String)>,
}

/// Parses the response head at the start of `buf`, or `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let len = match head.parse(buf).expect("a valid response head") {
        Status::Complete(len) => len,
        Status::Partial => return None,
    };
    let status = head.code.expect("status code");
    let headers = head
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_string(), value)
        })
        .collect();
    Some(Head {
        len,
        status,
        headers,
    })
}

/// GET `target` and wait (up to 10 s) for the response head.
pub fn open(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Opened {
    let mut socket = TcpStream::connect(addr).expect("connect");
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    socket.write_all(req.as_bytes()).expect("send");
    let mut wire = Wire {
        socket,
        buf: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let Head {
        len: head_len,
        status,
        headers,
    } = loop {
        if let Some(head) = parse_head(&wire.buf) {
            break head;
        }
        assert!(wire.fill(deadline), "connection closed before a response");
    };
    wire.buf.drain(..head_len);
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    if status == 200 && chunked {
        let deadline = Arc::new(Mutex::new(deadline));
        let chunks = Chunks {
            wire,
            deadline: deadline.clone(),
            done: false,
        };
        let sse = Sse {
            events: Box::new(SseByteStream::new(stream::iter(chunks))),
            deadline,
            end: None,
        };
        return Opened::Stream(sse, resp);
    }
    let len: usize = resp
        .header("content-length")
        .map_or(0, |l| l.parse().expect("content-length"));
    while wire.buf.len() < len {
        assert!(wire.fill(deadline), "body cut short");
    }
    resp.body = wire.buf[..len].to_vec();
    Opened::Refused(resp)
}

impl Sse {
    /// The next event (message or heartbeat), or how the stream ended. Panics at the deadline.
    pub fn next(&mut self, deadline: Instant) -> Result<Event, End> {
        if let Some(end) = self.end {
            return Err(end);
        }
        *self.deadline.lock().unwrap() = deadline;
        // The chunks are read blocking, so the decoder is never pending.
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(item) = self.events.poll_next_unpin(&mut cx) else {
            unreachable!("the event decoder reads blocking and is never pending")
        };
        let end = match item {
            Some(Ok(block)) => {
                return Ok(Event {
                    event: block.event.unwrap_or_else(|| "message".into()),
                    id: block.id,
                    data: block.data.unwrap_or_default(),
                })
            }
            None => End::Clean,
            Some(Err(sse_stream::Error::Body(e)))
                if e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == ErrorKind::UnexpectedEof) =>
            {
                End::Abrupt
            }
            Some(Err(e)) => panic!("bad event stream: {e}"),
        };
        self.end = Some(end);
        Err(end)
    }

    /// The next `message` event, heartbeats skipped.
    pub fn next_message(&mut self, deadline: Instant) -> Result<Event, End> {
        loop {
            let event = self.next(deadline)?;
            if event.event == "message" {
                return Ok(event);
            }
        }
    }

    /// The messages before the next heartbeat: the whole backlog when called first (the
    /// simulator writes its backlog before its first heartbeat).
    pub fn until_heartbeat(&mut self, deadline: Instant) -> Vec<Event> {
        let mut messages = Vec::new();
        loop {
            let event = self.next(deadline).expect("the stream ended");
            if event.event == "heartbeat" {
                return messages;
            }
            messages.push(event);
        }
    }
}
