//! A fourth vendor is a new file in `adapters/`, not new Rust: an adapter written here, for a
//! list-only API (served by the Zudu simulator), works end to end; what it cannot do is
//! `501 unsupported_operation`.

mod common;

use callgate::server::RunningGateway;
use callgate_sim::{SimCluster, SimOptions, VendorKind};
use common::{Harness, KEY};

const ACME: &str = r#"
vendor = "acme"
name = "Acme Voice (list-only)"
statuses = ["registered", "ongoing", "ended", "error", "scheduled"]

[auth]
scheme = "headers"
credentials = ["key", "secret"]
headers = { "X-API-KEY" = "key", "X-API-SECRET" = "secret" }

[id]
parts = [{ param = "call_id", from = "providerCallId" }]

[operations.list_calls]
method = "GET"
path = "/api/calls"
items = "$.data.calls"
query = { sort_by = "start_timestamp", sort_order = "descending" }
# Only total_pages tells whether another page exists.
pagination = { style = "page", page_param = "page", size_param = "limit", first_page = 0, total_pages = "$.data.pagination.total_pages" }
filters = { status = "local" }

[fields]
providerCallId = ["$.call_id", "$.id"]
status = { path = "$.call_status", map = "status" }
providerStatus = "$.call_status"
durationSeconds = { path = "$.call_duration", transform = "ms_to_seconds" }

[maps.status]
values = { registered = "queued", scheduled = "queued", ongoing = "in_progress", ended = "completed", error = "failed" }
"#;

#[test]
fn a_new_vendor_is_one_adapter_file() {
    common::captured_logs();
    let sims = SimCluster::start(SimOptions::default());
    let dir = tempfile::Builder::new()
        .prefix("callgate-acme-")
        .tempdir()
        .unwrap();
    let adapters = dir.path().join("adapters");
    std::fs::create_dir_all(&adapters).unwrap();
    std::fs::write(adapters.join("acme.toml"), ACME).unwrap();
    let text = format!(
        r#"
[server]
adapters = "{adapters}"
[providers.acme-1]
vendor = "acme"
base_url = "http://{addr}"
credentials = {{ key = {{ env = "Z_KEY" }}, secret = {{ env = "Z_SECRET" }} }}
[tenants.t]
keys = [{{ env = "KEY" }}]
providers = ["acme-1"]
default = "acme-1"
"#,
        adapters = adapters.display(),
        addr = sims.addr(VendorKind::Zudu)
    );
    let gw = RunningGateway::start(common::load(&text));
    let h = Harness { sims, gateway: gw };
    let mut seen = Vec::new();
    let mut url = "/v1/calls?limit=40".to_string();
    loop {
        let v = h.get(&url).json();
        for c in v["data"].as_array().unwrap() {
            assert_eq!(c["vendor"], "acme");
            assert!(c["id"].as_str().unwrap().starts_with("acme-1:"));
            seen.push(c["providerCallId"].as_str().unwrap().to_string());
        }
        match v["pagination"]["nextCursor"].as_str() {
            Some(cur) => url = format!("/v1/calls?limit=40&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 300, "walked to the end on total_pages alone");
    let p = h
        .get(&format!("/v1/calls/acme-1:{}", seen[0]))
        .problem(501, "unsupported_operation");
    assert!(p["detail"].as_str().unwrap().contains("get_call"));
    h.get("/v1/calls?direction=inbound")
        .problem(400, "unsupported_filter");
    let providers = h.get("/v1/providers").json();
    assert_eq!(
        providers["data"][0]["capabilities"],
        serde_json::json!(["list_calls"])
    );
    let _ = KEY;
}
