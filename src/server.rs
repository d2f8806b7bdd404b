//! Assembling Pingora services: the API listener (the proxy), the admin listener, and running
//! them — forever for `serve`, or in a background thread with a stop handle for tests and benches.

use crate::admin::AdminApp;
use crate::config::Runtime;
use crate::gateway::Gateway;
use crate::proxy::CallgateProxy;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A Pingora server running the gateway over `runtime` on the addresses its settings name (or
/// the ones given), with `grace_seconds` to drain on SIGTERM.
pub fn gateway_server(
    runtime: Runtime,
    grace_seconds: u64,
    addrs: Option<(String, String)>,
) -> (Server, Arc<Gateway>) {
    let settings = runtime.settings.clone();
    let (listen, admin_listen) = addrs.unwrap_or((settings.listen, settings.admin_listen));
    let gateway = Arc::new(Gateway::new(runtime));
    let mut server = new_server(grace_seconds);
    let mut api = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        CallgateProxy {
            gateway: gateway.clone(),
        },
        "callgate api",
    );
    api.add_tcp(&listen);
    api.threads = Some(settings.threads.max(1));
    let mut admin = Service::new(
        "callgate admin".to_string(),
        AdminApp {
            gateway: gateway.clone(),
        },
    );
    admin.add_tcp(&admin_listen);
    admin.threads = Some(1);
    server.add_service(api);
    server.add_service(admin);
    (server, gateway)
}

/// A new Pingora server with callgate's defaults (no config file of Pingora's own).
pub fn new_server(grace_seconds: u64) -> Server {
    let conf = ServerConf {
        grace_period_seconds: Some(grace_seconds),
        graceful_shutdown_timeout_seconds: Some(grace_seconds),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    server
}

/// Resolves when the owner asks to stop.
struct StopWatch(watch::Receiver<bool>);

#[async_trait]
impl ShutdownSignalWatch for StopWatch {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        ShutdownSignal::FastShutdown
    }
}

/// A gateway running in a background thread on loopback ports; dropping it stops it.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

impl RunningGateway {
    /// Starts the gateway on fresh loopback ports and waits until both accept connections.
    pub fn start(runtime: Runtime) -> RunningGateway {
        let (addr, admin_addr) = (free_port(), free_port());
        let (server, gateway) =
            gateway_server(runtime, 0, Some((addr.to_string(), admin_addr.to_string())));
        let (stop, rx) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(StopWatch(rx)),
            });
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while [addr, admin_addr]
            .iter()
            .any(|a| TcpStream::connect(a).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "the gateway did not start listening"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        RunningGateway {
            addr,
            admin_addr,
            gateway,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
