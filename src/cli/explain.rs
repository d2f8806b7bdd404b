//! `callgate explain --config F METHOD PATH [--body JSON] [--key K] [--json]`: print what the
//! gateway would do with one request — tenant, routing rule, provider, and the exact vendor
//! request with credentials redacted — without any network. The logic is the library's
//! [`callgate::explain`]; this file parses arguments and prints.
//!
//! Exit codes: 0 the request would go to a vendor (printed); 1 the gateway would refuse it (the
//! canonical problem is printed); 2 the config does not load.

use callgate::canonical::handling::Handling;
use callgate::canonical::Problem;
use callgate::config;
use callgate::explain::{self, Explanation};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ExplainArgs {
    /// Config file (TOML).
    #[arg(long, env = "CALLGATE_CONFIG")]
    config: PathBuf,
    /// The gateway key of the calling tenant (needed when the config has several tenants).
    /// Never printed.
    #[arg(long)]
    key: Option<String>,
    /// A JSON request body (for POST and PATCH).
    #[arg(long)]
    body: Option<String>,
    /// The request's `Prefer: handling=…`: `strict` or `lenient`.
    #[arg(long, value_parser = ["strict", "lenient"])]
    prefer: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// GET, POST, PATCH or PUT.
    method: String,
    /// The canonical path, with its query: '/v1/calls?provider=zudu&limit=5'.
    path: String,
}

pub fn run(args: ExplainArgs) -> ExitCode {
    let rt = match config::load_offline(&args.config, &config::process_env) {
        Ok(rt) => rt,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "callgate: {}: the config does not load (run `callgate check`)",
                args.config.display()
            );
            return ExitCode::from(2);
        }
    };
    let req = explain::Request {
        method: &args.method,
        target: &args.path,
        body: args.body.as_deref(),
        key: args.key.as_deref(),
        prefer: args
            .prefer
            .as_deref()
            .and_then(|p| Handling::from_prefer([format!("handling={p}").as_bytes()])),
    };
    match explain::explain(&rt, req) {
        Ok(e) => {
            if args.json {
                println!("{}", to_json(&e));
            } else {
                print!("{}", human(&e));
            }
            ExitCode::SUCCESS
        }
        Err(p) => {
            if args.json {
                println!("{}", to_json(&p));
            } else {
                print!("{}", refusal(&p));
            }
            ExitCode::from(1)
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn human(e: &Explanation) -> String {
    let r = &e.request;
    let mut out = format!(
        "tenant:    {}\noperation: {}\nrule:      {}\nprovider:  {} (vendor {}, adapter {})\n\n{} {}\n",
        e.tenant, e.operation, e.rule, e.provider, e.vendor, e.adapter_file, r.method, r.url
    );
    for (name, value) in &r.headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    if let Some(l) = &e.list {
        let paging = if l.sliced_by_callgate {
            "the vendor returns every call; callgate slices the page"
        } else {
            "vendor pages"
        };
        out.push_str(&format!(
            "\npage: size {}, offset {} ({paging})\n",
            l.page_size, l.offset
        ));
        if !l.local_filters.is_empty() {
            out.push_str(&format!(
                "filtered by callgate after normalization: {} (pages may be short)\n",
                l.local_filters.join(", ")
            ));
        }
    }
    if let Some(c) = &e.cache {
        let state = if c.enabled { "on" } else { "off" };
        out.push_str(&format!(
            "\ncache ({state}): key {}\n  fresh {} s ({} s while a call in it is live), stale-if-error {} s\n",
            c.key, c.fresh_s, c.fresh_while_live_s, c.stale_if_error_s
        ));
    }
    if let Some(w) = &e.write {
        let scope = w
            .idempotency_scope
            .as_deref()
            .unwrap_or("none (an Idempotency-Key scopes it per tenant and key)");
        out.push_str(&format!(
            "\nwrite: {} on success; sent at most once (resent only when it never left); idempotency: {scope}\n",
            w.success_status
        ));
    }
    if let Some(w) = &e.write {
        if let Some(h) = w.preference_applied {
            out.push_str(&format!("handling: {}\n", h.name()));
        }
        for d in &w.dropped {
            out.push_str(&format!("dropped {}: {}\n", d.field, d.message));
        }
    }
    if let Some(body) = &r.body {
        out.push('\n');
        out.push_str(&to_json(body));
        out.push('\n');
    }
    if !e.merged.is_empty() {
        out.push_str(
            "\nmerged list: newest first across these sources, each read from its own pages:\n",
        );
        for m in &e.merged {
            let agent = m
                .agent
                .as_deref()
                .map(|a| format!(" (agent {a})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}{agent}: {} {}\n",
                m.provider, m.request.method, m.request.url
            ));
        }
    }
    for s in &e.skipped {
        out.push_str(&format!(
            "  not covered: {} ({} {}: {})\n",
            s.provider,
            s.refused.status(),
            s.refused.code.name(),
            s.refused.detail
        ));
    }
    for alt in &e.split {
        out.push_str(&format!("\nif the split picks {}:\n", alt.provider));
        match (&alt.request, &alt.refused) {
            (Some(r), _) => {
                out.push_str(&format!("  {} {}\n", r.method, r.url));
                if let Some(body) = &r.body {
                    out.push_str(&format!("  body: {}\n", body));
                }
                for d in &alt.dropped {
                    out.push_str(&format!("  dropped {}: {}\n", d.field, d.message));
                }
            }
            (None, Some(p)) => {
                for line in refusal(p).lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            (None, None) => {}
        }
    }
    out
}

fn refusal(p: &Problem) -> String {
    let mut out = format!(
        "the gateway would answer {} {}: {}\n",
        p.status(),
        p.code.name(),
        p.detail
    );
    for f in p
        .errors
        .iter()
        .filter(|f| p.detail != format!("{}: {}", f.field, f.message))
    {
        out.push_str(&format!("  field {}: {}\n", f.field, f.message));
    }
    out
}
