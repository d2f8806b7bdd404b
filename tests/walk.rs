//! Walking `GET /v1/calls` to the end returns every simulated call exactly once, in the vendor's
//! order, for page sizes 1, 7 and 100; every listed call agrees with `GET /v1/calls/{id}`.

mod common;

use callgate_sim::VendorKind;
use common::Harness;
use serde_json::Value;

/// Walks a list to `nextCursor: null`; returns the calls in order.
fn walk(h: &Harness, first: &str) -> Vec<Value> {
    let mut calls = Vec::new();
    let mut url = first.to_string();
    for _ in 0..2_000 {
        let r = h.get(&url);
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        let v = r.json();
        calls.extend(v["data"].as_array().unwrap().iter().cloned());
        match v["pagination"]["nextCursor"].as_str() {
            Some(c) => url = format!("{first}&cursor={c}"),
            None => return calls,
        }
    }
    panic!("walk of {first} did not end");
}

fn ids(calls: &[Value]) -> Vec<String> {
    calls
        .iter()
        .map(|c| c["providerCallId"].as_str().unwrap().to_string())
        .collect()
}

fn vendor_ids(records: &[Value], key: &str, fallback: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r[key]
                .as_str()
                .or(r[fallback].as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Fields a list item must agree on with the get of the same call. Bimpe list items lack
/// `started_at`, `answered_at` and `conversation_logs`, so those canonical fields are skipped.
fn assert_agrees(list_item: &Value, got: &Value, skip: &[&str]) {
    let (a, b) = (list_item.as_object().unwrap(), got.as_object().unwrap());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in a {
        if !skip.contains(&k.as_str()) {
            assert_eq!(v, &b[k], "field {k} of {}", list_item["id"]);
        }
    }
}

fn check_provider(h: &Harness, base: &str, expected: &[String], skip: &[&str]) {
    for size in [1, 7, 100] {
        let calls = walk(h, &format!("{base}&limit={size}"));
        assert_eq!(
            ids(&calls),
            expected,
            "{base} limit={size}: every call once, in vendor order"
        );
        if size == 100 {
            for c in &calls {
                let id = c["id"].as_str().unwrap();
                let got = h.get(&format!("/v1/calls/{id}"));
                assert_eq!(got.status, 200, "{id}: {}", got.text);
                assert_agrees(c, &got.json(), skip);
            }
        }
    }
}

#[test]
fn zudu_walks_every_call_once_in_order() {
    let h = Harness::start();
    let expected = vendor_ids(&h.sim(VendorKind::Zudu).records(), "call_id", "id");
    assert_eq!(expected.len(), 300);
    check_provider(&h, "/v1/calls?provider=zudu", &expected, &[]);
}

#[test]
fn elemente_walks_every_call_once_in_order() {
    let h = Harness::start();
    let expected = vendor_ids(&h.sim(VendorKind::Elemente).records(), "id", "id");
    assert_eq!(expected.len(), 300);
    check_provider(&h, "/v1/calls?provider=elemente", &expected, &[]);
}

#[test]
fn bimpe_walks_every_call_of_every_agent_once_in_order() {
    let h = Harness::start();
    let sim = h.sim(VendorKind::Bimpe);
    let agents = sim.agent_ids();
    assert!(agents.len() >= 2);
    let mut total = 0;
    for agent in agents {
        let expected = vendor_ids(&sim.records_for_agent(&agent), "id", "id");
        total += expected.len();
        check_provider(
            &h,
            &format!("/v1/calls?provider=bimpe&agentId={agent}"),
            &expected,
            &["startedAt", "answeredAt", "messages"],
        );
    }
    assert_eq!(total, 300);
}

#[test]
fn total_count_and_page_size_are_reported() {
    let h = Harness::start();
    for p in ["zudu", "elemente"] {
        let v = h.get(&format!("/v1/calls?provider={p}&limit=7")).json();
        assert_eq!(v["pagination"]["limit"], 7);
        assert_eq!(v["pagination"]["totalCount"], 300);
        assert_eq!(v["data"].as_array().unwrap().len(), 7);
    }
    // Without a limit the default page size is 20.
    let v = h.get("/v1/calls?provider=zudu").json();
    assert_eq!(v["data"].as_array().unwrap().len(), 20);
}

#[test]
fn filters_applied_by_callgate_are_exact_and_keep_the_walk_complete() {
    let h = Harness::start();
    // Every walk under a filter returns exactly the calls the unfiltered walk has with that value.
    for (provider, extra) in [("zudu", ""), ("elemente", "")] {
        let all = walk(
            &h,
            &format!("/v1/calls?provider={provider}{extra}&limit=100"),
        );
        for status in ["completed", "in_progress", "no_answer", "queued"] {
            let want: Vec<&Value> = all.iter().filter(|c| c["status"] == status).collect();
            let got = walk(
                &h,
                &format!("/v1/calls?provider={provider}&status={status}&limit=7"),
            );
            assert_eq!(got.len(), want.len(), "{provider} status={status}");
            assert!(got.iter().all(|c| c["status"] == status));
        }
        let got = walk(
            &h,
            &format!("/v1/calls?provider={provider}&channel=call&limit=50"),
        );
        assert_eq!(
            got.len(),
            all.iter().filter(|c| c["channel"] == "call").count()
        );
    }
    let all = walk(&h, "/v1/calls?provider=zudu&limit=100");
    let outbound = walk(&h, "/v1/calls?provider=zudu&direction=outbound&limit=30");
    assert_eq!(
        outbound.len(),
        all.iter().filter(|c| c["direction"] == "outbound").count()
    );
    assert!(!outbound.is_empty());
    // A time window: everything created in [from, to).
    let from = "2026-10-20T00:00:00Z";
    let to = "2026-10-25";
    let got = walk(
        &h,
        &format!("/v1/calls?provider=zudu&from={from}&to={to}&limit=100"),
    );
    let want = all
        .iter()
        .filter(|c| {
            let t = c["createdAt"].as_str().unwrap_or("");
            !t.is_empty() && ("2026-10-20T00:00:00.000Z".."2026-10-26T00:00:00.000Z").contains(&t)
        })
        .count();
    assert_eq!(got.len(), want);
    assert!(want > 0);
}
