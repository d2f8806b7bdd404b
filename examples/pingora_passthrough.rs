//! A bare Pingora reverse proxy: the floor under callgate's own cost in `make bench`.
//!
//! Row **P** of the load bench (`benches/load/run.py`). It forwards every request unchanged to
//! the upstream of the listener it arrived on, over Pingora's pooled HTTP/1 connections, with
//! the same Pingora version, server setup (one service, `threads` workers, work stealing) and
//! allocator as `callgate serve`, and does nothing else: no auth, no routing by content, no
//! rewriting, no body reading, no metrics, no log line. What callgate costs above P is
//! callgate's; what P costs above nginx (B) is Pingora's.
//!
//! ```sh
//! cargo run --release --example pingora_passthrough -- --threads 2 \
//!     --route 127.0.0.1:28191=127.0.0.1:28081 --route 127.0.0.1:28192=127.0.0.1:28082
//! ```

use async_trait::async_trait;
use clap::Parser;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
struct Args {
    /// `LISTEN=UPSTREAM`, both `host:port` (plain HTTP); repeat for more listeners.
    #[arg(long = "route", required = true, value_parser = parse_route)]
    routes: Vec<Route>,
    /// Pingora worker threads, as `server.threads` in callgate's config.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Clone)]
struct Route {
    listen: String,
    port: u16,
    upstream: String,
}

fn parse_route(s: &str) -> Result<Route, String> {
    let (listen, upstream) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected LISTEN=UPSTREAM"))?;
    let port = listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or_else(|| format!("{listen:?}: expected host:port"))?;
    Ok(Route {
        listen: listen.to_string(),
        port,
        upstream: upstream.to_string(),
    })
}

struct Passthrough {
    /// Listener port → upstream address.
    routes: Vec<(u16, String)>,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let port = session
            .server_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.port());
        let upstream = self
            .routes
            .iter()
            .find(|(p, _)| Some(*p) == port)
            .map(|(_, u)| u.as_str())
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route for listener"))?;
        Ok(Box::new(HttpPeer::new(upstream, false, String::new())))
    }
}

fn main() {
    let args = Args::parse();
    // Stopped with SIGTERM by the bench: no connection draining to wait for.
    let conf = ServerConf {
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let routes = args
        .routes
        .iter()
        .map(|r| (r.port, r.upstream.clone()))
        .collect();
    let mut proxy =
        pingora::proxy::http_proxy_service(&server.configuration, Passthrough { routes });
    for r in &args.routes {
        proxy.add_tcp(&r.listen);
    }
    proxy.threads = Some(args.threads.max(1));
    server.add_service(proxy);
    server.run_forever();
}
