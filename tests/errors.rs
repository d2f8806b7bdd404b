//! Every error of DESIGN.md's table that a read can reach, through real sockets: status, `code`,
//! `application/problem+json`, the field in `errors[]`, and what reached the vendor.

mod common;

use callgate_sim::{Fault, FaultAction, VendorKind};
use common::{Harness, KEY, OTHER_KEY};

fn fault(path_prefix: &str, action: FaultAction) -> Fault {
    Fault {
        path_prefix: Some(path_prefix.into()),
        action,
        ..Default::default()
    }
}

fn first_id(h: &Harness, provider: &str, extra: &str) -> String {
    let v = h
        .get(&format!("/v1/calls?provider={provider}&limit=1{extra}"))
        .json();
    v["data"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn client_mistakes_are_problems_naming_the_field() {
    let h = Harness::start();
    // 401: no key, a malformed header, an unknown key.
    let r = h.get_with("/v1/calls", &[]);
    r.problem(401, "unauthorized");
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("Bearer realm=\"callgate\"")
    );
    h.get_with("/v1/calls", &[("Authorization", "Basic abc")])
        .problem(401, "unauthorized");
    h.get_with("/v1/calls", &[("Authorization", "Bearer nope")])
        .problem(401, "unauthorized");
    // 403: tenant `other` may use only zudu.
    let other = [("Authorization", format!("Bearer {OTHER_KEY}"))];
    let other: Vec<(&str, &str)> = other.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = h
        .get_with("/v1/calls?provider=elemente", &other)
        .problem(403, "forbidden");
    assert_eq!(p["provider"], "elemente");
    let eid = first_id(&h, "elemente", "");
    h.get_with(&format!("/v1/calls/{eid}"), &other)
        .problem(403, "forbidden");
    // `other` may use zudu only: its list without provider is zudu's, whatever its default.
    let r = h.get_with("/v1/calls?limit=3", &other);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["provider"] == "zudu"));
    // 405: a route asked with a method it does not take, with Allow.
    for (method, path, allow) in [
        ("DELETE", "/v1/calls/zudu:x", "GET, PATCH, PUT"),
        ("TRACE", "/v1/providers", "GET"),
        ("POST", "/v1/agents", "GET"),
    ] {
        let r = ureq::request(method, &h.url(path))
            .set("Authorization", &format!("Bearer {KEY}"))
            .call();
        let Err(ureq::Error::Status(405, resp)) = r else {
            panic!("{method} {path}: not a 405");
        };
        assert_eq!(resp.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(resp.content_type(), "application/problem+json");
        let p: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
        assert_eq!(p["code"], "method_not_allowed");
    }
    // 404: unknown route, unknown provider in an id.
    h.get("/v2/calls").problem(404, "not_found");
    h.get("/v1/nothing").problem(404, "not_found");
    h.get("/v1/calls/nobody:abc").problem(404, "not_found");
    // 400 invalid_request, with the field.
    for (url, field) in [
        ("/v1/calls?limit=0", "limit"),
        ("/v1/calls?limit=101", "limit"),
        ("/v1/calls?limit=abc", "limit"),
        ("/v1/calls?status=done", "status"),
        ("/v1/calls?channel=fax", "channel"),
        ("/v1/calls?from=yesterday", "from"),
        ("/v1/calls?colour=blue", "colour"),
        ("/v1/calls?provider=unknown", "provider"),
        // A vendor that lists per agent, where the config names none: the agent is required.
        ("/v1/calls?provider=bimpe-noscope", "agentId"),
        ("/v1/calls/zudu", "id"),
        ("/v1/calls/bimpe:only-one-part", "id"),
        ("/v1/calls/zudu:x?include=everything", "include"),
    ] {
        let p = h.get(url).problem(400, "invalid_request");
        assert_eq!(p["errors"][0]["field"], field, "{url}");
    }
    // 400 unsupported_filter: Elemente records carry no direction; its dates are whole days.
    let p = h
        .get("/v1/calls?provider=elemente&direction=inbound")
        .problem(400, "unsupported_filter");
    assert_eq!(p["errors"][0]["field"], "direction");
    let p = h
        .get("/v1/calls?provider=elemente&from=2026-10-01T12:00:00Z")
        .problem(400, "unsupported_filter");
    assert_eq!(p["errors"][0]["field"], "from");
    // 400 invalid_cursor: garbage, and a cursor replayed with other filters.
    h.get("/v1/calls?provider=zudu&cursor=garbage")
        .problem(400, "invalid_cursor");
    let v = h.get("/v1/calls?provider=zudu&limit=5").json();
    let cursor = v["pagination"]["nextCursor"].as_str().unwrap();
    h.get(&format!(
        "/v1/calls?provider=zudu&status=completed&cursor={cursor}"
    ))
    .problem(400, "invalid_cursor");
    let p = h
        .get(&format!("/v1/calls?provider=zudu&limit=6&cursor={cursor}"))
        .problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "limit");
    assert_eq!(
        h.get(&format!("/v1/calls?provider=zudu&limit=5&cursor={cursor}"))
            .status,
        200
    );
    // A write without a body names the body.
    let p = h
        .send("POST", "/v1/calls", "", &[])
        .problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "body");
}

#[test]
fn nothing_reaches_a_vendor_for_a_request_refused_before_routing() {
    let h = Harness::start();
    let sims = [VendorKind::Elemente, VendorKind::Bimpe, VendorKind::Zudu];
    for k in sims {
        h.sim(k).clear_requests();
    }
    h.get_with("/v1/calls", &[]).problem(401, "unauthorized");
    h.get("/v1/calls?provider=zudu&limit=0")
        .problem(400, "invalid_request");
    h.get("/v1/calls?provider=elemente&direction=inbound")
        .problem(400, "unsupported_filter");
    h.get("/v1/calls?provider=bimpe-noscope")
        .problem(400, "invalid_request");
    for k in sims {
        assert!(h.sim(k).requests().is_empty(), "{k:?} saw a request");
    }
}

#[test]
fn vendor_not_found_and_auth_faults_are_mapped() {
    let h = Harness::start();
    let p = h
        .get("/v1/calls/zudu:call_does_not_exist")
        .problem(404, "not_found");
    assert_eq!(p["provider"], "zudu");
    assert_eq!(p["providerStatus"], 404);
    h.get("/v1/calls/elemente:00000000-0000-0000-0000-000000000000")
        .problem(404, "not_found");
    let agent = h.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let p = h
        .get(&format!("/v1/calls/bimpe:{agent}:nope"))
        .problem(404, "not_found");
    assert_eq!(p["providerCode"], "not_found");
    // The vendor refusing callgate's credentials is a config fault: 502, never a 401.
    let p = h
        .get("/v1/calls?provider=elemente-badauth")
        .problem(502, "provider_auth_failed");
    assert_eq!(p["providerStatus"], 401);
    let p = h
        .get(&format!("/v1/calls?provider=bimpe-noscope&agentId={agent}"))
        .problem(502, "provider_auth_failed");
    assert_eq!(p["providerStatus"], 403);
    assert_eq!(p["providerCode"], "insufficient_scope");
}

#[test]
fn vendor_failures_are_mapped_never_passed_through() {
    let h = Harness::start();
    let zudu = h.sim(VendorKind::Zudu);
    let id = first_id(&h, "zudu", "");
    let cases: Vec<(FaultAction, u16, &str)> = vec![
        (
            FaultAction::Status {
                status: 500,
                body: r#"{"message":"boom","status":"error","error":"internal secret detail"}"#
                    .into(),
                headers: vec![],
            },
            502,
            "provider_error",
        ),
        (
            FaultAction::Status {
                status: 503,
                body: "<html>down</html>".into(),
                headers: vec![],
            },
            502,
            "provider_error",
        ),
        (
            FaultAction::Status {
                status: 429,
                body: r#"{"message":"slow down"}"#.into(),
                headers: vec![("Retry-After".into(), "7".into())],
            },
            429,
            "provider_rate_limited",
        ),
        (
            FaultAction::Status {
                status: 200,
                body: r#"{"message":"x","status":"error","error":"quota"}"#.into(),
                headers: vec![],
            },
            502,
            "provider_error",
        ),
        (FaultAction::Malformed, 502, "provider_error"),
        (FaultAction::WrongShape, 502, "provider_error"),
        (FaultAction::Truncated, 502, "provider_error"),
        (FaultAction::Reset, 502, "provider_error"),
    ];
    for (action, status, code) in cases {
        for url in [
            "/v1/calls?provider=zudu&limit=3".to_string(),
            format!("/v1/calls/{id}"),
        ] {
            zudu.clear_faults();
            zudu.add_fault(fault("/api/calls", action.clone()));
            let r = h.get(&url);
            let p = r.problem(status, code);
            assert!(
                !r.text.contains("<html>") && !r.text.contains("\"data\""),
                "vendor body passed through: {}",
                r.text
            );
            if code == "provider_rate_limited" {
                assert_eq!(r.retry_after.as_deref(), Some("7"));
                assert_eq!(p["providerStatus"], 429);
            }
        }
    }
    zudu.clear_faults();
    assert_eq!(
        h.get(&format!("/v1/calls/{id}")).status,
        200,
        "healthy again once the fault is gone"
    );
}

#[test]
fn unreachable_and_slow_vendors() {
    let h = Harness::start();
    let p = h
        .get("/v1/calls?provider=dead")
        .problem(503, "provider_unavailable");
    assert_eq!(p["provider"], "dead");
    let zudu = h.sim(VendorKind::Zudu);
    zudu.add_fault(Fault {
        latency_ms: Some(1_500),
        ..fault("/api/calls", FaultAction::None)
    });
    h.get("/v1/calls?provider=zudu-slow")
        .problem(504, "provider_timeout");
    h.get("/v1/calls/zudu-slow:anything")
        .problem(504, "provider_timeout");
    zudu.clear_faults();
    // Health is reported from what the last exchange showed.
    let v = h.get("/v1/providers").json();
    let health = |name: &str| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["health"]
            .clone()
    };
    assert_eq!(health("dead"), "unhealthy");
    assert_eq!(health("bimpe"), "unknown");
}

#[test]
fn request_ids_are_echoed_and_sent_to_the_vendor() {
    let h = Harness::start();
    let zudu = h.sim(VendorKind::Zudu);
    zudu.clear_requests();
    let r = h.get_with(
        "/v1/calls?provider=zudu&limit=2",
        &[
            ("Authorization", &format!("Bearer {KEY}")),
            ("X-Request-Id", "trace-abc-123"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.request_id.as_deref(), Some("trace-abc-123"));
    let seen = zudu.requests();
    assert_eq!(seen.len(), 1);
    let header = |name: &str| {
        seen[0]
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-request-id").as_deref(), Some("trace-abc-123"));
    // The vendor gets callgate's credentials, never the client's gateway key.
    assert_eq!(
        header("x-api-key").as_deref(),
        Some(callgate_sim::credentials::ZUDU_API_KEY)
    );
    assert!(seen[0].headers.iter().all(|(_, v)| !v.contains(KEY)));
    // Without a client id, one is generated.
    let r = h.get("/v1/calls/nobody:x");
    assert_eq!(r.request_id.as_ref().map(|s| s.len()), Some(36));
}

#[test]
fn a_tenant_over_its_rate_limit_is_told_when_to_retry() {
    let h = Harness::start();
    let auth = [("Authorization", format!("Bearer {}", common::LIMITED_KEY))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let statuses: Vec<u16> = (0..5)
        .map(|_| h.get_with("/v1/providers", &auth).status)
        .collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst passes");
    let r = h.get_with("/v1/providers", &auth);
    r.problem(429, "rate_limited");
    let wait: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait));
    assert_eq!(
        h.get("/v1/providers").status,
        200,
        "other tenants are not limited"
    );
}

#[test]
fn providers_and_openapi() {
    let h = Harness::start();
    let v = h.get("/v1/providers").json();
    let bimpe = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bimpe")
        .unwrap()
        .clone();
    assert_eq!(bimpe["vendor"], "bimpe");
    assert_eq!(
        bimpe["capabilities"],
        serde_json::json!(["list_calls", "get_call", "create_call"]),
        "Bimpe has no update"
    );
    assert_eq!(bimpe["agents"], serde_json::json!(["agt_listed"]));
    let other = h
        .get_with(
            "/v1/providers",
            &[("Authorization", &format!("Bearer {OTHER_KEY}"))],
        )
        .json();
    assert_eq!(
        other["data"].as_array().unwrap().len(),
        1,
        "a tenant sees only its providers"
    );
    let doc = h.get_with("/openapi.json", &[]).json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/v1/calls", "/v1/calls/{id}", "/v1/providers"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} documented");
    }
}

#[test]
fn the_clients_deadline_bounds_the_vendor_timeout() {
    let h = Harness::start();
    // A bad value is refused, naming the header.
    let p = h
        .get_with(
            "/v1/calls?provider=zudu&limit=1",
            &[
                ("Authorization", &format!("Bearer {KEY}")),
                ("X-Request-Timeout-Ms", "soon"),
            ],
        )
        .problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "X-Request-Timeout-Ms");
    // Zudu hangs for a minute; the provider would wait 10 s, the client only 200 ms: the
    // answer is the client's deadline's 504, and it says so.
    let zudu = h.sim(VendorKind::Zudu);
    zudu.add_fault(Fault {
        latency_ms: Some(60_000),
        ..Default::default()
    });
    for _ in 0..6 {
        let p = h
            .get_with(
                "/v1/calls?provider=zudu&limit=1",
                &[
                    ("Authorization", &format!("Bearer {KEY}")),
                    ("X-Request-Timeout-Ms", "200"),
                    ("Cache-Control", "no-cache"),
                ],
            )
            .problem(504, "provider_timeout");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("X-Request-Timeout-Ms"),
            "{p}"
        );
    }
    // The client's impatience is not the vendor's failure: six in a row (the circuit opens
    // after five failures) leave the circuit closed; the vendor answers again.
    zudu.clear_faults();
    let r = h.get("/v1/calls?provider=zudu&limit=1");
    assert_eq!(r.status, 200, "{}", r.text);
}
