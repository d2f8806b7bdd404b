//! The fault matrix: every fault the simulators inject × every operation × every vendor, through
//! real sockets, → the status and code of DESIGN.md's error table; a write that may have arrived
//! carries `"outcome": "unknown"`; a timeout answers long before the vendor would have. The matrix
//! is printed as a table (`cargo test --test fault_matrix -- --nocapture`).

mod common;

use callgate::server::RunningGateway;
use callgate_sim::{Fault, FaultAction, SimCluster, SimOptions, VendorKind};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A vendor's timeout in this test; the slow fault holds its answer far longer.
const TIMEOUT_MS: u64 = 1_000;
const SLOW_MS: u64 = 60_000;

#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    List,
    Create,
    Update,
}

struct Case {
    name: &'static str,
    fault: FaultAction,
    latency_ms: Option<u64>,
    /// Status and code for a read, and for a write.
    read: (u16, &'static str),
    write: (u16, &'static str),
    /// A write that failed this way may have been placed.
    unknown: bool,
}

fn status(code: u16, body: &str, headers: &[(&str, &str)]) -> FaultAction {
    FaultAction::Status {
        status: code,
        body: body.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn cases() -> Vec<Case> {
    let case = |name, fault, read, write, unknown| Case {
        name,
        fault,
        latency_ms: None,
        read,
        write,
        unknown,
    };
    let error = (502, "provider_error");
    vec![
        case(
            "500",
            status(500, r#"{"message": "boom"}"#, &[]),
            error,
            error,
            true,
        ),
        case("503 text", status(503, "down", &[]), error, error, true),
        case(
            "429 Retry-After",
            status(429, "{}", &[("Retry-After", "7")]),
            (429, "provider_rate_limited"),
            (429, "provider_rate_limited"),
            false,
        ),
        case(
            "429 bare",
            status(429, "{}", &[]),
            (429, "provider_rate_limited"),
            (429, "provider_rate_limited"),
            false,
        ),
        case(
            "401",
            status(401, "{}", &[]),
            (502, "provider_auth_failed"),
            (502, "provider_auth_failed"),
            false,
        ),
        case("garbage", FaultAction::Malformed, error, error, true),
        case("truncated", FaultAction::Truncated, error, error, true),
        case("reset", FaultAction::Reset, error, error, true),
        case("wrong shape", FaultAction::WrongShape, error, error, true),
        Case {
            name: "timeout",
            fault: FaultAction::None,
            latency_ms: Some(SLOW_MS),
            read: (504, "provider_timeout"),
            write: (504, "provider_timeout"),
            unknown: true,
        },
    ]
}

/// The vendors' providers with a short timeout and no circuit breaking (the matrix fails each
/// operation many times in a row on purpose).
fn gateway(sims: &SimCluster) -> RunningGateway {
    let mut text = common::config_text(sims, common::free_port(), "[cache]\nenabled = false\n");
    for p in ["elemente", "bimpe", "zudu"] {
        text = text.replace(
            &format!("[providers.{p}]\n"),
            &format!(
                "[providers.{p}]\ntimeout_ms = {TIMEOUT_MS}\ncircuit_breaker = {{ enabled = false }}\n"
            ),
        );
    }
    RunningGateway::start(common::load(&text))
}

struct Client {
    base: String,
}

impl Client {
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value, Option<String>) {
        let req = ureq::request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", common::KEY))
            .timeout(Duration::from_secs(120));
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let code = resp.status();
        let retry = resp.header("retry-after").map(str::to_string);
        let text = resp.into_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (code, v, retry)
    }
}

/// The request of `op` on `vendor`: method, path, body (ids taken before any fault).
fn request(
    c: &Client,
    sims: &SimCluster,
    vendor: VendorKind,
    op: Op,
) -> Option<(&'static str, String, Option<Value>)> {
    let name = vendor.name();
    let agent = sims.sim(VendorKind::Bimpe).agent_ids()[0].clone();
    let list = match vendor {
        VendorKind::Bimpe => format!("/v1/calls?provider=bimpe&agentId={agent}&limit=2"),
        _ => format!("/v1/calls?provider={name}&limit=2"),
    };
    let id = || {
        let (_, v, _) = c.send("GET", &list, None);
        v["data"][0]["id"].as_str().expect("an id").to_string()
    };
    let create = match vendor {
        VendorKind::Elemente => {
            serde_json::json!({"provider": "elemente", "agentId": "123e4567-e89b-12d3-a456-426614174000", "to": "+12673624524", "skillId": "skill-1"})
        }
        VendorKind::Bimpe => {
            serde_json::json!({"provider": "bimpe", "agentId": agent, "to": "+15550101234", "test": true})
        }
        VendorKind::Zudu => {
            serde_json::json!({"provider": "zudu", "agentId": "agent-9", "to": "+15550102222", "from": "+15550103333"})
        }
    };
    Some(match op {
        Op::Get => ("GET", format!("/v1/calls/{}", id()), None),
        Op::List => ("GET", list, None),
        Op::Create => ("POST", "/v1/calls".into(), Some(create)),
        // Bimpe has no update.
        Op::Update if vendor == VendorKind::Bimpe => return None,
        Op::Update => (
            "PATCH",
            format!("/v1/calls/{}", id()),
            Some(serde_json::json!({"status": "completed"})),
        ),
    })
}

#[test]
fn every_fault_of_every_operation_of_every_vendor_is_mapped() {
    let sims = SimCluster::start(SimOptions::default());
    let g = gateway(&sims);
    let c = Client {
        base: format!("http://{}", g.addr),
    };
    let mut table = vec![format!(
        "{:<9} {:<7} {:<16} {:>6}  {:<22} {}",
        "vendor", "op", "fault", "status", "code", "ms"
    )];
    let mut wrong = Vec::new();
    for vendor in VendorKind::ALL {
        for op in [Op::Get, Op::List, Op::Create, Op::Update] {
            let Some((method, path, body)) = request(&c, &sims, vendor, op) else {
                continue;
            };
            for case in cases() {
                let sim = sims.sim(vendor);
                sim.clear_faults();
                sim.add_fault(Fault {
                    action: case.fault.clone(),
                    latency_ms: case.latency_ms,
                    ..Default::default()
                });
                let started = Instant::now();
                let (got, problem, retry_after) = c.send(method, &path, body.as_ref());
                let took = started.elapsed();
                sim.clear_faults();
                let write = matches!(op, Op::Create | Op::Update);
                let (want, code) = if write { case.write } else { case.read };
                let got_code = problem["code"].as_str().unwrap_or("?").to_string();
                table.push(format!(
                    "{:<9} {:<7} {:<16} {:>6}  {:<22} {}",
                    vendor.name(),
                    format!("{op:?}"),
                    case.name,
                    got,
                    got_code,
                    took.as_millis()
                ));
                let outcome = problem["outcome"].as_str();
                let mut fault = Vec::new();
                if (got, got_code.as_str()) != (want, code) {
                    fault.push(format!("want {want} {code}"));
                }
                if write && (outcome == Some("unknown")) != case.unknown {
                    fault.push(format!("outcome {outcome:?}"));
                }
                if case.name.starts_with("429")
                    && retry_after.is_none()
                    && case.name.ends_with("After")
                {
                    fault.push("no Retry-After".into());
                }
                // The slow vendor holds its answer 60 s; the gateway answers at its timeout.
                if took >= Duration::from_millis(SLOW_MS / 2) {
                    fault.push(format!("took {took:?}"));
                }
                if !fault.is_empty() {
                    wrong.push(format!(
                        "{} {op:?} {}: {}",
                        vendor.name(),
                        case.name,
                        fault.join(", ")
                    ));
                }
            }
        }
    }
    // Refused connections: the `dead` provider, for reads and writes.
    let dead_body = serde_json::json!({"provider": "dead", "agentId": "a", "to": "+15550102222", "from": "+15550103333"});
    for (method, path, body) in [
        ("GET", "/v1/calls/dead:x".to_string(), None),
        ("GET", "/v1/calls?provider=dead".to_string(), None),
        ("POST", "/v1/calls".to_string(), Some(dead_body)),
    ] {
        let (got, problem, _) = c.send(method, &path, body.as_ref());
        table.push(format!(
            "{:<9} {:<7} {:<16} {:>6}  {}",
            "dead",
            method,
            "refused connect",
            got,
            problem["code"].as_str().unwrap_or("?")
        ));
        if got != 503 || problem["code"] != "provider_unavailable" || !problem["outcome"].is_null()
        {
            wrong.push(format!("dead {method} {path}: {got} {problem}"));
        }
    }
    println!("{}", table.join("\n"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
