//! Fault injection and the request journal, through the `/__sim/*` control endpoints and the
//! Rust API: every `FaultAction`, `times`, latency, clearing, and what the journal records.

mod common;

use callgate_sim::{Fault, FaultAction, SimCluster, SimOptions, VendorKind};
use common::{call, request, Conn, Outcome};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn arm(addr: std::net::SocketAddr, fault: &Fault) {
    let r = request(
        addr,
        "POST",
        "/__sim/faults",
        &[],
        &serde_json::to_string(fault).unwrap(),
    );
    assert_eq!(r.status, 204);
}

#[test]
fn every_fault_action_fires() {
    let c = SimCluster::start(SimOptions {
        calls_per_vendor: 40,
        ..SimOptions::default()
    });
    let (z, k) = (c.addr(VendorKind::Zudu), VendorKind::Zudu);
    let owned = common::auth(k);
    let headers: Vec<(&str, &str)> = owned.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let once = |action| Fault {
        times: Some(1),
        path_prefix: Some("/api/calls".into()),
        action,
        ..Fault::default()
    };

    arm(
        z,
        &once(FaultAction::Status {
            status: 503,
            body: "{\"message\":\"down\"}".into(),
            headers: vec![("Retry-After".into(), "3".into())],
        }),
    );
    let r = call(z, k, "GET", "/api/calls", "");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("3")));
    assert_eq!(r.body, b"{\"message\":\"down\"}");
    assert_eq!(
        call(z, k, "GET", "/api/calls", "").status,
        200,
        "times: 1 is spent"
    );

    arm(z, &once(FaultAction::Malformed));
    let r = call(z, k, "GET", "/api/calls", "");
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());

    arm(z, &once(FaultAction::WrongShape));
    let r = call(z, k, "GET", "/api/calls", "").json();
    assert!(r.get("data").is_none());

    arm(z, &once(FaultAction::Truncated));
    match Conn::open(z).send("GET", "/api/calls?limit=5", &headers, "") {
        Outcome::Truncated {
            status: 200,
            expected,
            got,
        } => assert!(got < expected),
        other => panic!("{other:?}"),
    }

    arm(z, &once(FaultAction::Reset));
    assert!(matches!(
        Conn::open(z).send("GET", "/api/calls", &headers, ""),
        Outcome::Closed
    ));

    arm(
        z,
        &Fault {
            latency_ms: Some(300),
            method: Some("GET".into()),
            ..once(FaultAction::None)
        },
    );
    let t = Instant::now();
    assert_eq!(call(z, k, "GET", "/api/calls?limit=1", "").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    // Method and prefix must both match; DELETE clears what remains.
    arm(
        z,
        &Fault {
            method: Some("PUT".into()),
            ..once(FaultAction::Reset)
        },
    );
    assert_eq!(call(z, k, "GET", "/api/calls?limit=1", "").status, 200);
    assert_eq!(request(z, "DELETE", "/__sim/faults", &[], "").status, 204);
    assert_eq!(call(z, k, "PUT", "/api/calls/call_nope", "{}").status, 404);
    assert_eq!(
        request(z, "POST", "/__sim/faults", &[], "{not json").status,
        400
    );

    // The Rust API arms faults too, on other vendors, and status faults are vendor-agnostic.
    let sim = c.sim(VendorKind::Elemente);
    sim.add_fault(Fault {
        action: FaultAction::Status {
            status: 500,
            body: String::new(),
            headers: vec![],
        },
        ..Fault::default()
    });
    let e = c.addr(VendorKind::Elemente);
    assert_eq!(
        call(e, VendorKind::Elemente, "GET", "/api/v1/calls", "").status,
        500
    );
    assert_eq!(
        call(e, VendorKind::Elemente, "GET", "/api/v1/calls", "").status,
        500,
        "no times: stays"
    );
    sim.clear_faults();
    assert_eq!(
        call(e, VendorKind::Elemente, "GET", "/api/v1/calls", "").status,
        200
    );
}

#[test]
fn journal_records_vendor_requests_with_credentials() {
    let c = SimCluster::start(SimOptions {
        calls_per_vendor: 20,
        ..SimOptions::default()
    });
    for kind in VendorKind::ALL {
        let addr = c.addr(kind);
        let path = match kind {
            VendorKind::Elemente => "/api/v1/calls?status=queued".to_string(),
            VendorKind::Bimpe => format!(
                "/api/v1/console/agents/{}/calls?limit=5",
                c.sim(kind).agent_ids()[0]
            ),
            VendorKind::Zudu => "/api/calls?limit=5".to_string(),
        };
        call(addr, kind, "GET", &path, "");
        request(addr, "GET", "/__sim/requests", &[], "");
        let journal = c.sim(kind).requests();
        assert_eq!(
            journal.len(),
            1,
            "{kind:?}: control endpoints are not recorded"
        );
        let rec = &journal[0];
        assert_eq!(rec.method, "GET");
        assert_eq!(Some(rec.path.as_str()), path.split('?').next());
        assert_eq!(rec.query.as_deref(), path.split_once('?').map(|(_, q)| q));
        for (name, value) in common::auth(kind) {
            let lower = name.to_ascii_lowercase();
            assert!(
                rec.headers.iter().any(|(k, v)| *k == lower && *v == value),
                "{kind:?} {name}"
            );
        }
        let over_http: Vec<callgate_sim::RecordedRequest> =
            serde_json::from_slice(&request(addr, "GET", "/__sim/requests", &[], "").body).unwrap();
        assert_eq!(over_http.len(), 1);
        assert_eq!(
            request(addr, "DELETE", "/__sim/requests", &[], "").status,
            204
        );
        assert!(c.sim(kind).requests().is_empty());
    }
    let z = c.addr(VendorKind::Zudu);
    call(z, VendorKind::Zudu, "POST", "/api/calls", r#"{"page":0}"#);
    assert_eq!(c.sim(VendorKind::Zudu).requests()[0].body, r#"{"page":0}"#);
}

#[test]
fn option_latency_delays_vendor_answers_only() {
    // A vendor answer waits the latency (a lower bound: a slow machine only adds to it).
    let c = SimCluster::start(SimOptions {
        calls_per_vendor: 5,
        latency: Duration::from_millis(200),
        ..SimOptions::default()
    });
    let z = c.addr(VendorKind::Zudu);
    let t = Instant::now();
    call(z, VendorKind::Zudu, "GET", "/api/calls", "");
    assert!(t.elapsed() >= Duration::from_millis(200));

    // A control request does not: with a latency of a minute, it is answered while a vendor
    // request sent before it still waits, and well within half the latency.
    let c = SimCluster::start(SimOptions {
        calls_per_vendor: 5,
        latency: Duration::from_secs(60),
        ..SimOptions::default()
    });
    let z = c.addr(VendorKind::Zudu);
    let mut vendor = TcpStream::connect(z).unwrap();
    vendor
        .write_all(b"GET /api/calls HTTP/1.1\r\nHost: sim\r\n\r\n")
        .unwrap();
    // The journal records a vendor request on arrival, before its latency.
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.sim(VendorKind::Zudu).requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the vendor request never arrived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    let r = request(z, "GET", "/__sim/requests", &[], "");
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    vendor.set_nonblocking(true).unwrap();
    let unanswered = vendor.read(&mut [0u8; 1]);
    assert!(
        matches!(&unanswered, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the vendor request is still waiting: {unanswered:?}"
    );
}
