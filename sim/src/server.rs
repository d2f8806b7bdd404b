//! Pingora glue shared by the three simulators: the `HttpServerApp` that owns each connection (so
//! faults can truncate or reset it, and a stream can keep it), the request journal, the `/__sim/*`
//! control endpoints, and the small request/response types the vendor modules work with.

use crate::faults::{Fault, FaultAction};
use crate::VendorSim;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body a simulator reads; bigger bodies are answered 413 and the connection closed.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One vendor request as received, kept in the simulator's journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

/// A fully read request as the vendor modules see it.
#[derive(Clone, Debug)]
pub(crate) struct SimRequest {
    pub method: String,
    /// Raw (still percent-encoded) path.
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl SimRequest {
    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decoded query pairs, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Last value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Percent-decoded, non-empty path segments.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }

    /// The body parsed as JSON, or None when it is not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Decode `%XX` escapes; invalid escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer a vendor module builds; the server adds `Content-Length`.
#[derive(Clone, Debug)]
pub(crate) struct SimResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl SimResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> SimResponse {
        SimResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    /// An answer with no body.
    pub fn empty(status: u16) -> SimResponse {
        SimResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> SimResponse {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// The Pingora application of one simulator.
pub struct SimApp {
    sim: Arc<VendorSim>,
}

impl SimApp {
    pub fn new(sim: Arc<VendorSim>) -> SimApp {
        SimApp { sim }
    }
}

/// Pingora listening service for one simulator on `addr` (e.g. "127.0.0.1:18081"), with 2 threads.
pub fn listening_service(sim: Arc<VendorSim>, addr: &str) -> Service<SimApp> {
    let name = format!("{} simulator", sim.kind().name());
    let mut service = Service::new(name, SimApp::new(sim));
    service.add_tcp(addr);
    service.threads = Some(2);
    service
}

/// The same over HTTPS, with the certificate chain and key of `files`.
pub fn tls_listening_service(
    sim: Arc<VendorSim>,
    addr: &str,
    files: &crate::TlsFiles,
) -> pingora::Result<Service<SimApp>> {
    let name = format!("{} simulator (TLS)", sim.kind().name());
    let mut service = Service::new(name, SimApp::new(sim));
    let (cert, key) = (files.cert.to_string_lossy(), files.key.to_string_lossy());
    match &files.client_ca {
        None => service.add_tls(addr, &cert, &key)?,
        Some(ca) => {
            use pingora::listeners::tls::TlsSettings;
            use pingora::tls::{CertificateDer, RootCertStore, WebPkiClientVerifier};
            let mut settings = TlsSettings::intermediate(&cert, &key)?;
            let der = pingora::tls::load_pem_file_ca(&ca.to_string_lossy().into_owned())?;
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from(der))
                .map_err(|e| pingora::Error::because(pingora::InternalError, "client CA", e))?;
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| pingora::Error::because(pingora::InternalError, "client CA", e))?;
            settings.set_client_cert_verifier(verifier);
            service.add_tls_with_settings(addr, None, settings);
        }
    }
    service.threads = Some(2);
    Ok(service)
}

/// What to do with the connection after the request was handled.
enum Outcome {
    /// Write this response and keep the connection if the client allows it.
    Respond(SimResponse),
    /// Write this response and close the connection.
    RespondAndClose(SimResponse),
    /// Write the header with a larger Content-Length than the bytes sent, then close.
    Truncate(SimResponse),
    /// Close without answering.
    Reset,
    /// Serve this event stream (`stream.rs`); with a count, cut it after that many messages.
    Stream(crate::stream::OpenStream, Option<u32>),
}

#[async_trait]
impl HttpServerApp for SimApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            _ => return None,
        }
        if *shutdown.borrow() {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(60));
        }
        let outcome = match read_request(&mut session).await {
            Ok(req) => self.dispatch(req).await,
            Err(ReadError::TooLarge) => Outcome::RespondAndClose(SimResponse::json(
                413,
                &serde_json::json!({"message": "Payload Too Large"}),
            )),
            Err(ReadError::Io) => return None,
        };
        match outcome {
            Outcome::Respond(resp) => {
                if write_response(&mut session, &resp).await.is_err() {
                    return None;
                }
                let settings = HttpPersistentSettings::for_session(&session);
                match session.finish().await {
                    Ok(Some(stream)) => {
                        Some(ReusedHttpStream::from_reusable_stream(stream, settings))
                    }
                    _ => None,
                }
            }
            Outcome::RespondAndClose(resp) => {
                session.set_keepalive(None);
                let _ = write_response(&mut session, &resp).await;
                let _ = session.finish().await;
                None
            }
            Outcome::Truncate(resp) => {
                let full = resp.body.len();
                let sent = resp.body.slice(..full / 2);
                if let Ok(mut header) = build_header(resp.status, &resp.headers, full + 64) {
                    let _ = header.insert_header("Connection", "close");
                    if session
                        .write_response_header(Box::new(header))
                        .await
                        .is_ok()
                    {
                        let _ = session.write_response_body(sent, false).await;
                    }
                }
                session.shutdown().await;
                None
            }
            Outcome::Reset => {
                session.shutdown().await;
                None
            }
            Outcome::Stream(open, cut_after) => {
                crate::stream::serve(&mut session, open, shutdown, cut_after).await;
                None
            }
        }
    }
}

enum ReadError {
    Io,
    TooLarge,
}

async fn read_request(session: &mut ServerSession) -> Result<SimRequest, ReadError> {
    let header = session.req_header();
    let method = header.method.as_str().to_string();
    let path = header.uri.path().to_string();
    let query = header.uri.query().map(str::to_string);
    let headers = header
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ReadError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Err(ReadError::Io),
        }
    }
    Ok(SimRequest {
        method,
        path,
        query,
        headers,
        body: Bytes::from(body),
    })
}

impl SimApp {
    async fn dispatch(&self, req: SimRequest) -> Outcome {
        if req.path.starts_with("/__sim/") || req.path == "/__sim" {
            return Outcome::Respond(self.control(&req));
        }
        self.sim.record(RecordedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
        });
        self.sim.released().await;
        let latency = self.sim.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let fault = self.sim.take_fault(&req.method, &req.path);
        if let Some(ms) = fault.as_ref().and_then(|f| f.latency_ms) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match fault.map(|f| f.action) {
            None | Some(FaultAction::None) => match self.sim.open_stream(&req) {
                None => Outcome::Respond(self.sim.handle(&req)),
                Some(Ok(open)) => Outcome::Stream(open, None),
                Some(Err(refused)) => Outcome::Respond(refused),
            },
            Some(FaultAction::Disconnect { after_events }) => match self.sim.open_stream(&req) {
                None => Outcome::Reset,
                Some(Ok(open)) => Outcome::Stream(open, Some(after_events)),
                Some(Err(refused)) => Outcome::Respond(refused),
            },
            Some(FaultAction::Status {
                status,
                body,
                headers,
            }) => Outcome::Respond(SimResponse {
                status,
                headers,
                body: Bytes::from(body),
            }),
            Some(FaultAction::Malformed) => Outcome::Respond(SimResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: Bytes::from_static(b"{\"message\": \"Success\", \"data\": [{\"id\": "),
            }),
            Some(FaultAction::Truncated) => {
                let full = self.sim.handle(&req);
                Outcome::Truncate(SimResponse {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: full.body,
                })
            }
            Some(FaultAction::Reset) => Outcome::Reset,
            Some(FaultAction::WrongShape) => Outcome::Respond(SimResponse::json(
                200,
                &serde_json::json!({"result": "ok", "items": "not-a-list", "count": "many"}),
            )),
        }
    }

    /// The `/__sim/*` control endpoints: faults and journal. Not recorded, not delayed.
    fn control(&self, req: &SimRequest) -> SimResponse {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/__sim/faults") => match serde_json::from_slice::<Fault>(&req.body) {
                Ok(fault) => {
                    self.sim.add_fault(fault);
                    SimResponse::empty(204)
                }
                Err(e) => SimResponse::json(
                    400,
                    &serde_json::json!({"message": format!("invalid fault: {e}")}),
                ),
            },
            ("DELETE", "/__sim/faults") => {
                self.sim.clear_faults();
                SimResponse::empty(204)
            }
            ("GET", "/__sim/requests") => {
                SimResponse::json(200, &serde_json::json!(self.sim.requests()))
            }
            ("DELETE", "/__sim/requests") => {
                self.sim.clear_requests();
                SimResponse::empty(204)
            }
            ("GET", "/__sim/health") => SimResponse::json(
                200,
                &serde_json::json!({"vendor": self.sim.kind().name(), "instance": self.sim.instance_id()}),
            ),
            _ => SimResponse::json(
                404,
                &serde_json::json!({"message": "unknown simulator control endpoint"}),
            ),
        }
    }
}

fn build_header(
    status: u16,
    headers: &[(String, String)],
    content_length: usize,
) -> pingora::Result<ResponseHeader> {
    let mut header = ResponseHeader::build(status, Some(headers.len() + 2))?;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        // Headers that are not valid HTTP (a fault may carry anything) are skipped.
        let _ = header.append_header(name.clone(), value.as_str());
    }
    // 204 must not carry a Content-Length (RFC 9110 §8.6); every other answer has one.
    if status != 204 {
        header.insert_header("Content-Length", content_length.to_string())?;
    }
    Ok(header)
}

async fn write_response(session: &mut ServerSession, resp: &SimResponse) -> pingora::Result<()> {
    let header = match build_header(resp.status, &resp.headers, resp.body.len()) {
        Ok(h) => h,
        Err(_) => {
            let fallback = Bytes::from_static(b"simulator: invalid fault status or header");
            let mut h = ResponseHeader::build(500, Some(2))?;
            h.insert_header("Content-Type", "text/plain")?;
            h.insert_header("Content-Length", fallback.len().to_string())?;
            session.write_response_header(Box::new(h)).await?;
            return session.write_response_body(fallback, true).await;
        }
    };
    session.write_response_header(Box::new(header)).await?;
    session.write_response_body(resp.body.clone(), true).await
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }
}
