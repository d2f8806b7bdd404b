//! `/metrics` on the admin listener: every series of DESIGN.md, valid for `promtool check
//! metrics`, labels only from closed sets; and a real Prometheus server scraping callgate.

mod common;

use callgate_sim::{Fault, FaultAction, VendorKind};
use common::Harness;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERIES: [&str; 13] = [
    "callgate_circuit_open",
    "callgate_requests_total",
    "callgate_request_duration_seconds",
    "callgate_upstream_duration_seconds",
    "callgate_overhead_duration_seconds",
    "callgate_upstream_errors_total",
    "callgate_cache_requests_total",
    "callgate_cache_bytes",
    "callgate_inflight_requests",
    "callgate_config_reloads_total",
    "callgate_config_last_reload_timestamp_seconds",
    "callgate_vendor_drift_total",
    "process_resident_memory_bytes",
];

fn traffic(h: &Harness) {
    for p in ["zudu", "elemente"] {
        let v = h.get(&format!("/v1/calls?provider={p}&limit=30")).json();
        for c in v["data"].as_array().unwrap().iter().take(5) {
            h.get(&format!("/v1/calls/{}", c["id"].as_str().unwrap()));
        }
        h.get(&format!("/v1/calls?provider={p}&limit=30"));
    }
    h.get("/v1/calls?provider=dead");
    h.sim(VendorKind::Zudu).add_fault(Fault {
        action: FaultAction::Status {
            status: 500,
            body: "x".into(),
            headers: vec![],
        },
        times: Some(1),
        ..Default::default()
    });
    h.get("/v1/calls?provider=zudu&limit=9");
}

fn promtool() -> &'static str {
    assert!(
        Command::new("promtool").arg("--version").output().is_ok(),
        "promtool is missing: `make test` installs it (Debian package prometheus)"
    );
    "promtool"
}

#[test]
fn every_series_is_exposed_and_promtool_accepts_it() {
    let h = Harness::start();
    traffic(&h);
    let text = h.metrics();
    for s in SERIES {
        assert!(
            text.lines().any(|l| l.starts_with(s)),
            "{s} missing from /metrics"
        );
    }
    assert!(text.contains("process_open_fds") && text.contains("process_cpu_seconds_total"));
    assert!(
        text.contains(r#"callgate_upstream_errors_total{kind="connect",provider="dead"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"callgate_upstream_errors_total{kind="server_error",provider="zudu"} 1"#)
    );
    assert!(text.contains(r#"callgate_requests_total{code="provider_unavailable",operation="list_calls",provider="dead"} 1"#));
    assert!(
        text.contains(r#"callgate_cache_requests_total{result="hit"} 2"#),
        "the two repeated lists hit"
    );
    assert!(text.contains(r#"callgate_vendor_drift_total{field="agent.email",kind="wrong_type",provider="elemente"}"#), "Elemente's phone-number emails are drift");
    assert!(
        text.contains(r#"le="0.0001""#) && text.contains(r#"le="30""#),
        "buckets from 100us to 30s"
    );
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn label_values_come_only_from_closed_sets() {
    let h = Harness::start();
    for url in [
        "/v1/zzz-unique-path",
        "/v1/calls/zzzprovider:abc",
        "/v1/calls?provider=zzzprov",
        "/zzz-root",
    ] {
        h.get(url);
    }
    let text = h.metrics();
    assert!(
        !text.contains("zzz"),
        "a client-supplied string became a label"
    );
    assert!(text.contains(
        r#"callgate_requests_total{code="not_found",operation="other",provider="none"}"#
    ));
    // Overhead is observed once per request, like the total.
    let count = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}_count")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(
        count("callgate_overhead_duration_seconds"),
        count("callgate_request_duration_seconds")
    );
    assert!(count("callgate_request_duration_seconds") >= 4.0);
}

/// Kills the Prometheus server when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(port: u16, q: &str) -> Option<Value> {
    let r = ureq::get(&format!("http://127.0.0.1:{port}/api/v1/query"))
        .query("query", q)
        .call()
        .ok()?;
    let v: Value = serde_json::from_str(&r.into_string().ok()?).ok()?;
    let result = v["data"]["result"].as_array()?.clone();
    (!result.is_empty()).then(|| Value::Array(result))
}

#[test]
fn a_real_prometheus_scrapes_callgate() {
    promtool();
    let h = Harness::start();
    let tmp = tempfile::Builder::new()
        .prefix("callgate-prom-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: callgate\n    static_configs:\n      - targets: ['{}']\n",
        h.gateway.admin_addr
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = common::free_port();
    let _prom = Child(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus; `make test` installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut requests = None;
    let mut quantile = None;
    while Instant::now() < deadline && (requests.is_none() || quantile.is_none()) {
        traffic(&h);
        std::thread::sleep(Duration::from_millis(500));
        requests = query(port, r#"sum(callgate_requests_total{provider="zudu"})"#);
        quantile = query(port, "histogram_quantile(0.5, sum by (le) (rate(callgate_request_duration_seconds_bucket[30s])))")
            .filter(|v| v[0]["value"][1].as_str().is_some_and(|s| s != "NaN"));
    }
    let requests = requests.expect("Prometheus never returned callgate_requests_total");
    let n: f64 = requests[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n >= 10.0, "{n}");
    let q: f64 = quantile.expect("no quantile")[0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(q > 0.0 && q < 30.0, "p50 {q}");
}
