//! End-to-end tests of the simulators through real sockets (Zudu specifics in `zudu.rs`): auth, paging walks, get/404
//! envelopes, bad parameters, writes, and keep-alive. Each test starts its own cluster (in
//! parallel), which also proves several clusters coexist in one process.

mod common;

use callgate_sim::credentials::*;
use callgate_sim::{SimCluster, SimOptions, VendorKind, VendorSim};
use common::{call, request, Conn, Outcome};
use serde_json::{json, Value};

fn cluster() -> SimCluster {
    SimCluster::start(SimOptions::default())
}

#[test]
fn auth_failures_use_each_vendors_answer() {
    let c = cluster();
    let e = c.addr(VendorKind::Elemente);
    assert_eq!(request(e, "GET", "/api/v1/calls", &[], "").status, 401);
    let wrong = [("Authorization", "Basic ZWxlbWVudGUtZGVtbzpub3Bl")];
    assert_eq!(request(e, "GET", "/api/v1/calls", &wrong, "").status, 401);

    let b = c.addr(VendorKind::Bimpe);
    let agent = c.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let path = format!("/api/v1/console/agents/{agent}/calls");
    let r = request(b, "GET", &path, &[], "");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "api_key_missing");
    let r = request(b, "GET", &path, &[("Authorization", "Bearer sk_nope")], "");
    assert_eq!(r.status, 401);
    let body = r.json();
    assert_eq!(body["code"], "api_key_invalid");
    assert_eq!(body["statusCode"], 401);
    assert!(body["request_id"].is_string() && body["message"].is_string());
    let r = request(
        b,
        "GET",
        &path,
        &[("X-Api-Key", BIMPE_API_KEY_NO_SCOPE)],
        "",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "insufficient_scope");
    assert!(r.header("X-RateLimit-Limit").is_some());
    let r = request(b, "GET", &path, &[("X-Api-Key", BIMPE_API_KEY)], "");
    assert_eq!(r.status, 200);

    let z = c.addr(VendorKind::Zudu);
    let r = request(z, "GET", "/api/calls", &[("X-API-KEY", ZUDU_API_KEY)], "");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["status"], "error");
    let bad = [("X-API-KEY", ZUDU_API_KEY), ("X-API-SECRET", "wrong")];
    assert_eq!(request(z, "GET", "/api/calls", &bad, "").status, 401);
}

#[test]
fn elemente_lists_gets_and_filters() {
    let c = cluster();
    let (e, k) = (c.addr(VendorKind::Elemente), VendorKind::Elemente);
    let sim = c.sim(k);
    let all = call(e, k, "GET", "/api/v1/calls", "");
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), Some("application/json"));
    assert_eq!(all.json(), Value::Array(sim.records()));

    let first = &sim.records()[3];
    let id = first["id"].as_str().unwrap();
    let one = call(e, k, "GET", &format!("/api/v1/calls/{id}"), "");
    assert_eq!(one.json(), *first);
    let missing = call(
        e,
        k,
        "GET",
        "/api/v1/calls/00000000-0000-4000-8000-000000000000",
        "",
    );
    assert_eq!(missing.status, 404);

    for bad in [
        "status=bogus",
        "hrs=abc",
        "hrs=-1",
        "channel=fax",
        "dateRange[from]=2026-02-30",
        "dateRange%5Bto%5D=11/01/2026",
    ] {
        assert_eq!(
            call(e, k, "GET", &format!("/api/v1/calls?{bad}"), "").status,
            400,
            "{bad}"
        );
    }
    let done = call(e, k, "GET", "/api/v1/calls?status=no-answer", "").json();
    assert!(!done.as_array().unwrap().is_empty());
    assert!(done
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "no-answer"));

    let voice = call(e, k, "GET", "/api/v1/calls?channel=call", "").json();
    assert!(voice
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.get("channel").is_none()));
    let sms = call(e, k, "GET", "/api/v1/calls?channel=sms", "").json();
    assert!(sms
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["channel"] == "sms"));

    let day = call(e, k, "GET", "/api/v1/calls?hrs=24", "")
        .json()
        .as_array()
        .unwrap()
        .len();
    let week = call(e, k, "GET", "/api/v1/calls?hrs=168", "")
        .json()
        .as_array()
        .unwrap()
        .len();
    assert!(day > 0 && day < week && week < 300, "{day} {week}");
    let range = "/api/v1/calls?dateRange%5Bfrom%5D=2026-10-25&dateRange%5Bto%5D=2026-10-31";
    let ranged = call(e, k, "GET", range, "")
        .json()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        ranged, week,
        "the 7 days before the reference instant, inclusive"
    );

    let masked = call(e, k, "GET", "/api/v1/calls?sanitised=yes", "").json();
    let phones: Vec<&str> = masked
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["customerPhone"].as_str())
        .collect();
    assert!(!phones.is_empty() && phones.iter().all(|p| p.contains("***")));

    assert_eq!(call(e, k, "GET", "/api/v2/nothing", "").status, 404);
}

#[test]
fn elemente_creates_and_updates() {
    let c = cluster();
    let (e, k) = (c.addr(VendorKind::Elemente), VendorKind::Elemente);
    let body = json!({
        "agentId": "123e4567-e89b-12d3-a456-426614174000", "channel": "call",
        "skillId": "123e4567-e89b-12d3-a456-426614174001",
        "agentOverride": {"name": "Ava", "prompt": {"initialMessage": "Hello {{firstName}}, order {{Order ID}}"}},
        "customerOverride": {"firstName": "John", "phoneNumber": "+15550001111",
            "customFields": [{"name": "Order ID", "value": 12345}]},
    });
    let created = call(e, k, "POST", "/api/v1/calls", &body.to_string());
    assert_eq!(created.status, 200);
    let created = created.json();
    assert_eq!(created["status"], "in-progress");
    assert_eq!(created["messages"][0]["content"], "Hello John, order 12345");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        call(e, k, "GET", &format!("/api/v1/calls/{id}"), "").json(),
        created
    );
    assert_eq!(c.sim(k).records()[0], created);

    let upd = call(
        e,
        k,
        "PUT",
        &format!("/api/v1/calls/{id}"),
        r#"{"status":"completed","note":"follow up"}"#,
    );
    assert_eq!(upd.status, 200);
    assert_eq!(upd.json()["status"], "completed");
    assert_eq!(
        call(
            e,
            k,
            "PUT",
            &format!("/api/v1/calls/{id}"),
            r#"{"status":"done"}"#
        )
        .status,
        400
    );
    assert_eq!(call(e, k, "PUT", "/api/v1/calls/nope", "{}").status, 404);
    assert_eq!(call(e, k, "POST", "/api/v1/calls", "not json").status, 400);
    assert_eq!(
        call(e, k, "POST", "/api/v1/calls", r#"{"agentId":"a"}"#).status,
        400
    );
}

#[test]
fn bimpe_pages_every_agent_once() {
    let c = cluster();
    let (b, k) = (c.addr(VendorKind::Bimpe), VendorKind::Bimpe);
    let sim = c.sim(k);
    let agents = sim.agent_ids();
    assert_eq!(agents.len(), 3);
    let mut total = 0;
    for agent in &agents {
        let expected: Vec<Value> = sim
            .records_for_agent(agent)
            .iter()
            .map(|r| r["id"].clone())
            .collect();
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let r = call(
                b,
                k,
                "GET",
                &format!("/api/v1/console/agents/{agent}/calls?page={page}&limit=7"),
                "",
            );
            assert_eq!(r.status, 200);
            let body = r.json();
            let meta = &body["meta"];
            assert_eq!(meta["current_page"], page);
            assert_eq!(meta["total_count"], expected.len());
            for item in body["data"].as_array().unwrap() {
                assert!(
                    item.get("answered_at").is_none() && item.get("conversation_logs").is_none()
                );
                assert!(item.get("started_at").is_none() && item.get("created_on").is_some());
                seen.push(item["id"].clone());
            }
            if meta["has_next_page"] != true {
                break;
            }
            page += 1;
        }
        assert_eq!(seen, expected);
        total += seen.len();
        let past = call(
            b,
            k,
            "GET",
            &format!("/api/v1/console/agents/{agent}/calls?page=999"),
            "",
        )
        .json();
        assert_eq!(past["data"], json!([]));
    }
    assert_eq!(total, 300);

    let agent = &agents[1];
    let rec = &sim.records_for_agent(agent)[2];
    let id = rec["id"].as_str().unwrap();
    let one = call(
        b,
        k,
        "GET",
        &format!("/api/v1/console/agents/{agent}/calls/{id}"),
        "",
    );
    assert_eq!(one.json(), json!({"message": "Success", "data": rec}));
    let missing = call(
        b,
        k,
        "GET",
        &format!("/api/v1/console/agents/{agent}/calls/nope"),
        "",
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "Call not found");
    assert_eq!(missing.json()["code"], "not_found");
    assert_eq!(
        call(b, k, "GET", "/api/v1/console/agents/agt_unknown/calls", "").status,
        404
    );
    assert_eq!(
        call(
            b,
            k,
            "PUT",
            &format!("/api/v1/console/agents/{agent}/calls/{id}"),
            "{}"
        )
        .status,
        404
    );

    let bad = call(
        b,
        k,
        "GET",
        &format!("/api/v1/console/agents/{agent}/calls?limit=101&page=abc"),
        "",
    );
    assert_eq!(bad.status, 400);
    let body = bad.json();
    assert_eq!(body["code"], "validation_error");
    assert_eq!(body["message"].as_array().map(Vec::len), Some(2));

    let asc = call(
        b,
        k,
        "GET",
        &format!("/api/v1/console/agents/{agent}/calls?sort=created_on&limit=100"),
        "",
    )
    .json();
    let dates: Vec<&str> = asc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["created_on"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]));
    let ended = call(
        b,
        k,
        "GET",
        &format!("/api/v1/console/agents/{agent}/calls?status=ended&limit=100"),
        "",
    )
    .json();
    assert!(ended["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "ended"));

    let headers = [
        ("Authorization", format!("Bearer {BIMPE_API_KEY}")),
        ("X-Request-Id", "req-123".into()),
    ];
    let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let r = request(
        b,
        "GET",
        &format!("/api/v1/console/agents/{agent}/calls"),
        &h,
        "",
    );
    assert_eq!(r.header("X-Request-Id"), Some("req-123"));
    for name in [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    ] {
        assert!(
            r.header(name).is_some_and(|v| v.parse::<u64>().is_ok()),
            "{name}"
        );
    }
}

#[test]
fn bimpe_creates_idempotently() {
    let c = cluster();
    let (b, k) = (c.addr(VendorKind::Bimpe), VendorKind::Bimpe);
    let agent = c.sim(k).agent_ids()[0].clone();
    let path = format!("/api/v1/console/agents/{agent}/calls");
    let auth = format!("Bearer {BIMPE_API_KEY}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Idempotency-Key", "key-1"),
    ];
    let body = r#"{"destination":"+15550001234","is_test_call":true}"#;
    let first = request(b, "POST", &path, &headers, body).json();
    let again = request(b, "POST", &path, &headers, body).json();
    assert_eq!(first["data"]["status"], "initiated");
    assert_eq!(first, again);
    let id = first["data"]["call_id"].as_str().unwrap();
    assert_eq!(c.sim(k).records_for_agent(&agent).len(), 101);
    let got = call(b, k, "GET", &format!("{path}/{id}"), "").json();
    assert_eq!(got["data"]["status"], "queued");

    let busy = call(b, k, "POST", &path, r#"{"destination":"+15550000013"}"#).json();
    assert_eq!(busy["data"]["status"], "busy");
    let bad = call(b, k, "POST", &path, r#"{"destination":"tomorrow"}"#);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].is_array());
    let r = request(
        b,
        "POST",
        &path,
        &[("X-Api-Key", BIMPE_API_KEY_NO_SCOPE)],
        body,
    );
    assert_eq!(r.status, 403);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("calls:write"));
}

#[test]
fn keep_alive_serves_several_requests_per_connection() {
    let c = cluster();
    let k = VendorKind::Zudu;
    let mut conn = Conn::open(c.addr(k));
    let owned = common::auth(k);
    let headers: Vec<(&str, &str)> = owned.iter().map(|(a, b)| (*a, b.as_str())).collect();
    for _ in 0..3 {
        match conn.send("GET", "/api/calls?limit=2", &headers, "") {
            Outcome::Complete(r) => assert_eq!(r.status, 200),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn same_seed_same_records() {
    for kind in VendorKind::ALL {
        let opts = SimOptions {
            seed: 7,
            calls_per_vendor: 50,
            ..SimOptions::default()
        };
        let a = serde_json::to_string(&VendorSim::new(kind, &opts).records()).unwrap();
        let b = serde_json::to_string(&VendorSim::new(kind, &opts).records()).unwrap();
        assert_eq!(a, b, "{kind:?}");
        let other = SimOptions {
            seed: 8,
            ..opts.clone()
        };
        let c = serde_json::to_string(&VendorSim::new(kind, &other).records()).unwrap();
        assert_ne!(a, c, "{kind:?}");
        assert_eq!(VendorSim::new(kind, &opts).records().len(), 50);
    }
}

#[test]
fn odd_input_never_breaks_a_simulator() {
    let c = SimCluster::start(SimOptions {
        calls_per_vendor: 10,
        ..SimOptions::default()
    });
    let agent = c.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let bimpe_calls = format!("/api/v1/console/agents/{agent}/calls");
    let targets: Vec<(VendorKind, &str, String)> = vec![
        (VendorKind::Elemente, "GET", "/".into()),
        (VendorKind::Elemente, "GET", "/api/v1/calls/%".into()),
        (VendorKind::Elemente, "GET", "/api/v1/calls/%FF%FE".into()),
        (VendorKind::Elemente, "GET", "/api/v1/calls?hrs=NaN".into()),
        (
            VendorKind::Elemente,
            "GET",
            "/api/v1/calls?hrs=inf&status=".into(),
        ),
        (VendorKind::Elemente, "POST", "/api/v1/calls".into()),
        (VendorKind::Elemente, "PUT", "/api/v1/calls/x".into()),
        (VendorKind::Elemente, "DELETE", "/api/v1/calls/x".into()),
        (
            VendorKind::Bimpe,
            "GET",
            format!("{bimpe_calls}?page=99999999999999999999&limit=1e3"),
        ),
        (
            VendorKind::Bimpe,
            "GET",
            format!("{bimpe_calls}?page=18446744073709551615&limit=100"),
        ),
        (VendorKind::Bimpe, "POST", bimpe_calls.clone()),
        (
            VendorKind::Bimpe,
            "GET",
            "/api/v1/console/agents//calls".into(),
        ),
        (
            VendorKind::Zudu,
            "GET",
            "/api/calls?page=18446744073709551615&limit=100".into(),
        ),
        (
            VendorKind::Zudu,
            "GET",
            "/api/calls?page=18446744073709551615".into(),
        ),
        (VendorKind::Zudu, "POST", "/api/calls".into()),
        (VendorKind::Zudu, "PUT", "/api/calls/x".into()),
        (
            VendorKind::Zudu,
            "POST",
            "/api/calls/create-phone-call".into(),
        ),
        (VendorKind::Zudu, "GET", "/nope".into()),
    ];
    let bodies = [
        "",
        "null",
        "[]",
        "\"str\"",
        "{\"page\":-1,\"limit\":\"x\",\"metadata\":7}",
        "{bad",
    ];
    for (kind, method, target) in &targets {
        for body in bodies {
            let r = call(c.addr(*kind), *kind, method, target, body);
            assert!(
                (200..600).contains(&r.status),
                "{kind:?} {method} {target} {body}"
            );
            if r.status >= 400 && *kind != VendorKind::Elemente {
                assert!(r.json().is_object(), "{kind:?} {method} {target}: envelope");
            }
        }
    }
    // Still serving afterwards.
    assert_eq!(
        call(
            c.addr(VendorKind::Zudu),
            VendorKind::Zudu,
            "GET",
            "/api/calls",
            ""
        )
        .status,
        200
    );
}
