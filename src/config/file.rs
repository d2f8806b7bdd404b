//! The config file format (`config/callgate.toml`), as written by ops. Unknown keys are refused.
//! Documented key by key in `config/README.md`.

use crate::layers::breaker::BreakerSettings;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub logging: LoggingSection,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub idempotency: IdempotencySection,
    /// Where the fleet's shared state lives (`memory` or `redis`).
    #[serde(default)]
    pub state: super::state::StateSection,
    /// Distributed tracing (OTLP export; off by default).
    #[serde(default)]
    pub tracing: super::telemetry::TracingSettings,
    /// Live call event streams.
    #[serde(default)]
    pub events: super::events::EventsSettings,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSection>,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSection>,
    /// Canonical agents: one bot, known by its id at each provider that runs it.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentSection>,
}

/// `[agents.NAME]`: a canonical agent. Clients name it (`"agent": "support-bot"`); callgate
/// sends each provider its own agent id and what that vendor needs to place a call for it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// What the agent is, for `GET /v1/agents`.
    #[serde(default)]
    pub description: Option<String>,
    /// Where the agent runs: provider name → its id there and the defaults of its creates.
    pub providers: BTreeMap<String, AgentAtSection>,
    /// The agent's own weighted split over its providers (`{ elemente = 90, zudu = 10 }`); it
    /// routes the agent's creates before the tenant's default does.
    #[serde(default)]
    pub split: Option<BTreeMap<String, u32>>,
}

/// `[agents.NAME.providers.PROVIDER]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAtSection {
    /// The vendor's id of this agent at this provider.
    pub agent_id: String,
    /// Canonical create fields filled in when a request lacks them (`skillId`, `from`, …); a
    /// list of strings is a pool, one picked per call.
    #[serde(default)]
    pub defaults: serde_json::Map<String, serde_json::Value>,
}

/// `handling = { named = "strict", routed = "lenient" }`: what a write does with a field the
/// picked vendor cannot take when the client sent no `Prefer: handling=…`.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields, default)]
pub struct HandlingSection {
    /// The request named its provider.
    pub named: crate::canonical::handling::Handling,
    /// A rule, split or default chose the provider (and every update).
    pub routed: crate::canonical::handling::Handling,
}

impl Default for HandlingSection {
    fn default() -> Self {
        use crate::canonical::handling::Handling;
        HandlingSection {
            named: Handling::Strict,
            routed: Handling::Lenient,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address of the canonical API listener.
    pub listen: String,
    /// Address of the admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub admin_listen: String,
    /// Worker threads of the gateway service.
    pub threads: usize,
    /// Directory of adapter files, relative to the working directory.
    pub adapters: String,
    /// Largest vendor answer callgate reads, in bytes.
    pub max_vendor_body_bytes: usize,
    /// Largest client request body, in bytes; over it: `413 payload_too_large`.
    pub max_body_bytes: usize,
    /// How long a kept-alive client connection may sit idle between requests.
    pub client_idle_timeout_ms: u64,
    /// How long a client has to send a request's whole head (request line and headers), from
    /// its connection (a new one) or its first byte (a kept-alive one); over it: `408`.
    pub header_timeout_ms: u64,
    /// How long a client has to send a request's whole body once its head is read; over it:
    /// `408`.
    pub body_timeout_ms: u64,
    /// Longest request line (method, target, version); longer: `414 uri_too_long`.
    pub max_request_line_bytes: usize,
    /// Largest request head (request line and headers); larger: `431 headers_too_large`.
    pub max_header_bytes: usize,
    /// Most header fields in a request; more: `431 headers_too_large`.
    pub max_headers: usize,
    /// Seconds a SIGTERM waits for in-flight requests before stopping.
    pub grace_period_seconds: u64,
    /// Unix socket through which `serve -u` takes the listening sockets over from the running
    /// process (binary upgrade without a refused connection).
    pub upgrade_sock: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            threads: 2,
            adapters: "adapters".into(),
            max_vendor_body_bytes: 16 * 1024 * 1024,
            max_body_bytes: 64 * 1024,
            client_idle_timeout_ms: 60_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_request_line_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            grace_period_seconds: 10,
            upgrade_sock: "/tmp/callgate_upgrade.sock".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    /// `json` (one object per line) or `pretty` (for a terminal).
    pub format: String,
    /// A `tracing` filter such as `info` or `callgate=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LoggingSection {
    fn default() -> Self {
        LoggingSection {
            format: "json".into(),
            level: "info".into(),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Cache GET answers at all.
    pub enabled: bool,
    /// Bound of the cache, in bytes of keys and bodies (fixed at start).
    pub max_bytes: u64,
    /// Freshness of a list page whose calls are all finished.
    pub list_ttl_ms: u64,
    /// Freshness of a call still in progress (queued, ringing, in progress, unknown), and of a
    /// list page holding one; 0 = not cached.
    pub live_call_ttl_ms: u64,
    /// Freshness of a finished call.
    pub finished_call_ttl_ms: u64,
    /// How long past its freshness an entry may still answer when the vendor fails; 0 = never.
    pub stale_if_error_ms: u64,
    /// The same for a finished call (it no longer changes), whatever `stale_if_error_ms` says.
    pub stale_if_error_finished_ms: u64,
    /// How long a walk over a vendor without paging keeps the vendor's list (its snapshot).
    pub snapshot_ttl_ms: u64,
    /// Bound of the kept lists, in bytes of vendor answers (fixed at start).
    pub snapshot_max_bytes: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
            list_ttl_ms: 10_000,
            live_call_ttl_ms: 1_000,
            finished_call_ttl_ms: 300_000,
            stale_if_error_ms: 0,
            stale_if_error_finished_ms: 3_600_000,
            snapshot_ttl_ms: 60_000,
            snapshot_max_bytes: 128 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencySection {
    /// How long an `Idempotency-Key` and its answer are kept.
    pub ttl_seconds: u64,
    /// How many keys are kept at most (oldest dropped first).
    pub max_entries: u64,
    /// How many bytes the kept answers (and their keys) take at most.
    pub max_bytes: u64,
}

impl Default for IdempotencySection {
    fn default() -> Self {
        IdempotencySection {
            ttl_seconds: 24 * 3600,
            max_entries: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A secret is only ever a reference to an environment variable.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub env: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Adapter (vendor) name, e.g. `zudu`.
    pub vendor: String,
    /// `https://api.vendor.example` (with an optional path prefix).
    pub base_url: String,
    /// Credential name (as the adapter's `auth.credentials` lists them) → environment variable.
    #[serde(default)]
    pub credentials: BTreeMap<String, SecretRef>,
    /// Whole exchange with the vendor, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Agent ids of this account, listed by `/v1/providers`.
    #[serde(default)]
    pub agents: Vec<String>,
    /// PEM file of the certificate authorities this provider's certificate must chain to,
    /// instead of the system's (a vendor behind a private CA).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM file of the client certificate (chain) this provider is shown, for a vendor that
    /// requires mutual TLS; with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// PEM file of that certificate's private key.
    #[serde(default)]
    pub client_key_file: Option<String>,
    /// Requests in flight to this provider at most; over it: `503 provider_unavailable`.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    #[serde(default)]
    pub circuit_breaker: BreakerSection,
    /// Canonical create fields filled in for every agent at this provider, after the agent's
    /// own defaults (`from = "+14155550100"`, or a pool `from = ["+1…", "+1…"]`).
    #[serde(default)]
    pub defaults: serde_json::Map<String, serde_json::Value>,
}

/// `[providers.NAME.circuit_breaker]`: outlier detection per operation of the provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSection {
    pub enabled: bool,
    /// Failures in a row that open the circuit (0: only the rate does).
    pub consecutive_failures: u32,
    /// Share of failed exchanges in a window that opens the circuit.
    pub failure_rate_percent: u32,
    /// Exchanges a window needs before the rate counts.
    pub min_requests: u32,
    pub window_ms: u64,
    /// How long the circuit stays open the first time (doubling per trip in a row).
    pub open_ms: u64,
    pub max_open_ms: u64,
    /// Requests let through to probe a half-open circuit.
    pub half_open_probes: u32,
}

impl Default for BreakerSection {
    fn default() -> Self {
        let d = BreakerSettings::default();
        BreakerSection {
            enabled: d.enabled,
            consecutive_failures: d.consecutive_failures,
            failure_rate_percent: d.failure_rate_percent,
            min_requests: d.min_requests,
            window_ms: d.window.as_millis() as u64,
            open_ms: d.open_for.as_millis() as u64,
            max_open_ms: d.max_open.as_millis() as u64,
            half_open_probes: d.half_open_probes,
        }
    }
}

impl BreakerSection {
    /// The settings, or what is wrong with them.
    pub fn settings(&self) -> Result<BreakerSettings, &'static str> {
        if !(1..=100).contains(&self.failure_rate_percent) {
            return Err("failure_rate_percent must be 1 to 100");
        }
        if self.window_ms == 0 || self.open_ms == 0 || self.half_open_probes == 0 {
            return Err("window_ms, open_ms and half_open_probes must be above 0");
        }
        if self.max_open_ms < self.open_ms {
            return Err("max_open_ms must be at least open_ms");
        }
        Ok(BreakerSettings {
            enabled: self.enabled,
            consecutive_failures: self.consecutive_failures,
            failure_rate_percent: self.failure_rate_percent,
            min_requests: self.min_requests,
            window: Duration::from_millis(self.window_ms),
            open_for: Duration::from_millis(self.open_ms),
            max_open: Duration::from_millis(self.max_open_ms),
            half_open_probes: self.half_open_probes,
        })
    }
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}

fn default_max_in_flight() -> u32 {
    256
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    /// Gateway keys of this tenant, by environment variable.
    pub keys: Vec<SecretRef>,
    /// Providers this tenant may use.
    pub providers: Vec<String>,
    /// The default route: one provider, or a weighted split `{ a = 90, b = 10 }`.
    #[serde(default)]
    pub default: Option<DefaultRoute>,
    /// Agent rules: calls of this agent (a canonical agent or a vendor agent id) go to this provider.
    #[serde(default)]
    pub routes: Vec<AgentRoute>,
    /// Requests per second this tenant may make (none: unlimited).
    #[serde(default)]
    pub rate_limit: Option<RateLimitSection>,
    /// Strict or lenient handling of fields a vendor cannot take, when the client does not say.
    #[serde(default)]
    pub handling: HandlingSection,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once (default: `per_second`).
    #[serde(default)]
    pub burst: Option<u32>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum DefaultRoute {
    One(String),
    Split(BTreeMap<String, u32>),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AgentRoute {
    pub agent: String,
    pub provider: String,
}
