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

/// Quiet time a changed file must keep before it is loaded: an editor's several writes make one
/// reload, and a file written in pieces is not read half-way (unless its writer pauses longer;
/// hence deploy by atomic rename, and a config without tenants or providers is refused anyway).
const QUIET: Duration = Duration::from_millis(300);

/// The longest a reload waits for quiet while files keep changing.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Waits until no file event came for [`QUIET`] (or [`MAX_WAIT`] passed), dropping the events.
async fn quiet(rx: &mut mpsc::UnboundedReceiver<()>) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(QUIET).await;
        let mut more = false;
        while rx.try_recv().is_ok() {
            more = true;
        }
        if !more || started.elapsed() >= MAX_WAIT {
            return;
        }
    }
}

/// Whether a file event concerns the config: the config file itself, or an adapter file
/// (`*.toml` in the adapters directory). Anything else written there (a log file, an editor's
/// swap file) is not.
fn relevant(path: &Path, config_name: Option<&std::ffi::OsStr>, adapters_dir: &Path) -> bool {
    let is_config = config_name.is_some() && path.file_name() == config_name;
    let is_adapter = path.extension().is_some_and(|x| x == "toml")
        && path
            .parent()
            .is_some_and(|d| d == adapters_dir || d.ends_with(adapters_dir));
    is_config || is_adapter
}

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
    if o.state != n.state {
        out.push("state");
    }
    if o.tracing != n.tracing {
        out.push("tracing");
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
                let relevant = event
                    .paths
                    .iter()
                    .any(|p| relevant(p, config_name.as_deref(), &adapters_dir));
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
                    quiet(&mut rx).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn only_the_config_and_adapter_files_are_relevant() {
        let name = Some(OsStr::new("callgate.toml"));
        let adapters = Path::new("adapters");
        for (path, want) in [
            ("/etc/callgate/callgate.toml", true),
            ("/srv/app/adapters/zudu.toml", true),
            ("/etc/callgate/callgate.log", false),
            ("/srv/app/adapters/trace.log", false),
            ("/srv/app/adapters/.zudu.toml.swp", false),
            ("/etc/callgate/other.toml", false),
        ] {
            assert_eq!(relevant(Path::new(path), name, adapters), want, "{path}");
        }
    }

    /// Waits for quiet while a writer sends an event every `every` for `events` times; the time
    /// waited (tokio's paused clock: exact, whatever the machine's speed).
    async fn waited(every: Duration, events: u32) -> Duration {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(async move {
            for _ in 0..events {
                let _ = tx.send(());
                tokio::time::sleep(every).await;
            }
        });
        // The first event wakes the reloader (as in its loop); quiet covers the rest.
        rx.recv().await;
        let started = tokio::time::Instant::now();
        quiet(&mut rx).await;
        writer.abort();
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_waits_for_the_files_to_be_quiet() {
        // One event: one quiet period.
        assert_eq!(waited(Duration::from_millis(100), 1).await, QUIET);
        // Events every 100 ms for 600 ms: past the last one, a whole quiet period.
        let w = waited(Duration::from_millis(100), 6).await;
        assert!(w >= Duration::from_millis(500) + QUIET, "{w:?}");
        // A writer that pauses longer than the quiet time is read at its pause (hence: atomic
        // rename, and refusing configs without tenants).
        assert_eq!(waited(Duration::from_secs(1), 3).await, QUIET);
        // A file that never stops changing is loaded after MAX_WAIT at the latest.
        let w = waited(Duration::from_millis(50), 1_000).await;
        assert!(w >= MAX_WAIT && w < MAX_WAIT + QUIET, "{w:?}");
    }
}
