//! The `check` and `explain` commands, through the real binary: exit codes, what they print, the
//! place every config mistake is reported at, and that no secret value is ever printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

const ADAPTERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/adapters");

/// Environment variable → secret value, as a deployment would provide them.
const SECRETS: &[(&str, &str)] = &[
    ("CGT_E_USER", "ele-user-7c1"),
    ("CGT_E_PASS", "ele-pass-SECRET-93d"),
    ("CGT_B_KEY", "bim-key-SECRET-41a"),
    ("CGT_Z_KEY", "zud-key-SECRET-0b2"),
    ("CGT_Z_SECRET", "zud-secret-SECRET-e55"),
    ("CGT_KEY_OPS", "gw-ops-SECRET-111"),
    ("CGT_KEY_BILLING", "gw-billing-SECRET-222"),
];

const KEY_OPS: &str = "gw-ops-SECRET-111";
const KEY_BILLING: &str = "gw-billing-SECRET-222";

fn good_config() -> String {
    format!(
        r#"
[server]
adapters = "{ADAPTERS}"

[providers.ele]
vendor = "elemente"
base_url = "http://127.0.0.1:18081"
credentials = {{ username = {{ env = "CGT_E_USER" }}, password = {{ env = "CGT_E_PASS" }} }}

[providers.bim]
vendor = "bimpe"
base_url = "http://127.0.0.1:18082/bimpe/"
credentials = {{ api_key = {{ env = "CGT_B_KEY" }} }}
agents = ["agt_1"]

[providers.zud]
vendor = "zudu"
base_url = "http://127.0.0.1:18083"
credentials = {{ api_key = {{ env = "CGT_Z_KEY" }}, api_secret = {{ env = "CGT_Z_SECRET" }} }}

[tenants.ops]
keys = [{{ env = "CGT_KEY_OPS" }}]
providers = ["ele", "bim", "zud"]
default = "zud"
routes = [{{ agent = "agt_1", provider = "bim" }}]
rate_limit = {{ per_second = 5, burst = 10 }}

[tenants.billing]
keys = [{{ env = "CGT_KEY_BILLING" }}]
providers = ["zud"]
default = "zud"
"#
    )
}

/// A path in a fresh temporary directory of its own, which is deleted when this is dropped.
struct TempPath {
    path: PathBuf,
    _dir: TempDir,
}

impl TempPath {
    fn new(name: &str) -> TempPath {
        let dir = tempfile::Builder::new()
            .prefix("callgate-cli-")
            .tempdir()
            .unwrap();
        TempPath {
            path: dir.path().join(name),
            _dir: dir,
        }
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

fn write_config(text: &str) -> TempPath {
    let path = TempPath::new("callgate.toml");
    std::fs::write(&*path, text).unwrap();
    path
}

/// A copy of the shipped adapters with one file edited; the directory.
fn adapters_with(file: &str, from: &str, to: &str) -> TempPath {
    let dir = TempPath::new("adapters");
    std::fs::create_dir_all(&*dir).unwrap();
    for name in ["elemente.toml", "bimpe.toml", "zudu.toml"] {
        let mut text = std::fs::read_to_string(Path::new(ADAPTERS).join(name)).unwrap();
        if name == file {
            assert!(text.contains(from), "{name} lacks {from:?}");
            text = text.replacen(from, to, 1);
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn callgate(args: &[&str], unset: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callgate"));
    cmd.args(args).env_remove("CALLGATE_CONFIG");
    for (k, v) in SECRETS {
        if !unset.contains(k) {
            cmd.env(k, v);
        }
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert_no_secret(&out);
    assert_no_secret(&err);
    (status.code().unwrap_or(-1), out, err)
}

fn assert_no_secret(text: &str) {
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode("ele-user-7c1:ele-pass-SECRET-93d");
    for (_, v) in SECRETS.iter().filter(|(_, v)| v.contains("SECRET")) {
        assert!(!text.contains(v), "secret {v:?} printed:\n{text}");
    }
    assert!(!text.contains(&basic), "basic credentials printed:\n{text}");
}

fn check(config: &Path, unset: &[&str]) -> (i32, String, String) {
    callgate(&["check", "--config", config.to_str().unwrap()], unset)
}

#[test]
fn check_summarizes_a_good_config() {
    let path = write_config(&good_config());
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "tenants (2):",
        "  billing  (keys from $CGT_KEY_BILLING)",
        "  ops  (keys from $CGT_KEY_OPS)",
        "    → bim → bimpe (",
        "adapters/bimpe.toml)",
        "    default route: zud",
        "    agent rule: agt_1 → bim",
        "    rate limit: 5/s, burst 10",
        "    rate limit: unlimited",
        "providers (3):",
        "  ele  vendor elemente (",
        "    base url: http://127.0.0.1:18082/bimpe/",
        "    credentials: password from $CGT_E_PASS, username from $CGT_E_USER",
        "    credentials: api_key from $CGT_Z_KEY, api_secret from $CGT_Z_SECRET",
        "    agents: agt_1",
        "adapters (3):",
        "operations get_call, list_calls; 19 documented statuses, all mapped; live events polled",
        "7 documented statuses, all mapped; live events its own stream (SSE, a ticket per connect)",
    ] {
        assert!(out.contains(want), "want {want:?} in:\n{out}");
    }
    assert!(out.lines().count() < 50, "not one screen:\n{out}");
}

#[test]
fn check_shows_a_weighted_split() {
    let text = good_config().replace(
        "default = \"zud\"\nroutes",
        "default = { ele = 90, zud = 10 }\nroutes",
    );
    let (code, out, err) = check(&write_config(&text), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("default route: split ele 90%, zud 10%"),
        "{out}"
    );
}

/// Each mistake issue 5 names: exit 1, and a line `file: key: reason` on stderr.
#[test]
fn check_refuses_each_mistake_naming_its_place() {
    let good = good_config();
    let config_cases: Vec<(String, &[&str], &str)> =
        vec![
        (
            good.clone(),
            &["CGT_Z_SECRET"],
            "providers.zud.credentials.api_secret: environment variable CGT_Z_SECRET is not set",
        ),
        (
            good.replace("providers = [\"zud\"]", "providers = [\"zud\", \"ghost\"]"),
            &[],
            "tenants.billing.providers: unknown provider \"ghost\"",
        ),
        (
            good.replace(
                "default = \"zud\"\nroutes",
                "default = { ele = 60, zud = 30 }\nroutes",
            ),
            &[],
            "tenants.ops.default: weights sum to 90, not 100",
        ),
        (
            good.replace("adapters = ", "listne = \"0.0.0.0:1\"\nadapters = "),
            &[],
            "server.listne: unknown key; expected one of `listen`",
        ),
        (
            good.replace("base_url = \"http://127.0.0.1:18081\"", "base_ulr = \"x\""),
            &[],
            "providers.ele.base_ulr: unknown key",
        ),
        (
            good.replace("rate_limit = {", "rate_limt = {"),
            &[],
            "tenants.ops.rate_limt: unknown key",
        ),
        (
            good.replace("{ env = \"CGT_KEY_OPS\" }", "{ env = \"CGT_KEY_OPS\", ev = \"X\" }"),
            &[],
            "tenants.ops.keys[0].ev: unknown key",
        ),
        (
            format!("[logging]\nformt = \"json\"\n{good}"),
            &[],
            "logging.formt: unknown key",
        ),
    ];
    for (text, unset, want) in config_cases {
        let path = write_config(&text);
        let (code, out, err) = check(&path, unset);
        assert_eq!(code, 1, "want exit 1 for {want:?}:\n{out}{err}");
        let line = format!("{}: {want}", path.display());
        assert!(err.contains(&line), "want {line:?} in:\n{err}");
        assert!(out.is_empty(), "nothing on stdout on failure:\n{out}");
    }

    // Mistakes inside an adapter file name that file.
    let adapter_cases = [
        (
            (
                "zudu.toml",
                "items = \"$.data.calls\"",
                "items = \"$.data[\"",
            ),
            "zudu.toml: operations.list_calls.items: JSONPath \"$.data[\" does not compile",
        ),
        (
            ("zudu.toml", "ended = \"completed\", ", ""),
            "zudu.toml: maps.status.values: documented status(es) not mapped: ENDED",
        ),
        (
            ("bimpe.toml", "[errors]", "[errorz]"),
            "unknown field `errorz`",
        ),
        (
            (
                "elemente.toml",
                "pagination = { style = \"none\" }",
                "pagination = { styl = \"none\" }",
            ),
            "unknown field `styl`",
        ),
    ];
    for ((file, from, to), want) in adapter_cases {
        let dir = adapters_with(file, from, to);
        let text = good.replace(ADAPTERS, dir.to_str().unwrap());
        let (code, out, err) = check(&write_config(&text), &[]);
        assert_eq!(code, 1, "want exit 1 for {want:?}:\n{out}{err}");
        let prefix = format!("{}: ", dir.join(file).display());
        assert!(
            err.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(want)),
            "want a line {prefix}…{want:?} in:\n{err}"
        );
        if want.starts_with("unknown field") {
            // The place of a TOML syntax-level mistake is its line.
            assert!(err.contains(&format!("{prefix}line ")), "{err}");
        }
    }
}

fn explain(args: &[&str]) -> (i32, String, String) {
    let path = write_config(&good_config());
    let mut all = vec!["explain", "--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    callgate(&all, &[])
}

fn explain_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = explain(&all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v)
}

fn header<'a>(v: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    v["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap())
}

#[test]
fn explain_a_list_on_each_vendor() {
    // Without provider: a merged list over every provider of the tenant; Bimpe fans out over
    // the agents the config knows there.
    let (code, v) = explain_json(&["--key", KEY_OPS, "GET", "/v1/calls?limit=5"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["rule"],
        "every provider the tenant may use (a merged list)"
    );
    let sources: Vec<(String, serde_json::Value)> = v["merged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["provider"].as_str().unwrap().to_string(),
                m["agent"].clone(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("ele".to_string(), serde_json::Value::Null),
            ("bim".to_string(), serde_json::json!("agt_1")),
            ("zud".to_string(), serde_json::Value::Null)
        ]
    );
    // Zudu: named; 0-based pages; two credential headers.
    let (code, v) = explain_json(&["--key", KEY_OPS, "GET", "/v1/calls?provider=zud&limit=5"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["tenant"], "ops");
    assert_eq!(v["rule"], "explicit provider");
    assert_eq!(v["provider"], "zud");
    assert_eq!(v["vendor"], "zudu");
    assert!(v["adapter_file"]
        .as_str()
        .unwrap()
        .ends_with("adapters/zudu.toml"));
    assert_eq!(v["request"]["method"], "GET");
    assert_eq!(
        v["request"]["url"],
        "http://127.0.0.1:18083/api/calls?sort_by=start_timestamp&sort_order=descending&page=0&limit=5"
    );
    assert_eq!(header(&v, "X-API-KEY"), Some("[redacted]"));
    assert_eq!(header(&v, "X-API-SECRET"), Some("[redacted]"));
    assert_eq!(header(&v, "Host"), Some("127.0.0.1:18083"));
    assert_eq!(header(&v, "Authorization"), None);
    assert_eq!(v["list"]["page_size"], 5);

    // Bimpe: an agent rule; the agent fills the path; the base URL's prefix is kept.
    let (code, v) = explain_json(&["--key", KEY_OPS, "GET", "/v1/calls?agentId=agt_1&limit=7"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["rule"], "agent rule agt_1 → bim");
    assert_eq!(v["vendor"], "bimpe");
    assert_eq!(
        v["request"]["url"],
        "http://127.0.0.1:18082/bimpe/api/v1/console/agents/agt_1/calls?sort=-created_on&page=1&limit=7"
    );
    assert_eq!(header(&v, "Authorization"), Some("[redacted]"));

    // Elemente: an explicit provider; no vendor paging, so callgate slices; local filters.
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "GET",
        "/v1/calls?provider=ele&status=completed&from=2024-05-01",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["rule"], "explicit provider");
    assert_eq!(v["vendor"], "elemente");
    assert_eq!(
        v["request"]["url"],
        "http://127.0.0.1:18081/api/v1/calls?dateRange%5Bfrom%5D=2024-05-01"
    );
    assert_eq!(header(&v, "Authorization"), Some("[redacted]"));
    assert_eq!(v["list"]["sliced_by_callgate"], true);
    assert_eq!(v["list"]["local_filters"], serde_json::json!(["status"]));
}

#[test]
fn explain_a_get_on_each_vendor() {
    let cases = [
        (
            "/v1/calls/zud:call-9",
            "zud",
            "http://127.0.0.1:18083/api/calls/call-9",
            "X-API-KEY",
        ),
        (
            "/v1/calls/bim:agt_1:c%2F7",
            "bim",
            "http://127.0.0.1:18082/bimpe/api/v1/console/agents/agt_1/calls/c%2F7",
            "Authorization",
        ),
        (
            "/v1/calls/ele%3Ae-42",
            "ele",
            "http://127.0.0.1:18081/api/v1/calls/e-42",
            "Authorization",
        ),
    ];
    for (path, provider, url, credential_header) in cases {
        let (code, v) = explain_json(&["--key", KEY_OPS, "GET", path]);
        assert_eq!(code, 0, "{path}: {v}");
        assert_eq!(v["operation"], "get_call");
        assert_eq!(v["rule"], format!("call id names provider {provider}"));
        assert_eq!(v["request"]["method"], "GET");
        assert_eq!(v["request"]["url"], url);
        assert_eq!(header(&v, credential_header), Some("[redacted]"), "{v}");
        assert_eq!(v["request"]["body"], serde_json::Value::Null);
    }
}

#[test]
fn explain_prints_text_by_default() {
    let (code, out, err) = explain(&["--key", KEY_BILLING, "GET", "/v1/calls/zud:c1"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "tenant:    billing\n",
        "rule:      call id names provider zud\n",
        "GET http://127.0.0.1:18083/api/calls/c1\n",
        "X-API-KEY: [redacted]\n",
        "X-API-SECRET: [redacted]\n",
    ] {
        assert!(out.contains(want), "want {want:?} in:\n{out}");
    }
}

#[test]
fn explain_reports_what_the_gateway_would_refuse() {
    // A filter the provider cannot honour.
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "GET",
        "/v1/calls?provider=ele&direction=inbound",
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["code"], "unsupported_filter");
    assert_eq!(v["status"], 400);
    assert_eq!(v["errors"][0]["field"], "direction");

    // An unknown provider parameter is a bad parameter; in an id it is not found.
    let (code, v) = explain_json(&["--key", KEY_OPS, "GET", "/v1/calls?provider=nope"]);
    assert_eq!((code, v["code"].as_str()), (1, Some("invalid_request")));
    assert_eq!(v["errors"][0]["field"], "provider");
    let (code, v) = explain_json(&["--key", KEY_OPS, "GET", "/v1/calls/nope:1"]);
    assert_eq!((code, v["status"].as_u64()), (1, Some(404)));
    assert_eq!(v["code"], "not_found");

    // billing may not use ele, neither for lists nor for gets.
    for path in ["/v1/calls?provider=ele", "/v1/calls/ele:1"] {
        let (code, v) = explain_json(&["--key", KEY_BILLING, "GET", path]);
        assert_eq!((code, v["status"].as_u64()), (1, Some(403)), "{path}: {v}");
        assert_eq!(v["code"], "forbidden");
    }

    // An unknown key, and no key with two tenants.
    let (code, v) = explain_json(&["--key", "not-a-key", "GET", "/v1/calls"]);
    assert_eq!((code, v["code"].as_str()), (1, Some("unauthorized")));
    let (code, out, _) = explain(&["GET", "/v1/calls"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("2 tenants (billing, ops); pass --key"),
        "{out}"
    );

    // Writes the gateway would refuse: a bad body names its field; Bimpe has no update.
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "--body",
        "{\"to\": \"+15550100\"}",
        "POST",
        "/v1/calls",
    ]);
    assert_eq!((code, v["code"].as_str()), (1, Some("invalid_request")));
    assert_eq!(v["errors"][0]["field"], "agent");
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "--body",
        "{\"status\": \"completed\"}",
        "PATCH",
        "/v1/calls/bim:agt_1:c1",
    ]);
    assert_eq!(
        (code, v["code"].as_str()),
        (1, Some("unsupported_operation"))
    );
    let (code, v) = explain_json(&["--key", KEY_OPS, "--body", "{nope", "POST", "/v1/calls"]);
    assert_eq!((code, v["code"].as_str()), (1, Some("invalid_request")));
    assert_eq!(v["errors"][0]["field"], "body");
}

#[test]
fn explain_uses_the_only_tenant_without_a_key() {
    let text = good_config();
    let one = &text[..text.find("[tenants.billing]").unwrap()];
    let path = write_config(one);
    let (code, out, err) = callgate(
        &[
            "explain",
            "--config",
            path.to_str().unwrap(),
            "GET",
            "/v1/calls",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("tenant:    ops\n"), "{out}");
}

#[test]
fn explain_refuses_a_config_that_does_not_load() {
    let path = write_config(&good_config());
    let (code, _, err) = callgate(
        &[
            "explain",
            "--config",
            path.to_str().unwrap(),
            "GET",
            "/v1/calls",
        ],
        &["CGT_B_KEY"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "providers.bim.credentials.api_key: environment variable CGT_B_KEY is not set"
        ),
        "{err}"
    );
}

#[test]
fn explain_a_create_and_an_update_on_each_vendor() {
    // Elemente: explicit provider; customFields keep their types; Basic auth redacted.
    let body = r#"{"provider": "ele", "agentId": "a1", "to": "+15550102222", "skillId": "s1",
                   "customer": {"firstName": "Ann", "fields": {"Order ID": "12345", "Amount": 150.75}}}"#;
    let (code, v) = explain_json(&["--key", KEY_OPS, "--body", body, "POST", "/v1/calls"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["operation"].as_str(), v["rule"].as_str()),
        (Some("create_call"), Some("explicit provider"))
    );
    assert_eq!(v["request"]["method"], "POST");
    assert_eq!(v["request"]["url"], "http://127.0.0.1:18081/api/v1/calls");
    assert_eq!(header(&v, "Authorization"), Some("[redacted]"));
    assert_eq!(
        v["request"]["body"]["customerOverride"]["customFields"],
        serde_json::json!([{"name": "Order ID", "value": "12345"}, {"name": "Amount", "value": 150.75}])
    );
    assert_eq!(
        v["request"]["body"]["customerOverride"]["phoneNumber"],
        "+15550102222"
    );
    // Bimpe: the agent rule fires; the agent goes into the path.
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "--body",
        r#"{"agentId": "agt_1", "to": "+15550102222", "test": true}"#,
        "POST",
        "/v1/calls",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["rule"], "agent rule agt_1 → bim");
    assert_eq!(
        v["request"]["url"],
        "http://127.0.0.1:18082/bimpe/api/v1/console/agents/agt_1/calls"
    );
    assert_eq!(
        v["request"]["body"],
        serde_json::json!({"destination": "+15550102222", "is_test_call": true})
    );
    // Zudu: the tenant default; both credential headers redacted.
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "--body",
        r#"{"agentId": "z1", "to": "+15550102222", "from": "+15550103333"}"#,
        "POST",
        "/v1/calls",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["rule"], "tenant default");
    assert_eq!(
        v["request"]["url"],
        "http://127.0.0.1:18083/api/calls/create-phone-call"
    );
    assert_eq!(
        (header(&v, "X-API-KEY"), header(&v, "X-API-SECRET")),
        (Some("[redacted]"), Some("[redacted]"))
    );
    assert_eq!(
        v["request"]["body"],
        serde_json::json!({"from_number": "+15550103333", "to_number": "+15550102222", "override_agent_id": "z1"})
    );
    // Updates: status mapped to each vendor's value.
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "--body",
        r#"{"status": "no_answer", "note": "n"}"#,
        "PATCH",
        "/v1/calls/ele:c-1",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (
            v["request"]["method"].as_str(),
            v["request"]["url"].as_str()
        ),
        (Some("PUT"), Some("http://127.0.0.1:18081/api/v1/calls/c-1"))
    );
    assert_eq!(
        v["request"]["body"],
        serde_json::json!({"status": "no-answer", "note": "n"})
    );
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "--body",
        r#"{"status": "completed"}"#,
        "PUT",
        "/v1/calls/zud:call_9",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["request"]["url"],
        "http://127.0.0.1:18083/api/calls/call_9"
    );
    assert_eq!(
        v["request"]["body"],
        serde_json::json!({"call_status": "ENDED"})
    );
    let (code, v) = explain_json(&[
        "--key",
        KEY_OPS,
        "--body",
        r#"{"status": "busy"}"#,
        "PUT",
        "/v1/calls/zud:call_9",
    ]);
    assert_eq!(
        (code, v["errors"][0]["field"].as_str()),
        (1, Some("status"))
    );
}

/// Runs the binary with exactly these extra environment variables.
fn callgate_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callgate"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        s(&out.stdout),
        s(&out.stderr),
    )
}

#[test]
fn check_validates_the_shipped_production_example_offline_and_honours_env_overrides() {
    let secrets: Vec<(&str, &str)> = vec![
        ("ELEMENTE_EU_USERNAME", "u"),
        ("ELEMENTE_EU_PASSWORD", "p-zzhidden"),
        ("BIMPE_SUPPORT_API_KEY", "sk_zzhidden"),
        ("ZUDU_MAIN_API_KEY", "sk_z_zzhidden"),
        ("ZUDU_MAIN_API_SECRET", "s3cr3t_zzhidden"),
        ("CALLGATE_KEY_SUPPORT_DESK", "k1-zzhidden"),
        ("CALLGATE_KEY_BILLING", "k2-zzhidden"),
        ("CALLGATE_KEY_BILLING_NEXT", "k3-zzhidden"),
    ];
    // Real vendor hosts, and no network: check resolves nothing.
    let (code, out, err) = callgate_env(&["check", "--config", "config/callgate.toml"], &secrets);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("elemente-eu") && out.contains("https://api.zudu.ai"),
        "{out}"
    );
    // The client connection's bounds, as loaded (defaults here).
    assert!(
        out.contains("clients: head within 10000 ms (line up to 8192 bytes, head up to 32768 bytes, 100 fields)"),
        "{out}"
    );
    assert!(
        !out.contains("zzhidden") && !err.contains("zzhidden"),
        "a secret value was printed"
    );
    // Every key can be overridden from the environment.
    let mut broken = secrets.clone();
    broken.push(("CALLGATE__SERVER__THREADS", "0"));
    let (code, _, err) = callgate_env(&["check", "--config", "config/callgate.toml"], &broken);
    assert_eq!(code, 1);
    assert!(err.contains("server.threads: must be at least 1"), "{err}");
}

#[test]
fn explain_prints_the_plan_cache_and_write_semantics() {
    // A get: its cache key, and that a failed read may be resent.
    let (code, v) = explain_json(&["--key", KEY_BILLING, "GET", "/v1/calls/zud:c1"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["cache"]["key"], "get|zud:c1|raw=false");
    assert_eq!(v["resend"], "read");
    assert!(v["write"].is_null(), "{v}");
    // A list: the page's key carries provider, filters and position.
    let (code, v) = explain_json(&["--key", KEY_OPS, "GET", "/v1/calls?limit=5"]);
    assert_eq!(code, 0, "{v}");
    let key = v["cache"]["key"].as_str().unwrap_or_default();
    assert!(
        key.starts_with("list|") && key.contains("|o=0|s=5|"),
        "{key}"
    );
    // A write: sent at most once; no cache.
    let body = r#"{"agentId": "z1", "to": "+15550102222", "from": "+15550103333"}"#;
    let (code, v) = explain_json(&["--key", KEY_OPS, "--body", body, "POST", "/v1/calls"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["resend"], "write_never_sent");
    assert_eq!(v["write"]["success_status"], 201);
    assert!(v["cache"].is_null(), "{v}");
    // The text form says the same.
    let (code, out, _) = explain(&["--key", KEY_BILLING, "GET", "/v1/calls/zud:c1"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("cache (on): key get|zud:c1|raw=false"),
        "{out}"
    );
}

#[test]
fn check_refuses_an_empty_or_half_written_config() {
    // Empty; and the first half of a good file (providers, no tenant yet).
    let good = good_config();
    let half = &good[..good.find("[tenants").expect("a tenant section")];
    for text in ["", half] {
        let (code, _, err) = check(&write_config(text), &[]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("tenants: no tenant is configured"), "{err}");
    }
    let (_, _, err) = check(&write_config(""), &[]);
    assert!(
        err.contains("providers: no provider is configured"),
        "{err}"
    );
}

fn agents_config(zud_defaults: &str) -> String {
    format!(
        r#"{}
[agents.support-bot]
split = {{ ele = 50, bim = 25, zud = 25 }}

[agents.support-bot.providers.ele]
agent_id = "e-1"
defaults = {{ skillId = "sk-1" }}

[agents.support-bot.providers.bim]
agent_id = "b-1"

[agents.support-bot.providers.zud]
agent_id = "z-1"
{zud_defaults}
"#,
        good_config()
    )
}

#[test]
fn check_shows_agents_and_refuses_a_mapping_that_cannot_place_a_call() {
    let good = agents_config(r#"defaults = { from = ["+14155550100", "+14155550101"] }"#);
    let path = write_config(&good);
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("agents (1):"), "{out}");
    assert!(
        out.contains("  support-bot  split bim 25%, ele 50%, zud 25%"),
        "{out}"
    );
    assert!(
        out.contains("    at ele: agentId e-1; defaults skillId"),
        "{out}"
    );
    assert!(
        out.contains("    at zud: agentId z-1; defaults from"),
        "{out}"
    );
    assert!(out.contains("strict when the request names its provider, lenient when routed"));
    // Each mistake in a mapping, refused naming its place: the 25 % to zud would all fail.
    for (defaults, place, reason) in [
        (
            "",
            "agents.support-bot.providers.zud",
            "vendor \"zudu\" requires from to place a call",
        ),
        (
            r#"defaults = { from = "+14155550100", skillId = "x" }"#,
            "agents.support-bot.providers.zud.defaults.skillId",
            "vendor \"zudu\" cannot take skillId",
        ),
        (
            r#"defaults = { from = "555-0100" }"#,
            "agents.support-bot.providers.zud.defaults.from",
            "must be an E.164 phone number",
        ),
        (
            r#"defaults = { from = "+14155550100", colour = "red" }"#,
            "agents.support-bot.providers.zud.defaults.colour",
            "not a field a default can fill",
        ),
        (
            "defaults = { from = [] }",
            "agents.support-bot.providers.zud.defaults.from",
            "a pool is a non-empty list of strings",
        ),
    ] {
        let path = write_config(&agents_config(defaults));
        let (code, _, err) = check(&path, &[]);
        assert_eq!(code, 1, "{defaults}: {err}");
        let line = format!("{place}: {reason}");
        assert!(
            err.contains(&line),
            "{defaults}: expected {line:?} in\n{err}"
        );
    }
    // A split over a provider the agent does not run at, and weights that are not 100.
    let bad = good.replace(
        "split = { ele = 50, bim = 25, zud = 25 }",
        "split = { ele = 50, bim = 25, nowhere = 20 }",
    );
    let (code, _, err) = check(&write_config(&bad), &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("agents.support-bot.split.nowhere: the agent does not run there"),
        "{err}"
    );
    assert!(
        err.contains("agents.support-bot.split: weights sum to 95, not 100"),
        "{err}"
    );
    // A tenant rule sending a canonical agent where it does not run.
    let bad = good.replace(
        r#"routes = [{ agent = "agt_1", provider = "bim" }]"#,
        r#"routes = [{ agent = "support-bot", provider = "nowhere" }]"#,
    );
    let bad = bad.replace(
        "[agents.support-bot.providers.bim]\nagent_id = \"b-1\"\n",
        "",
    );
    let bad = bad.replace("bim = 25, zud = 25", "zud = 50");
    let bad = bad.replace(r#"provider = "nowhere""#, r#"provider = "bim""#);
    let (code, _, err) = check(&write_config(&bad), &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("tenants.ops.routes[0]: agent \"support-bot\" does not run at \"bim\""),
        "{err}"
    );
}

#[test]
fn explain_shows_what_each_provider_of_a_split_would_receive() {
    let path = write_config(&agents_config(
        r#"defaults = { from = ["+14155550100", "+14155550101"] }"#,
    ));
    let body = r#"{"agent": "support-bot", "to": "+14155550123", "customer": {"name": "Ada"}}"#;
    let args = |json: bool| {
        let mut a = vec![
            "explain",
            "--config",
            path.to_str().unwrap(),
            "--key",
            KEY_OPS,
        ];
        if json {
            a.push("--json");
        }
        a.extend(["--body", body, "POST", "/v1/calls"]);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |json: bool| {
        let a = args(json);
        callgate(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    };
    let (code, out, err) = run(true);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["rule"]
            .as_str()
            .unwrap()
            .starts_with("agent support-bot's split (weighted split"),
        "{}",
        v["rule"]
    );
    let split = v["split"].as_array().unwrap();
    let by = |p: &str| split.iter().find(|s| s["provider"] == p).unwrap().clone();
    let (ele, bim, zud) = (by("ele"), by("bim"), by("zud"));
    assert_eq!(split.len(), 3);
    assert_eq!(ele["request"]["body"]["agentId"], "e-1");
    assert_eq!(ele["request"]["body"]["skillId"], "sk-1");
    assert_eq!(ele["request"]["body"]["customerName"], "Ada");
    assert_eq!(ele["dropped"], serde_json::json!([]));
    assert_eq!(
        bim["request"]["url"],
        "http://127.0.0.1:18082/bimpe/api/v1/console/agents/b-1/calls"
    );
    assert_eq!(
        bim["request"]["body"],
        serde_json::json!({"destination": "+14155550123"})
    );
    assert_eq!(bim["dropped"][0]["field"], "customer");
    assert_eq!(zud["request"]["body"]["override_agent_id"], "z-1");
    let from = zud["request"]["body"]["from_number"].as_str().unwrap();
    assert!(["+14155550100", "+14155550101"].contains(&from), "{from}");
    assert_eq!(zud["dropped"][0]["field"], "customer");
    // The text form says the same, provider by provider.
    let (code, out, _) = run(false);
    assert_eq!(code, 0);
    for p in ["ele", "bim", "zud"] {
        assert!(out.contains(&format!("if the split picks {p}:")), "{out}");
    }
    assert!(
        out.contains("  dropped customer: not sent: provider \"zud\""),
        "{out}"
    );
}
