//! Raw HTTP/1.1 exchanges over a socket: for bytes a well-behaved client library would never
//! send (broken framing, huge or endless heads).

use super::Harness;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// What came back on a raw connection: status, lower-cased headers, body.
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn problem(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        assert!(self.header("x-request-id").is_some());
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Writes `head` and `body` on a new connection (then closes the writing side when `cut`), and
/// reads the answer to its end.
pub fn raw(h: &Harness, head: &[u8], body: &[u8], cut: bool) -> RawReply {
    let mut s = TcpStream::connect(h.gateway.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head).unwrap();
    s.write_all(body).unwrap();
    if cut {
        s.shutdown(Shutdown::Write).unwrap();
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The answer is read up to its declared length: the server may keep the connection open.
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        answer.extend_from_slice(&buf[..n]);
        if n == 0 || complete(&answer) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawReply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A whole answer with a `Content-Length` has arrived.
pub fn complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .is_some_and(|n| body.len() >= n)
}

/// Reads from `s` into `seen` until `done(seen)` holds; panics, naming `what`, if the server
/// closes the connection first (or sends nothing for [`super::PATIENCE`]).
pub fn read_until(s: &mut TcpStream, seen: &mut Vec<u8>, what: &str, done: impl Fn(&[u8]) -> bool) {
    s.set_read_timeout(Some(super::PATIENCE)).unwrap();
    let mut buf = [0u8; 8192];
    while !done(seen) {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
        assert!(n > 0, "closed before {what}");
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Reads what the server sends on `s` until it closes the connection (or [`super::PATIENCE`]
/// passes: then `closed` is false).
pub fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(super::PATIENCE)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (seen, true),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            // A reset after the answer (the server closed with unread bytes): closed all the same.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (seen, true),
            Err(_) => return (seen, false),
        }
    }
}

/// Writes `bytes` on a new connection to `h`'s gateway and reads until the server closes it:
/// what it sent, as text, and whether it closed.
pub fn send_to_close(h: &Harness, bytes: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(h.gateway.addr).expect("connect");
    s.write_all(bytes).unwrap();
    let (seen, closed) = read_to_close(&mut s);
    (String::from_utf8_lossy(&seen).into_owned(), closed)
}
