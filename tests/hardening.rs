//! Defects a hostile probe found, over real sockets with raw HTTP/1.1 bytes (what a well-behaved
//! client library would never send): each answered as the client's mistake, with nothing sent
//! to a vendor.

mod common;

use callgate_sim::VendorKind;
use common::{Harness, KEY};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// What came back on a raw connection: status, lower-cased headers, body.
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn problem(&self) -> serde_json::Value {
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
fn raw(h: &Harness, head: &[u8], body: &[u8], cut: bool) -> RawReply {
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
fn complete(bytes: &[u8]) -> bool {
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

fn post_head(extra: &str) -> Vec<u8> {
    format!(
        "POST /v1/calls HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[test]
fn an_idempotency_key_that_is_not_ascii_is_refused_and_nothing_is_sent() {
    let h = Harness::start();
    let body = br#"{"provider": "zudu", "agentId": "agent-9", "to": "+15550102222", "from": "+15550103333"}"#;
    for key in ["clé-1".as_bytes(), b"\xff\xfe-2"] {
        let mut head = post_head(&format!("Content-Length: {}\r\n", body.len()));
        // The key goes in as raw bytes, before the blank line.
        head.truncate(head.len() - 2);
        head.extend_from_slice(b"Idempotency-Key: ");
        head.extend_from_slice(key);
        head.extend_from_slice(b"\r\n\r\n");
        let r = raw(&h, &head, body, false);
        assert_eq!(r.status, 400, "{}", r.body);
        let p = r.problem();
        assert_eq!(p["code"], "invalid_request");
        assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    }
    let posts = h
        .sim(VendorKind::Zudu)
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        posts, 0,
        "a write without the protection asked for was sent"
    );
}

#[test]
fn a_malformed_body_is_the_clients_400_logged_and_counted() {
    let h = Harness::start();
    // Bad chunk framing: a size line that is not hex.
    let r = raw(
        &h,
        &post_head("Transfer-Encoding: chunked\r\n"),
        b"zz\r\n{}\r\n0\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let p = r.problem();
    assert_eq!(
        (p["code"].as_str(), p["errors"][0]["field"].as_str()),
        (Some("invalid_request"), Some("body"))
    );
    // A body cut short: 100 bytes declared, 10 sent, then the client stops writing.
    let r = raw(
        &h,
        &post_head("Content-Length: 100\r\n"),
        b"{\"to\": \"+",
        true,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.problem()["errors"][0]["field"], "body");
    let counted = h
        .metric(
            r#"callgate_requests_total{code="invalid_request",operation="other",provider="none"}"#,
        )
        .unwrap_or_default();
    assert!(counted >= 2.0, "counted {counted}");
    assert!(h.sim(VendorKind::Zudu).requests().is_empty());
}
