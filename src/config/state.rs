//! `[state]`: where the state a fleet of replicas must agree on is kept — idempotency claims and
//! answers, rate-limit buckets, cache invalidations. `memory` (the default) keeps it in this
//! process, which is right for one replica; `redis` shares it through a Redis (or Valkey)
//! server. This module reads and checks the section; `crate::state` builds the stores from it.
//!
//! The Redis address may carry a password, so it is a secret: given inline (`url`, for a server
//! without one) or, better, through an environment variable (`url_env`). It is never logged.

use super::runtime::{Errors, Secret};
use super::Env;
use serde::Deserialize;
use std::time::Duration;

/// The `[state]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSection {
    /// `memory` or `redis`.
    pub backend: BackendName,
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). Cluster: several,
    /// comma-separated (seed nodes).
    pub url: Option<String>,
    /// The environment variable holding `url` (preferred: the URL may carry a password).
    pub url_env: Option<String>,
    /// `standalone` (one server, or a managed primary endpoint) or `cluster` (Redis Cluster).
    pub mode: RedisMode,
    /// Prefix of every key and channel, so several gateways can share one Redis.
    pub key_prefix: String,
    /// Multiplexed connections per replica (requests are spread over them).
    pub pool_size: usize,
    /// Time allowed to open a connection.
    pub connect_timeout_ms: u64,
    /// Time allowed for one command's answer; past it the command counts as failed.
    pub command_timeout_ms: u64,
    /// How long a write's claim on an `Idempotency-Key` holds before its replica is taken for
    /// dead (its duplicates then answer `outcome: unknown`). Longer than any vendor exchange.
    pub claim_ttl_ms: u64,
    /// What each function does while Redis is unreachable.
    pub on_failure: OnFailureSection,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            backend: BackendName::Memory,
            url: None,
            url_env: None,
            mode: RedisMode::Standalone,
            key_prefix: "callgate".into(),
            pool_size: 2,
            connect_timeout_ms: 500,
            command_timeout_ms: 250,
            claim_ttl_ms: 60_000,
            on_failure: OnFailureSection::default(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BackendName {
    Memory,
    Redis,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    Standalone,
    Cluster,
}

/// `[state.on_failure]`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OnFailureSection {
    pub idempotency: IdempotencyFailure,
    pub rate_limit: RateLimitFailure,
}

impl Default for OnFailureSection {
    fn default() -> Self {
        OnFailureSection {
            idempotency: IdempotencyFailure::FailClosed,
            rate_limit: RateLimitFailure::Local,
        }
    }
}

/// A write carrying an `Idempotency-Key` while Redis is unreachable.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdempotencyFailure {
    /// Refused with `503 state_unavailable`; nothing is sent (the default: a duplicate on
    /// another replica could otherwise place a second call).
    FailClosed,
    /// Kept in this replica's memory: duplicates reaching this replica are still caught.
    FailOpenLocal,
}

/// A request's rate-limit check while Redis is unreachable.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitFailure {
    /// Each replica's own bucket, at the full limit (the default: the fleet may admit up to
    /// replicas × the limit meanwhile, never less than one replica's share).
    Local,
    /// Refused with `503 state_unavailable`.
    FailClosed,
}

/// The resolved `[state]`.
#[derive(Debug, Clone, PartialEq)]
pub enum StateSettings {
    Memory,
    Redis(RedisSettings),
}

/// A checked Redis backend.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSettings {
    /// The server URLs (one unless `mode = "cluster"`); secrets.
    pub urls: Vec<Secret>,
    pub mode: RedisMode,
    pub key_prefix: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub claim_ttl: Duration,
    pub on_failure: OnFailureSection,
}

impl StateSettings {
    /// The backend's name, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            StateSettings::Memory => "memory",
            StateSettings::Redis(_) => "redis",
        }
    }
}

/// Checks `[state]`; `longest_timeout` is the longest vendor timeout of any provider (a claim
/// must outlive it). `resolve` is false for offline checks (no environment at hand).
pub(super) fn build(
    s: StateSection,
    env: Env<'_>,
    resolve: bool,
    longest_timeout: Duration,
    errs: &mut Errors,
) -> StateSettings {
    let defaults = StateSection::default();
    if s.backend == BackendName::Memory {
        let set = s.url.is_some() || s.url_env.is_some() || s.mode != defaults.mode;
        if set {
            errs.add(
                "state.url",
                "Redis settings are given but state.backend is \"memory\"; set backend = \"redis\" or remove them",
            );
        }
        return StateSettings::Memory;
    }
    let text = match (&s.url, &s.url_env) {
        (Some(u), None) => Some(u.clone()),
        (None, Some(name)) if !resolve => Some(format!("redis://offline-check-of-{name}:6379")),
        (None, Some(name)) => match env(name) {
            Some(v) if !v.trim().is_empty() => Some(v),
            _ => {
                errs.add(
                    "state.url_env",
                    format!("environment variable {name} is not set"),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            errs.add("state.url", "give url or url_env, not both");
            None
        }
        (None, None) => {
            errs.add(
                "state.url",
                "backend = \"redis\" needs url or url_env (redis://host:6379 or rediss://…)",
            );
            None
        }
    };
    let urls: Vec<Secret> = text
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| Secret(u.to_string()))
                .collect()
        })
        .unwrap_or_default();
    for (i, u) in urls.iter().enumerate() {
        // The message never quotes the URL: it may carry a password.
        if let Err(e) = redis::parse_redis_url(u.expose()).ok_or("not a redis:// URL") {
            errs.add(
                format!("state.url[{i}]"),
                format!("{e}: use redis://host:port[/db] or rediss://host:port for TLS"),
            );
        }
    }
    if s.mode == RedisMode::Standalone && urls.len() > 1 {
        errs.add(
            "state.url",
            "several URLs are for mode = \"cluster\"; a standalone server has one",
        );
    }
    if s.key_prefix.is_empty() || s.key_prefix.contains(['{', '}', ' ']) {
        errs.add(
            "state.key_prefix",
            "must be non-empty, without braces or spaces (braces are Redis Cluster hash tags)",
        );
    }
    if s.pool_size == 0 || s.pool_size > 64 {
        errs.add("state.pool_size", "must be between 1 and 64");
    }
    if s.connect_timeout_ms == 0 || s.command_timeout_ms == 0 {
        errs.add(
            "state.command_timeout_ms",
            "timeouts must be above 0: every Redis call is bounded",
        );
    }
    let claim_ttl = Duration::from_millis(s.claim_ttl_ms);
    if claim_ttl <= longest_timeout * 2 {
        errs.add(
            "state.claim_ttl_ms",
            format!(
                "must be longer than twice the longest provider timeout ({} ms): a claim must outlive the write it guards, failover included",
                longest_timeout.as_millis()
            ),
        );
    }
    StateSettings::Redis(RedisSettings {
        urls,
        mode: s.mode,
        key_prefix: s.key_prefix,
        pool_size: s.pool_size,
        connect_timeout: Duration::from_millis(s.connect_timeout_ms),
        command_timeout: Duration::from_millis(s.command_timeout_ms),
        claim_ttl,
        on_failure: s.on_failure,
    })
}
