//! Distributed tracing: W3C `traceparent` accepted from clients (else started), passed on to the
//! vendor with the exchange's span as parent, the trace id in the request's log line, and OTLP
//! export to a real receiver (tests/support/otlp_receiver.py, decoding with the
//! `opentelemetry-proto` package from PyPI, installed into `.venv` by `make test-deps`).

mod common;

use callgate_sim::VendorKind;
use common::serve::{Proc, Replica};
use common::{captured_logs, wait_until, Harness, KEY};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// The `traceparent` the vendor request of `request_id` carried: (trace id, parent span id).
fn vendor_traceparent(sim: &callgate_sim::VendorSim, request_id: &str) -> (String, String) {
    let sent = sim.requests();
    let r = sent
        .iter()
        .find(|r| {
            r.headers
                .iter()
                .any(|(n, v)| n == "x-request-id" && v == request_id)
        })
        .expect("the vendor request of this request");
    let tp = r
        .headers
        .iter()
        .find(|(n, _)| n == "traceparent")
        .map(|(_, v)| v.clone())
        .expect("a traceparent sent to the vendor");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[0], "00", "{tp}");
    (parts[1].into(), parts[2].into())
}

/// The trace id in the request's log line.
fn logged_trace_id(request_id: &str) -> String {
    let mut found = String::new();
    wait_until("the request's log line", || {
        found = captured_logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["message"] == "request" && v["request_id"] == request_id)
            .map(|v| v["trace_id"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        !found.is_empty()
    });
    found
}

#[test]
fn a_clients_trace_goes_on_to_the_vendor_and_into_the_log() {
    let h = Harness::start();
    let r = h.get_with(
        "/v1/calls?provider=zudu&limit=1",
        &[
            ("Authorization", &format!("Bearer {KEY}")),
            ("X-Request-Id", "trace-client-1"),
            (
                "traceparent",
                &format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
            ),
            ("Cache-Control", "no-cache"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let (trace, parent) = vendor_traceparent(&h.sim(VendorKind::Zudu), "trace-client-1");
    assert_eq!(
        trace, CLIENT_TRACE,
        "the vendor request continues the client's trace"
    );
    assert_ne!(
        parent, CLIENT_SPAN,
        "its parent is callgate's exchange span"
    );
    assert_ne!(parent, "0000000000000000");
    assert_eq!(logged_trace_id("trace-client-1"), CLIENT_TRACE);

    // No traceparent, or a broken one: a trace is started here, and the vendor and the log
    // see the same one.
    for (id, header) in [("trace-none-1", None), ("trace-bad-1", Some("00-zz-01"))] {
        let mut headers = vec![
            ("Authorization".to_string(), format!("Bearer {KEY}")),
            ("X-Request-Id".to_string(), id.to_string()),
            ("Cache-Control".to_string(), "no-cache".to_string()),
        ];
        if let Some(h) = header {
            headers.push(("traceparent".into(), h.into()));
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = h.get_with("/v1/calls?provider=zudu&limit=1", &headers);
        assert_eq!(r.status, 200, "{}", r.text);
        let (trace, _) = vendor_traceparent(&h.sim(VendorKind::Zudu), id);
        assert_eq!(trace.len(), 32);
        assert_ne!(trace, "0".repeat(32));
        assert_ne!(trace, CLIENT_TRACE);
        assert_eq!(logged_trace_id(id), trace);
    }
}

/// The OTLP receiver: the process, and the file it writes spans to.
fn start_receiver(dir: &Path) -> (Proc, u16, std::path::PathBuf) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `make test-deps` makes it (with opentelemetry-proto from PyPI)",
        python.display()
    );
    let out = dir.join("spans.jsonl");
    let mut child = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/otlp_receiver.py"))
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the OTLP receiver did not start: {line:?}"));
    (Proc(child), port, out)
}

fn spans(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn spans_are_exported_over_otlp_one_trace_per_request() {
    let sims = callgate_sim::SimCluster::start(callgate_sim::SimOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (_receiver, port, out) = start_receiver(dir.path());
    let [dead] = common::free_ports();
    let config = format!(
        "{}\n[tracing]\notlp_endpoint = \"http://127.0.0.1:{port}/v1/traces\"\nservice_name = \"callgate-test\"\n",
        common::config_text(&sims, dead, "")
    );
    let path = dir.path().join("callgate.toml");
    std::fs::write(&path, config).unwrap();
    let serve = Replica::spawn(&path, dir.path(), 0, &[]);
    let get = |id: &str, traceparent: Option<&str>| {
        let mut req = ureq::get(&serve.url("/v1/calls?provider=zudu&limit=1"))
            .set("Authorization", &format!("Bearer {KEY}"))
            .set("Cache-Control", "no-cache")
            .set("X-Request-Id", id);
        if let Some(tp) = traceparent {
            req = req.set("traceparent", tp);
        }
        assert_eq!(req.call().unwrap().status(), 200);
    };
    let zudu = sims.sim(VendorKind::Zudu);
    zudu.clear_requests();
    get(
        "otlp-1",
        Some(&format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")),
    );
    get("otlp-2", None);
    get("otlp-3", None);
    // What the vendor saw, per request: the trace and the parent span.
    let seen: Vec<(String, String)> = ["otlp-1", "otlp-2", "otlp-3"]
        .iter()
        .map(|id| vendor_traceparent(&zudu, id))
        .collect();
    assert_eq!(seen[0].0, CLIENT_TRACE);
    let traces: BTreeSet<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(traces.len(), 3, "one trace per request: {seen:?}");
    wait_until("every request's spans at the OTLP receiver", || {
        let got = spans(&out);
        seen.iter().all(|(trace, parent)| {
            got.iter()
                .any(|s| s["trace_id"] == trace.as_str() && s["span_id"] == parent.as_str())
        }) && seen.iter().all(|(trace, _)| {
            got.iter()
                .any(|s| s["trace_id"] == trace.as_str() && s["name"] == "callgate GET")
        })
    });
    let got = spans(&out);
    for (trace, parent) in &seen {
        let of_trace: Vec<&Value> = got
            .iter()
            .filter(|s| s["trace_id"] == trace.as_str())
            .collect();
        let exchange = of_trace
            .iter()
            .find(|s| s["span_id"] == parent.as_str())
            .unwrap();
        // The span the vendor was told is its parent is the vendor exchange, with what it got.
        assert_eq!(exchange["name"], "vendor exchange", "{exchange}");
        assert_eq!(exchange["attributes"]["provider"], "zudu");
        assert_eq!(
            exchange["attributes"]["http.response.status_code"], 200,
            "{exchange}"
        );
        assert_eq!(exchange["service"], "callgate-test");
        let names: BTreeSet<&str> = of_trace.iter().filter_map(|s| s["name"].as_str()).collect();
        for room in [
            "callgate GET",
            "plan",
            "cache",
            "normalize",
            "vendor exchange",
        ] {
            assert!(names.contains(room), "{room} missing from {names:?}");
        }
        // Every span of the trace hangs under the request span (or, for it, the client's).
        let request = of_trace
            .iter()
            .find(|s| s["name"] == "callgate GET")
            .unwrap();
        let ids: BTreeSet<&str> = of_trace
            .iter()
            .filter_map(|s| s["span_id"].as_str())
            .collect();
        for s in &of_trace {
            if s["name"] != "callgate GET" {
                assert!(ids.contains(s["parent_span_id"].as_str().unwrap()), "{s}");
            }
        }
        if trace == CLIENT_TRACE {
            assert_eq!(request["parent_span_id"], CLIENT_SPAN);
        }
    }
}
