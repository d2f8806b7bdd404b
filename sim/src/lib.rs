//! Loopback simulators of the three vendor call APIs that callgate fronts (Elemente, Bimpe, Zudu).
//!
//! They exist so that the gateway's tests, demo and benchmarks can talk to something that behaves
//! exactly like the vendors documented in `vendor-docs/VENDORS.md` — same paths, auth, envelopes,
//! paging and data quirks — plus injectable faults and a journal of what the gateway sent.
//! Every simulator is a Pingora listening service; [`SimCluster`] runs all three for tests.
//! Bimpe also serves its per-conversation message stream (Server-Sent Events: a stream ticket,
//! then backlog, live messages and heartbeats), with a per-key limit of open streams
//! ([`MAX_STREAMS_PER_KEY`]) and a `disconnect` fault that cuts a stream after so many messages.

mod bimpe;
mod bimpe_data;
mod bimpe_stream;
mod cluster;
mod data;
mod elemente;
mod elemente_text;
mod faults;
mod live;
mod server;
mod stream;
mod zudu;
mod zudu_data;

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use bimpe_stream::{MAX_STREAMS_PER_KEY, TICKET_TTL};
pub use cluster::SimCluster;
pub use faults::{Fault, FaultAction};
pub use server::{listening_service, tls_listening_service, RecordedRequest, SimApp};

/// The three vendor API families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VendorKind {
    Elemente,
    Bimpe,
    Zudu,
}

impl VendorKind {
    /// Every vendor, in a fixed order.
    pub const ALL: [VendorKind; 3] = [VendorKind::Elemente, VendorKind::Bimpe, VendorKind::Zudu];

    /// The vendor's name as used in config and adapters.
    pub fn name(&self) -> &'static str {
        match self {
            VendorKind::Elemente => "elemente",
            VendorKind::Bimpe => "bimpe",
            VendorKind::Zudu => "zudu",
        }
    }
}

/// How the simulators' data set is generated and how fast they answer.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Seed of the data set: one seed always gives byte-identical records.
    pub seed: u64,
    /// Number of call records each vendor starts with.
    pub calls_per_vendor: usize,
    /// Delay added before every vendor answer (control endpoints are not delayed).
    pub latency: Duration,
    /// Calls created through the API progress in time, one step per this long (Zudu for now):
    /// a new transcript line per step, then the call ends. `None`: created calls stay as created.
    pub live_step: Option<Duration>,
    /// Serve HTTPS with this certificate chain and key (PEM files) instead of plain HTTP, as
    /// every real vendor does; for the TLS tests.
    pub tls: Option<TlsFiles>,
    /// How often an open event stream (Bimpe's message stream) sends a heartbeat event.
    pub stream_heartbeat: Duration,
}

/// A server certificate chain and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Require a client certificate issued by this authority (PEM), as a vendor using mutual
    /// TLS does; `None`: no client certificate asked.
    pub client_ca: Option<std::path::PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 42,
            calls_per_vendor: 300,
            latency: Duration::ZERO,
            live_step: None,
            tls: None,
            stream_heartbeat: Duration::from_secs(20),
        }
    }
}

/// The demo credentials every simulator accepts.
pub mod credentials {
    pub const ELEMENTE_USERNAME: &str = "elemente-demo";
    pub const ELEMENTE_PASSWORD: &str = "elemente-demo-password";
    /// Scopes: `conversations:read`, `calls:read`, `calls:write`.
    pub const BIMPE_API_KEY: &str = "sk_bimpe_demo_0123456789";
    /// A valid key with no scopes: every operation answers 403 `insufficient_scope`.
    pub const BIMPE_API_KEY_NO_SCOPE: &str = "sk_bimpe_demo_noscope_0000";
    pub const ZUDU_API_KEY: &str = "sk_zudu_demo_0123456789";
    pub const ZUDU_API_SECRET: &str = "s3cr3t_zudu_demo_0123456789";
}

/// One vendor's mutable data set.
pub(crate) enum VendorState {
    Elemente(elemente::State),
    Bimpe(bimpe::State),
    Zudu(zudu::State),
}

/// How many vendor requests a simulator's journal keeps (the most recent).
pub const JOURNAL_LIMIT: usize = 50_000;

/// One vendor simulator: its data set, its pending faults and its request journal.
pub struct VendorSim {
    kind: VendorKind,
    instance: u64,
    latency: Duration,
    state: Mutex<VendorState>,
    faults: Mutex<Vec<Fault>>,
    /// The last [`JOURNAL_LIMIT`] vendor requests (older ones are dropped, so long and busy
    /// runs measure the gateway, not a growing journal).
    journal: Mutex<std::collections::VecDeque<RecordedRequest>>,
    /// True while [`hold`](VendorSim::hold) keeps vendor requests waiting.
    held: tokio::sync::watch::Sender<bool>,
}

impl VendorSim {
    /// A simulator of `kind` with the data set `opts` describes.
    pub fn new(kind: VendorKind, opts: &SimOptions) -> Arc<Self> {
        let state = match kind {
            VendorKind::Elemente => VendorState::Elemente(elemente::State::generate(opts)),
            VendorKind::Bimpe => VendorState::Bimpe(bimpe::State::generate(opts)),
            VendorKind::Zudu => VendorState::Zudu(zudu::State::generate(opts)),
        };
        static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);
        Arc::new(VendorSim {
            kind,
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            latency: opts.latency,
            state: Mutex::new(state),
            faults: Mutex::new(Vec::new()),
            journal: Mutex::new(std::collections::VecDeque::new()),
            held: tokio::sync::watch::channel(false).0,
        })
    }

    /// Which vendor this simulates.
    pub fn kind(&self) -> VendorKind {
        self.kind
    }

    /// All call records in the vendor's native JSON (what its get-one endpoint returns), in the
    /// vendor's default list order.
    pub fn records(&self) -> Vec<serde_json::Value> {
        match &*self.state.lock() {
            VendorState::Elemente(s) => s.records(),
            VendorState::Bimpe(s) => s.records(),
            VendorState::Zudu(s) => s.records(),
        }
    }

    /// Bimpe only (empty for the others): the agent ids of the data set.
    pub fn agent_ids(&self) -> Vec<String> {
        match &*self.state.lock() {
            VendorState::Bimpe(s) => s.agent_ids(),
            _ => Vec::new(),
        }
    }

    /// Bimpe only (empty for the others): one agent's records, in list order.
    pub fn records_for_agent(&self, agent_id: &str) -> Vec<serde_json::Value> {
        match &*self.state.lock() {
            VendorState::Bimpe(s) => s.records_for_agent(agent_id),
            _ => Vec::new(),
        }
    }

    /// Arm a fault; faults are tried in the order they were added, the first match fires.
    pub fn add_fault(&self, fault: Fault) {
        self.faults.lock().push(fault);
    }

    /// Disarm every fault.
    pub fn clear_faults(&self) {
        self.faults.lock().clear();
    }

    /// Hold vendor requests: each is recorded on arrival, then waits until [`release`]. For a
    /// test that needs a request in flight until it has seen something happen, where a fixed
    /// latency would be a guess at how fast the machine is.
    ///
    /// [`release`]: VendorSim::release
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Let held and later vendor requests go on (to the latency and faults armed, if any).
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Resolves when no [`hold`](VendorSim::hold) is in effect.
    pub(crate) async fn released(&self) {
        if !*self.held.borrow() {
            return;
        }
        let mut held = self.held.subscribe();
        let _ = held.wait_for(|held| !*held).await;
    }

    /// The vendor requests received so far, oldest first: all of them, or the last
    /// [`JOURNAL_LIMIT`] (control endpoints are not recorded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.journal.lock().iter().cloned().collect()
    }

    /// Empty the request journal.
    pub fn clear_requests(&self) {
        self.journal.lock().clear();
    }

    /// A process-unique number, so a readiness probe can tell this simulator from another.
    pub(crate) fn instance_id(&self) -> u64 {
        self.instance
    }

    pub(crate) fn latency(&self) -> Duration {
        self.latency
    }

    pub(crate) fn record(&self, req: RecordedRequest) {
        let mut journal = self.journal.lock();
        if journal.len() >= JOURNAL_LIMIT {
            journal.pop_front();
        }
        journal.push_back(req);
    }

    /// The first armed fault matching this request, consuming one of its `times`.
    pub(crate) fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        faults::take_matching(&mut self.faults.lock(), method, path)
    }

    /// Bimpe only (0 for the others): the event streams open now, all API keys together.
    pub fn open_streams(&self) -> usize {
        match &*self.state.lock() {
            VendorState::Bimpe(s) => s.open_streams(),
            _ => 0,
        }
    }

    /// `None` unless `req` asks for an event stream; else the refusal to answer, or the stream
    /// accepted (its ticket used up and its slot counted, given back when the stream drops).
    pub(crate) fn open_stream(
        self: &Arc<Self>,
        req: &server::SimRequest,
    ) -> Option<Result<stream::OpenStream, server::SimResponse>> {
        let opened = match &mut *self.state.lock() {
            VendorState::Bimpe(s) => s.open_stream(req)?,
            _ => return None,
        };
        Some(opened.map(|grant| stream::OpenStream {
            slot: stream::StreamSlot::counted(self.clone(), grant.key.clone()),
            grant,
        }))
    }

    /// The messages of a stream's conversation it has not sent yet (live calls advanced first).
    pub(crate) fn poll_stream(
        &self,
        cursor: &mut bimpe_stream::Cursor,
    ) -> Vec<stream::StreamEvent> {
        match &mut *self.state.lock() {
            VendorState::Bimpe(s) => s.poll_stream(cursor),
            _ => Vec::new(),
        }
    }

    /// A stream of `key` has ended: its slot is free again.
    pub(crate) fn close_stream(&self, key: &str) {
        if let VendorState::Bimpe(s) = &mut *self.state.lock() {
            s.close_stream(key);
        }
    }

    /// Answer one vendor request from the data set.
    pub(crate) fn handle(&self, req: &server::SimRequest) -> server::SimResponse {
        match &mut *self.state.lock() {
            VendorState::Elemente(s) => s.handle(req),
            VendorState::Bimpe(s) => s.handle(req),
            VendorState::Zudu(s) => s.handle(req),
        }
    }
}
