//! The `callgate` binary: `serve`, `check`, `explain`, `demo` and `sim`. Argument parsing with
//! clap; every command is a thin call into the library (or, for `demo` and `sim`, into the
//! simulators crate).

mod cli;

/// jemalloc instead of glibc's malloc: measured under the load bench, glibc's arena locks made
/// ~1 futex syscall per proxied request (a buffer allocated on one Pingora worker thread is
/// freed on another) and malloc/free were ~15% of callgate's CPU. jemalloc rather than mimalloc:
/// a buffer freed on another worker than the one that allocated it (Pingora's workers steal
/// each other's connections) goes back to a shared arena, and jemalloc's background thread
/// returns free pages to the system when no request runs; mimalloc kept them until the owning
/// thread allocated again, so RSS stayed high after a burst (benches/README.md, "Memory after
/// load").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (its documented `malloc_conf` symbol, under the
/// `_rjem_` prefix of the tikv-jemallocator build). The background thread purges dirty pages
/// after `dirty_decay_ms` even when every thread is idle; `muzzy_decay_ms:0` returns them to the
/// system at once (no lazily-freed middle state). The `_RJEM_MALLOC_CONF` environment variable
/// overrides any of these at start.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "callgate",
    version,
    about = "One canonical call API in front of many voice/chat AI vendors"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (TOML).
        #[arg(long, env = "CALLGATE_CONFIG", default_value = "config/callgate.toml")]
        config: PathBuf,
        /// Take over the listening sockets of a running callgate (then send it SIGQUIT).
        #[arg(short = 'u', long)]
        upgrade: bool,
    },
    /// Validate the config and every adapter (like `nginx -t`); print a summary.
    Check {
        /// Config file (TOML).
        #[arg(long, env = "CALLGATE_CONFIG")]
        config: PathBuf,
    },
    /// Show the routing rule and the exact vendor request for one canonical request (no network).
    Explain(cli::explain::ExplainArgs),
    /// The three vendor simulators and the gateway on them, in one process (gateway key `demo-key`).
    Demo(cli::demo::DemoArgs),
    /// The vendor simulators alone.
    Sim(cli::sim::SimArgs),
}

fn main() -> ExitCode {
    // Before anything else can pick another rustls crypto provider (PINGORA-NOTES, #446).
    pingora::tls::install_default_crypto_provider();
    callgate::memory::set_probe(jemalloc_stats);
    match Args::parse().command {
        Command::Serve { config, upgrade } => cli::serve::run(&config, upgrade),
        Command::Check { config } => cli::check::run(&config),
        Command::Explain(args) => cli::explain::run(args),
        Command::Demo(args) => cli::demo::run(args),
        Command::Sim(args) => cli::sim::run(args),
    }
}

/// jemalloc's totals for `/metrics` (`callgate::memory`); they are cached by jemalloc until its
/// epoch is advanced, so each read advances it first.
fn jemalloc_stats() -> Option<callgate::memory::AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    let read = |v: Result<usize, tikv_jemalloc_ctl::Error>| v.ok().map(|n| n as u64);
    Some(callgate::memory::AllocatorStats {
        allocated: read(stats::allocated::read())?,
        active: read(stats::active::read())?,
        resident: read(stats::resident::read())?,
        retained: read(stats::retained::read())?,
    })
}
