//! Canonical agents and portable creates over real sockets: one body, split across Elemente,
//! Bimpe and Zudu, each simulator receiving its own agent id and what it requires and nothing
//! it cannot take; strict and lenient handling; `agent.key` on every read; `GET /v1/agents`;
//! a broken agent mapping refused by a live reload.

mod common;

use callgate::gateway::Gateway;
use callgate::reload::Reloader;
use callgate_sim::{RecordedRequest, SimOptions, VendorKind};
use common::Harness;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The first Bimpe agent of the simulators' data set (seed 42).
const BIMPE_AGENT: &str = "agt_nr6i4x4jnb95sz5b";
const ZUDU_POOL: [&str; 2] = ["+14155550100", "+14155550101"];

fn agents_config() -> String {
    format!(
        r#"
[agents.support-bot]
description = "Tier-1 support"
split = {{ elemente = 40, bimpe = 30, zudu = 30 }}

[agents.support-bot.providers.elemente]
agent_id = "ele-support"
defaults = {{ skillId = "skill-1" }}

[agents.support-bot.providers.bimpe]
agent_id = "{BIMPE_AGENT}"

[agents.support-bot.providers.zudu]
agent_id = "zudu-support"
defaults = {{ from = ["{}", "{}"] }}

[agents.zudu-only]
[agents.zudu-only.providers.zudu]
agent_id = "zudu-only-id"
defaults = {{ from = "+14155550177" }}
"#,
        ZUDU_POOL[0], ZUDU_POOL[1]
    )
}

fn start() -> Harness {
    let h = Harness::start_configured(SimOptions::default(), &agents_config());
    assert_eq!(h.sim(VendorKind::Bimpe).agent_ids()[0], BIMPE_AGENT);
    for kind in VendorKind::ALL {
        h.sim(kind).clear_requests();
    }
    h
}

fn sent_json(r: &RecordedRequest) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

const ONE_BODY: &str =
    r#"{"agent": "support-bot", "to": "+14155550123", "customer": {"name": "Ada"}}"#;

#[test]
fn one_body_split_three_ways_is_placed_by_every_vendor() {
    let h = start();
    let n = 3000;
    let mut by_provider: BTreeMap<String, usize> = BTreeMap::new();
    // Four clients at once; keys make the draw reproducible (a keyed split is deterministic).
    let results: Vec<(String, Value, Option<String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let h = &h;
                s.spawn(move || {
                    (w..n)
                        .step_by(4)
                        .map(|i| {
                            let key = format!("split-{i}");
                            let r =
                                h.send("POST", "/v1/calls", ONE_BODY, &[("Idempotency-Key", &key)]);
                            assert_eq!(r.status, 201, "create {i}: {}", r.text);
                            let v = r.json();
                            (
                                v["provider"].as_str().unwrap().to_string(),
                                v,
                                r.preference_applied,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    for (provider, call, applied) in &results {
        *by_provider.entry(provider.clone()).or_default() += 1;
        assert_eq!(call["agent"]["key"], "support-bot", "{call}");
        let warnings = call["warnings"].as_array().cloned().unwrap_or_default();
        if provider == "elemente" {
            // Elemente takes the customer's name: nothing dropped, no preference to report.
            assert!(warnings.is_empty(), "{call}");
            assert_eq!(applied, &None);
        } else {
            // Bimpe and Zudu cannot take a customer: dropped (lenient, the split chose), said.
            assert_eq!(warnings.len(), 1, "{call}");
            assert_eq!(warnings[0]["field"], "customer");
            assert!(warnings[0]["message"]
                .as_str()
                .unwrap()
                .contains(provider.as_str()));
            assert_eq!(applied.as_deref(), Some("handling=lenient"));
        }
    }
    eprintln!("creates per provider: {by_provider:?}");
    for (provider, weight) in [("elemente", 40.0), ("bimpe", 30.0), ("zudu", 30.0)] {
        let share = 100.0 * by_provider[provider] as f64 / n as f64;
        assert!(
            (share - weight).abs() <= 3.0,
            "{provider}: {share:.1}% of creates, weight {weight}% ({by_provider:?})"
        );
    }
    // Every dropped field is counted, per provider and field.
    let metrics = h.metrics();
    for provider in ["bimpe", "zudu"] {
        let series = format!(
            "callgate_write_fields_dropped_total{{field=\"customer\",provider=\"{provider}\"}} {}",
            by_provider[provider]
        );
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
    }
    // Each vendor received its own agent id and required fields, and nothing it cannot take.
    let ele = h.sim(VendorKind::Elemente).requests();
    assert_eq!(ele.len(), by_provider["elemente"]);
    for r in &ele {
        let b = sent_json(r);
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/api/v1/calls")
        );
        assert_eq!(b["agentId"], "ele-support");
        assert_eq!(b["skillId"], "skill-1");
        assert_eq!(b["customerName"], "Ada");
        assert_eq!(b["customerPhone"], "+14155550123");
    }
    let bim = h.sim(VendorKind::Bimpe).requests();
    assert_eq!(bim.len(), by_provider["bimpe"]);
    for r in &bim {
        assert_eq!(
            r.path,
            format!("/api/v1/console/agents/{BIMPE_AGENT}/calls")
        );
        assert_eq!(sent_json(r), json!({"destination": "+14155550123"}));
    }
    let zud = h.sim(VendorKind::Zudu).requests();
    assert_eq!(zud.len(), by_provider["zudu"]);
    let mut froms: BTreeMap<String, usize> = BTreeMap::new();
    for r in &zud {
        let b = sent_json(r);
        assert_eq!(r.path, "/api/calls/create-phone-call");
        let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["from_number", "override_agent_id", "to_number"],
            "{b}"
        );
        assert_eq!(b["override_agent_id"], "zudu-support");
        *froms
            .entry(b["from_number"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // Both numbers of the pool are used.
    assert_eq!(froms.keys().cloned().collect::<Vec<_>>(), ZUDU_POOL);
    assert!(froms.values().all(|c| *c > zud.len() / 4), "{froms:?}");
}

#[test]
fn strict_refuses_what_the_vendor_cannot_take_and_sends_nothing() {
    let h = start();
    let named = r#"{"agent": "support-bot", "provider": "zudu", "to": "+14155550123", "customer": {"name": "Ada"}}"#;
    // A request naming its provider is strict by default; Prefer says so explicitly too.
    for prefer in [None, Some("handling=strict")] {
        let headers: Vec<(&str, &str)> = prefer.iter().map(|p| ("Prefer", *p)).collect();
        let r = h.send("POST", "/v1/calls", named, &headers);
        let p = r.problem(400, "invalid_request");
        assert_eq!(p["errors"][0]["field"], "customer", "{p}");
        assert!(p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("handling=lenient"));
    }
    // A split's choice under Prefer strict: refused wherever the customer cannot go.
    let r = h.send(
        "POST",
        "/v1/calls",
        ONE_BODY,
        &[("Prefer", "handling=strict"), ("Idempotency-Key", "pick")],
    );
    if r.status != 201 {
        assert_eq!(
            r.problem(400, "invalid_request")["errors"][0]["field"],
            "customer"
        );
    }
    assert!(h.sim(VendorKind::Zudu).requests().is_empty());
    assert!(h.sim(VendorKind::Bimpe).requests().is_empty());
    // Lenient: placed, the customer dropped and said.
    let r = h.send(
        "POST",
        "/v1/calls",
        named,
        &[("Prefer", "respond-async, handling=lenient")],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.preference_applied.as_deref(), Some("handling=lenient"));
    let v = r.json();
    assert_eq!(v["warnings"][0]["field"], "customer");
    assert_eq!(v["agent"]["key"], "support-bot");
    let sent = h.sim(VendorKind::Zudu).requests();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].body.contains("Ada"), "{}", sent[0].body);
    // A test call is never placed as a real one: `test: true` is refused even under lenient.
    let r = h.send(
        "POST",
        "/v1/calls",
        r#"{"agent": "support-bot", "provider": "zudu", "to": "+14155550123", "test": true}"#,
        &[("Prefer", "handling=lenient")],
    );
    let p = r.problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "test", "{p}");
    assert_eq!(
        h.sim(VendorKind::Zudu).requests().len(),
        1,
        "nothing more was sent"
    );
    // A field the vendor requires and nothing supplies is refused before any contact, naming
    // field and provider (the vendor id route: no agent defaults; this provider has none).
    h.sim(VendorKind::Zudu).clear_requests();
    let r = h.send(
        "POST",
        "/v1/calls",
        r#"{"agentId": "raw", "provider": "zudu", "to": "+14155550123"}"#,
        &[],
    );
    let p = r.problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "from");
    assert!(p["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("\"zudu\""));
    assert!(h.sim(VendorKind::Zudu).requests().is_empty());
    // An agent that does not run at the named provider, and an unknown agent.
    let r = h.send(
        "POST",
        "/v1/calls",
        r#"{"agent": "zudu-only", "provider": "elemente", "to": "+14155550123"}"#,
        &[],
    );
    assert_eq!(
        r.problem(400, "invalid_request")["errors"][0]["field"],
        "provider"
    );
    let r = h.send(
        "POST",
        "/v1/calls",
        r#"{"agent": "nobody", "to": "+14155550123"}"#,
        &[],
    );
    assert_eq!(
        r.problem(400, "invalid_request")["errors"][0]["field"],
        "agent"
    );
}

#[test]
fn reads_show_the_canonical_agent() {
    let h = start();
    // An agent at one provider only goes there; its provider default and own default apply.
    let r = h.send(
        "POST",
        "/v1/calls",
        r#"{"agent": "zudu-only", "to": "+14155550123"}"#,
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(
        created["agent"],
        json!({"key": "zudu-only", "id": "zudu-only-id", "phone": "+14155550177", "email": null})
    );
    let sent = sent_json(&h.sim(VendorKind::Zudu).requests()[0]);
    assert_eq!(sent["from_number"], "+14155550177");
    let id = created["id"].as_str().unwrap();
    let got = h.get(&format!("/v1/calls/{id}")).json();
    assert_eq!(got["agent"]["key"], "zudu-only");
    // In a list, a mapped agent has its key and any other agent null.
    let page = h.get("/v1/calls?provider=zudu&limit=100").json();
    let calls = page["data"].as_array().unwrap();
    let mapped: Vec<&Value> = calls
        .iter()
        .filter(|c| c["agent"]["id"] == "zudu-only-id")
        .collect();
    assert_eq!(mapped.len(), 1);
    assert_eq!(mapped[0]["agent"]["key"], "zudu-only");
    assert!(calls
        .iter()
        .filter(|c| c["agent"]["id"] != "zudu-only-id")
        .all(|c| c["agent"]["key"].is_null()));
    // Bimpe's agent is in the id: every call of it read back carries the key.
    let r = h.send(
        "POST",
        "/v1/calls",
        r#"{"agent": "support-bot", "provider": "bimpe", "to": "+14155550124"}"#,
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let page = h
        .get(&format!(
            "/v1/calls?provider=bimpe&agentId={BIMPE_AGENT}&limit=5"
        ))
        .json();
    for c in page["data"].as_array().unwrap() {
        assert_eq!(c["agent"]["key"], "support-bot", "{c}");
    }
}

#[test]
fn updates_are_portable_too() {
    let h = start();
    let r = h.send(
        "POST",
        "/v1/calls",
        r#"{"agent": "support-bot", "provider": "elemente", "to": "+14155550123"}"#,
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let ele_id = r.json()["id"].as_str().unwrap().to_string();
    // A canonical agent in a PATCH becomes the vendor's id there.
    h.sim(VendorKind::Elemente).clear_requests();
    let r = h.send(
        "PATCH",
        &format!("/v1/calls/{ele_id}"),
        r#"{"agent": "support-bot", "note": "handed over"}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let put = sent_json(&h.sim(VendorKind::Elemente).requests()[0]);
    assert_eq!(
        put,
        json!({"agentId": "ele-support", "note": "handed over"})
    );
    // Zudu cannot take a note: an update is routed (lenient) unless the client says strict.
    let zudu_id = format!(
        "zudu:{}",
        h.sim(VendorKind::Zudu).records()[0]["call_id"]
            .as_str()
            .unwrap()
    );
    let path = format!("/v1/calls/{zudu_id}");
    let both = r#"{"status": "completed", "note": "done"}"#;
    let r = h.send("PATCH", &path, both, &[("Prefer", "handling=strict")]);
    assert_eq!(
        r.problem(400, "invalid_request")["errors"][0]["field"],
        "note"
    );
    assert!(h.sim(VendorKind::Zudu).requests().is_empty());
    let r = h.send("PATCH", &path, both, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["warnings"][0]["field"], "note");
    assert_eq!(r.preference_applied.as_deref(), Some("handling=lenient"));
    let put = sent_json(&h.sim(VendorKind::Zudu).requests()[0]);
    assert_eq!(put, json!({"call_status": "ENDED"}));
    // Nothing the vendor can take: refused naming the field, lenient or not.
    let r = h.send("PATCH", &path, r#"{"note": "only"}"#, &[]);
    assert_eq!(
        r.problem(400, "invalid_request")["errors"][0]["field"],
        "note"
    );
    // A status the vendor cannot express stays a 400 naming it.
    let r = h.send("PATCH", &path, r#"{"status": "voicemail"}"#, &[]);
    assert_eq!(
        r.problem(400, "invalid_request")["errors"][0]["field"],
        "status"
    );
}

#[test]
fn agents_are_listed_with_where_they_run() {
    let h = start();
    let v = h.get("/v1/agents").json();
    let data = v["data"].as_array().unwrap();
    let keys: Vec<&str> = data.iter().map(|a| a["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["support-bot", "zudu-only"]);
    let bot = &data[0];
    assert_eq!(
        bot["split"],
        json!({"bimpe": 30, "elemente": 40, "zudu": 30})
    );
    let at: Vec<(&str, &str)> = bot["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap(),
                p["agentId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        at,
        [
            ("bimpe", BIMPE_AGENT),
            ("elemente", "ele-support"),
            ("zudu", "zudu-support")
        ]
    );
    let zudu = &bot["providers"][2];
    assert_eq!(zudu["defaults"]["from"], json!(ZUDU_POOL));
    assert!(zudu["takes"].as_array().unwrap().contains(&json!("from")));
    // The other tenant may use zudu only: it sees the agents there, and only zudu.
    let other = h
        .get_with(
            "/v1/agents",
            &[("Authorization", &format!("Bearer {}", common::OTHER_KEY))],
        )
        .json();
    let providers = &other["data"][0]["providers"];
    assert_eq!(providers.as_array().unwrap().len(), 1);
    assert_eq!(providers[0]["provider"], "zudu");
    // /v1/providers shows the canonical agents per provider.
    let p = h.get("/v1/providers").json();
    let zudu = p["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "zudu")
        .unwrap()
        .clone();
    assert_eq!(
        zudu["canonicalAgents"],
        json!([{"key": "support-bot", "agentId": "zudu-support"}, {"key": "zudu-only", "agentId": "zudu-only-id"}])
    );
}

#[test]
fn a_live_reload_refuses_a_broken_agent_mapping() {
    let sims = callgate_sim::SimCluster::start(SimOptions::default());
    let good = common::config_text(&sims, common::free_port(), &agents_config());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("callgate.toml");
    std::fs::write(&path, &good).unwrap();
    let gateway = Arc::new(Gateway::new(common::load(&good)));
    let reloader = Reloader {
        config_path: path.clone(),
        gateway: gateway.clone(),
        env: common::env,
    };
    // Zudu needs a caller number: a mapping that gives none (and a provider without one) is
    // refused whole, and the running config stays.
    let broken = good.replace(
        "defaults = { from = \"+14155550177\" }",
        "defaults = { skillId = \"s\" }",
    );
    assert_ne!(broken, good);
    std::fs::write(&path, &broken).unwrap();
    assert!(!reloader.reload("test"));
    let rt = gateway.runtime();
    let zudu_only = &rt.agents["zudu-only"].at["zudu"];
    assert!(zudu_only.defaults.has("from"));
    // What the refusal says.
    let errors = callgate::config::load(&path, &common::env).unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let joined = text.join("\n");
    assert!(
        joined.contains(
            "agents.zudu-only.providers.zudu.defaults.skillId: vendor \"zudu\" cannot take skillId"
        ),
        "{joined}"
    );
    assert!(
        joined.contains(
            "agents.zudu-only.providers.zudu: vendor \"zudu\" requires from to place a call"
        ),
        "{joined}"
    );
    // The good file again: accepted.
    std::fs::write(&path, &good).unwrap();
    assert!(reloader.reload("test"));
}

/// Stops the child when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `callgate demo` on free ports: the child, its banner's create line, the API and admin
/// ports. `None` when the demo did not come up (a port taken in between by another test).
fn demo_on_free_ports() -> Option<(Killed, String, u16)> {
    use std::io::{BufRead, BufReader};
    let [e, b, z, api, admin] = common::free_ports::<5>();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callgate"))
        .args(["demo", "--elemente", &format!("127.0.0.1:{e}")])
        .args([
            "--bimpe",
            &format!("127.0.0.1:{b}"),
            "--zudu",
            &format!("127.0.0.1:{z}"),
        ])
        .env("CALLGATE__SERVER__LISTEN", format!("127.0.0.1:{api}"))
        .env(
            "CALLGATE__SERVER__ADMIN_LISTEN",
            format!("127.0.0.1:{admin}"),
        )
        .env(
            "CALLGATE__PROVIDERS__ELEMENTE__BASE_URL",
            format!("http://127.0.0.1:{e}"),
        )
        .env(
            "CALLGATE__PROVIDERS__BIMPE__BASE_URL",
            format!("http://127.0.0.1:{b}"),
        )
        .env(
            "CALLGATE__PROVIDERS__ZUDU__BASE_URL",
            format!("http://127.0.0.1:{z}"),
        )
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut guard = Killed(child);
    // Read the banner, and keep draining the output after it (a closed pipe would fail the
    // demo's next write).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("-d '") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(common::PATIENCE).ok()?;
    let ready = || {
        ureq::get(&format!("http://127.0.0.1:{admin}/readyz"))
            .call()
            .is_ok()
    };
    // Ready, or exited (a port was taken between choosing it and binding it).
    common::wait_until("the demo to answer, or to exit", || {
        ready() || guard.0.try_wait().ok().flatten().is_some()
    });
    // Its API port may have been taken while the admin one was not (the API service then
    // fails to bind and the process goes on): that demo is not used either.
    let serves = || {
        ureq::get(&format!("http://127.0.0.1:{api}/openapi.json"))
            .call()
            .is_ok()
    };
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while ready() && !serves() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (ready() && serves()).then_some((guard, line, api))
}

#[test]
fn the_demo_prints_a_create_that_works_as_printed() {
    let (_demo, line, api) = (0..3)
        .find_map(|_| demo_on_free_ports())
        .expect("the demo starts and prints a create");
    // Take the line apart as a shell would: headers, body, URL.
    let body = line
        .split("-d '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let url = line.rsplit(' ').next().unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{api}/v1/calls"));
    let headers: Vec<(String, String)> = line
        .split("-H '")
        .skip(1)
        .map(|h| {
            let h = h.split('\'').next().unwrap();
            let (k, v) = h.split_once(": ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    // The split picks at random: ten creates reach every vendor with a good chance, and each
    // must be placed whichever it reached.
    for _ in 0..10 {
        let mut req = ureq::post(url);
        for (k, v) in &headers {
            req = req.set(k, v);
        }
        let r = req.send_string(body).expect("201");
        assert_eq!(r.status(), 201);
        let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        assert_eq!(v["agent"]["key"], "support-bot", "{v}");
    }
}

#[test]
fn a_split_create_fails_over_across_vendors_with_the_portable_body() {
    // The agent's split sends 90 % to a provider whose vendor (Zudu's API) refuses connections;
    // those creates fail over to Elemente, another vendor, which gets its own shape of the body.
    let extra = r#"
[agents.fallback-bot]
split = { dead = 90, elemente = 10 }

[agents.fallback-bot.providers.dead]
agent_id = "dead-bot"
defaults = { from = "+14155550111" }

[agents.fallback-bot.providers.elemente]
agent_id = "ele-fallback"
defaults = { skillId = "skill-9" }
"#;
    let h = Harness::start_configured(SimOptions::default(), extra);
    h.sim(VendorKind::Elemente).clear_requests();
    let body = r#"{"agent": "fallback-bot", "to": "+14155550123", "customer": {"name": "Ada"}}"#;
    let mut failed_over = 0;
    for i in 0..10 {
        let key = format!("fallback-{i}");
        let r = h.send("POST", "/v1/calls", body, &[("Idempotency-Key", &key)]);
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        assert_eq!(v["provider"], "elemente", "{v}");
        assert_eq!(v["agent"]["key"], "fallback-bot");
        if let Some(from) = &r.failover {
            assert_eq!(from, "dead");
            failed_over += 1;
        }
    }
    assert!(
        failed_over >= 5,
        "only {failed_over} of 10 went to dead first"
    );
    let sent = h.sim(VendorKind::Elemente).requests();
    assert_eq!(sent.len(), 10, "each create placed once");
    for r in &sent {
        let b = sent_json(r);
        assert_eq!(b["agentId"], "ele-fallback");
        assert_eq!(b["skillId"], "skill-9");
        assert_eq!(b["customerName"], "Ada");
    }
}
