//! Live configuration: on a change of the config file or of any adapter file (notify), or on
//! SIGHUP, the whole config and its adapters are loaded and validated again, then swapped in
//! atomically. Requests in flight finish on the snapshot they started with. A bad file is
//! refused with one log line per problem (file, key, reason), the running config keeps serving,
//! and `callgate_config_reloads_total{result="error"}` rises.
//!
//! What cannot change without a restart (listen addresses, thread counts, the cache's byte bound,
//! the idempotency store's size) is said in the log when a reload changes it.

use crate::config::{self, Env, Runtime};
use crate::gateway::Gateway;
use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Quiet time after a file event before reloading, so an editor's several writes make one reload.
const SETTLE: Duration = Duration::from_millis(150);

pub struct Reloader {
    pub config_path: PathBuf,
    pub gateway: Arc<Gateway>,
    pub env: fn(&str) -> Option<String>,
}

impl Reloader {
    /// Loads, validates and swaps in the config; logs and counts the result.
    pub fn reload(&self, why: &str) -> bool {
        let env: Env<'_> = &self.env;
        match config::load(&self.config_path, env) {
            Ok(rt) => {
                let old = self.gateway.runtime();
                for note in needs_restart(&old, &rt) {
                    tracing::warn!(
                        reason = why,
                        "config reload: {note} changes only on restart; the running value stays"
                    );
                }
                let (providers, tenants) = (rt.providers.len(), rt.tenants.len());
                self.gateway.replace_runtime(rt);
                self.gateway.metrics().config_reloaded(true);
                tracing::info!(reason = why, file = %self.config_path.display(), providers, tenants, "config reloaded");
                true
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!(reason = why, file = %e.file, key = %e.key, problem = %e.reason, "config reload refused; the running config stays");
                }
                self.gateway.metrics().config_reloaded(false);
                false
            }
        }
    }

    /// The directories to watch: the config file's and the adapters'.
    fn watched(&self) -> Vec<PathBuf> {
        let dir = self
            .config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let adapters = PathBuf::from(&self.gateway.runtime().settings.adapters_dir);
        let mut out = vec![dir];
        if adapters.is_dir() && !out.contains(&adapters) {
            out.push(adapters);
        }
        out
    }
}

fn needs_restart(old: &Runtime, new: &Runtime) -> Vec<&'static str> {
    let (o, n) = (&old.settings, &new.settings);
    let mut out = Vec::new();
    if o.listen != n.listen || o.admin_listen != n.admin_listen {
        out.push("server.listen / server.admin_listen");
    }
    if o.threads != n.threads {
        out.push("server.threads");
    }
    if o.cache.max_bytes != n.cache.max_bytes {
        out.push("cache.max_bytes");
    }
    if o.idempotency_ttl != n.idempotency_ttl
        || o.idempotency_max_entries != n.idempotency_max_entries
        || o.idempotency_max_bytes != n.idempotency_max_bytes
    {
        out.push("idempotency");
    }
    if o.log_format != n.log_format || o.log_level != n.log_level {
        out.push("logging");
    }
    out
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let config_name = self.config_path.file_name().map(|n| n.to_os_string());
        let adapters_dir = PathBuf::from(&self.gateway.runtime().settings.adapters_dir);
        let mut watcher =
            match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let Ok(event) = res else { return };
                let relevant = event.paths.iter().any(|p| {
                    p.file_name().map(|n| n.to_os_string()) == config_name
                        || (p.starts_with(&adapters_dir)
                            && p.extension().is_some_and(|x| x == "toml"))
                        || p.parent().is_some_and(|d| d.ends_with(&adapters_dir))
                });
                if relevant
                    && (event.kind.is_modify() || event.kind.is_create() || event.kind.is_remove())
                {
                    let _ = tx.send(());
                }
            }) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch config files; reload with SIGHUP");
                    None
                }
            };
        if let Some(w) = watcher.as_mut() {
            for dir in self.watched() {
                if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
                }
            }
        }
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP");
                None
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(()) = rx.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while rx.try_recv().is_ok() {}
                    self.reload("file changed");
                }
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    self.reload("SIGHUP");
                }
            }
        }
        drop(watcher);
    }
}
