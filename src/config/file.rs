//! The config file format (`config/callgate.toml`), as written by ops. Unknown keys are refused.
//! Documented key by key in `config/README.md`.

use serde::Deserialize;
use std::collections::BTreeMap;

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
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSection>,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSection>,
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
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_connect_timeout_ms() -> u64 {
    2_000
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
    /// Agent rules: calls of this agent go to this provider.
    #[serde(default)]
    pub routes: Vec<AgentRoute>,
    /// Requests per second this tenant may make (none: unlimited).
    #[serde(default)]
    pub rate_limit: Option<RateLimitSection>,
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
