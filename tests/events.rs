//! Live call events over real sockets: `GET /v1/calls/{id}/events` read by an SSE client
//! (the `sse-stream` crate's decoder), against the simulators.

mod common;

use callgate_sim::{SimOptions, VendorKind};
use common::sse::{data, named, urlencode, Stream};
use common::{Harness, KEY};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// A finished call of `provider` with at least two messages: its id and its GET answer.
fn ended_call_with_messages(h: &Harness, provider: &str) -> (String, Value) {
    // Bimpe lists per agent: name one the simulator has.
    let agent = match provider {
        "bimpe" => format!("&agentId={}", h.sim(VendorKind::Bimpe).agent_ids()[0]),
        _ => String::new(),
    };
    for status in ["completed", "failed", "no_answer", "canceled", "busy"] {
        let query = format!("provider={provider}&status={status}&limit=100{agent}");
        let page = h.get(&format!("/v1/calls?{query}")).json();
        for item in page["data"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().unwrap();
            let got = h.get(&format!("/v1/calls/{}", urlencode(id))).json();
            if got["messages"].as_array().is_some_and(|m| m.len() >= 2) {
                return (id.to_string(), got);
            }
        }
    }
    let listed = h
        .get(&format!("/v1/calls?provider={provider}&limit=5{agent}"))
        .text;
    panic!("no finished {provider} call with two messages: {listed:.1500}");
}

#[test]
fn a_client_that_half_closes_after_its_request_still_gets_what_is_ready() {
    // `printf 'GET …' | nc -N`: the request is whole, then the client shuts its side. A finished
    // call's events are all ready at once: they are written before the close is taken as the
    // client leaving.
    let h = Harness::start();
    let (id, got) = ended_call_with_messages(&h, "zudu");
    let path = format!("/v1/calls/{}/events", urlencode(&id));
    let mut s = std::net::TcpStream::connect(h.gateway.addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    )
    .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let (seen, closed) = common::raw::read_to_close(&mut s);
    let text = String::from_utf8_lossy(&seen);
    assert!(closed, "the stream ends with the call: {text:.200}");
    assert!(text.starts_with("HTTP/1.1 200"), "{text:.200}");
    let messages = got["messages"].as_array().unwrap().len();
    assert_eq!(
        text.matches("event: message").count(),
        messages,
        "{text:.400}"
    );
    assert_eq!(text.matches("event: end").count(), 1, "{text:.400}");
}

#[test]
fn a_finished_call_streams_its_messages_then_end_equal_to_get_for_every_vendor() {
    let h = Harness::start();
    for provider in ["elemente", "bimpe", "zudu"] {
        let (id, got) = ended_call_with_messages(&h, provider);
        let path = format!("/v1/calls/{}/events", urlencode(&id));
        let events = Stream::open(&h, &path, &[]).unwrap().all();
        assert!(
            events.first().is_some_and(|e| e.retry.is_some()),
            "a retry hint first"
        );
        let messages: Vec<Value> = named(&events, "message")
            .iter()
            .map(|e| data(e)["message"].clone())
            .collect();
        assert_eq!(
            Value::Array(messages),
            got["messages"],
            "{provider}: every message once, in order"
        );
        let ends = named(&events, "end");
        assert_eq!(ends.len(), 1, "{provider}: one end");
        let mut end = data(ends[0]);
        let mut get = got.clone();
        // The stream's view may be read a moment after the GET: compare the call itself.
        for v in [&mut end, &mut get] {
            v.as_object_mut().unwrap().remove("raw");
        }
        assert_eq!(end, get, "{provider}: end is the call GET answers");
        assert_eq!(
            events.last().unwrap().event.as_deref(),
            Some("end"),
            "{provider}: the stream closes after end"
        );
        let statuses = named(&events, "status");
        assert_eq!(statuses.len(), 1);
        assert_eq!(data(statuses[0])["status"], got["status"]);

        // Resuming after the first message: the rest, once.
        let first = named(&events, "message")[0].id.clone().unwrap();
        let rest = Stream::open(&h, &path, &[("Last-Event-ID", &first)])
            .unwrap()
            .all();
        let resumed: Vec<Value> = named(&rest, "message")
            .iter()
            .map(|e| data(e)["message"].clone())
            .collect();
        assert_eq!(
            Value::Array(resumed),
            Value::Array(got["messages"].as_array().unwrap()[1..].to_vec())
        );
        assert_eq!(named(&rest, "end").len(), 1);
        // `?after=` does the same.
        let after = Stream::open(&h, &format!("{path}?after={first}"), &[])
            .unwrap()
            .all();
        assert_eq!(named(&after, "message").len(), resumed_len(&got));
    }
}

fn resumed_len(got: &Value) -> usize {
    got["messages"].as_array().unwrap().len() - 1
}

#[test]
fn a_stream_is_refused_before_its_first_byte_as_any_request() {
    let h = Harness::start();
    let refused = |path: &str, headers: &[(&str, &str)]| match Stream::open(&h, path, headers) {
        Err(p) => p,
        Ok(_) => panic!("{path} should be refused"),
    };
    let (s, p) = refused("/v1/calls/zudu:call_nope/events", &[]);
    assert_eq!((s, p["code"].as_str().unwrap()), (404, "not_found"));
    let page = h.get("/v1/calls?provider=zudu&limit=1").json();
    let id = urlencode(page["data"][0]["id"].as_str().unwrap());
    let (s, p) = refused(
        &format!("/v1/calls/{id}/events"),
        &[("Last-Event-ID", "not-an-id")],
    );
    assert_eq!(
        (s, p["errors"][0]["field"].as_str().unwrap()),
        (400, "Last-Event-ID")
    );
    let (s, p) = refused(&format!("/v1/calls/{id}/events?limit=3"), &[]);
    assert_eq!(
        (s, p["errors"][0]["field"].as_str().unwrap()),
        (400, "limit")
    );
    // Another tenant's provider.
    let other = ureq::get(&h.url("/v1/calls/elemente:x/events"))
        .set("Authorization", &format!("Bearer {}", common::OTHER_KEY))
        .call();
    assert!(matches!(other, Err(ureq::Error::Status(403, _))));
    let post = h.send("POST", &format!("/v1/calls/{id}/events"), "{}", &[]);
    post.problem(405, "method_not_allowed");
}

/// A live call of `provider` (its stream does not end).
fn live_call(h: &Harness, provider: &str) -> String {
    let page = h
        .get(&format!(
            "/v1/calls?provider={provider}&status=in_progress&limit=1"
        ))
        .json();
    page["data"][0]["id"]
        .as_str()
        .expect("a live call in the simulator's data")
        .to_string()
}

#[test]
fn a_hundred_clients_of_one_call_share_one_reader() {
    let h = Harness::start_configured(
        SimOptions::default(),
        "[events]\npoll_ms = 200\npoll_quiet_max_ms = 400\nheartbeat_seconds = 1\n",
    );
    let id = live_call(&h, "zudu");
    let path = format!("/v1/calls/{}/events", urlencode(&id));
    let zudu = h.sim(VendorKind::Zudu);
    zudu.clear_requests();
    let streams: Vec<Stream> = (0..100)
        .map(|_| Stream::open(&h, &path, &[]).unwrap())
        .collect();
    for s in &streams {
        assert_eq!(s.next_named().event.as_deref(), Some("status"));
    }
    // (Not `h.metric`: it waits for no request in flight, and 100 streams are.)
    let open = |h: &Harness| {
        h.scrape().lines().find_map(|l| {
            l.strip_prefix("callgate_event_streams_open ")?
                .parse::<f64>()
                .ok()
        })
    };
    assert_eq!(open(&h), Some(100.0));
    zudu.clear_requests();
    let started = std::time::Instant::now();
    // A measuring window, not a wait for an event: how many reads 100 clients cost in 2 s.
    std::thread::sleep(Duration::from_secs(2));
    let call_id = id.split(':').nth(1).unwrap().to_string();
    let reads = zudu
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains(&call_id))
        .count();
    let seconds = started.elapsed().as_secs_f64();
    // One reader: a read every 200 to 400 ms (not one per client).
    assert!(reads >= 2, "{reads} reads");
    assert!(
        (reads as f64) <= 2.0 + seconds / 0.2,
        "{reads} vendor reads in {seconds:.1} s for 100 clients"
    );
    drop(streams);
    common::wait_until("the streams to close", || open(&h) == Some(0.0));
}

#[test]
fn streams_over_the_tenants_limit_are_refused_and_a_long_one_ends_with_a_retry_hint() {
    let h = Harness::start_configured(
        SimOptions::default(),
        "[events]\nmax_streams_per_tenant = 2\nmax_duration_seconds = 1\n",
    );
    let id = live_call(&h, "zudu");
    let path = format!("/v1/calls/{}/events", urlencode(&id));
    let a = Stream::open(&h, &path, &[]).unwrap();
    let _b = Stream::open(&h, &path, &[]).unwrap();
    match Stream::open(&h, &path, &[]) {
        Err((429, p)) => assert_eq!(p["code"], "rate_limited"),
        other => panic!("the third stream should be 429: {:?}", other.err()),
    }
    // After its maximum duration the stream ends: a retry hint last, no `end`.
    let events = a.all();
    assert!(named(&events, "end").is_empty());
    assert!(events.last().unwrap().retry.is_some(), "{events:?}");
    let last_id = named(&events, "status")[0].id.clone().unwrap();
    // Resuming from it gives nothing already seen (the status is unchanged).
    let again = Stream::open(&h, &path, &[("Last-Event-ID", &last_id)]);
    let again = again.map(|s| s.all()).unwrap_or_default();
    assert!(named(&again, "status").is_empty(), "{again:?}");
}

#[test]
fn a_live_call_streams_each_message_as_it_comes_and_a_client_that_drops_out_resumes_without_gap() {
    let sims = SimOptions {
        live_step: Some(Duration::from_millis(150)),
        ..SimOptions::default()
    };
    let h = Harness::start_configured(
        sims,
        "[events]\npoll_ms = 100\npoll_quiet_max_ms = 200\nstream_status_poll_ms = 100\n",
    );
    let bimpe_agent = h.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let create = |provider: &str, to: &str| {
        let body = match provider {
            "elemente" => {
                serde_json::json!({"provider": "elemente", "agentId": "123e4567-e89b-12d3-a456-426614174000", "to": to, "skillId": "skill-1"})
            }
            "bimpe" => serde_json::json!({"provider": "bimpe", "agentId": bimpe_agent, "to": to}),
            _ => {
                serde_json::json!({"provider": "zudu", "agentId": "agent-1", "to": to, "from": "+14155550199"})
            }
        };
        let r = h.send("POST", "/v1/calls", &body.to_string(), &[]);
        assert_eq!(r.status, 201, "{provider}: {}", r.text);
        r.json()["id"].as_str().unwrap().to_string()
    };
    for (n, provider) in ["elemente", "bimpe", "zudu"].into_iter().enumerate() {
        // One client watches a call from its start to its end.
        let id = create(provider, &format!("+1415555011{n}"));
        let path = format!("/v1/calls/{}/events", urlencode(&id));
        let events = Stream::open(&h, &path, &[]).unwrap().all();
        let statuses: Vec<Value> = named(&events, "status")
            .iter()
            .map(|e| data(e)["status"].clone())
            .collect();
        assert!(
            statuses.contains(&Value::from("in_progress")),
            "{provider}: {statuses:?}"
        );
        assert_eq!(
            statuses.last(),
            Some(&Value::from("completed")),
            "{provider}"
        );
        let got = h.get(&format!("/v1/calls/{}", urlencode(&id))).json();
        let messages: Vec<Value> = named(&events, "message")
            .iter()
            .map(|e| data(e)["message"].clone())
            .collect();
        assert!(
            messages.len() >= 2,
            "{provider}: {} messages",
            messages.len()
        );
        assert_eq!(Value::Array(messages), got["messages"], "{provider}");
        let mut end = data(named(&events, "end")[0]);
        let mut get = got.clone();
        for v in [&mut end, &mut get] {
            v.as_object_mut().unwrap().remove("raw");
        }
        assert_eq!(end, get, "{provider}");

        // Another drops out at a random point (after its first status, or after its first or
        // second message) and comes back with its last id.
        let leave_after = fastrand::usize(0..3);
        let id = create(provider, &format!("+1415555012{n}"));
        let path = format!("/v1/calls/{}/events", urlencode(&id));
        let first = Stream::open(&h, &path, &[]).unwrap();
        let mut seen = Vec::new();
        let (last_id, left_at_end) = loop {
            let e = first.next_named();
            if e.event.as_deref() == Some("message") {
                seen.push(data(&e)["message"].clone());
            }
            let end = e.event.as_deref() == Some("end");
            if seen.len() >= leave_after || end {
                break (e.id.unwrap(), end);
            }
        };
        drop(first);
        // Away for two steps, so the call says more while the client is gone. (A condition
        // wait would read the call, and that read would fill the cache the final GET compares.)
        std::thread::sleep(Duration::from_millis(300));
        let rest = Stream::open(&h, &path, &[("Last-Event-ID", &last_id)])
            .unwrap()
            .all();
        seen.extend(
            named(&rest, "message")
                .iter()
                .map(|e| data(e)["message"].clone()),
        );
        let got = h.get(&format!("/v1/calls/{}", urlencode(&id))).json();
        assert_eq!(
            Value::Array(seen),
            got["messages"],
            "{provider}: no duplicate, no gap (left after {leave_after} messages)"
        );
        // `end` once in all: before leaving, or after coming back.
        let ends = named(&rest, "end").len() + usize::from(left_at_end);
        assert_eq!(ends, 1, "{provider}");
    }
}
