//! The validated, immutable snapshot the gateway serves from. Built whole or not at all; a
//! request pins one snapshot for its whole life.

use super::agents::{self, Agent, Defaults};
use super::file::{ConfigFile, DefaultRoute, HandlingSection, SecretRef};
use super::state::StateSettings;
use super::upstream::{upstream, Upstream};
use super::{ConfigError, Env};
use crate::adapter::normalize::AgentKeys;
use crate::adapter::spec::AuthScheme;
use crate::adapter::{self, Adapter};
use crate::layers::breaker::BreakerSettings;
use crate::layers::rate_limit::RateLimit;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A secret value whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the adapters were loaded from.
    pub adapters_dir: String,
    pub upgrade_sock: String,
    pub grace_period_seconds: u64,
    pub listen: String,
    pub admin_listen: String,
    pub threads: usize,
    pub max_vendor_body_bytes: usize,
    pub max_body_bytes: usize,
    /// A client connection's deadlines and head limits.
    pub connection: super::connection::ConnectionLimits,
    pub idempotency_ttl: Duration,
    pub idempotency_max_entries: u64,
    pub idempotency_max_bytes: u64,
    /// Where idempotency, rate limits and cache invalidations are shared (`[state]`).
    pub state: StateSettings,
    /// Distributed tracing (`[tracing]`).
    pub tracing: super::telemetry::TracingSettings,
    /// Live call event streams (`[events]`).
    pub events: super::events::EventsSettings,
    pub log_format: String,
    pub log_level: String,
    pub cache: CacheSettings,
}

/// Cache settings of a snapshot; TTLs apply to entries stored under it.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub enabled: bool,
    pub max_bytes: u64,
    pub list_ttl: Duration,
    pub live_call_ttl: Duration,
    pub finished_call_ttl: Duration,
    pub stale_if_error: Duration,
    pub stale_if_error_finished: Duration,
    pub snapshot_ttl: Duration,
    pub snapshot_max_bytes: u64,
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub adapter: Arc<Adapter>,
    pub upstream: Upstream,
    /// Auth headers, computed once from the credentials.
    pub auth_headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Circuit-breaker settings (the circuits' state is the gateway's).
    pub breaker: BreakerSettings,
    /// Requests in flight to this provider at most (the bulkhead).
    pub max_in_flight: u32,
    pub agents: Vec<String>,
    /// This provider's agent ids that are canonical agents (`agent.key` of its calls).
    pub agent_keys: AgentKeys,
    /// Create fields filled in for every agent here, after the agent's own defaults.
    pub defaults: Defaults,
    /// Credential name → the environment variable it is read from (names only, for `check`).
    pub credential_envs: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Tenant {
    pub name: String,
    pub providers: Vec<String>,
    pub default: Option<DefaultRoute>,
    /// Agent (canonical name or vendor agent id) → provider.
    pub agent_routes: Vec<(String, String)>,
    /// Strict or lenient handling when the client's `Prefer` does not say.
    pub handling: HandlingSection,
    /// The tenant's request rate; its buckets live in the gateway's rate limiter.
    pub rate_limit: Option<RateLimit>,
    /// Environment variables holding this tenant's gateway keys (names only, for `check`).
    pub key_envs: Vec<String>,
}

impl Tenant {
    pub fn may_use(&self, provider: &str) -> bool {
        self.providers.iter().any(|p| p == provider)
    }
}

#[derive(Debug)]
pub struct Runtime {
    pub settings: Settings,
    pub adapters: Vec<Arc<Adapter>>,
    pub providers: BTreeMap<String, Arc<Provider>>,
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    /// Canonical agents by name.
    pub agents: BTreeMap<String, Arc<Agent>>,
    keys: HashMap<String, Arc<Tenant>>,
}

impl Runtime {
    /// The tenant owning a gateway key.
    pub fn tenant_for_key(&self, key: &str) -> Option<&Arc<Tenant>> {
        self.keys.get(key)
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name)
    }

    /// The canonical agents `tenant` may use: those running at one of its providers at least.
    pub fn agents_of<'a>(&'a self, tenant: &'a Tenant) -> impl Iterator<Item = &'a Arc<Agent>> {
        self.agents
            .values()
            .filter(|a| a.at.keys().any(|p| tenant.may_use(p)))
    }

    /// Every secret value in this runtime (for tests asserting nothing leaks).
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self.keys.keys().cloned().collect();
        for p in self.providers.values() {
            out.extend(p.auth_headers.iter().map(|(_, v)| v.expose().to_string()));
        }
        if let StateSettings::Redis(r) = &self.settings.state {
            out.extend(r.urls.iter().map(|u| u.expose().to_string()));
        }
        out
    }
}

#[derive(Default)]
pub(super) struct Errors {
    file: String,
    pub(super) list: Vec<ConfigError>,
}

impl Errors {
    /// Checks a weighted split at `key`: every provider one of `members` (else `outsider`),
    /// weights summing to 100.
    pub(super) fn weights(
        &mut self,
        key: &str,
        split: &BTreeMap<String, u32>,
        members: &dyn Fn(&str) -> bool,
        outsider: &str,
    ) {
        for p in split.keys().filter(|p| !members(p)) {
            self.add(format!("{key}.{p}"), outsider);
        }
        let sum: u32 = split.values().sum();
        if sum != 100 {
            self.add(key, format!("weights sum to {sum}, not 100"));
        }
    }

    pub(super) fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.clone(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    fn secret(&mut self, env: Env<'_>, key: &str, r: &SecretRef) -> Option<Secret> {
        match env(&r.env) {
            Some(v) if !v.is_empty() => Some(Secret(v)),
            _ => {
                self.add(key, format!("environment variable {} is not set", r.env));
                None
            }
        }
    }
}

pub(super) fn build(
    file: &str,
    base: &Path,
    cfg: ConfigFile,
    env: Env<'_>,
    resolve: bool,
) -> Result<Runtime, Vec<ConfigError>> {
    let mut errs = Errors {
        file: file.to_string(),
        list: Vec::new(),
    };
    let adapters_dir = {
        let p = Path::new(&cfg.server.adapters);
        if p.is_absolute() || p.exists() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let adapters: Vec<Arc<Adapter>> = match adapter::load_dir(&adapters_dir) {
        Ok(list) => list.into_iter().map(Arc::new).collect(),
        Err(list) => {
            for e in list {
                errs.list.push(ConfigError {
                    file: e.file,
                    key: e.place,
                    reason: e.reason,
                });
            }
            Vec::new()
        }
    };
    if cfg.server.threads == 0 {
        errs.add("server.threads", "must be at least 1");
    }
    if cfg.server.listen == cfg.server.admin_listen {
        errs.add(
            "server.admin_listen",
            "must differ from server.listen (one port cannot serve both)",
        );
    }
    // A config that serves nobody is never what was meant: most often a file still being
    // written, which a live reload must not act on (every client would get 401).
    if cfg.providers.is_empty() {
        errs.add(
            "providers",
            "no provider is configured (an empty or half-written file?)",
        );
    }
    if cfg.tenants.is_empty() {
        errs.add(
            "tenants",
            "no tenant is configured (an empty or half-written file?)",
        );
    }
    let mut providers = BTreeMap::new();
    for (name, p) in &cfg.providers {
        let key = format!("providers.{name}");
        let creds: Vec<(String, Option<Secret>)> = p
            .credentials
            .iter()
            .map(|(c, r)| {
                (
                    c.clone(),
                    errs.secret(env, &format!("{key}.credentials.{c}"), r),
                )
            })
            .collect();
        if !valid_name(name) {
            errs.add(
                &key,
                "provider names are lowercase letters, digits, '-' or '_'",
            );
        }
        let Some(adapter) = adapters.iter().find(|a| a.vendor == p.vendor).cloned() else {
            if !adapters.is_empty() {
                errs.add(
                    format!("{key}.vendor"),
                    format!(
                        "no adapter for vendor {:?} in {}",
                        p.vendor,
                        adapters_dir.display()
                    ),
                );
            }
            continue;
        };
        for c in &adapter.auth.credentials {
            if !creds.iter().any(|(n, _)| n == c) {
                errs.add(
                    format!("{key}.credentials.{c}"),
                    format!(
                        "missing: vendor {} needs credentials {}",
                        p.vendor,
                        adapter.auth.credentials.join(", ")
                    ),
                );
            }
        }
        for (c, _) in &creds {
            if !adapter.auth.credentials.contains(c) {
                errs.add(
                    format!("{key}.credentials.{c}"),
                    format!("vendor {} takes no credential {c:?}", p.vendor),
                );
            }
        }
        let mut upstream = match upstream(
            resolve,
            &p.base_url,
            Duration::from_millis(p.connect_timeout_ms),
            Duration::from_millis(p.timeout_ms),
        ) {
            Ok(u) => u,
            Err(reason) => {
                errs.add(format!("{key}.base_url"), reason);
                continue;
            }
        };
        if let Some(file) = &p.ca_file {
            match super::tls::ca_certificates(Path::new(file)) {
                Ok(cas) => upstream.peer.options.ca = Some(Arc::from(cas)),
                Err(reason) => errs.add(format!("{key}.ca_file"), reason),
            }
        }
        match (&p.client_cert_file, &p.client_key_file) {
            (None, None) => {}
            (Some(cert), Some(k)) => {
                match super::tls::client_cert_key(Path::new(cert), Path::new(k)) {
                    Ok(ck) => upstream.peer.client_cert_key = Some(Arc::new(ck)),
                    Err(reason) => errs.add(format!("{key}.client_cert_file"), reason),
                }
            }
            _ => errs.add(
                format!("{key}.client_cert_file"),
                "client_cert_file and client_key_file go together (mutual TLS needs both)",
            ),
        }
        if p.timeout_ms == 0 || p.connect_timeout_ms == 0 {
            errs.add(&key, "timeout_ms and connect_timeout_ms must be above 0");
        }
        if p.max_in_flight == 0 {
            errs.add(format!("{key}.max_in_flight"), "must be at least 1");
        }
        let got = |n: &str| {
            creds
                .iter()
                .find(|(c, _)| c == n)
                .and_then(|(_, s)| s.clone())
        };
        let auth_headers = auth_headers(&adapter, &got);
        let defaults = agents::defaults(&mut errs, &key, &p.defaults, Some(&adapter));
        let breaker = p.circuit_breaker.settings().unwrap_or_else(|reason| {
            errs.add(format!("{key}.circuit_breaker"), reason);
            BreakerSettings::default()
        });
        providers.insert(
            name.clone(),
            Arc::new(Provider {
                name: name.clone(),
                adapter,
                upstream,
                auth_headers,
                timeout: Duration::from_millis(p.timeout_ms),
                connect_timeout: Duration::from_millis(p.connect_timeout_ms),
                breaker,
                max_in_flight: p.max_in_flight,
                agents: p.agents.clone(),
                agent_keys: AgentKeys(agents::keys_at(&cfg, name)),
                defaults,
                credential_envs: p
                    .credentials
                    .iter()
                    .map(|(c, r)| (c.clone(), r.env.clone()))
                    .collect(),
            }),
        );
    }
    let agents = agents::build(&mut errs, &cfg, &providers);
    let mut tenants = BTreeMap::new();
    let mut keys = HashMap::new();
    for (name, t) in &cfg.tenants {
        let key = format!("tenants.{name}");
        let known = |p: &str| cfg.providers.contains_key(p);
        for p in &t.providers {
            if !known(p) {
                errs.add(
                    format!("{key}.providers"),
                    format!("unknown provider {p:?}"),
                );
            }
        }
        let allowed = |p: &str| t.providers.iter().any(|x| x == p);
        match &t.default {
            Some(DefaultRoute::One(p)) if !allowed(p) => errs.add(
                format!("{key}.default"),
                format!("{p:?} is not in this tenant's providers"),
            ),
            Some(DefaultRoute::Split(split)) => errs.weights(
                &format!("{key}.default"),
                split,
                &allowed,
                "not in this tenant's providers",
            ),
            _ => {}
        }
        for (i, r) in t.routes.iter().enumerate() {
            if !allowed(&r.provider) {
                errs.add(
                    format!("{key}.routes[{i}].provider"),
                    format!("{:?} is not in this tenant's providers", r.provider),
                );
            }
            if let Some(agent) = agents.get(&r.agent).filter(|a| !a.runs_at(&r.provider)) {
                errs.add(
                    format!("{key}.routes[{i}]"),
                    format!(
                        "agent {:?} does not run at {:?} (it runs at {})",
                        r.agent,
                        r.provider,
                        agent.at.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        let rate_limit = t.rate_limit.as_ref().and_then(|r| {
            let per_second = NonZeroU32::new(r.per_second);
            let burst = NonZeroU32::new(r.burst.unwrap_or(r.per_second));
            if per_second.is_none() || burst.is_none() {
                errs.add(
                    format!("{key}.rate_limit"),
                    "per_second and burst must be above 0",
                );
            }
            Some(RateLimit {
                per_second: per_second?,
                burst: burst?,
            })
        });
        if t.keys.is_empty() {
            errs.add(
                format!("{key}.keys"),
                "a tenant needs at least one gateway key",
            );
        }
        let tenant = Arc::new(Tenant {
            name: name.clone(),
            providers: t.providers.clone(),
            default: t.default.clone(),
            agent_routes: t
                .routes
                .iter()
                .map(|r| (r.agent.clone(), r.provider.clone()))
                .collect(),
            rate_limit,
            handling: t.handling,
            key_envs: t.keys.iter().map(|k| k.env.clone()).collect(),
        });
        for (i, k) in t.keys.iter().enumerate() {
            if let Some(s) = errs.secret(env, &format!("{key}.keys[{i}]"), k) {
                if keys.insert(s.0, tenant.clone()).is_some() {
                    errs.add(
                        format!("{key}.keys[{i}]"),
                        "this gateway key is already another tenant's (or listed twice)",
                    );
                }
            }
        }
        tenants.insert(name.clone(), tenant);
    }
    let longest_timeout = providers
        .values()
        .map(|p| p.timeout)
        .max()
        .unwrap_or_default();
    let state = super::state::build(cfg.state, env, resolve, longest_timeout, &mut errs);
    let tracing = super::telemetry::build(cfg.tracing, &mut errs);
    let events = super::events::build(cfg.events, &mut errs);
    let connection = super::connection::build(&cfg.server, &mut errs);
    if !errs.list.is_empty() {
        return Err(errs.list);
    }
    Ok(Runtime {
        settings: Settings {
            adapters_dir: adapters_dir.display().to_string(),
            upgrade_sock: cfg.server.upgrade_sock,
            grace_period_seconds: cfg.server.grace_period_seconds,
            listen: cfg.server.listen,
            admin_listen: cfg.server.admin_listen,
            threads: cfg.server.threads,
            max_vendor_body_bytes: cfg.server.max_vendor_body_bytes,
            max_body_bytes: cfg.server.max_body_bytes,
            connection,
            idempotency_ttl: Duration::from_secs(cfg.idempotency.ttl_seconds),
            idempotency_max_entries: cfg.idempotency.max_entries,
            idempotency_max_bytes: cfg.idempotency.max_bytes,
            state,
            tracing,
            events,
            log_format: cfg.logging.format,
            log_level: cfg.logging.level,
            cache: CacheSettings {
                enabled: cfg.cache.enabled,
                max_bytes: cfg.cache.max_bytes,
                list_ttl: Duration::from_millis(cfg.cache.list_ttl_ms),
                live_call_ttl: Duration::from_millis(cfg.cache.live_call_ttl_ms),
                finished_call_ttl: Duration::from_millis(cfg.cache.finished_call_ttl_ms),
                stale_if_error: Duration::from_millis(cfg.cache.stale_if_error_ms),
                stale_if_error_finished: Duration::from_millis(
                    cfg.cache.stale_if_error_finished_ms,
                ),
                snapshot_ttl: Duration::from_millis(cfg.cache.snapshot_ttl_ms),
                snapshot_max_bytes: cfg.cache.snapshot_max_bytes,
            },
        },
        adapters,
        providers,
        tenants,
        agents,
        keys,
    })
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn auth_headers(adapter: &Adapter, got: &dyn Fn(&str) -> Option<Secret>) -> Vec<(String, Secret)> {
    let creds = &adapter.auth.credentials;
    let value = |i: usize| {
        creds
            .get(i)
            .and_then(|c| got(c))
            .map(|s| s.0)
            .unwrap_or_default()
    };
    match adapter.auth.scheme {
        AuthScheme::Basic => vec![(
            "Authorization".into(),
            Secret(format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", value(0), value(1)))
            )),
        )],
        AuthScheme::Bearer => vec![(
            "Authorization".into(),
            Secret(format!("Bearer {}", value(0))),
        )],
        AuthScheme::Headers => adapter
            .auth
            .headers
            .iter()
            .map(|(h, c)| (h.clone(), Secret(got(c).map(|s| s.0).unwrap_or_default())))
            .collect(),
    }
}
