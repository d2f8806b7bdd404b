//! Bimpe's per-conversation message stream (Server-Sent Events) over real sockets: the ticket
//! endpoint and its errors, the stream's backlog, resume positions, single-use tickets, live
//! messages each sent once, heartbeats, the per-key stream limit, faults on the stream path,
//! and how a stream ends (client gone, simulator shutdown).

mod common;

use callgate_sim::credentials::{BIMPE_API_KEY, BIMPE_API_KEY_NO_SCOPE};
use callgate_sim::{
    Fault, FaultAction, SimCluster, SimOptions, VendorKind, VendorSim, MAX_STREAMS_PER_KEY,
};
use common::sse::{self, End, Event};
use common::{call, request, Conn, Outcome, Resp};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const K: VendorKind = VendorKind::Bimpe;

fn cluster(live_step: Option<Duration>) -> SimCluster {
    SimCluster::start(SimOptions {
        calls_per_vendor: 60,
        live_step,
        stream_heartbeat: Duration::from_millis(100),
        ..SimOptions::default()
    })
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Waits (up to 10 s) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = deadline();
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ticket_path(agent: &str, conversation: &str) -> String {
    format!("/api/v1/console/agents/{agent}/conversations/{conversation}/stream-ticket")
}

fn stream_path(agent: &str, conversation: &str) -> String {
    format!("/api/v1/console/agents/{agent}/conversations/{conversation}/stream")
}

/// A new ticket for a stream of `conversation`.
fn ticket(addr: SocketAddr, agent: &str, conversation: &str) -> String {
    let r = call(addr, K, "POST", &ticket_path(agent, conversation), "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["ticket"].as_str().unwrap().to_string()
}

/// Opens a stream of `conversation` with a fresh ticket, `query` appended (`&after=…`), `headers`.
fn open(
    addr: SocketAddr,
    agent: &str,
    conversation: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> sse::Opened {
    let t = ticket(addr, agent, conversation);
    let target = format!("{}?ticket={t}{query}", stream_path(agent, conversation));
    sse::open(addr, &target, headers)
}

/// An agent's call with at least four conversation log entries: (agent, call id, logs).
fn call_with_messages(sim: &VendorSim) -> (String, String, Vec<Value>) {
    for agent in sim.agent_ids() {
        for rec in sim.records_for_agent(&agent) {
            let logs = rec["conversation_logs"].as_array().unwrap();
            if logs.len() >= 4 {
                let id = rec["id"].as_str().unwrap().to_string();
                return (agent, id, logs.clone());
            }
        }
    }
    panic!("no call with four messages in the data set")
}

/// What a stream must send for a log entry.
fn expected(conversation: &str, m: &Value) -> Event {
    let data = json!({"id": m["id"], "conversation_id": conversation, "role": m["role"],
        "message": m["message"], "message_type": m["message_type"], "created_at": m["created_at"]});
    Event {
        event: "message".into(),
        id: Some(m["id"].as_str().unwrap().to_string()),
        data: data.to_string(),
    }
}

fn assert_error(r: &Resp, status: u16, code: &str, message: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["code"], code);
    assert_eq!(body["message"], message);
    assert_eq!(body["statusCode"], status);
    assert!(body["request_id"].is_string() && body["error"].is_string());
}

/// Creates a call through the API (it plays live with `live_step`); its id.
fn create_call(addr: SocketAddr, agent: &str) -> String {
    let path = format!("/api/v1/console/agents/{agent}/calls");
    let r = call(addr, K, "POST", &path, r#"{"destination": "+15550001234"}"#);
    assert_eq!(r.status, 201);
    r.json()["data"]["call_id"].as_str().unwrap().to_string()
}

#[test]
fn a_ticket_opens_the_stream_of_a_conversation_backlog_first_then_heartbeats() {
    let c = cluster(None);
    let (b, sim) = (c.addr(K), c.sim(K));
    let (agent, conv, logs) = call_with_messages(&sim);

    let r = call(b, K, "POST", &ticket_path(&agent, &conv), "");
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert_eq!(body["expires_in"], 60);
    let t = body["ticket"].as_str().unwrap();
    assert!(t.starts_with("tk_") && t.len() == 35, "{t}");
    assert!(t[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(r.header(h).is_some(), "{h}");
    }
    let by_x_api_key = request(
        b,
        "POST",
        &ticket_path(&agent, &conv),
        &[("X-Api-Key", BIMPE_API_KEY)],
        "",
    );
    assert_eq!(by_x_api_key.status, 200);

    sim.clear_requests();
    let target = format!("{}?ticket={t}", stream_path(&agent, &conv));
    let (mut s, head) = sse::open(b, &target, &[("X-Request-Id", "req-stream-1")]).stream();
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert_eq!(head.header("content-length"), None);
    assert_eq!(head.header("x-request-id"), Some("req-stream-1"));
    assert!(head.header("x-ratelimit-remaining").is_some());
    assert_eq!(sim.open_streams(), 1);

    let backlog = s.until_heartbeat(deadline());
    let want: Vec<Event> = logs.iter().map(|m| expected(&conv, m)).collect();
    assert_eq!(backlog, want);
    let beat = s.next(deadline()).unwrap();
    assert_eq!((beat.event.as_str(), beat.id.as_ref()), ("heartbeat", None));
    let ts = serde_json::from_str::<Value>(&beat.data).unwrap()["ts"]
        .as_u64()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ts.abs_diff(now) < 60, "{ts} vs {now}");

    let journal = sim.requests();
    assert_eq!(journal.len(), 1);
    assert_eq!(
        (journal[0].method.as_str(), journal[0].path.as_str()),
        ("GET", stream_path(&agent, &conv).as_str())
    );
    assert_eq!(journal[0].query.as_deref(), Some(&*format!("ticket={t}")));
    assert!(journal[0]
        .headers
        .iter()
        .any(|(k, v)| k == "x-request-id" && v == "req-stream-1"));

    drop(s);
    wait_until("the closed stream gives its slot back", || {
        sim.open_streams() == 0
    });
}

#[test]
fn the_ticket_endpoint_authenticates_like_every_other() {
    let c = cluster(None);
    let (b, sim) = (c.addr(K), c.sim(K));
    let (agent, conv, _) = call_with_messages(&sim);
    let other_agent = sim.agent_ids().into_iter().find(|a| *a != agent).unwrap();
    let path = ticket_path(&agent, &conv);

    let r = request(b, "POST", &path, &[], "");
    assert_error(&r, 401, "api_key_missing", "API key is missing.");
    let r = request(b, "POST", &path, &[("X-Api-Key", "sk_wrong")], "");
    assert_error(&r, 401, "api_key_invalid", "Invalid API key.");
    let bearer = format!("Bearer {BIMPE_API_KEY_NO_SCOPE}");
    let r = request(b, "POST", &path, &[("Authorization", &bearer)], "");
    assert_error(
        &r,
        403,
        "insufficient_scope",
        "This API key is missing the required scope: conversations:read.",
    );
    assert!(r.header("x-ratelimit-limit").is_some());
    let r = call(b, K, "POST", &ticket_path("agt_nope", &conv), "");
    assert_error(&r, 404, "not_found", "Agent not found");
    let r = call(b, K, "POST", &ticket_path(&agent, "no-such-call"), "");
    assert_error(&r, 404, "not_found", "Conversation not found");
    let r = call(b, K, "POST", &ticket_path(&other_agent, &conv), "");
    assert_error(&r, 404, "not_found", "Conversation not found");
    let r = call(b, K, "GET", &path, "");
    assert_eq!(r.status, 404, "only POST issues a ticket");
}

#[test]
fn a_ticket_is_single_use_and_good_for_its_conversation_only() {
    let c = cluster(None);
    let (b, sim) = (c.addr(K), c.sim(K));
    let (agent, conv, _) = call_with_messages(&sim);
    let other_conv = sim
        .records_for_agent(&agent)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .find(|id| *id != conv)
        .unwrap();
    let invalid = "Invalid or expired stream ticket.";

    let r = sse::open(b, &stream_path(&agent, &conv), &[]).refused();
    assert_error(&r, 401, "unauthorized", "A stream ticket is required.");
    let api_key_alone = [("Authorization", format!("Bearer {BIMPE_API_KEY}"))];
    let headers: Vec<(&str, &str)> = api_key_alone
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let r = sse::open(b, &stream_path(&agent, &conv), &headers).refused();
    assert_error(&r, 401, "unauthorized", "A stream ticket is required.");
    let target = format!("{}?ticket=tk_made_up", stream_path(&agent, &conv));
    assert_error(
        &sse::open(b, &target, &[]).refused(),
        401,
        "unauthorized",
        invalid,
    );

    let t = ticket(b, &agent, &conv);
    let target = format!("{}?ticket={t}", stream_path(&agent, &conv));
    let (first, _) = sse::open(b, &target, &[]).stream();
    let r = sse::open(b, &target, &[]).refused();
    assert_error(&r, 401, "unauthorized", invalid);
    drop(first);

    let t = ticket(b, &agent, &conv);
    let elsewhere = format!("{}?ticket={t}", stream_path(&agent, &other_conv));
    assert_error(
        &sse::open(b, &elsewhere, &[]).refused(),
        401,
        "unauthorized",
        invalid,
    );
    let t = ticket(b, &agent, &conv);
    let other_agent = sim.agent_ids().into_iter().find(|a| *a != agent).unwrap();
    let elsewhere = format!("{}?ticket={t}", stream_path(&other_agent, &conv));
    assert_error(
        &sse::open(b, &elsewhere, &[]).refused(),
        401,
        "unauthorized",
        invalid,
    );
}

#[test]
fn a_stream_resumes_after_last_event_id_or_after_a_chat_id_or_an_instant() {
    let c = cluster(None);
    let (b, sim) = (c.addr(K), c.sim(K));
    let (agent, conv, logs) = call_with_messages(&sim);
    let want =
        |from: usize| -> Vec<Event> { logs[from..].iter().map(|m| expected(&conv, m)).collect() };
    let backlog = |query: &str, headers: &[(&str, &str)]| -> Vec<Event> {
        let (mut s, _) = open(b, &agent, &conv, query, headers).stream();
        s.until_heartbeat(deadline())
    };
    let id = |n: usize| logs[n]["id"].as_str().unwrap().to_string();

    assert_eq!(backlog("", &[("Last-Event-ID", &id(1))]), want(2));
    assert_eq!(backlog(&format!("&after={}", id(1)), &[]), want(2));
    let last = logs.len() - 1;
    assert_eq!(
        backlog(&format!("&after={}", id(last)), &[]),
        want(last + 1)
    );
    assert_eq!(
        backlog(&format!("&after={}", id(0)), &[("Last-Event-ID", &id(2))]),
        want(3),
        "Last-Event-ID wins over after"
    );
    assert_eq!(backlog("&after=chat_unknown", &[]), want(0));
    assert_eq!(backlog("", &[("Last-Event-ID", "chat_unknown")]), want(0));

    let at = logs[1]["created_at"].as_str().unwrap();
    let later: Vec<Event> = logs
        .iter()
        .filter(|m| m["created_at"].as_str().unwrap() > at)
        .map(|m| expected(&conv, m))
        .collect();
    assert!(!later.is_empty() && later.len() < logs.len() - 1);
    assert_eq!(backlog(&format!("&after={at}"), &[]), later);
    assert_eq!(backlog("&after=2020-01-01T00:00:00Z", &[]), want(0));
    assert_eq!(
        backlog("&after=2099-01-01T00:00:00Z", &[]),
        want(logs.len())
    );
    // An instant with an offset, percent-encoded as a client must send `+`.
    assert_eq!(backlog("&after=2020-01-01T01:00:00%2B01:00", &[]), want(0));
}

#[test]
fn a_live_call_streams_each_new_message_once_in_order() {
    let c = cluster(Some(Duration::from_millis(50)));
    let (b, sim) = (c.addr(K), c.sim(K));
    let agent = sim.agent_ids()[0].clone();
    let conv = create_call(b, &agent);
    let record = || {
        sim.records_for_agent(&agent)
            .into_iter()
            .find(|r| r["id"] == conv.as_str())
            .unwrap()
    };
    let (mut s, _) = open(b, &agent, &conv, "", &[]).stream();
    let mut got: Vec<Event> = Vec::new();
    let mut resumed = None;
    let end = deadline();
    // Until the call has ended and every one of its messages has arrived.
    loop {
        let rec = record();
        let logs = rec["conversation_logs"].as_array().unwrap();
        if rec["status"] == "ended" && got.len() >= logs.len() {
            break;
        }
        let event = s.next(end).unwrap();
        if event.event == "message" {
            got.push(event);
            if got.len() == 1 {
                // A second stream resuming after the first message, while the call plays.
                let first = got[0].id.clone().unwrap();
                resumed = Some(open(b, &agent, &conv, "", &[("Last-Event-ID", &first)]).stream());
            }
        }
    }
    // A few heartbeats more (many polls of the state): nothing is sent twice.
    for _ in 0..3 {
        assert_eq!(s.next(end).unwrap().event, "heartbeat");
    }
    let logs = record()["conversation_logs"].as_array().unwrap().clone();
    assert!(logs.len() >= 2);
    let want: Vec<Event> = logs.iter().map(|m| expected(&conv, m)).collect();
    assert_eq!(got, want);

    let (mut r, _) = resumed.unwrap();
    let mut rest = Vec::new();
    while rest.len() < want.len() - 1 {
        rest.push(r.next_message(end).unwrap());
    }
    assert_eq!(rest, want[1..]);
    for _ in 0..3 {
        assert_eq!(r.next(end).unwrap().event, "heartbeat");
    }
    assert_eq!(
        sim.open_streams(),
        2,
        "streams stay open after the call ended"
    );
}

#[test]
fn an_api_key_may_have_twenty_five_streams_open_at_once() {
    let c = cluster(None);
    let (b, sim) = (c.addr(K), c.sim(K));
    let (agent, conv, _) = call_with_messages(&sim);
    let mut streams: Vec<sse::Sse> = (0..MAX_STREAMS_PER_KEY)
        .map(|_| open(b, &agent, &conv, "", &[]).stream().0)
        .collect();
    assert_eq!(sim.open_streams(), 25);

    let t = ticket(b, &agent, &conv);
    let target = format!("{}?ticket={t}", stream_path(&agent, &conv));
    let r = sse::open(b, &target, &[]).refused();
    assert_error(
        &r,
        429,
        "too_many_streams",
        "Too many concurrent streams for this API key.",
    );
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.header("x-ratelimit-remaining").is_some());
    let r = sse::open(b, &target, &[]).refused();
    assert_error(&r, 401, "unauthorized", "Invalid or expired stream ticket.");

    // A client that leaves gives its slot back, and the next stream opens.
    drop(streams.pop());
    wait_until("a slot is free", || sim.open_streams() == 24);
    streams.push(open(b, &agent, &conv, "", &[]).stream().0);
    assert_eq!(sim.open_streams(), 25);
    for s in &mut streams {
        s.until_heartbeat(deadline());
    }
    drop(streams);
    wait_until("every slot is free", || sim.open_streams() == 0);
}

#[test]
fn a_disconnect_fault_cuts_a_stream_after_so_many_messages() {
    let c = cluster(Some(Duration::from_millis(50)));
    let (b, sim) = (c.addr(K), c.sim(K));
    let (agent, conv, logs) = call_with_messages(&sim);
    // GET: a stream path is a prefix of its ticket path.
    let disconnect = |after_events, path_prefix: String| Fault {
        times: Some(1),
        method: Some("GET".into()),
        path_prefix: Some(path_prefix),
        action: FaultAction::Disconnect { after_events },
        ..Fault::default()
    };

    sim.add_fault(disconnect(2, stream_path(&agent, &conv)));
    let (mut s, _) = open(b, &agent, &conv, "", &[]).stream();
    let got: Vec<Event> = (0..2)
        .map(|_| s.next_message(deadline()).unwrap())
        .collect();
    assert_eq!(got, [expected(&conv, &logs[0]), expected(&conv, &logs[1])]);
    assert_eq!(s.next(deadline()), Err(End::Abrupt));
    wait_until("the cut stream gives its slot back", || {
        sim.open_streams() == 0
    });

    // On a live call, it waits for the messages to come.
    let live = create_call(b, &agent);
    sim.add_fault(disconnect(2, stream_path(&agent, &live)));
    let (mut s, _) = open(b, &agent, &live, "", &[]).stream();
    let ids: Vec<Option<String>> = (0..2)
        .map(|_| s.next_message(deadline()).unwrap().id)
        .collect();
    assert_eq!(s.next(deadline()), Err(End::Abrupt));
    let rec = sim.records_for_agent(&agent);
    let rec = rec.iter().find(|r| r["id"] == live.as_str()).unwrap();
    let logged: Vec<Option<String>> = rec["conversation_logs"].as_array().unwrap()[..2]
        .iter()
        .map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, logged);

    // Anything else: a reset.
    sim.add_fault(disconnect(2, "/api/v1/console".into()));
    let owned = common::auth(K);
    let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let list = format!("/api/v1/console/agents/{agent}/calls");
    assert!(matches!(
        Conn::open(b).send("GET", &list, &headers, ""),
        Outcome::Closed
    ));
    assert_eq!(call(b, K, "GET", &list, "").status, 200);
    assert_eq!(sim.open_streams(), 0);
}

#[test]
fn a_status_fault_answers_the_stream_path_without_using_the_ticket() {
    let c = cluster(None);
    let (b, sim) = (c.addr(K), c.sim(K));
    let (agent, conv, logs) = call_with_messages(&sim);
    let refusal = r#"{"message":"Too many concurrent streams for this API key.","error":"Too Many Requests","code":"too_many_streams","statusCode":429,"request_id":"x"}"#;
    sim.add_fault(Fault {
        times: Some(1),
        method: Some("GET".into()),
        path_prefix: Some(stream_path(&agent, &conv)),
        action: FaultAction::Status {
            status: 429,
            body: refusal.into(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Retry-After".into(), "5".into()),
            ],
        },
        ..Fault::default()
    });
    let t = ticket(b, &agent, &conv);
    let target = format!("{}?ticket={t}", stream_path(&agent, &conv));
    let r = sse::open(b, &target, &[]).refused();
    assert_eq!((r.status, r.header("retry-after")), (429, Some("5")));
    assert_eq!(r.body, refusal.as_bytes());
    let (mut s, _) = sse::open(b, &target, &[]).stream();
    assert_eq!(s.until_heartbeat(deadline()).len(), logs.len());
    assert_eq!(sim.requests().len(), 3, "ticket and both stream requests");
}

#[test]
fn a_simulator_shutting_down_ends_its_streams_cleanly() {
    use pingora::server::configuration::ServerConf;
    use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};

    struct Terminate(tokio::sync::watch::Receiver<bool>);
    #[async_trait::async_trait]
    impl ShutdownSignalWatch for Terminate {
        async fn recv(&self) -> ShutdownSignal {
            let _ = self.0.clone().wait_for(|stop| *stop).await;
            ShutdownSignal::GracefulTerminate
        }
    }

    let sim = VendorSim::new(
        K,
        &SimOptions {
            calls_per_vendor: 60,
            stream_heartbeat: Duration::from_millis(100),
            ..SimOptions::default()
        },
    );
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.add_service(callgate_sim::listening_service(
        sim.clone(),
        &addr.to_string(),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let thread = std::thread::spawn(move || {
        server.run(RunArgs {
            shutdown_signal: Box::new(Terminate(stopped)),
        })
    });
    wait_until("the simulator listens", || {
        std::net::TcpStream::connect(addr).is_ok()
    });

    let (agent, conv, logs) = call_with_messages(&sim);
    let (mut s, _) = open(addr, &agent, &conv, "", &[]).stream();
    assert_eq!(s.until_heartbeat(deadline()).len(), logs.len());
    stop.send(true).unwrap();
    let end = deadline();
    let ended = loop {
        match s.next(end) {
            Ok(e) => assert_eq!(e.event, "heartbeat"),
            Err(how) => break how,
        }
    };
    assert_eq!(ended, End::Clean);
    wait_until("the ended stream gives its slot back", || {
        sim.open_streams() == 0
    });
    thread.join().unwrap();
}
