//! The vendor client, the innermost layer: one attempt of one planned request over a kept-alive
//! connection (from [`IdlePool`], or a new one from Pingora's client connector), reading the whole
//! answer (bounded) and keeping the connection for the next request.
//!
//! Each failure says how far the request got ([`Reached`]), which is all the retry layer needs.
//! Timeouts and connection failures become the canonical problems of DESIGN.md's table here.

use super::body::Collected;
use super::vendor_pool::IdlePool;
use crate::adapter::plan::VendorRequest;
use crate::canonical::{ErrorCode, Problem};
use crate::config::Provider;
use crate::layers::retry::Reached;
use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::HttpSession as Http1Session;
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorType};

/// A complete vendor answer.
#[derive(Debug)]
pub struct VendorAnswer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Bytes,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// No connection could be made: the request never reached the vendor.
    Connect(String),
    /// The vendor's TLS certificate was refused (untrusted, expired, for another host) or the
    /// handshake failed: nothing was sent.
    Tls(String),
    /// The vendor did not answer in time.
    Timeout,
    /// The connection broke or the answer was not valid HTTP.
    Broken(String),
    /// The answer is larger than `server.max_vendor_body_bytes`.
    TooLarge,
}

impl ExchangeError {
    /// Label for logs and `callgate_upstream_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            ExchangeError::Connect(_) => "connect",
            ExchangeError::Tls(_) => "tls",
            ExchangeError::Timeout => "timeout",
            ExchangeError::Broken(_) => "broken",
            ExchangeError::TooLarge => "too_large",
        }
    }

    pub fn into_problem(self, provider: &Provider) -> Problem {
        let name = &provider.name;
        let p = match self {
            ExchangeError::Connect(why) => Problem::new(
                ErrorCode::ProviderUnavailable,
                format!("could not connect to provider {name:?} ({why})"),
            ),
            ExchangeError::Tls(why) => Problem::new(
                ErrorCode::ProviderUnavailable,
                format!(
                    "the TLS handshake with provider {name:?} failed: its certificate is not trusted, has expired, or names another host ({why}); see the provider's ca_file"
                ),
            ),
            ExchangeError::Timeout => Problem::new(
                ErrorCode::ProviderTimeout,
                format!(
                    "provider {name:?} did not answer within {} ms",
                    provider.timeout.as_millis()
                ),
            ),
            ExchangeError::Broken(why) => Problem::new(
                ErrorCode::ProviderError,
                format!(
                    "the connection to provider {name:?} broke before a complete answer ({why})"
                ),
            ),
            ExchangeError::TooLarge => Problem::new(
                ErrorCode::ProviderError,
                format!(
                    "provider {name:?} sent an answer larger than server.max_vendor_body_bytes"
                ),
            ),
        };
        p.with_provider(name)
    }
}

/// The vendor client: one per gateway, shared by all requests; owns the idle connections.
pub struct VendorClient {
    /// Makes new connections (TCP, TLS, ALPN) and keeps idle HTTP/2 sessions.
    connector: Connector,
    /// Idle HTTP/1 connections.
    idle: IdlePool,
}

impl Default for VendorClient {
    fn default() -> Self {
        VendorClient {
            connector: Connector::new(None),
            idle: IdlePool::default(),
        }
    }
}

impl VendorClient {
    /// One attempt; a failure says how far the request got.
    pub async fn send_once(
        &self,
        provider: &Provider,
        req: &VendorRequest,
        request_id: &str,
        max_body: usize,
    ) -> Result<VendorAnswer, (ExchangeError, Reached)> {
        let peer = &provider.upstream.peer;
        let upstream = peer.reuse_hash();
        let (mut session, reused) = match self.idle.take(upstream) {
            Some(stream) => (
                HttpSession::H1(Http1Session::new_with_options(stream, peer)),
                true,
            ),
            None => self.connector.get_http_session(peer).await.map_err(|e| {
                // A refused connection may take a second try; a timeout or a certificate not.
                let again = e.etype() != &ErrorType::ConnectTimedout;
                let e = classify(&e, true);
                let again = again && matches!(e, ExchangeError::Connect(_));
                (e, Reached::Never { again })
            })?,
        };
        let header = request_header(provider, req, request_id)
            .map_err(|e| (classify(&e, false), Reached::Never { again: false }))?;
        // Before any answer, a reused connection the vendor had closed is stale (a timeout is
        // not: the vendor may be working on the request).
        let before_answer = |e: Box<Error>| {
            let e = classify(&e, false);
            let reached = match e {
                ExchangeError::Connect(_) | ExchangeError::Tls(_) => {
                    Reached::Never { again: false }
                }
                ExchangeError::Timeout => Reached::Maybe,
                _ if reused => Reached::StaleConnection,
                _ => Reached::Maybe,
            };
            (e, reached)
        };
        session
            .write_request_header(Box::new(header))
            .await
            .map_err(before_answer)?;
        if let Some(body) = &req.body {
            session
                .write_request_body(Bytes::copy_from_slice(body), true)
                .await
                .map_err(before_answer)?;
        }
        session.finish_request_body().await.map_err(before_answer)?;
        session
            .read_response_header()
            .await
            .map_err(before_answer)?;
        let (status, retry_after, declared) = {
            let h = session.response_header().ok_or((
                ExchangeError::Broken("no response header".into()),
                Reached::Maybe,
            ))?;
            let text = |name: &str| h.headers.get(name).and_then(|v| v.to_str().ok());
            let declared = text("content-length").and_then(|v| v.trim().parse::<usize>().ok());
            (
                h.status.as_u16(),
                text("retry-after").map(str::to_string),
                declared,
            )
        };
        if declared.is_some_and(|n| n > max_body) {
            return Err((ExchangeError::TooLarge, Reached::Maybe));
        }
        let mut body = Collected::new(declared);
        loop {
            match session.read_response_body().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max_body {
                        return Err((ExchangeError::TooLarge, Reached::Maybe));
                    }
                    body.push(chunk);
                }
                Ok(None) => break,
                Err(e) => return Err((classify(&e, false), Reached::Maybe)),
            }
        }
        match session {
            HttpSession::H1(mut h1) => {
                h1.respect_keepalive();
                if let Some(stream) = h1.reuse().await {
                    self.idle.put(upstream, stream, peer.options.idle_timeout);
                }
            }
            other => {
                self.connector
                    .release_http_session(other, peer, peer.options.idle_timeout)
                    .await
            }
        }
        Ok(VendorAnswer {
            status,
            retry_after,
            body: body.into_bytes(),
        })
    }
}

/// A vendor's event stream, open: its body read chunk by chunk as it comes.
pub struct VendorStream {
    session: HttpSession,
}

impl VendorStream {
    /// The next piece of the body; `None` when the vendor ended it. Nothing for the stream's
    /// idle timeout is [`ExchangeError::Timeout`].
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ExchangeError> {
        self.session
            .read_response_body()
            .await
            .map_err(|e| classify(&e, false))
    }
}

/// How opening a stream went when the request was answered.
pub enum Opened {
    /// A 2xx answer: the stream.
    Stream(Box<VendorStream>),
    /// Any other answer, read whole (bounded): the vendor refused, as its body says.
    Refused(VendorAnswer),
}

impl VendorClient {
    /// Opens a long-lived stream (a `GET` answered with Server-Sent Events) on a connection of
    /// its own, never taken from or given back to the idle pool. The provider's timeout bounds
    /// connecting and the answer's header; then `idle` bounds each wait for more of the body.
    pub async fn open_stream(
        &self,
        provider: &Provider,
        req: &VendorRequest,
        request_id: &str,
        idle: std::time::Duration,
        max_body: usize,
    ) -> Result<Opened, ExchangeError> {
        let peer = &provider.upstream.peer;
        let mut session = self
            .connector
            .get_http_session(peer)
            .await
            .map_err(|e| classify(&e, true))?
            .0;
        let header = request_header(provider, req, request_id).map_err(|e| classify(&e, false))?;
        let sent = async {
            session.write_request_header(Box::new(header)).await?;
            session.finish_request_body().await?;
            session.read_response_header().await
        };
        sent.await.map_err(|e| classify(&e, false))?;
        let (status, retry_after) = {
            let h = session
                .response_header()
                .ok_or_else(|| ExchangeError::Broken("no response header".into()))?;
            let retry = h.headers.get("retry-after").and_then(|v| v.to_str().ok());
            (h.status.as_u16(), retry.map(str::to_string))
        };
        if (200..300).contains(&status) {
            session.set_read_timeout(Some(idle));
            return Ok(Opened::Stream(Box::new(VendorStream { session })));
        }
        let mut body = Collected::new(None);
        while let Some(chunk) = session
            .read_response_body()
            .await
            .map_err(|e| classify(&e, false))?
        {
            if body.len() + chunk.len() > max_body {
                return Err(ExchangeError::TooLarge);
            }
            body.push(chunk);
        }
        Ok(Opened::Refused(VendorAnswer {
            status,
            retry_after,
            body: body.into_bytes(),
        }))
    }
}

/// The headers callgate sends a vendor, in order: `(name, value, is_secret)`. Shared by the
/// exchange and `callgate explain`, which prints them with the secret values redacted.
pub fn outgoing_headers(
    provider: &Provider,
    req: &VendorRequest,
    request_id: &str,
) -> Vec<(String, String, bool)> {
    let mut out = vec![
        ("Host".to_string(), provider.upstream.host.clone(), false),
        (
            "Accept".to_string(),
            req.header("accept")
                .unwrap_or("application/json")
                .to_string(),
            false,
        ),
        (
            "User-Agent".to_string(),
            concat!("callgate/", env!("CARGO_PKG_VERSION")).to_string(),
            false,
        ),
        ("X-Request-Id".to_string(), request_id.to_string(), false),
    ];
    for (name, value) in &req.headers {
        if !name.eq_ignore_ascii_case("accept") {
            out.push((name.clone(), value.clone(), false));
        }
    }
    for (name, value) in &provider.auth_headers {
        out.push((name.clone(), value.expose().to_string(), true));
    }
    match &req.body {
        Some(body) => {
            out.push(("Content-Type".into(), "application/json".into(), false));
            out.push(("Content-Length".into(), body.len().to_string(), false));
        }
        None if req.method != "GET" => out.push(("Content-Length".into(), "0".into(), false)),
        None => {}
    }
    out
}

fn request_header(
    provider: &Provider,
    req: &VendorRequest,
    request_id: &str,
) -> pingora::Result<RequestHeader> {
    let path = format!("{}{}", provider.upstream.base_path, req.path_and_query);
    let mut h = RequestHeader::build(req.method.as_str(), path.as_bytes(), Some(8))?;
    for (name, value, _) in outgoing_headers(provider, req, request_id) {
        h.insert_header(name, value)?;
    }
    // W3C Trace Context: this exchange's span is the vendor's parent.
    for (name, value) in crate::telemetry::outgoing() {
        h.insert_header(name, value)?;
    }
    Ok(h)
}

fn classify(e: &Error, connecting: bool) -> ExchangeError {
    use ErrorType::*;
    match e.etype() {
        TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError => {
            // The rustls reason (e.g. "invalid peer certificate: UnknownIssuer") is in the context.
            let why = e.context.as_ref().map(|c| c.as_str().to_string());
            ExchangeError::Tls(why.unwrap_or_else(|| e.etype().as_str().to_string()))
        }
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | SocketError
        | BindError => ExchangeError::Connect(e.etype().as_str().to_string()),
        ReadTimedout | WriteTimedout => ExchangeError::Timeout,
        _ if connecting => ExchangeError::Connect(e.etype().as_str().to_string()),
        other => ExchangeError::Broken(other.as_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A provider whose vendor is `addr`, from a config text as an operator writes it.
    fn provider_at(addr: std::net::SocketAddr) -> std::sync::Arc<Provider> {
        let text = format!(
            "[providers.z]\nvendor = \"zudu\"\nbase_url = \"http://{addr}\"\n\
             credentials = {{ api_key = {{ env = \"K\" }}, api_secret = {{ env = \"S\" }} }}\n\
             [tenants.t]\nkeys = [{{ env = \"KEY\" }}]\nproviders = [\"z\"]\ndefault = \"z\"\n"
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let rt = crate::config::load_str(&text, "test.toml", root, &|_| Some("a-secret".into()))
            .unwrap_or_else(|e| panic!("config: {e:?}"));
        rt.provider("z").unwrap().clone()
    }

    /// A vendor that answers each request on one connection with `answer`.
    async fn vendor(answer: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            while s.read(&mut buf).await.is_ok_and(|n| n > 0) {
                // The answer in small pieces, so the body arrives in several chunks.
                for piece in answer.chunks(7) {
                    if s.write_all(piece).await.is_err() {
                        return;
                    }
                    s.flush().await.ok();
                }
            }
        });
        addr
    }

    fn get() -> VendorRequest {
        VendorRequest {
            method: "GET".into(),
            path_and_query: "/api/calls".into(),
            body: None,
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn reads_a_body_sent_in_pieces_whole() {
        let addr =
            vendor(b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz")
                .await;
        let client = VendorClient::default();
        let answer = client
            .send_once(&provider_at(addr), &get(), "r1", 1024)
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "abcdefghijklmnopqrstuvwxyz");
    }

    #[tokio::test]
    async fn a_body_over_the_bound_is_refused_declared_or_not() {
        let declared =
            vendor(b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz")
                .await;
        let chunked = vendor(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nabcdefghijklm\r\nd\r\nnopqrstuvwxyz\r\n0\r\n\r\n").await;
        let client = VendorClient::default();
        for addr in [declared, chunked] {
            let answer = client.send_once(&provider_at(addr), &get(), "r1", 20).await;
            assert_eq!(
                answer.unwrap_err(),
                (ExchangeError::TooLarge, Reached::Maybe)
            );
        }
        // Under the bound, the chunked body arrives whole.
        let chunked = vendor(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nabcdefghijklm\r\nd\r\nnopqrstuvwxyz\r\n0\r\n\r\n").await;
        let answer = client
            .send_once(&provider_at(chunked), &get(), "r2", 26)
            .await;
        assert_eq!(answer.unwrap().body, "abcdefghijklmnopqrstuvwxyz");
    }
}
