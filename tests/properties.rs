//! Property tests (proptest): whatever a client or a vendor sends, nothing panics; what callgate
//! issues (ids, cursors) round-trips; what it refuses is refused with a message.

use callgate::adapter::normalize::{AgentKeys, Context};
use callgate::adapter::rules::Params;
use callgate::adapter::{load_dir, Adapter, Json};
use callgate::canonical::cursor::{Cursor, Position};
use callgate::canonical::id::CallId;
use callgate::canonical::list_query::ListQuery;
use callgate_sim::{SimOptions, VendorKind, VendorSim};
use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

/// Any JSON value, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The shipped adapters and one simulator record of each vendor.
fn fixtures() -> &'static Vec<(Adapter, Value)> {
    static F: OnceLock<Vec<(Adapter, Value)>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
        let mut adapters = load_dir(&dir).expect("adapters");
        VendorKind::ALL
            .iter()
            .map(|kind| {
                let sim = VendorSim::new(*kind, &SimOptions::default());
                let at = adapters
                    .iter()
                    .position(|a| a.vendor == kind.name())
                    .expect("adapter");
                (adapters.remove(at), sim.records()[0].clone())
            })
            .collect()
    })
}

proptest! {
    // No regression files: a failure prints its minimal input, which becomes a plain test.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any value in any field of a vendor record: normalized or refused, never a panic; what is
    /// normalized serializes.
    #[test]
    fn any_value_in_any_vendor_field_never_panics(
        vendor in 0usize..3,
        field in any::<prop::sample::Index>(),
        value in any_json(),
    ) {
        let (adapter, record) = &fixtures()[vendor];
        let mut record = record.clone();
        if let Value::Object(map) = &mut record {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[field.index(keys.len())];
            map.insert(key.clone(), value);
        }
        let bytes = serde_json::to_vec(&record).unwrap();
        let read: Json = serde_json::from_slice(&bytes).unwrap();
        let params = vec![("agent_id".to_string(), "agt".to_string())];
        let cx = Context { provider: "p", agents: AgentKeys::NONE, params: Params(&params), include_raw: true };
        let mut drift = Vec::new();
        if let Ok(call) = adapter.normalize_call(&read, cx, &mut drift) {
            serde_json::to_vec(&call).unwrap();
        }
    }

    /// Any vendor answer body with any status: a usable tree or a mapped problem.
    #[test]
    fn any_vendor_answer_is_read_or_mapped(
        vendor in 0usize..3,
        status in 100u16..600,
        body in any_json(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let (adapter, _) = &fixtures()[vendor];
        let json = serde_json::to_vec(&body).unwrap();
        for bytes in [json.as_slice(), raw.as_slice()] {
            if let Err(p) = adapter.read_answer("p", status, Some("5"), bytes) {
                prop_assert!(!p.detail.is_empty());
                prop_assert!(p.status() >= 400);
            }
        }
    }

    /// Ids round-trip, whatever their components hold.
    #[test]
    fn call_ids_round_trip(
        provider in "[a-z][a-z0-9_-]{0,12}",
        parts in prop::collection::vec(".{1,24}", 1..3),
    ) {
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let id = CallId::encode(&provider, &refs);
        let parsed = CallId::parse_path_segment(&id).unwrap();
        prop_assert_eq!(parsed.provider, provider);
        prop_assert_eq!(parsed.parts, parts);
    }

    /// Any text as an id: parsed or refused with a message.
    #[test]
    fn any_id_text_is_parsed_or_refused(raw in ".{0,40}") {
        if let Err(e) = CallId::parse_path_segment(&raw) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Cursors (of the page sizes callgate issues, 1 to 100) round-trip; any other text is
    /// refused, and a cursor of other filters too.
    #[test]
    fn cursors_round_trip_and_anything_else_is_refused(
        fingerprint in any::<u64>(),
        offset in any::<u64>(),
        size in 1u32..=100,
        provider in "[a-z][a-z0-9_-]{0,12}",
        junk in ".{0,60}",
    ) {
        let at = Position { provider, offset, size, agent: None, skip: 0, snapshot: None };
        let encoded = Cursor::new(fingerprint, vec![at.clone()]).encode();
        let decoded = Cursor::decode(&encoded, fingerprint).unwrap();
        prop_assert_eq!(&decoded.positions, &vec![at]);
        prop_assert!(Cursor::decode(&encoded, fingerprint ^ 1).is_err());
        if junk != encoded {
            prop_assert!(Cursor::decode(&junk, fingerprint).is_err());
        }
    }

    /// Any query string: a list query or a problem naming what is wrong.
    #[test]
    fn any_list_query_is_parsed_or_refused_with_a_field(query in "[a-zA-Z=&%0-9:,._+-]{0,80}") {
        match ListQuery::parse(Some(&query)) {
            Ok(q) => {
                // A parsed query has a stable fingerprint.
                prop_assert_eq!(q.fingerprint(), ListQuery::parse(Some(&query)).unwrap().fingerprint());
            }
            Err(p) => prop_assert!(!p.detail.is_empty()),
        }
    }

    /// Any config text: loaded or refused with located reasons, never a panic.
    #[test]
    fn any_config_text_is_loaded_or_refused(text in "(\\[[a-z.]{1,20}\\]\n|[a-z_]{1,12} = (\"[a-z0-9:/.]{0,20}\"|[0-9]{1,6}|true)\n){0,12}") {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        if let Err(errors) = callgate::config::load_str(&text, "prop.toml", root, &|_| Some("x".into())) {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(!e.reason.is_empty());
            }
        }
    }
}
