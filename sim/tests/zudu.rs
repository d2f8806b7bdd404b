//! End-to-end tests of the Zudu simulator through real sockets: 0-based paging in both
//! pagination shapes, limit-less lists, get by `call_id` or `id`, the 404 envelope, bad
//! parameters, the filtered list, creation and update with merged metadata.

mod common;

use callgate_sim::{SimCluster, SimOptions, VendorKind};
use common::call;
use serde_json::{json, Value};
use std::collections::HashSet;

fn cluster() -> SimCluster {
    SimCluster::start(SimOptions::default())
}

#[test]
fn zudu_pages_zero_based_in_both_shapes() {
    let c = cluster();
    let (z, k) = (c.addr(VendorKind::Zudu), VendorKind::Zudu);
    let sim = c.sim(k);
    let expected: Vec<Value> = sim.records().iter().map(|r| r["call_id"].clone()).collect();
    let mut seen = Vec::new();
    let (mut long, mut short) = (false, false);
    for page in 0.. {
        let body = call(z, k, "GET", &format!("/api/calls?page={page}&limit=13"), "").json();
        assert_eq!(body["status"], "success");
        let data = &body["data"];
        let p = &data["pagination"];
        long |= p.get("total_count").is_some() && p.get("has_next_page").is_some();
        short |= p.get("total").is_some() && p.get("has_next_page").is_none();
        let calls = data["calls"].as_array().unwrap();
        assert_eq!(data["returned_count"], calls.len());
        if calls.is_empty() {
            break;
        }
        seen.extend(calls.iter().map(|c| c["call_id"].clone()));
    }
    assert!(long && short);
    assert_eq!(seen, expected);
    assert_eq!(
        seen.iter()
            .map(Value::to_string)
            .collect::<HashSet<_>>()
            .len(),
        300
    );

    let all = call(z, k, "GET", "/api/calls", "").json();
    assert_eq!(all["data"]["calls"], Value::Array(sim.records()));
    assert_eq!(all["data"]["sort_by"], "start_timestamp");
    assert_eq!(all["data"]["sort_order"], "descending");

    let rec = sim
        .records()
        .into_iter()
        .find(|r| r.get("id").is_some())
        .unwrap();
    for key in ["call_id", "id"] {
        let id = rec[key].as_str().unwrap();
        let one = call(z, k, "GET", &format!("/api/calls/{id}"), "").json();
        assert_eq!(one["data"], rec);
    }
    let missing = call(z, k, "GET", "/api/calls/call_abc123", "");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"message":"Call not found","status":"error","error":"Call with ID 'call_abc123' does not exist"})
    );
    for bad in [
        "page=-1",
        "limit=abc",
        "limit=101",
        "limit=0",
        "sort_order=sideways",
    ] {
        let r = call(z, k, "GET", &format!("/api/calls?{bad}"), "");
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["status"], "error");
    }
}

#[test]
fn zudu_filters_creates_and_updates() {
    let c = cluster();
    let (z, k) = (c.addr(VendorKind::Zudu), VendorKind::Zudu);
    let records = c.sim(k).records();
    let statuses: HashSet<&str> = records
        .iter()
        .filter_map(|r| r["call_status"].as_str())
        .collect();
    assert!(statuses.contains("ONGOING") && statuses.contains("ongoing"));

    let q = json!({"limit": 100, "filter_criteria": {"call_status": ["Ongoing"], "call_type": ["phone_call"]}});
    let body = call(z, k, "POST", "/api/calls", &q.to_string()).json();
    let calls = body["data"]["calls"].as_array().unwrap();
    assert!(!calls.is_empty());
    assert!(calls.iter().all(|c| c["call_status"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case("ongoing")
        && c["call_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("phone_call")));
    assert_eq!(body["data"]["applied_filters"], q["filter_criteria"]);
    let q = json!({"filter_criteria": {"duration_ms": {"lower_threshold": 60000, "upper_threshold": 120000}}});
    let body = call(z, k, "POST", "/api/calls", &q.to_string()).json();
    for c in body["data"]["calls"].as_array().unwrap() {
        let d = c["call_duration"].as_i64().unwrap();
        assert!((60000..=120000).contains(&d));
    }
    assert_eq!(
        call(
            z,
            k,
            "POST",
            "/api/calls",
            r#"{"filter_criteria":{"call_status":"ENDED"}}"#
        )
        .status,
        400
    );

    let create =
        json!({"from_number": "+15550002222", "to_number": "+447700900123", "metadata": {"a": 1}});
    let r = call(
        z,
        k,
        "POST",
        "/api/calls/create-phone-call",
        &create.to_string(),
    );
    assert!(r.status == 200 || r.status == 201);
    let body = r.json();
    assert_eq!(body["data"]["status"], "call_initiated");
    let new_call = &body["data"]["call"];
    assert_eq!(new_call["call_status"], "ONGOING");
    let id = new_call["call_id"].as_str().unwrap();
    assert_eq!(
        call(z, k, "GET", &format!("/api/calls/{id}"), "").json()["data"],
        *new_call
    );

    let upd = json!({"call_status": "ended", "metadata": {"b": 2}});
    let r = call(z, k, "PUT", &format!("/api/calls/{id}"), &upd.to_string()).json();
    assert_eq!(r["data"]["call_status"], "ended");
    assert_eq!(r["data"]["metadata"], json!({"a": 1, "b": 2}));
    assert_eq!(
        call(
            z,
            k,
            "PUT",
            &format!("/api/calls/{id}"),
            r#"{"call_status":"DONE"}"#
        )
        .status,
        400
    );
    assert_eq!(call(z, k, "PUT", "/api/calls/call_nope", "{}").status, 404);
    assert_eq!(
        call(z, k, "POST", "/api/calls/create-phone-call", "{}").status,
        400
    );
}
