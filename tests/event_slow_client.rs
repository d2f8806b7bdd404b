//! A client that stops reading its event stream is dropped at its bound while the others keep
//! receiving, over real sockets: one client never reads (a small receive buffer, so the bound
//! is reached with a call of a few hundred kilobytes of events), another reads everything.

mod common;

use callgate_sim::{Fault, FaultAction, SimOptions, VendorKind};
use common::sse::{data, urlencode, Stream};
use common::{Harness, KEY};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Zudu's get answer for `call_id`, straight from the simulator.
fn sim_answer(h: &Harness, call_id: &str) -> Value {
    let sim = h.sims.addr(VendorKind::Zudu);
    let text = ureq::get(&format!("http://{sim}/api/calls/{call_id}"))
        .set("X-API-KEY", callgate_sim::credentials::ZUDU_API_KEY)
        .set("X-API-SECRET", callgate_sim::credentials::ZUDU_API_SECRET)
        .call()
        .expect("the simulator's call")
        .into_string()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `answer` with `n` transcript lines of about 8 KB each.
fn with_lines(answer: &Value, n: usize) -> String {
    let line = "so what I am saying is ".repeat(350);
    let transcript: Vec<Value> = (0..n)
        .map(|i| {
            let role = if i % 2 == 0 { "agent" } else { "user" };
            serde_json::json!({"role": role, "content": format!("{i}: {line}")})
        })
        .collect();
    let mut answer = answer.clone();
    answer["data"]["transcript_object"] = Value::Array(transcript);
    answer.to_string()
}

/// The simulator answers every read of the call with `body` from now on.
fn answer_with(h: &Harness, call_id: &str, body: String) {
    let zudu = h.sim(VendorKind::Zudu);
    zudu.clear_faults();
    zudu.add_fault(Fault {
        method: Some("GET".into()),
        path_prefix: Some(format!("/api/calls/{call_id}")),
        action: FaultAction::Status {
            status: 200,
            body,
            headers: vec![("Content-Type".into(), "application/json".into())],
        },
        ..Fault::default()
    });
}

/// A stream request on a socket with a 4 KiB receive buffer that is never read.
fn stalled_client(h: &Harness, path: &str) -> std::net::TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // Set before connecting, so the window offered is small from the start (and not tuned up).
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&h.gateway.addr.into()).unwrap();
    let mut s: std::net::TcpStream = s.into();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    s
}

#[test]
fn a_client_that_stops_reading_is_dropped_at_its_bound_and_the_others_keep_receiving() {
    let h = Harness::start_configured(
        SimOptions::default(),
        "[events]\npoll_ms = 100\npoll_quiet_max_ms = 1000\nslow_client_timeout_ms = 500\n",
    );
    let page = h
        .get("/v1/calls?provider=zudu&status=in_progress&limit=1")
        .json();
    let id = page["data"][0]["id"].as_str().unwrap().to_string();
    let call_id = id.split(':').nth(1).unwrap().to_string();
    // 1,500 lines: about 12 MB of events for each client, beyond what the stalled client's
    // socket and the kernel's send buffer for it hold (the send buffer grows to 4 MB at most,
    // `net.ipv4.tcp_wmem`).
    const LINES: usize = 1500;
    let original = sim_answer(&h, &call_id);
    answer_with(&h, &call_id, with_lines(&original, LINES));
    let path = format!("/v1/calls/{}/events", urlencode(&id));

    let reader = Stream::open(&h, &path, &[]).unwrap();
    let stalled = stalled_client(&h, &path);
    let slow_dropped = "callgate_event_streams_ended_total{reason=\"slow_client\"}";
    let dropped = |h: &Harness| {
        h.scrape()
            .lines()
            .find_map(|l| l.strip_prefix(slow_dropped)?.trim().parse::<f64>().ok())
    };
    common::wait_until("the stalled client to be dropped", || {
        dropped(&h) == Some(1.0)
    });

    // The reader got every message, in order, the stalled one notwithstanding.
    let mut seen = 0;
    while seen < LINES {
        let e = reader.next_named();
        if e.event.as_deref() == Some("message") {
            let content = data(&e)["message"]["content"].as_str().unwrap().to_string();
            assert!(content.starts_with(&format!("{seen}: ")), "{content:.20}");
            seen += 1;
        }
    }
    // … and goes on receiving after the drop: a line said now reaches it.
    answer_with(&h, &call_id, with_lines(&original, LINES + 1));
    let next = loop {
        let e = reader.next_named();
        if e.event.as_deref() == Some("message") {
            break e;
        }
    };
    let content = data(&next)["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(content.starts_with(&format!("{LINES}: ")), "{content:.20}");

    // The stalled client's connection was closed: reading it now drains what the kernel held,
    // then ends (short of the whole stream), instead of waiting for more.
    let mut stalled = stalled;
    stalled.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let read = stalled.read_to_end(&mut got);
    assert!(read.is_ok(), "the connection ends: {read:?}");
    assert!(started.elapsed() < common::PATIENCE - Duration::from_secs(1));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:.80}");
    let messages = text.matches("event: message").count();
    assert!(
        messages < LINES,
        "{messages} messages reached the stalled client"
    );
    h.sim(VendorKind::Zudu).clear_faults();
}

#[test]
fn a_client_that_goes_away_is_let_go_at_once_not_at_the_next_heartbeat() {
    // No heartbeat for an hour, no change to the call: nothing is written to the client after
    // its first events, so only watching its connection can notice it left.
    let h = Harness::start_configured(
        SimOptions::default(),
        "[events]\npoll_ms = 100\npoll_quiet_max_ms = 1000\nheartbeat_seconds = 3600\n",
    );
    let page = h
        .get("/v1/calls?provider=zudu&status=in_progress&limit=1")
        .json();
    let id = page["data"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/calls/{}/events", urlencode(&id));
    let mut s = std::net::TcpStream::connect(h.gateway.addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    common::raw::read_until(&mut s, &mut seen, "the first status", |seen| {
        String::from_utf8_lossy(seen).contains("event: status")
    });
    // The body is delimited by the connection's close: the events come as they are, unframed.
    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.lines().any(|l| l == "connection: close"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(body.starts_with("retry: "), "{body:.40}");
    drop(s);
    let series = |h: &Harness, name: &str| {
        h.scrape()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    common::wait_until("the stream of the client that left to end", || {
        series(&h, "callgate_event_streams_open ") == Some(0.0)
            && series(
                &h,
                "callgate_event_streams_ended_total{reason=\"client_gone\"}",
            ) == Some(1.0)
    });
}
