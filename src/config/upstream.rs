//! Where a provider's requests go: its base URL parsed, its host resolved once when the config
//! loads (no request ever blocks on DNS), and the Pingora peer with the provider's timeouts.

use pingora::upstreams::peer::HttpPeer;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Where a provider's requests go.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub peer: HttpPeer,
    /// `Host` header value.
    pub host: String,
    /// Path prefix of the base URL, without a trailing '/'.
    pub base_path: String,
    /// The base URL as configured, for `explain` and logs.
    pub base_url: String,
}

/// Parses a base URL and resolves its host once, here, so no request ever blocks on DNS. Without
/// `resolve` (offline `check`/`explain`), a host name gets an unspecified address instead.
pub(super) fn upstream(
    resolve: bool,
    base_url: &str,
    connect: Duration,
    total: Duration,
) -> Result<Upstream, String> {
    let uri: http::Uri = base_url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("the scheme must be http or https".into()),
    };
    let host = uri.host().ok_or("no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let literal = bare
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port));
    let addr: SocketAddr = match literal {
        Some(a) => a,
        None if !resolve => SocketAddr::from(([0, 0, 0, 0], port)),
        None => resolve_host(bare, port, &host)?,
    };
    let mut peer = HttpPeer::new(addr, tls, host.clone());
    peer.options.connection_timeout = Some(connect);
    peer.options.total_connection_timeout = Some(connect);
    peer.options.read_timeout = Some(total);
    peer.options.write_timeout = Some(total);
    peer.options.idle_timeout = Some(Duration::from_secs(60));
    let host_header = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    Ok(Upstream {
        peer,
        host: host_header,
        base_path: uri.path().trim_end_matches('/').to_string(),
        base_url: base_url.to_string(),
    })
}

fn resolve_host(bare: &str, port: u16, host: &str) -> Result<SocketAddr, String> {
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))
}
