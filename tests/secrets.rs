//! No vendor credential and no gateway key appears in any response or log line, at any level —
//! across successes, every error path and vendor faults (logs captured at trace level).

mod common;

use callgate_sim::{Fault, FaultAction, VendorKind};
use common::{captured_logs, secrets, wait_until, Harness, Reply, OTHER_KEY};
use std::collections::HashSet;

#[test]
fn secrets_appear_in_no_response_and_no_log_line() {
    let h = Harness::start();
    let agent = h.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let mut replies: Vec<Reply> = Vec::new();
    let mut urls: Vec<String> = vec![
        "/v1/providers".into(),
        "/v1/calls?provider=zudu&limit=5&include=raw".into(),
        "/v1/calls?provider=elemente&limit=5&include=raw".into(),
        format!("/v1/calls?provider=bimpe&agentId={agent}&limit=5&include=raw"),
        "/v1/calls?provider=elemente-badauth".into(),
        format!("/v1/calls?provider=bimpe-noscope&agentId={agent}"),
        "/v1/calls?provider=dead".into(),
        "/v1/calls/zudu:missing".into(),
        "/v1/calls?limit=0".into(),
    ];
    for provider in ["zudu", "elemente"] {
        let v = h
            .get(&format!("/v1/calls?provider={provider}&limit=3"))
            .json();
        for c in v["data"].as_array().unwrap() {
            urls.push(format!(
                "/v1/calls/{}?include=raw",
                c["id"].as_str().unwrap()
            ));
        }
    }
    for url in &urls {
        replies.push(h.get(url));
    }
    for action in [
        FaultAction::Reset,
        FaultAction::Malformed,
        FaultAction::Status {
            status: 500,
            body: "x".into(),
            headers: vec![],
        },
    ] {
        h.sim(VendorKind::Zudu).add_fault(Fault {
            action,
            ..Default::default()
        });
        replies.push(h.get("/v1/calls?provider=zudu"));
        h.sim(VendorKind::Zudu).clear_faults();
    }
    replies.push(h.get_with("/v1/calls", &[("Authorization", "Bearer wrong-key")]));
    replies.push(h.get_with(
        "/v1/calls?provider=elemente",
        &[("Authorization", &format!("Bearer {OTHER_KEY}"))],
    ));
    // A request's log line is written after its answer is sent: wait until every request made
    // above has its line in the capture, so that no line escapes the checks below.
    let ids: HashSet<String> = replies
        .iter()
        .map(|r| {
            r.request_id
                .clone()
                .unwrap_or_else(|| panic!("an answer without X-Request-Id: {}", r.text))
        })
        .collect();
    assert_eq!(ids.len(), replies.len(), "one request id per request");
    wait_until("a log line for every request", || {
        logged_request_ids(&captured_logs()).is_superset(&ids)
    });
    let logs = captured_logs();
    let bodies: Vec<String> = replies.into_iter().map(|r| r.text).collect();
    // Simulated personal data (phone numbers, emails, transcripts, message texts) is not logged
    // either, though the responses above carried plenty of it.
    let pii = simulated_pii(&h);
    assert!(pii.len() > 100, "{} PII strings", pii.len());
    for value in &pii {
        assert!(
            !logs.contains(value.as_str()),
            "the logs contain simulated personal data: {value}"
        );
    }
    for secret in secrets() {
        for body in &bodies {
            assert!(
                !body.contains(&secret),
                "a response contains a secret: {body}"
            );
        }
        assert!(
            !logs.contains(&secret),
            "the logs contain a secret ({} chars)",
            secret.len()
        );
    }
}

/// The request ids of the `request` log lines (one per request answered).
fn logged_request_ids(logs: &str) -> HashSet<String> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .filter_map(|v| v["request_id"].as_str().map(str::to_string))
        .collect()
}

/// Phone numbers, emails and texts from every simulated record.
fn simulated_pii(h: &Harness) -> Vec<String> {
    fn walk(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, k, out)),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            serde_json::Value::String(s) => {
                let k = key.to_ascii_lowercase();
                let personal = [
                    "phone",
                    "email",
                    "number",
                    "source",
                    "destination",
                    "transcri",
                    "content",
                    "message",
                    "name",
                ]
                .iter()
                .any(|p| k.contains(p));
                if personal && s.len() >= 8 {
                    out.push(s.clone());
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for kind in [VendorKind::Elemente, VendorKind::Bimpe, VendorKind::Zudu] {
        for r in h.sim(kind).records() {
            walk(&r, "", &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}
