//! `callgate sim`: the three vendor simulators on loopback, for local development and benches.

use callgate_sim::{listening_service, SimOptions, VendorKind, VendorSim};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct SimArgs {
    #[arg(long, default_value = "127.0.0.1:18081")]
    pub elemente: String,
    #[arg(long, default_value = "127.0.0.1:18082")]
    pub bimpe: String,
    #[arg(long, default_value = "127.0.0.1:18083")]
    pub zudu: String,
    /// Seed of the generated data sets.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Calls per vendor.
    #[arg(long, default_value_t = 300)]
    pub calls: usize,
    /// Added to every vendor answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Calls created through a simulator's API progress in time (Zudu): a transcript line
    /// every this many milliseconds, then the call ends; 0 keeps created calls as created.
    #[arg(long, default_value_t = 2000)]
    pub live_step_ms: u64,
    /// Heartbeat interval of an open event stream (Bimpe's message stream), in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    pub stream_heartbeat_ms: u64,
}

impl SimArgs {
    pub fn options(&self) -> SimOptions {
        SimOptions {
            seed: self.seed,
            calls_per_vendor: self.calls,
            latency: Duration::from_millis(self.latency_ms),
            live_step: (self.live_step_ms > 0).then(|| Duration::from_millis(self.live_step_ms)),
            tls: None,
            stream_heartbeat: Duration::from_millis(self.stream_heartbeat_ms),
        }
    }

    pub fn addr(&self, kind: VendorKind) -> &str {
        match kind {
            VendorKind::Elemente => &self.elemente,
            VendorKind::Bimpe => &self.bimpe,
            VendorKind::Zudu => &self.zudu,
        }
    }

    /// The simulators as Pingora services, and the simulators themselves.
    pub fn services(
        &self,
    ) -> Vec<(
        VendorKind,
        std::sync::Arc<VendorSim>,
        pingora::services::listening::Service<callgate_sim::SimApp>,
    )> {
        let opts = self.options();
        VendorKind::ALL
            .iter()
            .map(|k| {
                let sim = VendorSim::new(*k, &opts);
                let svc = listening_service(sim.clone(), self.addr(*k));
                (*k, sim, svc)
            })
            .collect()
    }
}

pub fn run(args: SimArgs) -> ExitCode {
    let _log = callgate::logging::init("pretty", "info", &Default::default());
    let mut server = callgate::server::new_server(0);
    for (kind, sim, svc) in args.services() {
        println!(
            "{:<9} http://{}   ({} calls)",
            kind.name(),
            args.addr(kind),
            sim.records().len()
        );
        if kind == VendorKind::Bimpe {
            println!("          agents: {}", sim.agent_ids().join(", "));
        }
        server.add_service(svc);
    }
    println!("faults: POST /__sim/faults, journal: GET /__sim/requests (on each simulator)");
    // `run`, not `run_forever` (which exits the process): queued log lines are written
    // when the log guard drops.
    server.run(pingora::server::RunArgs::default());
    ExitCode::SUCCESS
}
