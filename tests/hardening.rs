//! Defects a hostile probe found, over real sockets with raw HTTP/1.1 bytes (what a well-behaved
//! client library would never send): each answered as the client's mistake, with nothing sent
//! to a vendor.

mod common;

use callgate_sim::VendorKind;
use common::raw::{complete, raw};
use common::{wait_until, Harness, KEY};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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
    let cases: [(&str, &[u8], bool); 2] = [
        // Bad chunk framing: a size line that is not hex.
        (
            "Transfer-Encoding: chunked\r\n",
            b"zz\r\n{}\r\n0\r\n\r\n",
            false,
        ),
        // Cut short: 100 bytes declared, 10 sent, then the client stops writing.
        ("Content-Length: 100\r\n", b"{\"to\": \"+", true),
    ];
    for (framing, body, cut) in cases {
        let r = raw(&h, &post_head(framing), body, cut);
        assert_eq!(r.status, 400, "{framing}: {}", r.body);
        let p = r.problem();
        assert_eq!(
            (p["code"].as_str(), p["errors"][0]["field"].as_str()),
            (Some("invalid_request"), Some("body"))
        );
    }
    let counted = h
        .metric(
            r#"callgate_requests_total{code="invalid_request",operation="other",provider="none"}"#,
        )
        .unwrap_or_default();
    assert!(counted >= 2.0, "counted {counted}");
    assert!(h.sim(VendorKind::Zudu).requests().is_empty());
}

#[test]
fn a_failing_provider_operation_opens_its_circuit_then_recovers() {
    use callgate_sim::{Fault, FaultAction, SimOptions};
    let h = Harness::start_configured(
        SimOptions::default(),
        "[providers.zudu.circuit_breaker]\nconsecutive_failures = 3\nopen_ms = 500\n",
    );
    let zudu = h.sim(VendorKind::Zudu);
    let id = h.get("/v1/calls?provider=zudu&limit=1").json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let get = format!("/v1/calls/{id}");
    zudu.clear_requests();
    zudu.add_fault(Fault {
        path_prefix: Some("/api/calls/".into()),
        action: FaultAction::Status {
            status: 500,
            body: "{}".into(),
            headers: vec![],
        },
        ..Default::default()
    });
    for _ in 0..3 {
        h.get(&get).problem(502, "provider_error");
    }
    // Open: refused at once, nothing sent, with a time to retry.
    let r = h.get(&get);
    let p = r.problem(503, "provider_unavailable");
    assert_eq!(p["provider"], "zudu");
    assert!(r.retry_after.is_some());
    assert_eq!(zudu.requests().len(), 3, "nothing sent while open");
    // Only that operation of that provider: lists still go to zudu.
    assert_eq!(h.get("/v1/calls?provider=zudu&limit=1").status, 200);
    let metrics = h.metrics();
    assert!(
        metrics.contains(r#"callgate_circuit_open{operation="get_call",provider="zudu"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"callgate_circuit_open{operation="list_calls",provider="zudu"} 0"#));
    // The vendor recovers: after the open time a probe goes through and closes the circuit.
    zudu.clear_faults();
    wait_until("the circuit to close", || h.get(&get).status == 200);
    assert_eq!(h.get(&get).status, 200);
    assert!(h
        .metrics()
        .contains(r#"callgate_circuit_open{operation="get_call",provider="zudu"} 0"#));
}

#[test]
fn a_vendor_that_echoes_callgates_credentials_is_quoted_without_them() {
    use callgate_sim::{credentials, Fault, FaultAction};
    let h = Harness::start();
    let echo = format!(
        r#"{{"error": "key {} with secret {} is not allowed"}}"#,
        credentials::ZUDU_API_KEY,
        credentials::ZUDU_API_SECRET
    );
    h.sim(VendorKind::Zudu).add_fault(Fault {
        action: FaultAction::Status {
            status: 403,
            body: echo,
            headers: vec![],
        },
        ..Default::default()
    });
    let r = h.get("/v1/calls?provider=zudu&limit=1");
    let p = r.problem(502, "provider_auth_failed");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("is not allowed"), "{detail}");
    for secret in [credentials::ZUDU_API_KEY, credentials::ZUDU_API_SECRET] {
        assert!(!r.text.contains(secret), "{}", r.text);
    }
}

#[test]
fn a_provider_at_its_in_flight_bound_is_refused_at_once() {
    use callgate::server::RunningGateway;
    use callgate_sim::{Fault, SimCluster, SimOptions};
    let sims = SimCluster::start(SimOptions::default());
    // zudu-b (tenant `splitter`) may have one request in flight.
    let text = common::config_text(&sims, common::free_port(), "[cache]\nenabled = false\n")
        .replace(
            "[providers.zudu-b]\n",
            "[providers.zudu-b]\nmax_in_flight = 1\n",
        );
    let gateway = RunningGateway::start(common::load(&text));
    let zudu = sims.sim(VendorKind::Zudu);
    zudu.add_fault(Fault {
        latency_ms: Some(1_500),
        times: Some(1),
        ..Default::default()
    });
    let url = format!("http://{}/v1/calls?provider=zudu-b&limit=1", gateway.addr);
    let get = |url: String| {
        let key = format!("Bearer {}", common::SPLIT_KEY);
        match ureq::get(&url).set("Authorization", &key).call() {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{e}"),
        }
    };
    let slow = std::thread::spawn({
        let url = url.clone();
        move || get(url)
    });
    wait_until("the slow request to reach the vendor", || {
        !zudu.requests().is_empty()
    });
    let (status, body) = get(url.clone());
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("provider_unavailable") && body.contains("max_in_flight"),
        "{body}"
    );
    assert_eq!(zudu.requests().len(), 1, "nothing sent over the bound");
    assert_eq!(slow.join().unwrap().0, 200);
    // The slot came back.
    assert_eq!(get(url).0, 200);
}

#[test]
fn an_idle_client_connection_is_closed_after_the_idle_timeout() {
    use callgate::server::RunningGateway;
    use callgate_sim::{SimCluster, SimOptions};
    let sims = SimCluster::start(SimOptions::default());
    let text = common::config_text(&sims, common::free_port(), "")
        .replace("[server]\n", "[server]\nclient_idle_timeout_ms = 1000\n");
    let gateway = RunningGateway::start(common::load(&text));
    let mut s = TcpStream::connect(gateway.addr).unwrap();
    let request = format!(
        "GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    // The answer, then (kept alive) nothing until callgate closes the idle connection.
    s.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    assert!(complete(&seen), "{}", String::from_utf8_lossy(&seen));
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    assert!(
        closed,
        "the idle connection was still open after {:?}",
        common::PATIENCE
    );
}

#[test]
fn two_authorization_headers_are_a_400() {
    let h = Harness::start();
    let head = format!(
        "GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\
         Authorization: Bearer someone-else\r\nConnection: close\r\n\r\n"
    );
    let r = raw(&h, head.as_bytes(), b"", false);
    assert_eq!(r.status, 400, "{}", r.body);
    let p = r.problem();
    assert_eq!(
        (p["code"].as_str(), p["errors"][0]["field"].as_str()),
        (Some("invalid_request"), Some("Authorization"))
    );
}

#[test]
fn abusive_clients_do_not_stop_normal_requests() {
    let h = Harness::start();
    let pipelined = format!(
        "GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    )
    .repeat(50);
    let mut held = Vec::new();
    for i in 0..240 {
        let mut s = TcpStream::connect(h.gateway.addr).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = match i % 4 {
            // Connects and says nothing.
            0 => Ok(()),
            // Slowloris: a request whose headers never end.
            1 => s.write_all(b"GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nX-Slow: a"),
            // Sends 50 requests and never reads an answer.
            2 => s.write_all(pipelined.as_bytes()),
            // A header flood: one header of 256 KB, unfinished.
            _ => s.write_all(
                &[
                    b"GET / HTTP/1.1\r\nX-Flood: ".as_slice(),
                    &[b'a'; 256 * 1024],
                ]
                .concat(),
            ),
        };
        held.push(s);
    }
    // Normal clients are answered meanwhile, each on a new connection.
    for _ in 0..20 {
        assert_eq!(h.get("/v1/providers").status, 200);
    }
    drop(held);
    assert_eq!(h.get("/v1/providers").status, 200);
}

#[test]
fn a_create_the_split_sent_to_a_refusing_provider_fails_over_and_says_so() {
    use callgate::server::RunningGateway;
    use callgate_sim::{SimCluster, SimOptions};
    let sims = SimCluster::start(SimOptions::default());
    let text = format!(
        "[server]\nthreads = 2\nadapters = \"adapters\"\n\
         [providers.zudu]\nvendor = \"zudu\"\nbase_url = \"http://{z}\"\n\
         credentials = {{ api_key = {{ env = \"Z_KEY\" }}, api_secret = {{ env = \"Z_SECRET\" }} }}\n\
         [providers.dead]\nvendor = \"zudu\"\nbase_url = \"http://127.0.0.1:{dead}\"\n\
         credentials = {{ api_key = {{ env = \"Z_KEY\" }}, api_secret = {{ env = \"Z_SECRET\" }} }}\n\
         [tenants.main]\nkeys = [{{ env = \"KEY\" }}]\nproviders = [\"zudu\", \"dead\"]\n\
         default = {{ dead = 99, zudu = 1 }}\n",
        z = sims.addr(VendorKind::Zudu),
        dead = common::free_port(),
    );
    let gateway = RunningGateway::start(common::load(&text));
    let body = r#"{"agentId": "agent-9", "to": "+15550102222", "from": "+15550103333"}"#;
    let mut failed_over = 0;
    for i in 0..10 {
        let r = ureq::post(&format!("http://{}/v1/calls", gateway.addr))
            .set("Authorization", &format!("Bearer {KEY}"))
            .set("Content-Type", "application/json")
            .set("Idempotency-Key", &format!("failover-{i}"))
            .send_string(body)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 201);
        if let Some(from) = r.header("callgate-failover") {
            assert_eq!(from, "dead");
            failed_over += 1;
        }
        let call: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        assert!(call["id"].as_str().unwrap().starts_with("zudu:"), "{call}");
    }
    assert!(
        failed_over >= 5,
        "only {failed_over} of 10 went to dead first"
    );
    let posts = sims
        .sim(VendorKind::Zudu)
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 10, "each create placed once");
}

#[test]
fn a_write_whose_body_is_not_sent_as_json_is_a_415() {
    let h = Harness::start();
    let body = r#"{"provider": "zudu", "agentId": "agent-9", "to": "+15550102222", "from": "+15550103333"}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = h.send("POST", "/v1/calls", body, &[("Content-Type", content_type)]);
        let p = r.problem(415, "unsupported_media_type");
        assert_eq!(p["errors"][0]["field"], "Content-Type");
    }
    // JSON with parameters, and the +json family, are JSON.
    for content_type in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        let r = h.send("POST", "/v1/calls", body, &[("Content-Type", content_type)]);
        assert_eq!(r.status, 201, "{content_type}: {}", r.text);
    }
}

#[test]
fn a_body_from_a_client_without_a_key_is_not_waited_for() {
    let h = Harness::start();
    // 1,000 bytes announced, 10 sent, the connection left open: a client with a key would be
    // waited for; one without is answered at once.
    let head = "POST /v1/calls HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer nope\r\n\
                Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let r = raw(&h, head.as_bytes(), b"{\"to\": \"+", false);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.problem()["code"], "unauthorized");
}

#[test]
fn a_read_is_tried_again_on_an_answer_that_says_so_and_a_write_never() {
    use callgate_sim::{Fault, FaultAction, SimOptions};
    let h = Harness::start_configured(SimOptions::default(), "[cache]\nenabled = false\n");
    let zudu = h.sim(VendorKind::Zudu);
    let once = |status: u16, headers: Vec<(String, String)>| Fault {
        times: Some(1),
        action: FaultAction::Status {
            status,
            body: "{}".into(),
            headers,
        },
        ..Default::default()
    };
    // A 503, then a 429 asking for 1 s: each read is answered by its second attempt.
    for fault in [
        once(503, vec![]),
        once(429, vec![("Retry-After".into(), "1".into())]),
    ] {
        zudu.clear_requests();
        zudu.add_fault(fault);
        let r = h.get("/v1/calls?provider=zudu&limit=1");
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(zudu.requests().len(), 2);
    }
    // A write is never sent twice: its 503 is the answer, with the outcome unknown.
    zudu.clear_requests();
    zudu.add_fault(once(503, vec![]));
    let body = r#"{"provider": "zudu", "agentId": "agent-9", "to": "+15550102222", "from": "+15550103333"}"#;
    let p = h
        .send("POST", "/v1/calls", body, &[])
        .problem(502, "provider_error");
    assert_eq!(p["outcome"], "unknown");
    assert_eq!(zudu.requests().len(), 1);
}

#[test]
fn a_client_that_sends_a_too_large_body_whole_before_reading_gets_the_413() {
    let h = Harness::start();
    // 4 MB over a 64 KB limit, written whole before anything is read: more than the socket
    // buffers hold, so the client's write only completes if callgate reads (and drops) it.
    for declared in [true, false] {
        let body = vec![b'x'; 4 * 1024 * 1024];
        let framing = if declared {
            format!("Content-Length: {}\r\n", body.len())
        } else {
            "Transfer-Encoding: chunked\r\n".to_string()
        };
        let head = format!(
            "POST /v1/calls HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n{framing}\r\n"
        );
        let mut s = TcpStream::connect(h.gateway.addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let sent = if declared {
            s.write_all(&body)
        } else {
            let chunk = format!("{:x}\r\n", body.len());
            s.write_all(chunk.as_bytes())
                .and_then(|_| s.write_all(&body))
                .and_then(|_| s.write_all(b"\r\n0\r\n\r\n"))
        };
        sent.unwrap_or_else(|e| panic!("declared {declared}: the body could not be sent: {e}"));
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 413"),
            "declared {declared}: {text}"
        );
        assert!(text.contains("payload_too_large"), "{text}");
    }
}
