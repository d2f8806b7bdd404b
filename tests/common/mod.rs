//! Test harness: the three simulators and a real callgate (Pingora, real sockets) on loopback,
//! a small HTTP client, and a log capture that every test's logs go through.

#![allow(dead_code)]

pub mod raw;
pub mod serve;
pub mod sse;

use callgate::config::{self, Runtime};
use callgate::server::RunningGateway;
use callgate_sim::{credentials, SimCluster, SimOptions, VendorKind, VendorSim};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const KEY: &str = "test-key-0f3c9a";
pub const OTHER_KEY: &str = "test-key-other-77";
pub const LIMITED_KEY: &str = "test-key-limited-5";
pub const SPLIT_KEY: &str = "test-key-split-90-10";

/// Everything logged by this test process, at trace level.
pub fn captured_logs() -> String {
    let buf = LOGS.get_or_init(install_capture);
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn install_capture() -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = Capture(buf.clone());
    // The production set-up, at the most verbose level.
    // Spans get trace ids as in `serve` without an OTLP endpoint (nothing exported).
    static TRACING: OnceLock<callgate::telemetry::Tracing> = OnceLock::new();
    let tracing = TRACING.get_or_init(|| callgate::telemetry::provider(&Default::default()));
    callgate::logging::init_with("json", "trace", move || writer.clone(), tracing);
    buf
}

/// Secrets the harness configures: vendor credentials and gateway keys.
pub fn secrets() -> Vec<String> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials::ELEMENTE_USERNAME,
        credentials::ELEMENTE_PASSWORD
    ));
    vec![
        credentials::ELEMENTE_PASSWORD.to_string(),
        basic,
        credentials::BIMPE_API_KEY.to_string(),
        credentials::ZUDU_API_KEY.to_string(),
        credentials::ZUDU_API_SECRET.to_string(),
        KEY.to_string(),
        OTHER_KEY.to_string(),
        LIMITED_KEY.to_string(),
        SPLIT_KEY.to_string(),
    ]
}

pub fn env(name: &str) -> Option<String> {
    Some(
        match name {
            "KEY" => KEY,
            "OTHER_KEY" => OTHER_KEY,
            "LIMITED_KEY" => LIMITED_KEY,
            "SPLIT_KEY" => SPLIT_KEY,
            "E_USER" => credentials::ELEMENTE_USERNAME,
            "E_PASS" => credentials::ELEMENTE_PASSWORD,
            "E_PASS_WRONG" => "not-the-password",
            "B_KEY" => credentials::BIMPE_API_KEY,
            "B_KEY_NOSCOPE" => credentials::BIMPE_API_KEY_NO_SCOPE,
            "Z_KEY" => credentials::ZUDU_API_KEY,
            "Z_SECRET" => credentials::ZUDU_API_SECRET,
            _ => return None,
        }
        .to_string(),
    )
}

/// The harness config: providers `elemente`, `bimpe`, `zudu` on the simulators, plus broken
/// ones (`elemente-badauth`, `bimpe-noscope`, `dead` on a closed port, `zudu-slow` with a short
/// timeout); tenant `main` may use all, tenant `other` only `zudu`, tenant `limited` 1 request/s.
pub fn config_text(sims: &SimCluster, dead_port: u16, extra: &str) -> String {
    let a = |k| sims.addr(k);
    format!(
        r#"
[server]
threads = 2
adapters = "adapters"

[providers.elemente]
vendor = "elemente"
base_url = "http://{e}"
credentials = {{ username = {{ env = "E_USER" }}, password = {{ env = "E_PASS" }} }}

[providers.elemente-badauth]
vendor = "elemente"
base_url = "http://{e}"
credentials = {{ username = {{ env = "E_USER" }}, password = {{ env = "E_PASS_WRONG" }} }}

[providers.bimpe]
vendor = "bimpe"
base_url = "http://{b}"
credentials = {{ api_key = {{ env = "B_KEY" }} }}
agents = ["agt_listed"]

[providers.bimpe-noscope]
vendor = "bimpe"
base_url = "http://{b}"
credentials = {{ api_key = {{ env = "B_KEY_NOSCOPE" }} }}

[providers.zudu]
vendor = "zudu"
base_url = "http://{z}"
credentials = {{ api_key = {{ env = "Z_KEY" }}, api_secret = {{ env = "Z_SECRET" }} }}

[providers.zudu-slow]
vendor = "zudu"
base_url = "http://{z}"
timeout_ms = 300
credentials = {{ api_key = {{ env = "Z_KEY" }}, api_secret = {{ env = "Z_SECRET" }} }}

[providers.dead]
vendor = "zudu"
base_url = "http://127.0.0.1:{dead_port}"
connect_timeout_ms = 500
credentials = {{ api_key = {{ env = "Z_KEY" }}, api_secret = {{ env = "Z_SECRET" }} }}

[tenants.main]
keys = [{{ env = "KEY" }}]
providers = ["elemente", "elemente-badauth", "bimpe", "bimpe-noscope", "zudu", "zudu-slow", "dead"]
default = "zudu"

[tenants.other]
keys = [{{ env = "OTHER_KEY" }}]
providers = ["zudu"]
default = {{ zudu = 100 }}

[providers.zudu-b]
vendor = "zudu"
base_url = "http://{z}"
credentials = {{ api_key = {{ env = "Z_KEY" }}, api_secret = {{ env = "Z_SECRET" }} }}

[tenants.splitter]
keys = [{{ env = "SPLIT_KEY" }}]
providers = ["zudu", "zudu-b", "elemente"]
default = {{ zudu = 90, zudu-b = 10 }}
routes = [{{ agent = "agent-for-elemente", provider = "elemente" }}]

[tenants.limited]
keys = [{{ env = "LIMITED_KEY" }}]
providers = ["zudu"]
default = "zudu"
rate_limit = {{ per_second = 1, burst = 3 }}

{extra}
"#,
        e = a(VendorKind::Elemente),
        b = a(VendorKind::Bimpe),
        z = a(VendorKind::Zudu),
    )
}

pub fn load(text: &str) -> Runtime {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    config::load_str(text, "test.toml", root, &env).unwrap_or_else(|e| panic!("config: {e:?}"))
}

/// How long a test waits for something it expects to happen promptly (a server to listen, a
/// reload to take effect, a log line to be written) before it fails. Generous: a slow or loaded
/// machine must not fail a test; a test that waits this long has found a real problem.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `done` every 10 ms until it holds; panics, naming `what`, after [`PATIENCE`]. What a
/// test waits on instead of sleeping a guessed time.
#[track_caller]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}, in vain"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub struct Harness {
    pub sims: SimCluster,
    pub gateway: RunningGateway,
}

/// A loopback port nothing listens on (just bound and released): for a closed vendor, or for
/// a server the test starts.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `N` different free loopback ports (for one server's listeners: two calls of [`free_port`]
/// may return the same port).
pub fn free_ports<const N: usize>() -> [u16; N] {
    callgate::server::free_addrs::<N>().map(|a| a.port())
}

impl Harness {
    pub fn start() -> Harness {
        Self::start_with(SimOptions::default())
    }

    pub fn start_with(opts: SimOptions) -> Harness {
        Self::start_configured(opts, "")
    }

    /// With extra config appended (e.g. a `[cache]` section).
    pub fn start_configured(opts: SimOptions, extra: &str) -> Harness {
        captured_logs();
        let sims = SimCluster::start(opts);
        let text = config_text(&sims, free_port(), extra);
        // Returns once both ports are served by this very gateway (each simulator was checked
        // the same way by `SimCluster::start`), not by whatever else may listen there.
        let gateway = RunningGateway::start(load(&text));
        Harness { sims, gateway }
    }

    /// With `keys` (lines such as `max_headers = 20`) added to the `[server]` section.
    pub fn start_with_server_keys(keys: &str) -> Harness {
        captured_logs();
        let sims = SimCluster::start(SimOptions::default());
        let text =
            config_text(&sims, free_port(), "").replace("[server]\n", &format!("[server]\n{keys}"));
        let gateway = RunningGateway::start(load(&text));
        Harness { sims, gateway }
    }

    pub fn sim(&self, kind: VendorKind) -> Arc<VendorSim> {
        self.sims.sim(kind)
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.gateway.addr, path_and_query)
    }

    /// GET with the main tenant's key.
    pub fn get(&self, path_and_query: &str) -> Reply {
        self.get_with(
            path_and_query,
            &[("Authorization", &format!("Bearer {KEY}"))],
        )
    }

    /// The admin listener's `/metrics` text now.
    pub fn scrape(&self) -> String {
        ureq::get(&format!("http://{}/metrics", self.gateway.admin_addr))
            .call()
            .expect("metrics")
            .into_string()
            .unwrap()
    }

    /// The admin listener's `/metrics` text once no request is in flight. A request's series
    /// are recorded in Pingora's `logging` hook, which runs after its answer is sent: the client
    /// can see the answer before the series count it (seen on a loaded CI machine).
    /// (After [`PATIENCE`] it answers the text as it is: a test may have a request in flight.)
    pub fn metrics(&self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.scrape();
            let idle = text.lines().any(|l| l == "callgate_inflight_requests 0");
            if idle || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A sample's value from `/metrics` (exact series text, e.g. `callgate_cache_bytes`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// A write (`POST`, `PATCH`, `PUT`) with a JSON body and the given headers (plus the main
    /// tenant's key unless an Authorization header is given).
    pub fn send(&self, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req =
            ureq::request(method, &self.url(path)).set("Content-Type", "application/json");
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            req = req.set("Authorization", &format!("Bearer {KEY}"));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Reply::from(req.send_string(body))
    }

    pub fn get_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = ureq::get(&self.url(path_and_query));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Reply::from(req.call())
    }
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub request_id: Option<String>,
    pub retry_after: Option<String>,
    pub www_authenticate: Option<String>,
    pub cache_status: Option<String>,
    pub location: Option<String>,
    pub preference_applied: Option<String>,
    pub failover: Option<String>,
    pub replayed: bool,
    pub text: String,
}

impl Reply {
    /// The reply of a ureq request (a status error is a reply too; a transport error panics).
    pub fn from(r: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        Reply {
            status: resp.status(),
            content_type: resp.content_type().to_string(),
            request_id: resp.header("x-request-id").map(str::to_string),
            retry_after: resp.header("retry-after").map(str::to_string),
            www_authenticate: resp.header("www-authenticate").map(str::to_string),
            cache_status: resp.header("cache-status").map(str::to_string),
            location: resp.header("location").map(str::to_string),
            preference_applied: resp.header("preference-applied").map(str::to_string),
            failover: resp.header("callgate-failover").map(str::to_string),
            replayed: resp.header("idempotent-replayed") == Some("true"),
            text: resp.into_string().unwrap_or_default(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts an RFC 9457 problem with this status and code; returns its body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "status of {}", self.text);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        let v = self.json();
        assert_eq!(v["code"], code, "{}", self.text);
        assert_eq!(v["status"], status);
        assert!(v["type"].as_str().unwrap().ends_with(code));
        assert!(v["title"].is_string() && v["detail"].is_string());
        assert_eq!(
            Some(v["requestId"].as_str().unwrap()),
            self.request_id.as_deref()
        );
        v
    }
}
