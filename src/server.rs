//! Assembling Pingora services: the API listener ([`ApiApp`]), the admin listener, and running
//! them — forever for `serve`, or in a background thread with a stop handle for tests and benches.

use crate::admin::AdminApp;
use crate::config::Runtime;
use crate::connection::ApiApp;
use crate::gateway::Gateway;
use async_trait::async_trait;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How to run the gateway's Pingora server.
#[derive(Default)]
pub struct ServeOptions {
    /// Listen addresses instead of the config's (tests).
    pub addrs: Option<(String, String)>,
    /// Seconds SIGTERM waits for in-flight requests (default: the config's).
    pub grace_seconds: Option<u64>,
    /// Take the listening sockets over from a running callgate (`serve -u`).
    pub upgrade: bool,
    /// Reload this config file on change and on SIGHUP, resolving secrets with `env`.
    pub reload: Option<ReloadFrom>,
}

/// A config file to reload, and where its secret references are resolved.
pub type ReloadFrom = (std::path::PathBuf, fn(&str) -> Option<String>);

/// A Pingora server running the gateway over `runtime`: the API and admin listeners, and the
/// config reloader when asked.
///
/// # Panics
/// When the API and admin listeners are given the same address. Pingora would not refuse it:
/// the second service finds the first one's socket in the server's table of listening fds
/// (the table a binary upgrade fills) and wraps the same fd in a second listener: in
/// `pingora-core-0.9.1/src/listeners/l4.rs`, `ListenerEndpointBuilder::listen` (lines 362-372)
/// takes an address's fd from the table if there is one, else binds and puts the new fd there,
/// and `from_raw_fd` (line 229) makes a listener that owns the fd it is given. Both listeners
/// close the fd when the server stops: the second close aborts the process under debug
/// assertions ("IO Safety violation: owned file descriptor already closed"), and in a release
/// build may close whatever file has reused that number meanwhile.
pub fn gateway_server(runtime: Runtime, opts: ServeOptions) -> (Server, Arc<Gateway>) {
    let settings = runtime.settings.clone();
    let (listen, admin_listen) = opts
        .addrs
        .unwrap_or((settings.listen.clone(), settings.admin_listen.clone()));
    assert_ne!(
        listen, admin_listen,
        "server.listen and server.admin_listen must be different addresses"
    );
    let gateway = Arc::new(Gateway::new(runtime));
    let conf = ServerConf {
        grace_period_seconds: Some(opts.grace_seconds.unwrap_or(settings.grace_period_seconds)),
        graceful_shutdown_timeout_seconds: Some(
            opts.grace_seconds.unwrap_or(settings.grace_period_seconds),
        ),
        upgrade_sock: settings.upgrade_sock.clone(),
        pid_file: format!("{}.pid", settings.upgrade_sock.trim_end_matches(".sock")),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: opts.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let mut api = Service::new(
        "callgate api".to_string(),
        ApiApp {
            gateway: gateway.clone(),
        },
    );
    api.add_listener(ListenerConfig::tcp(&listen).l4_buffer(client_buffers()));
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
    server.add_service(pingora::services::background::background_service(
        "event stream drain",
        StreamDrain {
            gateway: gateway.clone(),
        },
    ));
    if let Some(listener) = gateway.state().invalidation_listener() {
        server.add_service(pingora::services::background::background_service(
            "cache invalidations",
            listener,
        ));
    }
    if let Some((config_path, env)) = opts.reload {
        let reloader = crate::reload::Reloader {
            config_path,
            gateway: gateway.clone(),
            env,
        };
        server.add_service(pingora::services::background::background_service(
            "config reload",
            reloader,
        ));
    }
    (server, gateway)
}

/// The client connection's buffers: none. They would be held for the connection's whole life —
/// an event stream held open for an hour holds them for an hour:
/// - no read buffer: callgate reads each request head itself (`connection::head`) and Pingora
///   reads the body in pieces; Pingora's default 64 KiB L4 read buffer in front only copied the
///   same bytes once more, and was most of what an open connection cost (issue 18's
///   measurement: about 170 KiB per connection in all);
/// - no write buffer: an event is one write to the bare connection (its body is delimited by the
///   close, `connection::request`) either way, and an answer's header and body are two `sendto`s
///   instead of one. Measured A/B (benches/README.md,
///   "callgate's own server application"): no difference in throughput or CPU per request at
///   concurrency 32 (13.1–13.6k req/s, 68–72 µs either way), 8 KiB less per connection and per
///   stream (13.3 → 9.3 KiB per idle stream).
fn client_buffers() -> L4BufferSettings {
    L4BufferSettings::unbuffered()
}

/// A Pingora server with callgate's defaults and no gateway (for `sim`), bootstrapped.
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

/// Ends the live event streams when the server is told to stop (or to hand over to a new
/// binary): each gets a retry hint and its client reconnects, to the new process or another
/// replica, instead of holding the old one until its grace period runs out.
struct StreamDrain {
    gateway: Arc<Gateway>,
}

#[async_trait]
impl pingora::services::background::BackgroundService for StreamDrain {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let _ = shutdown.changed().await;
        self.gateway.drain_streams();
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

/// `N` free loopback addresses, all different: bound together, then released.
///
/// Binding them one after another (bind port 0, read the port, close, bind again) can give the
/// same port twice, about one pair in 7,000 on Linux. Two services of one Pingora server on
/// one address share one fd that both close when the server stops (see [`gateway_server`]): the
/// "IO Safety violation" abort that test runs saw now and then.
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("a bound address"))
}

/// One `GET` on a connection of its own: the whole answer, head and body, or None when there
/// is no complete answer (nothing listening yet, or the connection broke).
fn get(addr: SocketAddr, path_and_headers: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path_and_headers}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// The line of `series` in a Prometheus text exposition.
fn series_line<'t>(text: &'t str, series: &str) -> Option<&'t str> {
    text.lines().find(|l| {
        l.strip_prefix(series)
            .is_some_and(|rest| rest.starts_with(' '))
    })
}

/// Requests `gateway` has counted (the sum of its request-duration counts).
fn counted(gateway: &Gateway) -> f64 {
    let text = String::from_utf8_lossy(&gateway.metrics().render()).into_owned();
    text.lines()
        .filter(|l| l.starts_with("callgate_request_duration_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether the admin port is served by `gateway` itself: its `/metrics` shows this gateway's
/// config load time, which the gateway set when it was built, to the sub-microsecond.
fn admin_serves(gateway: &Gateway, admin_addr: SocketAddr) -> bool {
    const LOADED: &str = "callgate_config_last_reload_timestamp_seconds";
    let own = String::from_utf8_lossy(&gateway.metrics().render()).into_owned();
    let Some(answer) = get(admin_addr, "/metrics HTTP/1.1") else {
        return false;
    };
    series_line(&answer, LOADED).is_some()
        && series_line(&answer, LOADED) == series_line(&own, LOADED)
}

/// Whether the API port answers a request with this probe's id (a callgate answers: it echoes
/// the id). [`counted`] then says whether it was this gateway.
fn api_echoes(addr: SocketAddr, probe: &str) -> bool {
    let echo = format!("\r\nx-request-id: {probe}\r\n");
    get(
        addr,
        &format!("/__ready-probe HTTP/1.1\r\nX-Request-Id: {probe}"),
    )
    .is_some_and(|answer| answer.to_ascii_lowercase().contains(&echo))
}

impl RunningGateway {
    /// Starts the gateway on fresh loopback ports and waits until it serves both.
    ///
    /// Before the gateway answers, its API port has seen one probe request (counted in its
    /// metrics as a request for an unknown path, `/__ready-probe`).
    ///
    /// # Panics
    /// When the gateway does not serve both ports as itself within 30 s, or its server thread
    /// ends first.
    pub fn start(runtime: Runtime) -> RunningGateway {
        let [addr, admin_addr] = free_addrs();
        let opts = ServeOptions {
            addrs: Some((addr.to_string(), admin_addr.to_string())),
            grace_seconds: Some(0),
            ..ServeOptions::default()
        };
        let (server, gateway) = gateway_server(runtime, opts);
        let (stop, rx) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(StopWatch(rx)),
            });
        });
        // Both ports must be served by this gateway, not merely accept connections: something
        // else may listen on a port this server could not bind (another test's server, say).
        let probe = format!("ready-probe-{}", uuid::Uuid::new_v4());
        let mut echoed = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            echoed = echoed || api_echoes(addr, &probe);
            // The probe is counted after it is answered: this may take another poll.
            if echoed && counted(&gateway) >= 1.0 && admin_serves(&gateway, admin_addr) {
                break;
            }
            assert!(
                !thread.is_finished(),
                "the gateway's server thread ended before it served {addr} and {admin_addr}"
            );
            assert!(
                Instant::now() < deadline,
                "the gateway did not serve {addr} (API) and {admin_addr} (admin) as itself \
                 within 30 s: not listening, or another process holds a port"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addrs_are_all_different() {
        for _ in 0..2_000 {
            let addrs: [SocketAddr; 4] = free_addrs();
            for (i, a) in addrs.iter().enumerate() {
                assert!(!addrs[i + 1..].contains(a), "{addrs:?}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "must be different addresses")]
    fn one_address_for_both_listeners_is_refused() {
        let text = format!(
            r#"
[server]
adapters = "{}/adapters"
[providers.z]
vendor = "zudu"
base_url = "http://127.0.0.1:9"
credentials = {{ api_key = {{ env = "K" }}, api_secret = {{ env = "K" }} }}
[tenants.t]
keys = [{{ env = "K" }}]
providers = ["z"]
default = "z"
"#,
            env!("CARGO_MANIFEST_DIR")
        );
        let env = |_: &str| Some("k".to_string());
        let runtime = crate::config::load_str(&text, "t.toml", std::path::Path::new("."), &env)
            .unwrap_or_else(|e| panic!("config: {e:?}"));
        let opts = ServeOptions {
            addrs: Some(("127.0.0.1:1".into(), "127.0.0.1:1".into())),
            ..ServeOptions::default()
        };
        let _ = gateway_server(runtime, opts);
    }
}
