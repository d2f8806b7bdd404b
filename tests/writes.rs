//! Writes through real sockets: create then get on each vendor with the exact vendor request
//! asserted on the simulator's journal, validation before any vendor contact, idempotency under
//! concurrency, the weighted split, no blind retries, updates and cache invalidation.

mod common;

use callgate_sim::{credentials, Fault, FaultAction, RecordedRequest, VendorKind};
use common::{Harness, SPLIT_KEY};
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};

fn header<'a>(r: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn only_request(h: &Harness, kind: VendorKind) -> RecordedRequest {
    let seen = h.sim(kind).requests();
    assert_eq!(seen.len(), 1, "{kind:?} saw {} requests", seen.len());
    seen.into_iter().next().unwrap()
}

fn clear(h: &Harness) {
    for k in VendorKind::ALL {
        h.sim(k).clear_requests();
    }
}

/// Creates, checks the 201, then GETs the new id and checks they agree.
fn create_and_get(h: &Harness, body: &Value, headers: &[(&str, &str)]) -> Value {
    let r = h.send("POST", "/v1/calls", &body.to_string(), headers);
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        r.location.as_deref(),
        Some(format!("/v1/calls/{id}").as_str())
    );
    let got = h.get(&format!("/v1/calls/{id}"));
    assert_eq!(
        got.status, 200,
        "the new id is usable at once: {}",
        got.text
    );
    let got = got.json();
    for k in ["id", "provider", "vendor", "providerCallId", "to"] {
        assert_eq!(created[k], got[k], "{k}");
    }
    created
}

#[test]
fn elemente_create_sends_exactly_the_documented_request() {
    let h = Harness::start();
    clear(&h);
    let body = json!({
        "provider": "elemente", "agentId": "123e4567-e89b-12d3-a456-426614174000", "to": "+12673624524",
        "skillId": "skill-1",
        "customer": {"firstName": "John", "lastName": "Doe", "name": "John Does", "email": "john@example.com", "language": "en-US",
                     "fields": {"Order ID": "12345", "Order Amount": 150.75, "Active Status": true}},
        "agentOverride": {"prompt": {"initialMessage": "Hello {{firstName}}, about order {{Order ID}}"}}
    });
    let created = create_and_get(&h, &body, &[]);
    assert_eq!(created["vendor"], "elemente");
    assert_eq!(created["status"], "in_progress");
    let seen = h.sim(VendorKind::Elemente).requests();
    let post = seen.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.path, "/api/v1/calls");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials::ELEMENTE_USERNAME,
        credentials::ELEMENTE_PASSWORD
    ));
    assert_eq!(
        header(post, "authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(header(post, "content-type"), Some("application/json"));
    let sent: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(
        sent,
        json!({
            "agentId": "123e4567-e89b-12d3-a456-426614174000", "channel": "call", "skillId": "skill-1",
            "agentOverride": {"prompt": {"initialMessage": "Hello {{firstName}}, about order {{Order ID}}"}},
            "customerName": "John Does", "customerPhone": "+12673624524", "customerEmail": "john@example.com",
            "customerOverride": {"firstName": "John", "lastName": "Doe", "phoneNumber": "+12673624524", "email": "john@example.com",
                "language": "en-US", "customFields": [
                    {"name": "Order ID", "value": "12345"}, {"name": "Order Amount", "value": 150.75}, {"name": "Active Status", "value": true}]}
        })
    );
}

#[test]
fn bimpe_create_forwards_the_idempotency_key_and_maps_synchronous_outcomes() {
    let h = Harness::start();
    let agent = h.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    clear(&h);
    let body = json!({"provider": "bimpe", "agentId": agent, "to": "+15550101234", "test": true});
    let created = create_and_get(&h, &body, &[("Idempotency-Key", "bimpe-key-1")]);
    assert_eq!(created["status"], "queued");
    assert_eq!(created["isTest"], true);
    assert!(created["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("bimpe:{agent}:")));
    let post = h
        .sim(VendorKind::Bimpe)
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.path, format!("/api/v1/console/agents/{agent}/calls"));
    assert_eq!(
        header(&post, "authorization"),
        Some(format!("Bearer {}", credentials::BIMPE_API_KEY).as_str())
    );
    assert_eq!(header(&post, "idempotency-key"), Some("bimpe-key-1"));
    assert_eq!(
        serde_json::from_str::<Value>(&post.body).unwrap(),
        json!({"destination": "+15550101234", "is_test_call": true})
    );
    // Busy and failed answers are calls with that status.
    for (to, status) in [("+15550100013", "busy"), ("+15550100099", "failed")] {
        let r = h.send(
            "POST",
            "/v1/calls",
            &json!({"provider": "bimpe", "agentId": agent, "to": to}).to_string(),
            &[],
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        assert_eq!(v["status"], status);
        assert_eq!(v["providerStatus"], status);
        assert!(v["endReason"].is_string());
    }
}

#[test]
fn zudu_create_sends_exactly_the_documented_request() {
    let h = Harness::start();
    clear(&h);
    let body = json!({"provider": "zudu", "agentId": "agent-9", "to": "+15550102222", "from": "+15550103333", "metadata": {"campaign": "x"}});
    let created = create_and_get(&h, &body, &[]);
    assert_eq!(created["status"], "in_progress");
    let posts: Vec<RecordedRequest> = h
        .sim(VendorKind::Zudu)
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.path, "/api/calls/create-phone-call");
    assert_eq!(header(post, "x-api-key"), Some(credentials::ZUDU_API_KEY));
    assert_eq!(
        header(post, "x-api-secret"),
        Some(credentials::ZUDU_API_SECRET)
    );
    assert_eq!(
        serde_json::from_str::<Value>(&post.body).unwrap(),
        json!({"from_number": "+15550103333", "to_number": "+15550102222", "override_agent_id": "agent-9", "metadata": {"campaign": "x"}})
    );
}

#[test]
fn invalid_writes_are_refused_before_any_vendor_is_contacted() {
    let h = Harness::start();
    clear(&h);
    let base =
        json!({"provider": "zudu", "agentId": "a", "to": "+15550102222", "from": "+15550103333"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b.to_string()
    };
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("{\"agentId\": ".into(), 400, "invalid_request", "body"),
        ("[]".into(), 400, "invalid_request", "body"),
        (with("agentId", json!(7)), 400, "invalid_request", "agentId"),
        (json!({"provider": "zudu", "to": "+15550102222"}).to_string(), 400, "invalid_request", "agent"),
        (json!({"provider": "zudu", "agentId": "a"}).to_string(), 400, "invalid_request", "to"),
        (with("to", json!("555-0102")), 400, "invalid_request", "to"),
        (with("channel", json!("fax")), 400, "invalid_request", "channel"),
        (with("channel", json!("sms")), 400, "invalid_request", "channel"),
        (with("customer", json!({"email": "not-an-email"})), 400, "invalid_request", "customer.email"),
        (with("colour", json!("red")), 400, "invalid_request", "colour"),
        (with("test", json!("yes")), 400, "invalid_request", "test"),
        (json!({"provider": "zudu", "agentId": "a", "to": "+15550102222"}).to_string(), 400, "invalid_request", "from"),
        (json!({"provider": "elemente", "agentId": "a", "to": "+15550102222"}).to_string(), 400, "invalid_request", "skillId"),
        (json!({"provider": "elemente", "agentId": "a", "to": "+15550102222", "skillId": "s", "test": true}).to_string(), 400, "invalid_request", "test"),
        (json!({"provider": "nope", "agentId": "a", "to": "+15550102222"}).to_string(), 400, "invalid_request", "provider"),
        (format!("{{\"agentId\": \"{}\", \"to\": \"+15550102222\"}}", "x".repeat(70_000)), 413, "payload_too_large", "body"),
    ];
    for (body, status, code, field) in cases {
        let r = h.send("POST", "/v1/calls", &body, &[]);
        let p = r.problem(status, code);
        assert_eq!(
            p["errors"][0]["field"],
            field,
            "{}",
            &body[..body.len().min(120)]
        );
    }
    let zudu_id = format!(
        "zudu:{}",
        h.sim(VendorKind::Zudu).records()[0]["call_id"]
            .as_str()
            .unwrap()
    );
    for (body, field) in [
        (r#"{"status": "busy"}"#, "status"),
        (r#"{"note": "hi"}"#, "note"),
        (r#"{"status": "done"}"#, "status"),
        ("{}", "body"),
    ] {
        let p = h
            .send("PATCH", &format!("/v1/calls/{zudu_id}"), body, &[])
            .problem(400, "invalid_request");
        assert_eq!(p["errors"][0]["field"], field, "{body}");
    }
    for k in VendorKind::ALL {
        assert!(
            h.sim(k).requests().is_empty(),
            "{k:?} was contacted for an invalid request"
        );
    }
}

#[test]
fn fifty_concurrent_posts_with_one_key_make_one_vendor_request() {
    let h = Arc::new(Harness::start());
    let zudu = h.sim(VendorKind::Zudu);
    zudu.add_fault(Fault {
        latency_ms: Some(300),
        path_prefix: Some("/api/calls/create".into()),
        ..Default::default()
    });
    clear(&h);
    let body =
        json!({"provider": "zudu", "agentId": "a", "to": "+15550102222", "from": "+15550103333"})
            .to_string();
    let barrier = Arc::new(Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (h, b, body) = (h.clone(), barrier.clone(), body.clone());
            std::thread::spawn(move || {
                b.wait();
                let r = h.send(
                    "POST",
                    "/v1/calls",
                    &body,
                    &[("Idempotency-Key", "same-key-50")],
                );
                (r.status, r.text, r.replayed)
            })
        })
        .collect();
    let answers: Vec<(u16, String, bool)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(zudu.requests().len(), 1, "exactly one vendor request");
    assert!(
        answers.iter().all(|a| a.0 == 201 && a.1 == answers[0].1),
        "50 identical answers"
    );
    assert_eq!(
        answers.iter().filter(|a| !a.2).count(),
        1,
        "one original, 49 replays"
    );
    // Later: the same key replays; another body conflicts; another tenant's same key is its own.
    let r = h.send(
        "POST",
        "/v1/calls",
        &body,
        &[("Idempotency-Key", "same-key-50")],
    );
    assert!(r.replayed && r.text == answers[0].1);
    let other =
        json!({"provider": "zudu", "agentId": "b", "to": "+15550102222", "from": "+15550103333"})
            .to_string();
    let p = h
        .send(
            "POST",
            "/v1/calls",
            &other,
            &[("Idempotency-Key", "same-key-50")],
        )
        .problem(409, "idempotency_conflict");
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    let auth = format!("Bearer {SPLIT_KEY}");
    let r = h.send(
        "POST",
        "/v1/calls",
        &body,
        &[("Idempotency-Key", "same-key-50"), ("Authorization", &auth)],
    );
    assert_eq!((r.status, r.replayed), (201, false));
    assert_eq!(zudu.requests().len(), 2);
}

#[test]
fn a_weighted_split_holds_and_an_agent_rule_always_wins() {
    let h = Arc::new(Harness::start());
    let auth = format!("Bearer {SPLIT_KEY}");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (h, auth) = (h.clone(), auth.clone());
            std::thread::spawn(move || {
                let mut counts = (0usize, 0usize);
                for i in 0..250 {
                    let body =
                        json!({"agentId": "a", "to": "+15550102222", "from": "+15550103333"})
                            .to_string();
                    let key = format!("split-{t}-{i}");
                    let r = h.send(
                        "POST",
                        "/v1/calls",
                        &body,
                        &[("Authorization", &auth), ("Idempotency-Key", &key)],
                    );
                    assert_eq!(r.status, 201, "{}", r.text);
                    match r.json()["provider"].as_str().unwrap() {
                        "zudu" => counts.0 += 1,
                        "zudu-b" => counts.1 += 1,
                        other => panic!("{other}"),
                    }
                    if i % 50 == 0 {
                        // The same key lands on the same provider (replayed).
                        let again = h.send(
                            "POST",
                            "/v1/calls",
                            &body,
                            &[("Authorization", &auth), ("Idempotency-Key", &key)],
                        );
                        assert_eq!(again.json()["provider"], r.json()["provider"]);
                    }
                }
                counts
            })
        })
        .collect();
    let (a, b) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |s, c| (s.0 + c.0, s.1 + c.1));
    assert_eq!(a + b, 2000);
    let share = a as f64 / 20.0;
    assert!(
        (87.0..=93.0).contains(&share),
        "zudu got {share}% (want 90 ± 3)"
    );
    for i in 0..50 {
        let body = json!({"agentId": "agent-for-elemente", "to": "+15550102222", "skillId": "s"})
            .to_string();
        let r = h.send(
            "POST",
            "/v1/calls",
            &body,
            &[
                ("Authorization", &auth),
                ("Idempotency-Key", &format!("agent-{i}")),
            ],
        );
        assert_eq!(r.json()["provider"], "elemente", "{}", r.text);
    }
}

#[test]
fn a_write_that_may_have_arrived_is_never_resent() {
    let h = Harness::start();
    let zudu = h.sim(VendorKind::Zudu);
    let body = json!({"provider": "zudu-slow", "agentId": "a", "to": "+15550102222", "from": "+15550103333"}).to_string();
    zudu.add_fault(Fault {
        latency_ms: Some(1_500),
        path_prefix: Some("/api/calls/create".into()),
        ..Default::default()
    });
    clear(&h);
    let p = h
        .send("POST", "/v1/calls", &body, &[("Idempotency-Key", "slow-1")])
        .problem(504, "provider_timeout");
    assert_eq!(p["outcome"], "unknown");
    // A sleep, not a wait: what is checked is that nothing happens, and nothing has no moment to
    // wait for. It outlasts the vendor's hold on the first request (1.5 s from its arrival, which
    // was before the 504), so a resend when that connection answers or closes would be seen.
    // A slower machine only makes the window longer: the check cannot fail for being slow.
    std::thread::sleep(std::time::Duration::from_millis(1_700));
    assert_eq!(zudu.requests().len(), 1, "no second vendor request");
    // The unknown outcome is what the key answers from now on: a retry cannot ring twice.
    let again = h.send("POST", "/v1/calls", &body, &[("Idempotency-Key", "slow-1")]);
    assert!(again.replayed);
    assert_eq!(zudu.requests().len(), 1);
    zudu.clear_faults();
    for action in [
        FaultAction::Reset,
        FaultAction::Status {
            status: 500,
            body: "{}".into(),
            headers: vec![],
        },
    ] {
        zudu.add_fault(Fault {
            action,
            path_prefix: Some("/api/calls/create".into()),
            ..Default::default()
        });
        zudu.clear_requests();
        let b = body.replace("zudu-slow", "zudu");
        let p = h
            .send("POST", "/v1/calls", &b, &[])
            .problem(502, "provider_error");
        assert_eq!(p["outcome"], "unknown");
        assert_eq!(zudu.requests().len(), 1);
        zudu.clear_faults();
    }
    // Nothing was sent: no outcome to reconcile, and the key may be retried.
    let dead = body.replace("zudu-slow", "dead");
    let p = h
        .send("POST", "/v1/calls", &dead, &[("Idempotency-Key", "dead-1")])
        .problem(503, "provider_unavailable");
    assert!(p.get("outcome").is_none());
    assert!(
        !h.send("POST", "/v1/calls", &dead, &[("Idempotency-Key", "dead-1")])
            .replayed
    );
}

#[test]
fn updates_map_status_and_the_next_get_reflects_them() {
    let h = Harness::start();
    // Elemente: read (cached), update, read again.
    let v = h
        .get("/v1/calls?provider=elemente&status=in_progress&limit=1")
        .json();
    let id = v["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.get(&format!("/v1/calls/{id}")).json()["status"],
        "in_progress"
    );
    assert_eq!(
        h.get(&format!("/v1/calls/{id}")).cache_status.as_deref(),
        Some("callgate; hit")
    );
    clear(&h);
    let r = h.send(
        "PATCH",
        &format!("/v1/calls/{id}"),
        r#"{"status": "no_answer", "note": "left a message"}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "no_answer");
    let put = only_request(&h, VendorKind::Elemente);
    assert_eq!(put.method, "PUT");
    assert_eq!(
        serde_json::from_str::<Value>(&put.body).unwrap(),
        json!({"status": "no-answer", "note": "left a message"})
    );
    let after = h.get(&format!("/v1/calls/{id}"));
    assert_eq!(
        after.json()["status"],
        "no_answer",
        "no stale read after PATCH"
    );
    assert_ne!(after.cache_status.as_deref(), Some("callgate; hit"));
    // The provider's lists were dropped too.
    let listed = h
        .get("/v1/calls?provider=elemente&status=no_answer&limit=100")
        .json();
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id.as_str()));
    // Zudu via PUT (the alias), metadata merged by the vendor.
    let zid = format!(
        "zudu:{}",
        h.sim(VendorKind::Zudu).records()[0]["call_id"]
            .as_str()
            .unwrap()
    );
    let r = h.send(
        "PUT",
        &format!("/v1/calls/{zid}"),
        r#"{"status": "completed", "metadata": {"reviewed": true}}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["metadata"]["reviewed"], true);
    assert_eq!(
        h.get(&format!("/v1/calls/{zid}")).json()["providerStatus"],
        "ENDED"
    );
    // Bimpe has no update.
    let agent = h.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let bid = format!(
        "bimpe:{agent}:{}",
        h.sim(VendorKind::Bimpe).records_for_agent(&agent)[0]["id"]
            .as_str()
            .unwrap()
    );
    h.send(
        "PATCH",
        &format!("/v1/calls/{bid}"),
        r#"{"status": "completed"}"#,
        &[],
    )
    .problem(501, "unsupported_operation");
}
