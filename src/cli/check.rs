//! `callgate check --config F`: validate the config and every adapter it loads, like `nginx -t`.
//!
//! Validation is the library's own loader ([`config::load`]), the one `serve` runs, so `check`
//! passes exactly when `serve` would start. On failure every problem is printed on stderr as
//! `file: key: reason` (exit 1); on success, a one-screen summary of tenants → providers →
//! vendors (exit 0). Secrets are shown only by the names of their environment variables.

use callgate::config::{self, DefaultRoute, Runtime};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

pub fn run(config_path: &Path) -> ExitCode {
    match config::load_offline(config_path, &config::process_env) {
        Ok(rt) => {
            print!("{}", summary(config_path, &rt));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "callgate: {}: {} problem(s); the config is refused",
                config_path.display(),
                errors.len()
            );
            ExitCode::from(1)
        }
    }
}

/// The summary printed for a valid config.
pub fn summary(path: &Path, rt: &Runtime) -> String {
    let mut out = String::new();
    let s = &rt.settings;
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{}: ok", path.display());
    let _ = writeln!(
        out,
        "server: api {}, admin {}, {} threads, vendor answers up to {} bytes",
        s.listen, s.admin_listen, s.threads, s.max_vendor_body_bytes
    );
    let c = &s.connection;
    let _ = writeln!(
        out,
        "clients: head within {} ms (line up to {} bytes, head up to {} bytes, {} fields), \
         body up to {} bytes within {} ms, idle connections closed after {} ms",
        c.header_timeout.as_millis(),
        c.max_request_line_bytes,
        c.max_header_bytes,
        c.max_headers,
        s.max_body_bytes,
        c.body_timeout.as_millis(),
        c.idle_timeout.as_millis()
    );
    let _ = writeln!(out, "\ntenants ({}):", rt.tenants.len());
    for t in rt.tenants.values() {
        let keys: Vec<String> = t.key_envs.iter().map(|e| format!("${e}")).collect();
        let _ = writeln!(out, "  {}  (keys from {})", t.name, keys.join(", "));
        for p in &t.providers {
            let vendor = rt
                .provider(p)
                .map(|p| format!("{} ({})", p.adapter.vendor, p.adapter.file.display()))
                .unwrap_or_default();
            let _ = writeln!(out, "    → {p} → {vendor}");
        }
        let default = match &t.default {
            None => "none (lists must name provider)".to_string(),
            Some(DefaultRoute::One(p)) => p.clone(),
            Some(DefaultRoute::Split(split)) => {
                let parts: Vec<String> = split.iter().map(|(p, w)| format!("{p} {w}%")).collect();
                format!("split {}", parts.join(", "))
            }
        };
        let _ = writeln!(out, "    default route: {default}");
        for (agent, p) in &t.agent_routes {
            let _ = writeln!(out, "    agent rule: {agent} → {p}");
        }
        let _ = writeln!(
            out,
            "    handling of fields a vendor cannot take: {} when the request names its provider, {} when routed",
            t.handling.named.name(),
            t.handling.routed.name()
        );
        let limit = match t.rate_limit {
            Some(l) => format!("{}/s, burst {}", l.per_second, l.burst),
            None => "unlimited".into(),
        };
        let _ = writeln!(out, "    rate limit: {limit}");
    }
    let _ = writeln!(out, "\nproviders ({}):", rt.providers.len());
    for p in rt.providers.values() {
        let a = &p.adapter;
        let _ = writeln!(
            out,
            "  {}  vendor {} ({})",
            p.name,
            a.vendor,
            a.file.display()
        );
        let _ = writeln!(out, "    base url: {}", p.upstream.base_url);
        let creds: Vec<String> = p
            .credential_envs
            .iter()
            .map(|(c, e)| format!("{c} from ${e}"))
            .collect();
        let _ = writeln!(out, "    credentials: {}", creds.join(", "));
        let _ = writeln!(
            out,
            "    timeouts: {} ms, connect {} ms",
            p.timeout.as_millis(),
            p.connect_timeout.as_millis()
        );
        if !p.agents.is_empty() {
            let _ = writeln!(out, "    agents: {}", p.agents.join(", "));
        }
    }
    if !rt.agents.is_empty() {
        let _ = writeln!(out, "\nagents ({}):", rt.agents.len());
    }
    for a in rt.agents.values() {
        let split = match &a.split {
            Some(split) => {
                let parts: Vec<String> = split.iter().map(|(p, w)| format!("{p} {w}%")).collect();
                format!("  split {}", parts.join(", "))
            }
            None => String::new(),
        };
        let _ = writeln!(out, "  {}{split}", a.name);
        for (p, at) in &a.at {
            let defaults = at.defaults.to_json();
            let fields: Vec<&String> = defaults
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            let filled = if fields.is_empty() {
                String::new()
            } else {
                format!(
                    "; defaults {}",
                    fields
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let _ = writeln!(out, "    at {p}: agentId {}{filled}", at.agent_id);
        }
    }
    let _ = writeln!(out, "\nadapters ({}):", rt.adapters.len());
    for a in &rt.adapters {
        let mut ops = Vec::new();
        if a.get.is_some() {
            ops.push("get_call");
        }
        if a.list.is_some() {
            ops.push("list_calls");
        }
        let events = match a.sse() {
            Some(s) if s.ticket.is_some() => "its own stream (SSE, a ticket per connect)",
            Some(_) => "its own stream (SSE)",
            None => "polled",
        };
        let _ = writeln!(
            out,
            "  {}  {} ({}): operations {}; {} documented statuses, all mapped; live events {events}",
            a.vendor,
            a.name,
            a.file.display(),
            ops.join(", "),
            a.statuses.len()
        );
    }
    out
}
