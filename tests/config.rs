//! Config and adapter validation: a bad file is refused whole, with the file, key and reason.

mod common;

use callgate::adapter::compile;
use std::path::Path;

fn load_err(text: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match callgate::config::load_str(text, "t.toml", root, &common::env) {
        Ok(_) => vec![],
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

const GOOD: &str = r#"
[providers.z]
vendor = "zudu"
base_url = "http://127.0.0.1:9"
credentials = { api_key = { env = "Z_KEY" }, api_secret = { env = "Z_SECRET" } }
[tenants.t]
keys = [{ env = "KEY" }]
providers = ["z"]
default = "z"
"#;

#[test]
fn a_good_config_loads() {
    assert!(load_err(GOOD).is_empty(), "{:?}", load_err(GOOD));
}

#[test]
fn config_mistakes_name_their_key() {
    let cases: Vec<(String, &str)> = vec![
        (
            GOOD.replace("Z_SECRET", "NOT_SET_ANYWHERE"),
            "providers.z.credentials.api_secret: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            GOOD.replace("vendor = \"zudu\"", "vendor = \"nope\""),
            "providers.z.vendor: no adapter for vendor \"nope\"",
        ),
        (
            GOOD.replace("providers = [\"z\"]", "providers = [\"z\", \"ghost\"]"),
            "tenants.t.providers: unknown provider \"ghost\"",
        ),
        (
            GOOD.replace("default = \"z\"", "default = { z = 60 }"),
            "tenants.t.default: weights sum to 60, not 100",
        ),
        (
            GOOD.replace("base_url", "base_ulr"),
            "providers.z.base_ulr: unknown key; expected one of `vendor`, `base_url`",
        ),
        (
            GOOD.replace("http://127.0.0.1:9", "ftp://x"),
            "providers.z.base_url: the scheme must be http or https",
        ),
        (
            GOOD.replace(", api_secret = { env = \"Z_SECRET\" }", ""),
            "providers.z.credentials.api_secret: missing",
        ),
    ];
    for (text, want) in cases {
        let errs = load_err(&text);
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "want {want:?} in {errs:?}"
        );
        assert!(
            errs.iter()
                .all(|e| e.starts_with("t.toml: ") || e.contains("adapters")),
            "{errs:?}"
        );
    }
}

#[test]
fn the_shipped_adapters_map_every_documented_status() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    let adapters = callgate::adapter::load_dir(&dir).unwrap();
    assert_eq!(adapters.len(), 3);
    let counts: Vec<(String, usize)> = adapters
        .iter()
        .map(|a| (a.vendor.clone(), a.statuses.len()))
        .collect();
    assert!(counts.contains(&("elemente".into(), 19)));
    assert!(counts.contains(&("bimpe".into(), 7)));
    assert!(counts.contains(&("zudu".into(), 5)));
}

#[test]
fn adapter_mistakes_name_their_place() {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/zudu.toml"))
            .unwrap();
    let cases = [
        (
            base.replace("items = \"$.data.calls\"", "items = \"$.data[\""),
            "operations.list_calls.items: JSONPath \"$.data[\" does not compile",
        ),
        (
            base.replace("ended = \"completed\", ", ""),
            "maps.status.values: documented status(es) not mapped: ENDED",
        ),
        (
            base.replace("error = \"failed\"", "error = \"exploded\""),
            "fields.status: map \"status\" targets values that are not canonical",
        ),
        (
            base.replace(
                "transcript = \"$.transcript\"",
                "transcrip = \"$.transcript\"",
            ),
            "fields.transcrip: not a canonical Call field",
        ),
        (
            base.replace(
                "transform = \"ms_to_seconds\"",
                "transform = \"ms_to_days\"",
            ),
            "fields.durationSeconds: unknown transform",
        ),
        (
            base.replace("direction = \"local\"", "direction = \"somewhere\""),
            "operations.list_calls.filters.direction",
        ),
        (
            base.replace("values = \"status\"", "values = \"nope\""),
            "values \"nope\" is not defined in [filter_values]",
        ),
        (
            base.replace(
                "[operations.list_calls.filtered]",
                "[operations.list_calls.unused]",
            ),
            "unknown field",
        ),
        (
            base.replace(
                "path = \"/api/calls/{call_id}\"",
                "path = \"/api/calls/{callid}\"",
            ),
            "placeholder {callid} is not filled by any id part",
        ),
        (
            base.replace("[errors]", "[errorz]"),
            "unknown field `errorz`",
        ),
    ];
    for (text, want) in cases {
        assert_ne!(text, base, "the case {want:?} must change the file");
        let errs: Vec<String> = compile(Path::new("adapters/zudu.toml"), &text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "want {want:?} in {errs:?}"
        );
        assert!(errs.iter().all(|e| e.starts_with("adapters/zudu.toml: ")));
    }
}

#[test]
fn the_demo_config_names_the_simulated_bimpe_agents() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
            .unwrap();
    let sim = callgate_sim::VendorSim::new(
        callgate_sim::VendorKind::Bimpe,
        &callgate_sim::SimOptions::default(),
    );
    for agent in sim.agent_ids() {
        assert!(
            text.contains(&format!("\"{agent}\"")),
            "config/demo.toml lacks agent {agent}"
        );
    }
}

#[test]
fn state_mistakes_name_their_key_and_never_quote_the_url() {
    let with = |state: &str| format!("{GOOD}\n[state]\n{state}\n");
    let cases = [
        (with("backend = \"redis\""), "state.url: backend = \"redis\" needs url or url_env"),
        (
            with("backend = \"redis\"\nurl_env = \"NOT_SET_ANYWHERE\""),
            "state.url_env: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            with("backend = \"redis\"\nurl = \"http://user:hunter2@host:6379\""),
            "state.url[0]: not a redis:// URL",
        ),
        (
            with("backend = \"redis\"\nurl = \"redis://a:6379,redis://b:6379\""),
            "state.url: several URLs are for mode = \"cluster\"",
        ),
        (
            with("backend = \"redis\"\nurl = \"redis://a:6379\"\nclaim_ttl_ms = 15000"),
            "state.claim_ttl_ms: must be longer than twice the longest provider timeout (10000 ms)",
        ),
        (
            with("url = \"redis://a:6379\""),
            "state.url: Redis settings are given but state.backend is \"memory\"",
        ),
        (
            with("backend = \"redis\"\nurl = \"redis://a:6379\"\n[state.on_failure]\nidempotency = \"maybe\""),
            "state.on_failure.idempotency: ",
        ),
    ];
    for (text, want) in cases {
        let errs = load_err(&text).join("\n");
        assert!(errs.contains(want), "want {want:?} in:\n{errs}");
        assert!(
            !errs.contains("hunter2"),
            "a URL's password in a message: {errs}"
        );
    }
    assert!(load_err(&with(
        "backend = \"redis\"\nurl = \"redis://a:6379\"\nmode = \"cluster\""
    ))
    .is_empty());
}

#[test]
fn tracing_mistakes_name_their_key() {
    let with = |t: &str| format!("{GOOD}\n[tracing]\n{t}\n");
    for (text, want) in [
        (
            with("otlp_endpoint = \"https://collector:4318/v1/traces\""),
            "tracing.otlp_endpoint: https is not supported yet",
        ),
        (
            with("otlp_endpoint = \"collector:4318\""),
            "tracing.otlp_endpoint: must be an http:// URL",
        ),
        (
            with("sample_ratio = 1.5"),
            "tracing.sample_ratio: must be between 0 and 1",
        ),
    ] {
        let errs = load_err(&text).join("\n");
        assert!(errs.contains(want), "want {want:?} in:\n{errs}");
    }
    assert!(load_err(&with(
        "otlp_endpoint = \"http://127.0.0.1:4318/v1/traces\"\nsample_ratio = 0.1"
    ))
    .is_empty());
}
