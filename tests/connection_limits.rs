//! A client connection's bounds (issue 19, "connections and framing"), over real sockets with
//! raw bytes: a head too long, too large, too crowded, too slow or not HTTP, and a body too
//! slow, each answered as a problem document with an `X-Request-Id`, logged and counted, the
//! connection closed after it; kept-alive and pipelined requests still answered.

mod common;

use common::raw::{complete, raw, read_to_close, read_until, send_to_close, RawReply};
use common::{wait_until, Harness, KEY};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Short deadlines, so the slow cases are quick; small limits, so the large ones are cheap.
const LIMITS: &str = "header_timeout_ms = 500\nbody_timeout_ms = 500\n\
                      max_request_line_bytes = 2048\nmax_header_bytes = 8192\nmax_headers = 20\n";

fn harness() -> Harness {
    Harness::start_with_server_keys(LIMITS)
}

/// The problem's code, after checking it is one with a request id and the status `status`.
fn code_of(r: &RawReply, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    let p = r.problem();
    assert_eq!(p["status"].as_u64(), Some(u64::from(status)));
    assert_eq!(
        p["requestId"].as_str(),
        r.header("x-request-id"),
        "the document and the header name one request"
    );
    p["code"].as_str().unwrap().to_string()
}

fn get_head(extra: &str) -> String {
    format!("GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n{extra}\r\n")
}

#[test]
fn heads_over_the_limits_are_problems_not_bare_pingora_errors() {
    let h = harness();
    // A request line over max_request_line_bytes: 414.
    let long = format!(
        "GET /v1/calls/{} HTTP/1.1\r\nHost: callgate\r\n\r\n",
        "a".repeat(4000)
    );
    let r = raw(&h, long.as_bytes(), b"", false);
    assert_eq!(code_of(&r, 414), "uri_too_long");
    assert!(r.problem()["detail"].as_str().unwrap().contains("2048"));

    // A 1 MB header (the probe's): 431, without callgate reading the megabyte.
    let flood = get_head(&format!("X-Flood: {}\r\n", "f".repeat(1024 * 1024)));
    let r = raw(&h, flood.as_bytes(), b"", false);
    assert_eq!(code_of(&r, 431), "headers_too_large");

    // More fields than max_headers: 431.
    let crowded = get_head(&"X-Many: 1\r\n".repeat(30));
    let r = raw(&h, crowded.as_bytes(), b"", false);
    assert_eq!(code_of(&r, 431), "headers_too_large");
    assert!(r.problem()["detail"]
        .as_str()
        .unwrap()
        .contains("20 header"));

    // Not HTTP: 400 invalid_request as a problem (Pingora wrote a bare 400 before).
    let r = raw(
        &h,
        b"GET / HTTP/1.1\r\nBad Header Name: 1\r\n\r\n",
        b"",
        false,
    );
    assert_eq!(code_of(&r, 400), "invalid_request");
    // Framing only Pingora's parser refuses (two different lengths): a problem too.
    let r = raw(
        &h,
        format!(
            "POST /v1/calls HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}"
        )
        .as_bytes(),
        b"",
        false,
    );
    assert_eq!(code_of(&r, 400), "invalid_request");

    // Within every limit: served.
    let fine = get_head(&format!(
        "Connection: close\r\n{}",
        "X-Some: 1\r\n".repeat(15)
    ));
    assert_eq!(raw(&h, fine.as_bytes(), b"", false).status, 200);

    // Each refusal counted under its code, and logged with its status.
    let m = h.metrics();
    for code in ["uri_too_long", "headers_too_large", "invalid_request"] {
        assert!(
            m.lines()
                .any(|l| l.starts_with("callgate_requests_total") && l.contains(code)),
            "{code} not counted"
        );
    }
    wait_until("the refusals' log lines", || {
        let logs = common::captured_logs();
        [414, 431, 400]
            .iter()
            .all(|s| logs.contains(&format!("\"status\":{s}")))
    });
}

#[test]
fn a_slow_head_or_body_is_a_408_and_the_connection_is_closed() {
    let h = harness();
    // Slowloris: the head never ends.
    let (text, closed) = send_to_close(
        &h,
        b"GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nX-Slow: a",
    );
    assert!(closed, "the slow head's connection stayed open");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");

    // A new connection that sends nothing is closed, without an answer.
    let (text, closed) = send_to_close(&h, b"");
    assert!(closed && text.is_empty(), "{text}");

    // A body that stops short: 408 once the body deadline passes (the key was checked first).
    let short = format!(
        "POST /v1/calls HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"to\": "
    );
    let (text, closed) = send_to_close(&h, short.as_bytes());
    assert!(closed);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request body was not complete"), "{text}");
    assert!(h.sim(callgate_sim::VendorKind::Zudu).requests().is_empty());
}

#[test]
fn a_kept_alive_connection_serves_requests_one_after_another_and_pipelined() {
    let h = harness();
    let mut s = TcpStream::connect(h.gateway.addr).unwrap();
    // Whole answers in `seen`: the bytes split at each status line.
    let answers = |seen: &[u8]| {
        let text = String::from_utf8_lossy(seen).to_string();
        text.split("HTTP/1.1 ")
            .skip(1)
            .filter(|p| complete(format!("HTTP/1.1 {p}").as_bytes()))
            .count()
    };
    let mut seen = Vec::new();
    // Two requests one after the other, then three in one write.
    for batch in [1, 1, 3] {
        s.write_all(get_head("").repeat(batch).as_bytes()).unwrap();
        let want = answers(&seen) + batch;
        read_until(&mut s, &mut seen, &format!("answer {want}"), |seen| {
            answers(seen) >= want
        });
    }
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 5, "{text}");
}

#[test]
fn unfinished_large_heads_are_cut_at_the_limit_and_normal_requests_go_on() {
    let h = harness();
    // 100 clients each start a 900 KB header and never finish it (the probe held 140 MB this
    // way): each is refused once it passes the 8 KiB limit, long before its 900 KB.
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(h.gateway.addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        // Not all of it may be taken: callgate stops reading at the limit.
        let _ = s.write_all(
            &[
                b"GET / HTTP/1.1\r\nX-Big: ".as_slice(),
                &vec![b'b'; 900 * 1024],
            ]
            .concat(),
        );
        held.push(s);
    }
    for s in &mut held {
        let (seen, closed) = read_to_close(s);
        assert!(closed);
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1.1 431"), "{text:.200}");
    }
    assert_eq!(
        raw(&h, get_head("Connection: close\r\n").as_bytes(), b"", false).status,
        200
    );
    // Not a timing assertion on the answers: only that none waited for a deadline.
    assert!(started.elapsed() < common::PATIENCE);
}

#[test]
fn a_client_that_expects_100_continue_gets_it_before_sending_its_body() {
    let h = harness();
    let body = r#"{"provider": "zudu", "agentId": "agent-9", "to": "+15550102222", "from": "+15550103333"}"#;
    let head = |length: usize| {
        format!(
            "POST /v1/calls HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\
             Expect: 100-continue\r\n\r\n"
        )
    };
    let mut s = TcpStream::connect(h.gateway.addr).unwrap();
    s.write_all(head(body.len()).as_bytes()).unwrap();
    // Nothing more is sent until callgate says to go on.
    let mut seen = Vec::new();
    let head_end = |seen: &[u8]| seen.windows(4).position(|w| w == b"\r\n\r\n");
    read_until(&mut s, &mut seen, "a 100 Continue", |seen| {
        head_end(seen).is_some()
    });
    let interim = String::from_utf8_lossy(&seen).to_string();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    s.write_all(body.as_bytes()).unwrap();
    let mut rest = seen.split_off(head_end(&seen).unwrap() + 4);
    read_until(&mut s, &mut rest, "the answer", complete);
    let text = String::from_utf8_lossy(&rest).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 201"), "{text}");
    // The 100 did not cost the connection: it is kept for the next request.
    assert!(!text.contains("connection: close"), "{text}");

    // Over the limit: the 413 comes at once, without a 100 and without waiting for the body.
    let (text, closed) = send_to_close(&h, head(10 * 1024 * 1024).as_bytes());
    assert!(closed && text.starts_with("HTTP/1.1 413"), "{text}");
}

#[test]
fn an_http_1_0_request_without_keep_alive_is_answered_and_closed() {
    let h = harness();
    let old = format!(
        "GET /v1/providers HTTP/1.0\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    );
    // Closed after the answer, not kept for the idle timeout (60 s here).
    let (text, closed) = send_to_close(&h, old.as_bytes());
    assert!(closed && text.contains(" 200 "), "{text}");
}

#[test]
fn a_client_that_does_not_take_its_answers_is_let_go_at_the_write_deadline() {
    let h = harness();
    // A small receive window, and answers of ~230 KB each asked for and never read.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&h.gateway.addr.into()).unwrap();
    let mut s: TcpStream = s.into();
    let ask = format!(
        "GET /openapi.json HTTP/1.1\r\nHost: callgate\r\nX-Request-Id: not-reading-{}\r\n\r\n",
        std::process::id()
    );
    // More than the kernel buffers for the connection (the send buffer grows to 4 MB).
    s.write_all(ask.repeat(40).as_bytes()).unwrap();
    let id = format!("not-reading-{}", std::process::id());
    wait_until(
        "a write to the client that does not read to time out",
        || {
            common::captured_logs()
                .lines()
                .any(|l| l.contains(&id) && l.contains("WriteTimedout"))
        },
    );
    drop(s);
}
