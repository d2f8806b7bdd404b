//! Merged lists over real sockets: a walk over Elemente, Bimpe (fanned out over its agents) and
//! Zudu gives every call exactly once, newest first, untimed calls after the timed ones;
//! a failing provider gives a partial page whose cursor retries it; a filter one provider
//! cannot honour is reported; per-provider pages are cached, so a walk refetches nothing.

mod common;

use callgate::server::RunningGateway;
use callgate_sim::{Fault, FaultAction, SimCluster, SimOptions, VendorKind};
use common::KEY;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

struct Setup {
    sims: SimCluster,
    gateway: RunningGateway,
}

fn start() -> Setup {
    let sims = SimCluster::start(SimOptions::default());
    let agents: Vec<String> = sims
        .sim(VendorKind::Bimpe)
        .agent_ids()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let text = format!(
        r#"
[server]
threads = 2
adapters = "adapters"

# Pages holding a live call stay fresh for the test's length, so a second walk is all hits.
[cache]
live_call_ttl_ms = 600000
list_ttl_ms = 600000

[providers.elemente]
vendor = "elemente"
base_url = "http://{e}"
credentials = {{ username = {{ env = "E_USER" }}, password = {{ env = "E_PASS" }} }}

[providers.bimpe]
vendor = "bimpe"
base_url = "http://{b}"
credentials = {{ api_key = {{ env = "B_KEY" }} }}
agents = [{agents}]

[providers.zudu]
vendor = "zudu"
base_url = "http://{z}"
credentials = {{ api_key = {{ env = "Z_KEY" }}, api_secret = {{ env = "Z_SECRET" }} }}

[providers.dead]
vendor = "zudu"
base_url = "http://127.0.0.1:{dead}"
credentials = {{ api_key = {{ env = "Z_KEY" }}, api_secret = {{ env = "Z_SECRET" }} }}

[tenants.main]
keys = [{{ env = "KEY" }}]
providers = ["elemente", "bimpe", "zudu", "dead"]
default = "zudu"
"#,
        e = sims.addr(VendorKind::Elemente),
        b = sims.addr(VendorKind::Bimpe),
        z = sims.addr(VendorKind::Zudu),
        dead = common::free_port(),
        agents = agents.join(", "),
    );
    let gateway = RunningGateway::start(common::load(&text));
    Setup { sims, gateway }
}

impl Setup {
    fn get(&self, path: &str, prefer: Option<&str>) -> (u16, Value) {
        let mut req = ureq::get(&format!("http://{}{path}", self.gateway.addr))
            .set("Authorization", &format!("Bearer {KEY}"));
        if let Some(p) = prefer {
            req = req.set("Prefer", p);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let status = resp.status();
        (
            status,
            serde_json::from_str(&resp.into_string().unwrap()).unwrap(),
        )
    }

    /// Every page of a walk from `first`: the calls, and each page's `incomplete`.
    fn walk(&self, first: &str) -> (Vec<Value>, Vec<Value>) {
        let (mut calls, mut incomplete) = (Vec::new(), Vec::new());
        let mut url = first.to_string();
        for _ in 0..10_000 {
            let (status, page) = self.get(&url, None);
            assert_eq!(status, 200, "{url}: {page}");
            calls.extend(page["data"].as_array().unwrap().iter().cloned());
            incomplete.push(page["pagination"]["incomplete"].clone());
            match page["pagination"]["nextCursor"].as_str() {
                Some(c) => url = format!("{first}&cursor={c}"),
                None => return (calls, incomplete),
            }
        }
        panic!("the walk did not end");
    }
}

fn created(c: &Value) -> Option<time::OffsetDateTime> {
    c["createdAt"].as_str().map(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    })
}

#[test]
fn a_merged_walk_gives_every_call_once_newest_first() {
    let s = start();
    let bimpe = s.sims.sim(VendorKind::Bimpe);
    let expected = s.sims.sim(VendorKind::Elemente).records().len()
        + bimpe
            .agent_ids()
            .iter()
            .map(|a| bimpe.records_for_agent(a).len())
            .sum::<usize>()
        + s.sims.sim(VendorKind::Zudu).records().len();
    for k in VendorKind::ALL {
        s.sims.sim(k).clear_requests();
    }
    let first = "/v1/calls?provider=elemente,bimpe,zudu&limit=37";
    let (calls, incomplete) = s.walk(first);
    assert!(incomplete.iter().all(|i| i == &serde_json::json!([])));
    let ids: BTreeSet<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), calls.len(), "no call twice");
    assert_eq!(calls.len(), expected, "every call of every source");
    let per: BTreeMap<&str, usize> = calls.iter().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c["provider"].as_str().unwrap()).or_default() += 1;
        m
    });
    eprintln!("{} calls in the walk: {per:?}", calls.len());
    // Newest first: each call is at least as new as the next one from another source.
    for pair in calls.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if let (Some(ta), Some(tb)) = (created(a), created(b)) {
            if a["provider"] != b["provider"] {
                assert!(ta >= tb, "{} before {}", a["id"], b["id"]);
            }
        }
    }
    // Elemente's calls have no createdAt: they follow every timed call.
    let last_timed = calls.iter().rposition(|c| created(c).is_some()).unwrap();
    let first_elemente = calls
        .iter()
        .position(|c| c["provider"] == "elemente")
        .unwrap();
    assert!(first_elemente > last_timed);
    // Every vendor page was fetched once: the walk's pages come from the per-provider cache.
    let zudu_pages = s.sims.sim(VendorKind::Zudu).requests().len();
    let zudu_calls = per["zudu"];
    assert!(
        zudu_pages <= zudu_calls.div_ceil(37) + 1,
        "{zudu_pages} Zudu requests for {zudu_calls} calls in pages of 37"
    );
    // A second walk is served from the cache.
    let before: usize = VendorKind::ALL
        .iter()
        .map(|k| s.sims.sim(*k).requests().len())
        .sum();
    let (again, _) = s.walk(first);
    let after: usize = VendorKind::ALL
        .iter()
        .map(|k| s.sims.sim(*k).requests().len())
        .sum();
    assert_eq!(again.len(), calls.len());
    assert_eq!(after, before, "a cached walk asks no vendor");
}

#[test]
fn a_failing_provider_gives_a_partial_page_and_its_cursor_retries_it() {
    let s = start();
    // dead refuses connections: 200 with zudu's calls, dead reported.
    let (status, page) = s.get("/v1/calls?provider=zudu,dead&limit=5", None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
    assert!(page["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["provider"] == "zudu"));
    let incomplete = &page["pagination"]["incomplete"];
    assert_eq!(incomplete[0]["provider"], "dead");
    assert_eq!(incomplete[0]["code"], "provider_unavailable");
    assert_eq!(page["pagination"]["totalCount"], Value::Null);
    // Strict: the failure is the answer.
    let (status, problem) = s.get(
        "/v1/calls?provider=zudu,dead&limit=5",
        Some("handling=strict"),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("provider_unavailable"))
    );

    // Elemente fails once, mid-walk: that page lacks it; the walk still gives each of its
    // calls exactly once, from where it was.
    let elemente = s.sims.sim(VendorKind::Elemente);
    elemente.add_fault(Fault {
        path_prefix: Some("/api/v1/calls".into()),
        times: Some(1),
        action: FaultAction::Status {
            status: 500,
            body: "{}".into(),
            headers: Vec::new(),
        },
        ..Default::default()
    });
    let (calls, incomplete) = s.walk("/v1/calls?provider=elemente,zudu&limit=50");
    assert_eq!(incomplete[0][0]["provider"], "elemente");
    assert_eq!(incomplete[0][0]["code"], "provider_error");
    let ele: Vec<&Value> = calls
        .iter()
        .filter(|c| c["provider"] == "elemente")
        .collect();
    let unique: BTreeSet<&str> = ele.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ele.len(), elemente.records().len());
    assert_eq!(unique.len(), ele.len());
    let metrics = ureq::get(&format!("http://{}/metrics", s.gateway.admin_addr))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(
            "callgate_list_incomplete_total{code=\"provider_unavailable\",provider=\"dead\"}"
        ),
        "{metrics}"
    );
}

#[test]
fn a_filter_one_provider_cannot_honour_is_reported() {
    let s = start();
    let url = "/v1/calls?provider=elemente,zudu&direction=inbound&limit=10";
    let (status, page) = s.get(url, None);
    assert_eq!(status, 200, "{page}");
    let incomplete = &page["pagination"]["incomplete"];
    assert_eq!(incomplete[0]["provider"], "elemente");
    assert_eq!(incomplete[0]["code"], "unsupported_filter");
    for c in page["data"].as_array().unwrap() {
        assert_eq!(
            (c["provider"].as_str(), c["direction"].as_str()),
            (Some("zudu"), Some("inbound"))
        );
    }
    let (status, problem) = s.get(url, Some("handling=strict"));
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("unsupported_filter"))
    );
    // A cursor is for its own selection: another provider list is refused.
    let next = page["pagination"]["nextCursor"].as_str().unwrap();
    let (status, problem) = s.get(
        &format!("/v1/calls?provider=zudu&direction=inbound&limit=10&cursor={next}"),
        None,
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}

#[test]
fn a_bimpe_list_fans_out_over_the_agents_the_config_knows() {
    let s = start();
    let bimpe = s.sims.sim(VendorKind::Bimpe);
    let (calls, _) = s.walk("/v1/calls?provider=bimpe&limit=100");
    let expected: usize = bimpe
        .agent_ids()
        .iter()
        .map(|a| bimpe.records_for_agent(a).len())
        .sum();
    assert_eq!(calls.len(), expected);
    let agents: BTreeSet<&str> = calls
        .iter()
        .map(|c| c["agent"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(agents.len(), bimpe.agent_ids().len());
}

#[test]
fn a_walk_over_a_vendor_without_paging_fetches_its_list_once() {
    // Cache off: every page is a miss, so only the walk's snapshot keeps the vendor from being
    // asked for its whole list again on every page (O(N²) before).
    let sims = SimCluster::start(SimOptions {
        calls_per_vendor: 1000,
        ..SimOptions::default()
    });
    let text = format!(
        r#"
[server]
threads = 2
adapters = "adapters"
[cache]
enabled = false
[providers.elemente]
vendor = "elemente"
base_url = "http://{e}"
credentials = {{ username = {{ env = "E_USER" }}, password = {{ env = "E_PASS" }} }}
[providers.elemente-b]
vendor = "elemente"
base_url = "http://{e}"
credentials = {{ username = {{ env = "E_USER" }}, password = {{ env = "E_PASS" }} }}
[tenants.main]
keys = [{{ env = "KEY" }}]
providers = ["elemente", "elemente-b"]
"#,
        e = sims.addr(VendorKind::Elemente),
    );
    let s = Setup {
        gateway: RunningGateway::start(common::load(&text)),
        sims,
    };
    let elemente = s.sims.sim(VendorKind::Elemente);
    elemente.clear_requests();
    let (calls, _) = s.walk("/v1/calls?provider=elemente&limit=30");
    assert_eq!(calls.len(), 1000);
    let ids: BTreeSet<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(
        elemente.requests().len(),
        1,
        "one vendor request for 34 pages"
    );
    // The vendor's order is kept.
    let vendor_ids: Vec<String> = elemente
        .records()
        .iter()
        .map(|r| format!("elemente:{}", r["id"].as_str().unwrap()))
        .collect();
    let walked: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(walked, vendor_ids);
    // A walk callgate filters itself is cut from the snapshot too: the same calls as filtering
    // the whole walk, one vendor request.
    let completed: Vec<&Value> = calls
        .iter()
        .filter(|c| c["status"] == "completed")
        .collect();
    elemente.clear_requests();
    let (filtered, _) = s.walk("/v1/calls?provider=elemente&status=completed&limit=30");
    assert_eq!(filtered.len(), completed.len());
    assert!(filtered.len() > 30, "more than one page");
    for (a, b) in filtered.iter().zip(&completed) {
        assert_eq!(a["id"], b["id"]);
    }
    assert_eq!(
        elemente.requests().len(),
        1,
        "one vendor request for a filtered walk"
    );
    // In a merged walk too (two accounts on the one simulator): each provider's snapshot is
    // found again through the merged cursor.
    elemente.clear_requests();
    let (calls, _) = s.walk("/v1/calls?limit=30");
    assert_eq!(calls.len(), 2000);
    assert_eq!(
        elemente.requests().len(),
        2,
        "one vendor request per provider"
    );
}

#[test]
fn zudu_filters_go_to_its_filtered_list_so_pages_are_full() {
    let s = start();
    let zudu = s.sims.sim(VendorKind::Zudu);
    let agent = zudu.records()[0]["agent_id"].as_str().unwrap().to_string();
    let mine = zudu
        .records()
        .iter()
        .filter(|r| r["agent_id"] == agent.as_str())
        .count();
    zudu.clear_requests();
    let first = format!("/v1/calls?provider=zudu&agentId={agent}&limit=10");
    let (status, page) = s.get(&first, None);
    assert_eq!(status, 200, "{page}");
    // The vendor filtered: a full page, and the vendor's own total.
    assert_eq!(page["data"].as_array().unwrap().len(), 10.min(mine));
    assert_eq!(page["pagination"]["totalCount"], mine as u64);
    let sent = &zudu.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/api/calls")
    );
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["filter_criteria"]["agent_id"], agent.as_str());
    assert_eq!(
        (body["page"].as_u64(), body["limit"].as_u64()),
        (Some(0), Some(10))
    );
    let (calls, _) = s.walk(&first);
    assert_eq!(calls.len(), mine);
    assert!(calls.iter().all(|c| c["agent"]["id"] == agent.as_str()));
    // A status is narrowed by the vendor (ENDED) and decided by callgate (busy is an ENDED
    // call that ended busy): every busy call, and only those.
    let (busy, _) = s.walk("/v1/calls?provider=zudu&status=busy&limit=20");
    let (all, _) = s.walk("/v1/calls?provider=zudu&limit=100");
    let expected = all.iter().filter(|c| c["status"] == "busy").count();
    assert_eq!(busy.len(), expected);
    assert!(busy.iter().all(|c| c["status"] == "busy"));
}
