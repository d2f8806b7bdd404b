//! Configuration: one TOML file (every key overridable as `CALLGATE__SECTION__KEY`), validated
//! whole into an immutable [`Runtime`] snapshot together with the adapters it names.
//!
//! Secrets are never in the file: credentials and gateway keys are references to environment
//! variables, resolved here through an [`Env`] lookup so tests and `demo` can supply their own.

mod agents;
mod connection;
mod events;
mod file;
mod runtime;
mod state;
mod telemetry;
mod tls;
mod upstream;

pub use agents::{Agent, AgentAt, Defaults};
pub use connection::{ConnectionLimits, PINGORA_MAX_HEADERS};
pub use events::EventsSettings;
pub use file::{ConfigFile, DefaultRoute};
pub use runtime::{CacheSettings, Provider, Runtime, Secret, Settings, Tenant};
pub use state::{
    IdempotencyFailure, OnFailureSection, RateLimitFailure, RedisMode, RedisSettings, StateSettings,
};
pub use telemetry::TracingSettings;
pub use upstream::Upstream;

use std::path::Path;

/// One problem with the configuration, with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    /// Dotted key (`providers.zudu.credentials.api_key`).
    pub key: String,
    pub reason: String,
}

/// Where secret references are resolved.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads `path` (plus `CALLGATE__…` environment overrides) and builds a validated runtime.
/// A relative `server.adapters` is looked up in the working directory, then beside the file.
pub fn load(path: &Path, env: Env<'_>) -> Result<Runtime, Vec<ConfigError>> {
    load_file(path, env, true)
}

/// Like [`load`] without resolving vendor hosts (for `check` and `explain`, which use no network;
/// such a runtime must not serve traffic).
pub fn load_offline(path: &Path, env: Env<'_>) -> Result<Runtime, Vec<ConfigError>> {
    load_file(path, env, false)
}

fn load_file(path: &Path, env: Env<'_>, resolve: bool) -> Result<Runtime, Vec<ConfigError>> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_text(
            &text,
            &name,
            path.parent().unwrap_or(Path::new(".")),
            env,
            resolve,
        ),
        Err(e) => Err(vec![ConfigError {
            file: name,
            key: "file".into(),
            reason: e.to_string(),
        }]),
    }
}

/// Like [`load`], for config text that is not in a file (`demo`'s embedded config).
pub fn load_str(
    text: &str,
    name: &str,
    base: &Path,
    env: Env<'_>,
) -> Result<Runtime, Vec<ConfigError>> {
    load_text(text, name, base, env, true)
}

fn load_text(
    text: &str,
    name: &str,
    base: &Path,
    env: Env<'_>,
    resolve: bool,
) -> Result<Runtime, Vec<ConfigError>> {
    let fail = |reason: String| {
        vec![ConfigError {
            file: name.to_string(),
            key: "file".into(),
            reason,
        }]
    };
    let raw = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("CALLGATE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let parsed: ConfigFile = raw.try_deserialize().map_err(|e| vec![located(name, e)])?;
    runtime::build(name, base, parsed, env, resolve)
}

/// A deserialization error of the `config` crate as file, dotted key and reason, so a typo names
/// itself: `server.listne: unknown key; expected one of …`.
fn located(file: &str, e: config::ConfigError) -> ConfigError {
    use config::ConfigError as E;
    let (key, reason) = match e {
        E::At { error, key, .. } => (key, error.to_string()),
        E::Type {
            key,
            unexpected,
            expected,
            ..
        } => (
            key,
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        E::NotFound(key) => (Some(key), "missing; this key is required".into()),
        other => (None, other.to_string()),
    };
    let key = key.filter(|k| !k.is_empty());
    // serde's "unknown field `x`, expected one of …": the unknown key is the place.
    let unknown = reason
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'));
    let (key, reason) = match unknown {
        Some((field, rest)) => (
            Some(match key {
                Some(k) => format!("{k}.{field}"),
                None => field.to_string(),
            }),
            format!(
                "unknown key{}",
                rest.replacen(", expected", "; expected", 1)
            ),
        ),
        None => (key, reason),
    };
    ConfigError {
        file: file.to_string(),
        key: key.unwrap_or_else(|| "file".into()),
        reason,
    }
}
