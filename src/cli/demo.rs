//! `callgate demo`: the three vendor simulators and the gateway on them, in one process.
//! Gateway on 127.0.0.1:8080 (key `demo-key`), admin on 127.0.0.1:9090, simulators on
//! 18081–18083. Uses `config/demo.toml` (embedded) and `adapters/` from the working directory
//! when present, else the embedded copies.

use super::sim::SimArgs;
use callgate::config;
use callgate::server;
use callgate_sim::{credentials, VendorKind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
pub const DEMO_KEY: &str = "demo-key";
/// The create the banner prints: one canonical body, placed by whichever vendor the canonical
/// agent's split picks (fields a vendor cannot take are dropped and reported in `warnings`).
const DEMO_CREATE: &str =
    r#"{"agent": "support-bot", "to": "+14155550123", "customer": {"name": "Ada"}}"#;
/// A create on Zudu, whose simulated calls play a short conversation: its stream shows
/// messages as they come, then the end.
const DEMO_LIVE_CREATE: &str =
    r#"{"provider": "zudu", "agent": "support-bot", "to": "+14155550124"}"#;
const EMBEDDED_ADAPTERS: [(&str, &str); 3] = [
    (
        "elemente.toml",
        include_str!("../../adapters/elemente.toml"),
    ),
    ("bimpe.toml", include_str!("../../adapters/bimpe.toml")),
    ("zudu.toml", include_str!("../../adapters/zudu.toml")),
];

#[derive(clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub sim: SimArgs,
}

/// The demo's secrets: the process environment first, then the simulators' demo credentials.
pub fn demo_env(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| {
        Some(
            match name {
                "CALLGATE_DEMO_KEY" => DEMO_KEY,
                "ELEMENTE_USERNAME" => credentials::ELEMENTE_USERNAME,
                "ELEMENTE_PASSWORD" => credentials::ELEMENTE_PASSWORD,
                "BIMPE_API_KEY" => credentials::BIMPE_API_KEY,
                "ZUDU_API_KEY" => credentials::ZUDU_API_KEY,
                "ZUDU_API_SECRET" => credentials::ZUDU_API_SECRET,
                _ => return None,
            }
            .to_string(),
        )
    })
}

/// Where the demo's adapters come from: `./adapters` if present, else a temporary copy of the
/// embedded ones.
fn adapters_base() -> std::io::Result<PathBuf> {
    if Path::new("adapters").is_dir() {
        return Ok(PathBuf::from("."));
    }
    let base = std::env::temp_dir().join(format!("callgate-demo-{}", std::process::id()));
    std::fs::create_dir_all(base.join("adapters"))?;
    for (name, text) in EMBEDDED_ADAPTERS {
        std::fs::write(base.join("adapters").join(name), text)?;
    }
    Ok(base)
}

pub fn run(args: DemoArgs) -> ExitCode {
    let base = match adapters_base() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("callgate demo: cannot prepare adapters: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match config::load_str(DEMO_CONFIG, "config/demo.toml", &base, &demo_env) {
        Ok(rt) => rt,
        Err(errors) => {
            for e in errors {
                eprintln!("callgate demo: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let _log = callgate::logging::init(
        &runtime.settings.log_format,
        &runtime.settings.log_level,
        &runtime.settings.tracing,
    );
    let settings = runtime.settings.clone();
    let (mut pingora, _gateway) = server::gateway_server(
        runtime,
        server::ServeOptions {
            grace_seconds: Some(0),
            ..Default::default()
        },
    );
    let mut bimpe_agent = String::new();
    for (kind, sim, svc) in args.sim.services() {
        if kind == VendorKind::Bimpe {
            bimpe_agent = sim.agent_ids().into_iter().next().unwrap_or_default();
        }
        pingora.add_service(svc);
    }
    print_banner(&settings.listen, &settings.admin_listen, &bimpe_agent);
    // `run`, not `run_forever` (which exits the process): queued log lines are written
    // when the log guard drops.
    pingora.run(pingora::server::RunArgs::default());
    ExitCode::SUCCESS
}

fn print_banner(listen: &str, admin: &str, bimpe_agent: &str) {
    let auth = format!("-H 'Authorization: Bearer {DEMO_KEY}'");
    println!("callgate demo: gateway http://{listen}  admin http://{admin}  key {DEMO_KEY}");
    println!("simulators: elemente :18081  bimpe :18082  zudu :18083 (providers elemente, bimpe, zudu)\n");
    println!("Try:");
    println!("  curl -s {auth} http://{listen}/v1/providers");
    println!("  curl -s {auth} 'http://{listen}/v1/calls?provider=zudu&limit=2'");
    println!(
        "  curl -s {auth} 'http://{listen}/v1/calls?provider=elemente&limit=2&status=completed'"
    );
    println!(
        "  curl -s {auth} 'http://{listen}/v1/calls?provider=bimpe&agentId={bimpe_agent}&limit=2'"
    );
    println!("  curl -s {auth} 'http://{listen}/v1/calls?provider=zudu&limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"data\"][0][\"id\"])'");
    println!("  curl -s {auth} http://{listen}/v1/calls/<id from the line above>");
    // One body for every vendor: the canonical agent's split picks Elemente, Bimpe or Zudu.
    println!("  curl -s {auth} http://{listen}/v1/agents");
    println!("  curl -s {auth} -H 'Content-Type: application/json' -d '{DEMO_CREATE}' http://{listen}/v1/calls");
    // A live call (Zudu's simulated calls play a short conversation): its events as they come.
    println!("  id=$(curl -s {auth} -H 'Content-Type: application/json' -d '{DEMO_LIVE_CREATE}' http://{listen}/v1/calls | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])')");
    println!("  curl -N {auth} http://{listen}/v1/calls/$id/events");
    println!("  curl -s http://{listen}/openapi.json | head -c 300");
    println!("  curl -s http://{admin}/readyz\n");
}
