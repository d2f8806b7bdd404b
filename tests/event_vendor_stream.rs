//! Live events of a vendor that streams its messages (Bimpe: Server-Sent Events behind a
//! single-use ticket), over real sockets against the simulator's stream: one vendor stream per
//! watched call, a new ticket per (re)connect, no gap and no duplicate when the vendor drops
//! the stream, and the vendor's refusals mapped before and after the stream starts.

mod common;

use callgate_sim::{Fault, FaultAction, RecordedRequest, SimOptions, VendorKind};
use common::sse::{data, named, urlencode, Stream};
use common::Harness;
use serde_json::Value;
use std::time::Duration;

fn sims() -> SimOptions {
    SimOptions {
        live_step: Some(Duration::from_millis(200)),
        stream_heartbeat: Duration::from_millis(200),
        ..SimOptions::default()
    }
}

const CONFIG: &str = "[events]\npoll_ms = 100\npoll_quiet_max_ms = 200\nstream_status_poll_ms = 200\nheartbeat_seconds = 1\n";

fn stream_gets(reqs: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    reqs.iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/stream"))
        .collect()
}

fn ticket_posts(reqs: &[RecordedRequest]) -> usize {
    reqs.iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/stream-ticket"))
        .count()
}

fn query_value(r: &RecordedRequest, name: &str) -> Option<String> {
    form_urlencoded::parse(r.query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn header<'r>(r: &'r RecordedRequest, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A call of the simulator's data that stays live (it is not playing: it never ends).
fn live_bimpe_call(h: &Harness) -> String {
    let agent = h.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let page = h
        .get(&format!(
            "/v1/calls?provider=bimpe&status=in_progress&limit=1&agentId={agent}"
        ))
        .json();
    page["data"][0]["id"]
        .as_str()
        .expect("a live bimpe call in the simulator's data")
        .to_string()
}

fn metric_line(h: &Harness, series: &str) -> Option<f64> {
    h.scrape()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn a_bimpe_call_streams_through_its_vendor_stream_with_a_new_ticket_per_connect_and_no_gap_when_it_drops(
) {
    let h = Harness::start_configured(sims(), CONFIG);
    let bimpe = h.sim(VendorKind::Bimpe);
    let agent = bimpe.agent_ids()[0].clone();
    // The vendor drops the first stream right after its first message.
    bimpe.add_fault(Fault {
        method: Some("GET".into()),
        path_prefix: Some(format!("/api/v1/console/agents/{agent}/conversations/")),
        times: Some(1),
        action: FaultAction::Disconnect { after_events: 1 },
        ..Fault::default()
    });
    let body = serde_json::json!({"provider": "bimpe", "agentId": agent, "to": "+14155550131"});
    let created = h.send("POST", "/v1/calls", &body.to_string(), &[]);
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/calls/{}/events", urlencode(&id));
    let events = Stream::open(&h, &path, &[]).unwrap().all();

    let got = h.get(&format!("/v1/calls/{}", urlencode(&id))).json();
    let messages: Vec<Value> = named(&events, "message")
        .iter()
        .map(|e| data(e)["message"].clone())
        .collect();
    assert!(messages.len() >= 2, "{} messages", messages.len());
    assert_eq!(
        Value::Array(messages.clone()),
        got["messages"],
        "no duplicate, no gap"
    );
    let statuses: Vec<Value> = named(&events, "status")
        .iter()
        .map(|e| data(e)["status"].clone())
        .collect();
    assert_eq!(statuses.last(), Some(&Value::from("completed")));
    let mut end = data(named(&events, "end")[0]);
    let mut get = got.clone();
    for v in [&mut end, &mut get] {
        v.as_object_mut().unwrap().remove("raw");
    }
    assert_eq!(end, get);

    // The vendor's journal: a stream per connect, each with a ticket of its own, the reconnect
    // resuming after a message the client had.
    let reqs = bimpe.requests();
    let gets = stream_gets(&reqs);
    assert!(gets.len() >= 2, "{} stream requests", gets.len());
    assert!(ticket_posts(&reqs) >= gets.len());
    let tickets: Vec<String> = gets
        .iter()
        .map(|r| query_value(r, "ticket").expect("a ticket"))
        .collect();
    let mut distinct = tickets.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), tickets.len(), "a ticket is used once");
    let resumed = header(gets[1], "last-event-id").expect("the reconnect resumes");
    assert!(
        messages.iter().any(|m| m["id"] == resumed),
        "resumed after {resumed}, a message the client had"
    );
    // A ticket reaches neither the client nor the logs.
    let sent: String = events
        .iter()
        .map(|e| format!("{:?}{:?}", e.id, e.data))
        .collect();
    let logs = common::captured_logs();
    for t in &tickets {
        assert!(!sent.contains(t.as_str()), "a ticket reached the client");
        assert!(!logs.contains(t.as_str()), "a ticket was logged");
    }
    let ok = metric_line(
        &h,
        "callgate_event_upstream_connects_total{provider=\"bimpe\",result=\"ok\"}",
    );
    assert!(ok.unwrap_or(0.0) >= 2.0, "{ok:?}");
    // Each message said after the stream opened was timed from the vendor's event to the client.
    let timed = metric_line(&h, "callgate_event_delivery_seconds_count");
    assert!(timed.unwrap_or(0.0) >= 1.0, "{timed:?}");
}

#[test]
fn a_vendor_refusing_its_stream_is_a_problem_before_the_first_byte_and_a_clean_end_after() {
    let h = Harness::start_configured(sims(), CONFIG);
    let bimpe = h.sim(VendorKind::Bimpe);
    let id = live_bimpe_call(&h);
    let path = format!("/v1/calls/{}/events", urlencode(&id));
    let too_many = FaultAction::Status {
        status: 429,
        body: serde_json::json!({"message": "Too many concurrent streams for this API key.", "error": "Too Many Requests", "code": "too_many_streams", "statusCode": 429, "request_id": "r1"}).to_string(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Retry-After".into(), "5".into()),
        ],
    };
    let agent = id.split(':').nth(1).unwrap();
    // The stream's path (its ticket is a POST; the call's reads are under `/calls/`).
    let stream_get = |action: FaultAction, times: u32| Fault {
        method: Some("GET".into()),
        path_prefix: Some(format!("/api/v1/console/agents/{agent}/conversations/")),
        times: Some(times),
        action,
        ..Fault::default()
    };
    // Before the stream starts: the client's answer.
    bimpe.add_fault(stream_get(too_many.clone(), 1));
    match Stream::open(&h, &path, &[]) {
        Err((429, p)) => {
            assert_eq!(p["code"], "provider_rate_limited", "{p}");
            assert_eq!(p["providerCode"], "too_many_streams", "{p}");
        }
        other => panic!("a refused vendor stream should be 429: {:?}", other.err()),
    }
    // After it started: the vendor drops it and refuses the reconnect; the client's stream
    // ends with a retry hint, no `end`.
    bimpe.add_fault(stream_get(FaultAction::Disconnect { after_events: 0 }, 1));
    bimpe.add_fault(stream_get(too_many, 50));
    let stream = Stream::open(&h, &path, &[]).unwrap();
    assert_eq!(stream.next_named().event.as_deref(), Some("status"));
    let rest = stream.all();
    assert!(named(&rest, "end").is_empty(), "{rest:?}");
    assert!(rest.last().is_some_and(|e| e.retry.is_some()), "{rest:?}");
    common::wait_until("the refusal to be counted", || {
        metric_line(
            &h,
            "callgate_event_streams_ended_total{reason=\"upstream_refused\"}",
        ) == Some(1.0)
    });
    bimpe.clear_faults();
}

#[test]
fn a_hundred_clients_of_one_bimpe_call_share_one_vendor_stream_which_closes_after_the_last() {
    let h = Harness::start_configured(sims(), CONFIG);
    let bimpe = h.sim(VendorKind::Bimpe);
    let id = live_bimpe_call(&h);
    let path = format!("/v1/calls/{}/events", urlencode(&id));
    bimpe.clear_requests();
    let streams: Vec<Stream> = (0..100)
        .map(|_| Stream::open(&h, &path, &[]).unwrap())
        .collect();
    for s in &streams {
        assert_eq!(s.next_named().event.as_deref(), Some("status"));
    }
    let reqs = bimpe.requests();
    assert_eq!(stream_gets(&reqs).len(), 1, "one vendor stream");
    assert_eq!(ticket_posts(&reqs), 1, "one ticket");
    assert_eq!(bimpe.open_streams(), 1);
    drop(streams);
    common::wait_until("the vendor stream to close after the last client", || {
        bimpe.open_streams() == 0
    });
}
