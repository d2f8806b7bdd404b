//! All three simulators on ephemeral loopback ports in one background Pingora `Server`, for tests:
//! started synchronously (ready when every port answers its own health probe), stopped with a
//! fast shutdown when the `SimCluster` is dropped. Several clusters may live in one process.

use crate::server::{listening_service, tls_listening_service};
use crate::{SimOptions, VendorKind, VendorSim};
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Three running simulators; dropping this stops them.
pub struct SimCluster {
    sims: Vec<(VendorKind, Arc<VendorSim>, SocketAddr)>,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

/// Resolves when the cluster's owner asks to stop (or is gone).
struct StopWatch(watch::Receiver<bool>);

#[async_trait]
impl ShutdownSignalWatch for StopWatch {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        ShutdownSignal::FastShutdown
    }
}

/// `n` free loopback addresses, all different: bound together, then released. Bound one after
/// another, two could be the same port (about one pair in 7,000 on Linux), and two services
/// of one Pingora server on one address share one fd that both close when the server stops:
/// the second service's listener finds the first one's fd in the server's table of listening
/// fds and owns it too (`pingora-core-0.9.1/src/listeners/l4.rs`, lines 362-372 and 229; see
/// `callgate::server::gateway_server`). That double close aborts the process under debug
/// assertions ("IO Safety violation: owned file descriptor already closed").
fn free_addrs(n: usize) -> std::io::Result<Vec<SocketAddr>> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    held.iter().map(TcpListener::local_addr).collect()
}

/// Ask `addr` which simulator it is; true when it is `sim`.
fn probe(addr: SocketAddr, sim: &VendorSim) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let req = "GET /__sim/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains(&format!("\"instance\":{}", sim.instance_id()))
        && answer.contains(sim.kind().name())
}

impl SimCluster {
    /// Start the three simulators; blocks until all three answer on their ports.
    ///
    /// # Panics
    /// When no set of ports could be bound after several attempts (a broken test machine).
    pub fn start(opts: SimOptions) -> SimCluster {
        let sims: Vec<Arc<VendorSim>> = VendorKind::ALL
            .iter()
            .map(|k| VendorSim::new(*k, &opts))
            .collect();
        for _attempt in 0..8 {
            if let Some(cluster) = Self::try_start(&sims, opts.tls.as_ref()) {
                return cluster;
            }
        }
        panic!("SimCluster: could not bind the simulators to loopback ports");
    }

    fn try_start(sims: &[Arc<VendorSim>], tls: Option<&crate::TlsFiles>) -> Option<SimCluster> {
        let addrs = free_addrs(sims.len()).ok()?;
        let conf = ServerConf {
            threads: 2,
            grace_period_seconds: Some(0),
            graceful_shutdown_timeout_seconds: Some(0),
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);
        for (sim, addr) in sims.iter().zip(&addrs) {
            let addr = addr.to_string();
            match tls {
                None => {
                    server.add_service(listening_service(sim.clone(), &addr));
                }
                Some(files) => {
                    let service = tls_listening_service(sim.clone(), &addr, files);
                    server.add_service(service.expect("the simulators' certificate and key"));
                }
            }
        }
        let (tx, rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("callgate-sim-cluster".into())
            .spawn(move || {
                server.run(RunArgs {
                    shutdown_signal: Box::new(StopWatch(rx)),
                })
            })
            .ok()?;
        let mut cluster = SimCluster {
            sims: VendorKind::ALL
                .iter()
                .zip(sims)
                .zip(&addrs)
                .map(|((k, s), a)| (*k, s.clone(), *a))
                .collect(),
            stop: Some(tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut pending: Vec<usize> = (0..sims.len()).collect();
        while !pending.is_empty() {
            // Over TLS the plain-HTTP probe cannot ask; a listener that accepts is taken as up.
            pending.retain(|i| match tls {
                None => !probe(addrs[*i], &sims[*i]),
                Some(_) => {
                    TcpStream::connect_timeout(&addrs[*i], Duration::from_millis(200)).is_err()
                }
            });
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline || cluster.thread.as_ref().is_some_and(|t| t.is_finished())
            {
                cluster.shutdown();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(cluster)
    }

    /// The loopback address of one simulator.
    pub fn addr(&self, kind: VendorKind) -> SocketAddr {
        self.entry(kind).2
    }

    /// The state of one simulator (data set, faults, journal).
    pub fn sim(&self, kind: VendorKind) -> Arc<VendorSim> {
        self.entry(kind).1.clone()
    }

    fn entry(&self, kind: VendorKind) -> &(VendorKind, Arc<VendorSim>, SocketAddr) {
        self.sims
            .iter()
            .find(|(k, _, _)| *k == kind)
            .unwrap_or(&self.sims[0])
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
