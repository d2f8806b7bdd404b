//! The client connection: the API listener's application, and the only place that knows how
//! Pingora hands callgate a connection.
//!
//! Each connection is a loop over its requests: read a head within the connection's bounds
//! ([`head`]), let Pingora's HTTP/1 session parse it, answer it ([`request`]), then keep the
//! connection for the next request or close it. What cannot be a request (too slow, too large,
//! not HTTP) is answered here as a problem document with an `X-Request-Id`, logged and counted
//! like any other request, and the connection is closed.
//!
//! callgate speaks HTTP/1.1 (and 1.0) on its API listener, in clear text: TLS and HTTP/2 end at
//! the load balancer in front of it.

pub mod head;
mod request;

use crate::config::ConnectionLimits;
use crate::gateway::answer;
use crate::gateway::Gateway;
use async_trait::async_trait;
use bytes::BytesMut;
use head::{Head, Refusal};
use pingora::apps::ServerApp;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Instant;

/// The API listener's application: every connection's requests, answered by the gateway.
pub struct ApiApp {
    pub gateway: Arc<Gateway>,
}

/// How a request on a connection ended: the connection goes on to the next request, or not.
enum Next {
    Request { stream: Stream, prefix: BytesMut },
    Close,
}

impl ApiApp {
    /// Reads one request's head from `stream` and answers it.
    async fn one_request(
        &self,
        mut stream: Stream,
        prefix: BytesMut,
        kept_alive: bool,
        shutdown: &ShutdownWatch,
    ) -> Next {
        // The bounds of the config snapshot current when the request starts.
        let limits = self.gateway.runtime().settings.connection;
        // Between requests, a stopping server closes the connection: the client's next request
        // goes to the new process or another replica. A request already begun is answered.
        let mut stopping = shutdown.clone();
        let stop = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let head = head::read_head(&mut stream, &limits, prefix, kept_alive, stop).await;
        let started = Instant::now();
        let bytes = match head {
            Head::Read(bytes) => bytes,
            Head::Gone => return Next::Close,
            Head::Refused(refusal) => {
                refuse(
                    &self.gateway,
                    ServerSession::new_http1(stream),
                    refusal,
                    &limits,
                    started,
                )
                .await;
                return Next::Close;
            }
        };
        let mut session = ServerSession::new_http1(stream);
        // Requests a client sends before reading the answers (HTTP/1.1 pipelining) are answered
        // in order: what the session reads past this request comes back from `finish` as the
        // start of the next one.
        session.set_pipelining_enabled(true);
        session.set_pipelined_prefix(bytes);
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return Next::Close,
            // Pingora's parser refused what httparse let through (an ambiguous length or
            // authority, a target it cannot encode): the client's mistake all the same.
            Err(e) => {
                tracing::debug!(error = %e, "request head refused by the HTTP parser");
                refuse(&self.gateway, session, Refusal::Malformed, &limits, started).await;
                return Next::Close;
            }
        }
        if let request::Served::Stream(tail) =
            request::serve(&self.gateway, &mut session, &limits).await
        {
            // The stream goes on in a task of its own, on the bare connection; this
            // connection's task and its HTTP session end here.
            if let Some(conn) = request::into_connection(session) {
                tokio::spawn(tail.run(self.gateway.clone(), conn));
            }
            return Next::Close;
        }
        if *shutdown.borrow() {
            session.set_keepalive(None);
        }
        match session.finish().await {
            Ok(Some(reusable)) => {
                let (stream, prefix) = reusable.into_parts();
                Next::Request {
                    stream,
                    prefix: prefix.unwrap_or_default(),
                }
            }
            _ => Next::Close,
        }
    }
}

#[async_trait]
impl ServerApp for ApiApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut next = self
            .one_request(stream, BytesMut::new(), false, shutdown)
            .await;
        while let Next::Request { stream, prefix } = next {
            next = self.one_request(stream, prefix, true, shutdown).await;
        }
        None
    }
}

/// Answers a head that cannot be served with its problem document, logs and counts it like any
/// request, and closes the connection.
async fn refuse(
    gateway: &Gateway,
    mut session: ServerSession,
    refusal: Refusal,
    limits: &ConnectionLimits,
    started: Instant,
) {
    // The client's own id cannot be trusted from a head that could not be read.
    let request_id = answer::request_id(None);
    let _inflight = request::Inflight::new(gateway.metrics().inflight());
    let answer = request::refusal_answer(refusal, limits, &request_id);
    let written = match request::response_header(&answer, &request_id) {
        Ok(resp) => session
            .write_error_response(resp, answer.body.clone())
            .await
            .err(),
        Err(e) => Some(e),
    };
    session.shutdown().await;
    let line = request::LogLine {
        method: "",
        path: "",
        status: answer.status,
        request_id: &request_id,
        trace_id: None,
        started,
        error: written.as_ref().map(|e| e.etype().as_str()),
    };
    request::record(gateway, &line, &answer.outcome);
}
