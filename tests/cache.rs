//! The GET cache through real sockets: keys (two spellings share, different requests never do),
//! single-flight, the hit path's cost, the byte bound, no-cache, stale-if-error, Cache-Status.

mod common;

use callgate_sim::{Fault, FaultAction, SimOptions, VendorKind};
use common::{wait_until, Harness, KEY};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn status(h: &Harness, url: &str) -> String {
    let r = h.get(url);
    assert_eq!(r.status, 200, "{url}: {}", r.text);
    r.cache_status.unwrap_or_default()
}

const MISS: &str = "callgate; fwd=miss; stored";
const HIT: &str = "callgate; hit";

#[test]
fn two_spellings_share_an_entry_and_different_requests_never_do() {
    let h = Harness::start();
    let agent = h.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    // (first spelling, same request spelled otherwise, a different request) per parameter.
    let cases: Vec<(String, String, String)> = vec![
        (
            "/v1/calls?provider=zudu&limit=3".into(),
            "/v1/calls?limit=3&provider=zudu".into(),
            "/v1/calls?provider=elemente&limit=3".into(),
        ),
        (
            "/v1/calls?provider=zudu&limit=20".into(),
            "/v1/calls?provider=zudu".into(),
            "/v1/calls?provider=zudu&limit=21".into(),
        ),
        (
            "/v1/calls?provider=zudu&status=completed,busy&limit=4".into(),
            "/v1/calls?limit=4&status=busy,completed,busy&provider=zudu".into(),
            "/v1/calls?provider=zudu&status=busy&limit=4".into(),
        ),
        (
            "/v1/calls?provider=zudu&channel=call&limit=4".into(),
            "/v1/calls?channel=call&provider=zudu&limit=4".into(),
            "/v1/calls?provider=zudu&channel=webchat&limit=4".into(),
        ),
        (
            "/v1/calls?provider=zudu&direction=inbound&limit=4".into(),
            "/v1/calls?limit=4&direction=inbound&provider=zudu".into(),
            "/v1/calls?provider=zudu&direction=outbound&limit=4".into(),
        ),
        (
            "/v1/calls?provider=zudu&from=2026-10-10&limit=4".into(),
            "/v1/calls?provider=zudu&from=2026-10-10T00:00:00Z&limit=4".into(),
            "/v1/calls?provider=zudu&from=2026-10-11&limit=4".into(),
        ),
        (
            "/v1/calls?provider=zudu&to=2026-10-10&limit=4".into(),
            "/v1/calls?provider=zudu&to=2026-10-11T02:00:00%2B02:00&limit=4".into(),
            "/v1/calls?provider=zudu&to=2026-10-12&limit=4".into(),
        ),
        (
            format!("/v1/calls?provider=bimpe&agentId={agent}&limit=4"),
            format!("/v1/calls?limit=4&agentId={agent}&provider=bimpe"),
            format!(
                "/v1/calls?provider=bimpe&agentId={}&limit=4",
                h.sim(VendorKind::Bimpe).agent_ids()[1]
            ),
        ),
        (
            "/v1/calls?provider=zudu&limit=5&include=raw".into(),
            "/v1/calls?include=raw&limit=5&provider=zudu".into(),
            "/v1/calls?provider=zudu&limit=5".into(),
        ),
    ];
    for (first, same, other) in &cases {
        assert_eq!(status(&h, first), MISS, "{first}");
        assert_eq!(status(&h, same), HIT, "{same} shares {first}");
        assert_eq!(status(&h, other), MISS, "{other} must not share {first}");
    }
    // A cursor: its page is keyed by position, not by the cursor's spelling.
    let v = h.get("/v1/calls?provider=zudu&limit=6").json();
    let cursor = v["pagination"]["nextCursor"].as_str().unwrap().to_string();
    assert_eq!(
        status(
            &h,
            &format!("/v1/calls?provider=zudu&limit=6&cursor={cursor}")
        ),
        MISS
    );
    assert_eq!(
        status(&h, &format!("/v1/calls?provider=zudu&cursor={cursor}")),
        HIT
    );
    // Gets: the id and include.
    let id = v["data"][0]["id"].as_str().unwrap().to_string();
    let other_id = v["data"][1]["id"].as_str().unwrap().to_string();
    let enc = id.replace(':', "%3A");
    assert_eq!(status(&h, &format!("/v1/calls/{id}")), MISS);
    assert_eq!(
        status(&h, &format!("/v1/calls/{enc}")),
        HIT,
        "a percent-encoded id is the same call"
    );
    assert_eq!(status(&h, &format!("/v1/calls/{id}?include=raw")), MISS);
    assert_eq!(status(&h, &format!("/v1/calls/{other_id}")), MISS);
}

#[test]
fn a_hit_never_touches_the_vendor_and_no_cache_refreshes() {
    let h = Harness::start();
    let zudu = h.sim(VendorKind::Zudu);
    let url = "/v1/calls?provider=zudu&limit=2";
    let first = h.get(url);
    zudu.clear_requests();
    for _ in 0..5 {
        let r = h.get(url);
        assert_eq!(r.cache_status.as_deref(), Some(HIT));
        assert_eq!(r.text, first.text);
    }
    assert!(zudu.requests().is_empty(), "hits reached the vendor");
    let auth = format!("Bearer {KEY}");
    let r = h.get_with(
        url,
        &[("Authorization", &auth), ("Cache-Control", "no-cache")],
    );
    assert_eq!(
        r.cache_status.as_deref(),
        Some("callgate; fwd=request; stored")
    );
    assert_eq!(zudu.requests().len(), 1);
    let r = h.get_with(url, &[("Authorization", &auth), ("Pragma", "no-cache")]);
    assert_eq!(
        r.cache_status.as_deref(),
        Some("callgate; fwd=request; stored")
    );
    assert_eq!(h.get(url).cache_status.as_deref(), Some(HIT));
    assert_eq!(zudu.requests().len(), 2);
    // Errors are not cached.
    let missing = "/v1/calls/zudu:nope";
    h.get(missing).problem(404, "not_found");
    h.get(missing).problem(404, "not_found");
    assert_eq!(zudu.requests().len(), 4);
}

#[test]
fn concurrent_identical_cold_gets_make_one_vendor_request() {
    let h = Arc::new(Harness::start());
    let zudu = h.sim(VendorKind::Zudu);
    zudu.clear_requests();
    // The one vendor request is held until all 100 client requests are in the gateway (a fixed
    // vendor latency would be a guess at how fast 100 threads get their requests in).
    zudu.hold();
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let h = h.clone();
            std::thread::spawn(move || {
                let r = h.get("/v1/calls?provider=zudu&limit=7&status=completed");
                (r.status, r.text, r.cache_status.unwrap_or_default())
            })
        })
        .collect();
    let inflight = || {
        h.scrape().lines().find_map(|l| {
            l.strip_prefix("callgate_inflight_requests ")?
                .parse::<u32>()
                .ok()
        })
    };
    wait_until(
        "100 requests in the gateway, one of them at the vendor",
        || !zudu.requests().is_empty() && inflight() == Some(100),
    );
    zudu.release();
    let answers: Vec<(u16, String, String)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(zudu.requests().len(), 1, "exactly one vendor request");
    assert!(
        answers.iter().all(|a| a.0 == 200 && a.1 == answers[0].1),
        "all 100 answers equal"
    );
    assert_eq!(
        answers.iter().filter(|a| a.2 == MISS).count(),
        1,
        "one leader"
    );
    // Every other request arrived while the leader's was held: it waited for it (collapsed).
    // One that had not reached the cache yet when the vendor was released may find the stored
    // answer instead (a hit): either way it did not go to the vendor.
    assert!(
        answers
            .iter()
            .filter(|a| a.2 != MISS)
            .all(|a| a.2.contains("collapsed") || a.2 == HIT),
        "the others waited for the leader or found its answer: {:?}",
        answers.iter().map(|a| &a.2).collect::<Vec<_>>()
    );
    assert!(
        answers.iter().filter(|a| a.2.contains("collapsed")).count() > 50,
        "the others waited for it"
    );
}

#[test]
fn a_cached_get_is_faster_by_at_least_the_vendor_latency() {
    let latency = Duration::from_millis(50);
    // Calls stay cached for the whole test, live ones too.
    let h = Harness::start_configured(
        SimOptions {
            latency,
            ..Default::default()
        },
        "[cache]\nlive_call_ttl_ms = 600000\nfinished_call_ttl_ms = 600000\n",
    );
    let zudu = h.sim(VendorKind::Zudu);
    let v = h.get("/v1/calls?provider=zudu&limit=20").json();
    let ids: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let auth = format!("Bearer {KEY}");
    let time = |url: &str, fresh: bool| {
        let started = Instant::now();
        let headers: Vec<(&str, &str)> = if fresh {
            vec![("Authorization", &auth), ("Cache-Control", "no-cache")]
        } else {
            vec![("Authorization", &auth)]
        };
        let r = h.get_with(url, &headers);
        assert_eq!(r.status, 200);
        (started.elapsed(), r.cache_status.unwrap_or_default())
    };
    // Uncached, each GET waits for the vendor (and stores its answer).
    for id in &ids {
        let (took, _) = time(&format!("/v1/calls/{id}"), true);
        assert!(took >= latency, "uncached {id}: {took:?}");
    }
    // From now on the vendor takes a minute to answer. A cached GET does not wait for it: it
    // answers well within half of that, and the vendor sees no request. (A bound of half the
    // vendor's latency proves the point without depending on how fast the machine is.)
    zudu.add_fault(Fault {
        latency_ms: Some(60_000),
        ..Default::default()
    });
    let asked = zudu.requests().len();
    for id in &ids {
        let (took, cache_status) = time(&format!("/v1/calls/{id}"), false);
        assert_eq!(cache_status, HIT, "cached {id}");
        assert!(took < Duration::from_secs(30), "cached {id}: {took:?}");
    }
    assert_eq!(
        zudu.requests().len(),
        asked,
        "no cached GET asked the vendor"
    );
}

#[test]
fn the_cache_stays_within_its_byte_bound() {
    let bound: u64 = 128 * 1024;
    let h = Harness::start_configured(SimOptions::default(), &format!("[cache]\nmax_bytes = {bound}\nfinished_call_ttl_ms = 600000\nlive_call_ttl_ms = 600000\n"));
    let mut passed = 0usize;
    let mut cursor: Option<String> = None;
    // Every call, twice (plain and with raw), plus list pages: well over 10x the bound.
    loop {
        let url = match &cursor {
            Some(c) => format!("/v1/calls?provider=zudu&limit=50&include=raw&cursor={c}"),
            None => "/v1/calls?provider=zudu&limit=50&include=raw".into(),
        };
        let r = h.get(&url);
        passed += r.text.len();
        let v = r.json();
        for c in v["data"].as_array().unwrap() {
            for suffix in ["", "?include=raw"] {
                passed += h
                    .get(&format!("/v1/calls/{}{suffix}", c["id"].as_str().unwrap()))
                    .text
                    .len();
            }
        }
        match v["pagination"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(passed as u64 > 10 * bound, "{passed} bytes passed through");
    let held = h.metric("callgate_cache_bytes").unwrap();
    assert!(
        held > 0.0 && held <= bound as f64,
        "cache holds {held} bytes, bound {bound}"
    );
}

#[test]
fn stale_if_error_answers_from_an_expired_entry_when_the_vendor_fails() {
    let h = Harness::start_configured(
        SimOptions::default(),
        "[cache]\nlist_ttl_ms = 1\nlive_call_ttl_ms = 1\nstale_if_error_ms = 600000\n",
    );
    let url = "/v1/calls?provider=zudu&limit=3";
    answered_stale_when_zudu_fails(&h, url);
    h.sim(VendorKind::Zudu).clear_faults();
    assert_eq!(
        h.get(url).cache_status.as_deref(),
        Some("callgate; fwd=stale; stored")
    );
}

#[test]
fn caching_can_be_turned_off() {
    let h = Harness::start_configured(SimOptions::default(), "[cache]\nenabled = false\n");
    for _ in 0..2 {
        assert_eq!(
            h.get("/v1/calls?provider=zudu&limit=2")
                .cache_status
                .as_deref(),
            Some("callgate; fwd=bypass")
        );
    }
}

#[test]
fn a_finished_call_is_answered_stale_when_the_vendor_fails_by_default() {
    // stale_if_error_ms is off (its default); finished calls keep an hour of their own.
    let h = Harness::start_configured(SimOptions::default(), "[cache]\nfinished_call_ttl_ms = 1\n");
    let page = h.get("/v1/calls?provider=zudu&limit=50").json();
    let finished = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "completed")
        .expect("a completed call in the simulator's data");
    let url = format!("/v1/calls/{}", finished["id"].as_str().unwrap());
    answered_stale_when_zudu_fails(&h, &url);
}

/// Reads `url` (stored), makes Zudu fail, and waits until the entry's 1 ms freshness has passed:
/// from then on the same answer comes back from the cache, marked stale (while fresh, reads are
/// plain hits and never reach the failing vendor).
#[track_caller]
fn answered_stale_when_zudu_fails(h: &Harness, url: &str) {
    let first = h.get(url);
    assert_eq!(first.status, 200, "{}", first.text);
    h.sim(VendorKind::Zudu).add_fault(Fault {
        action: FaultAction::Status {
            status: 503,
            body: "down".into(),
            headers: vec![],
        },
        ..Default::default()
    });
    let mut last = None;
    wait_until("the entry to be served stale", || {
        let r = h.get(url);
        assert_eq!(r.status, 200, "{}", r.text);
        let stale = r.cache_status.as_deref() == Some("callgate; hit; detail=stale");
        last = Some(r);
        stale
    });
    assert_eq!(last.expect("one read").text, first.text);
}
