//! Nothing panics on input: vendor records mutated at random (every field replaced by values of
//! every JSON type), mutated list envelopes, and crafted cursors through the real gateway.

mod common;

use callgate::adapter::normalize::{AgentKeys, Context};
use callgate::adapter::rules::Params;
use callgate::adapter::{load_dir, Json};
use callgate::canonical::cursor::{Cursor, Position};
use callgate::canonical::list_query::ListQuery;
use callgate_sim::{SimOptions, VendorKind, VendorSim};
use common::Harness;
use serde_json::{json, Value};
use std::path::Path;

fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u8(..9) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(rng.f64() * 1e15),
        4 => json!(""),
        5 => json!(["x", 1, null]),
        6 if depth < 2 => json!({"nested": random_value(rng, depth + 1)}),
        7 => json!("2026-13-45T99:99:99Z"),
        _ => json!("ÿ\u{0}🙂 -1e999 NaN"),
    }
}

fn mutate(rng: &mut fastrand::Rng, v: &mut Value) {
    if let Value::Object(map) = v {
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            match rng.u8(..4) {
                0 => {
                    map.remove(&k);
                }
                1 => {
                    map.insert(k, random_value(rng, 0));
                }
                2 => mutate(rng, map.get_mut(&k).unwrap()),
                _ => {}
            }
        }
    } else if let Value::Array(items) = v {
        for it in items {
            mutate(rng, it);
        }
    }
}

#[test]
fn mutated_vendor_records_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    let adapters = load_dir(&dir).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let params = vec![("agent_id".to_string(), "agt".to_string())];
    let mut normalized = 0;
    for kind in VendorKind::ALL {
        let sim = VendorSim::new(
            kind,
            &SimOptions {
                calls_per_vendor: 60,
                ..Default::default()
            },
        );
        let adapter = adapters.iter().find(|a| a.vendor == kind.name()).unwrap();
        for record in sim.records() {
            for _ in 0..20 {
                let mut r = record.clone();
                mutate(&mut rng, &mut r);
                let mut drift = Vec::new();
                let cx = Context {
                    provider: "p",
                    agents: AgentKeys::NONE,
                    params: Params(&params),
                    include_raw: rng.bool(),
                };
                // Read from bytes, as callgate reads a vendor answer.
                let bytes = serde_json::to_vec(&r).unwrap();
                let read: Json = serde_json::from_slice(&bytes).unwrap();
                if let Ok(call) = adapter.normalize_call(&read, cx, &mut drift) {
                    serde_json::to_vec(&call).unwrap();
                    normalized += 1;
                }
                // The same record as a list answer and as a get answer, in mutated envelopes.
                let mut envelope = json!({"data": {"calls": [r.clone()], "pagination": {"total_pages": random_value(&mut rng, 0)}}, "meta": {"has_next_page": random_value(&mut rng, 0)}});
                mutate(&mut rng, &mut envelope);
                let _ = adapter.extract_list(&Json::from(&envelope));
                let _ = adapter.extract_item(&Json::from(&json!({"data": r})));
                let _ = adapter.read_answer(
                    "p",
                    rng.u16(100..600),
                    Some("x"),
                    &serde_json::to_vec(&envelope).unwrap(),
                );
            }
        }
    }
    assert!(
        normalized > 1000,
        "most mutations still normalize ({normalized})"
    );
}

#[test]
fn crafted_cursors_are_refused_or_end_cleanly() {
    let h = Harness::start();
    let base = "provider=zudu&limit=5";
    let fp = ListQuery::parse(Some(base)).unwrap().fingerprint();
    let far = Cursor::new(
        fp,
        vec![Position {
            agent: None,
            skip: 0,
            snapshot: None,
            provider: "zudu".into(),
            offset: u64::MAX,
            size: 5,
        }],
    )
    .encode();
    let r = h.get(&format!("/v1/calls?{base}&cursor={far}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"], json!([]));
    assert_eq!(r.json()["pagination"]["nextCursor"], Value::Null);
    let fp_e = ListQuery::parse(Some("provider=elemente&limit=5"))
        .unwrap()
        .fingerprint();
    let far_e = Cursor::new(
        fp_e,
        vec![Position {
            agent: None,
            skip: 0,
            snapshot: None,
            provider: "elemente".into(),
            offset: u64::MAX,
            size: 5,
        }],
    )
    .encode();
    let r = h.get(&format!(
        "/v1/calls?provider=elemente&limit=5&cursor={far_e}"
    ));
    assert_eq!(r.json()["data"], json!([]));
    // A cursor naming a provider the tenant may not use, or one not configured.
    let other = Cursor::new(
        fp,
        vec![Position {
            agent: None,
            skip: 0,
            snapshot: None,
            provider: "ghost".into(),
            offset: 0,
            size: 5,
        }],
    )
    .encode();
    h.get(&format!("/v1/calls?{base}&cursor={other}"))
        .problem(400, "invalid_cursor");
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..200 {
        let len = rng.usize(1..80);
        let junk: String = (0..len).map(|_| rng.alphanumeric()).collect();
        h.get(&format!("/v1/calls?{base}&cursor={junk}"))
            .problem(400, "invalid_cursor");
    }
    // Client time bounds at the edge of what can be written in UTC.
    for bound in [
        "from=9999-12-31T23:59:59-01:00",
        "to=9999-12-31T23:59:59-01:00",
        "from=0000-01-01T00:00:00%2B01:00",
    ] {
        let r = h.get(&format!("/v1/calls?provider=zudu&{bound}"));
        assert!(matches!(r.status, 200 | 400), "{bound}: {}", r.text);
    }
    // Odd ids.
    for id in [
        "zudu:%FF",
        "zudu::",
        "%3A%3A",
        "zudu%3Acall",
        "zudu:a:b:c",
        ":",
    ] {
        let r = h.get(&format!("/v1/calls/{id}"));
        assert!(matches!(r.status, 400 | 404), "{id}: {}", r.text);
    }
}
