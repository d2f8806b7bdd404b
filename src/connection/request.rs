//! One request on a client connection, once its head is read: its body read (after
//! authentication, within the limit and the body deadline), handed to the [`Gateway`], the answer
//! written (a body, or a live event stream), then the request's one log line and its metrics.
//!
//! callgate answers every request itself: a vendor status can depend on the vendor's body (an
//! error envelope inside a 200, a body that cannot be normalized), so the exchange with the vendor
//! happens *before* the client's status line is written (PINGORA-NOTES: "Rewriting response
//! bodies"). Pingora's HTTP session does the framing; no proxy hook is involved.

use super::head::Refusal;
use crate::canonical::handling::Handling;
use crate::canonical::Problem;
use crate::config::ConnectionLimits;
use crate::gateway::answer::{self, problem_answer, Answer, Outcome};
use crate::gateway::auth::Authorization;
use crate::gateway::events::EventStream;
use crate::gateway::{Body, Gateway, Incoming};
use crate::metrics::RequestRecord;
use crate::telemetry;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession as Session;
use pingora::protocols::Stream;
use prometheus::IntGauge;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tracing::Instrument;

/// Counts a request in `callgate_inflight_requests` for as long as it lives.
pub struct Inflight(IntGauge);

impl Inflight {
    pub fn new(gauge: &IntGauge) -> Inflight {
        gauge.inc();
        Inflight(gauge.clone())
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Per-request state: only what the log line and the metrics need.
struct RequestCtx {
    started: Instant,
    request_id: String,
    /// The W3C trace id of the request (the client's trace, or one started here).
    trace_id: Option<String>,
    status: u16,
    outcome: Outcome,
    _inflight: Inflight,
}

impl RequestCtx {
    /// The request's log line and metrics, once it is answered (or failed to be).
    fn record(&self, gateway: &Gateway, method: &str, path: &str, error: Option<&str>) {
        let line = LogLine {
            method,
            path,
            status: self.status,
            request_id: &self.request_id,
            trace_id: self.trace_id.as_deref(),
            started: self.started,
            error,
        };
        record(gateway, &line, &self.outcome);
    }
}

fn header<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

/// The `Authorization` header as sent: absent, one value, or more than one.
fn authorization(session: &Session) -> Authorization<'_> {
    let mut values = session.req_header().headers.get_all("authorization").iter();
    match (values.next(), values.next()) {
        (None, _) => Authorization::Absent,
        (Some(v), None) => Authorization::Value(v.as_bytes()),
        (Some(_), Some(_)) => Authorization::Repeated,
    }
}

/// `Cache-Control: no-cache` (or the HTTP/1.0 `Pragma: no-cache`) from the client.
fn wants_fresh(session: &Session) -> bool {
    let has = |name: &str| {
        session
            .req_header()
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
    };
    has("cache-control") || has("pragma")
}

/// The request body as read from the client.
enum ReadBody {
    None,
    Read(Vec<u8>),
    TooLarge,
    Unreadable(&'static str),
}

impl ReadBody {
    fn as_body(&self) -> Body<'_> {
        match self {
            ReadBody::None => Body::None,
            ReadBody::Read(b) => Body::Read(b),
            ReadBody::TooLarge => Body::TooLarge,
            ReadBody::Unreadable(why) => Body::Unreadable(why),
        }
    }
}

/// Reads the request body up to `limit` bytes. A body over it, or one whose framing broke (bad
/// chunk encoding, cut short), is the client's: the gateway answers it, and the connection is
/// not reused (the rest is left unread, or the stream is no longer in step).
///
/// The body of a client without a valid gateway key is not read at all (it is answered 401; the
/// connection is not reused): a stranger cannot make callgate wait for, or buffer, a body.
/// How much of a body over the limit is read and dropped before the 413, and for how long at
/// most: a client that sends its whole body before it reads gets the 413 rather than a reset
/// connection (a bounded lingering close). Past either bound the connection is closed.
const DISCARD_BOUND: usize = 8 * 1024 * 1024;
const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and drops what is left of a body that is over the limit, within the bounds above.
async fn discard_rest(session: &mut Session) {
    let drain = async {
        let mut left = DISCARD_BOUND;
        while let Ok(Some(chunk)) = session.read_request_body().await {
            if chunk.len() >= left {
                break;
            }
            left -= chunk.len();
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

async fn read_body(session: &mut Session, limit: usize, gateway: &Gateway) -> ReadBody {
    if matches!(session.req_header().method.as_str(), "GET" | "HEAD") {
        return ReadBody::None;
    }
    let declared = header(session, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
    // A client that sent `Expect: 100-continue` waits for a `100 Continue` before its body
    // (curl for bodies over 1 KiB, .NET, Java): without one it waits a second or more. It is
    // sent only once the request is known to be read: a refusal comes instead, and then the
    // body is never sent, so nothing is left to discard.
    // (An HTTP/1.0 client is sent none: RFC 9110 §10.1.1.)
    let expects_continue = session.req_header().version == http::Version::HTTP_11
        && session
            .req_header()
            .headers
            .get("expect")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if declared.is_some_and(|n| n > limit) {
        session.set_keepalive(None);
        if !expects_continue && declared.is_some_and(|n| n <= DISCARD_BOUND) {
            discard_rest(session).await;
        }
        return ReadBody::TooLarge;
    }
    // Asked only here, where a body is to be read: a GET is authenticated once, by the gateway.
    if !gateway.authenticates(authorization(session)) {
        session.set_keepalive(None);
        return ReadBody::None;
    }
    if expects_continue {
        // Pingora turns keep-alive off for any header written before the body is read; the
        // body is read whole below, so the connection stays reusable.
        let keepalive = session.get_keepalive();
        if let Err(e) = session.write_continue_response().await {
            session.set_keepalive(None);
            return ReadBody::Unreadable(e.etype().as_str());
        }
        session.set_keepalive(keepalive);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    session.set_keepalive(None);
                    discard_rest(session).await;
                    return ReadBody::TooLarge;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return ReadBody::Read(body),
            Err(e) => {
                session.set_keepalive(None);
                return ReadBody::Unreadable(e.etype().as_str());
            }
        }
    }
}

/// Writes an event stream's chunks as they come, straight to the client's connection; says why
/// it ended. A write the client does not take within `slow` ends it (the client resumes with the
/// last id it read), as does a client that goes away: its close (or anything it sends) is seen
/// while the stream waits for its next chunk, not at the next write (which may be a heartbeat
/// many seconds later). The body is delimited by the connection's close (the header said
/// `Connection: close`), so a chunk is written as it is: no framing.
async fn write_stream(conn: &mut Stream, mut events: EventStream, slow: Duration) -> &'static str {
    // The header may still be in the connection's write buffer.
    let mut open = matches!(timeout(slow, conn.flush()).await, Ok(Ok(())));
    if !open {
        events.abandoned(false);
    }
    while open {
        // What is ready is written first: a client that shut its side after a whole request
        // (`nc -N`) still gets a finished call's events; its close ends the stream only when
        // the stream would wait.
        let chunk = tokio::select! {
            biased;
            chunk = events.next() => chunk,
            _ = client_leaves(conn) => {
                events.abandoned(false);
                break;
            }
        };
        let Some(chunk) = chunk else { break };
        match timeout(slow, write_chunk(conn, &chunk)).await {
            Ok(Ok(())) => events.written(),
            Ok(Err(_)) => {
                events.abandoned(false);
                open = false;
            }
            Err(_) => {
                events.abandoned(true);
                open = false;
            }
        }
    }
    let _ = timeout(slow, conn.shutdown()).await;
    events.ended().map_or("", |e| e.name())
}

async fn write_chunk(conn: &mut Stream, chunk: &[u8]) -> std::io::Result<()> {
    conn.write_all(chunk).await?;
    conn.flush().await
}

/// Resolves when the stream's client closes its side or sends anything (nothing more is
/// expected from it).
async fn client_leaves(conn: &mut Stream) {
    let mut byte = [0u8; 1];
    let _ = conn.read(&mut byte).await;
}

/// The request as a [`Incoming`] for the gateway, its body already read.
fn incoming<'s>(session: &'s Session, request_id: &'s str, body: &'s ReadBody) -> Incoming<'s> {
    let req = session.req_header();
    Incoming {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query(),
        authorization: authorization(session),
        request_id,
        no_cache: wants_fresh(session),
        body: body.as_body(),
        content_type: req.headers.get("content-type").map(|v| v.as_bytes()),
        idempotency_key: req.headers.get("idempotency-key").map(|v| v.as_bytes()),
        prefer: Handling::from_prefer(req.headers.get_all("prefer").iter().map(|v| v.as_bytes())),
        timeout: req
            .headers
            .get("x-request-timeout-ms")
            .map(|v| v.as_bytes()),
        last_event_id: req.headers.get("last-event-id").map(|v| v.as_bytes()),
    }
}

/// A request the connection refuses itself, as a problem answer carrying `request_id`.
pub fn refusal_answer(refusal: Refusal, limits: &ConnectionLimits, request_id: &str) -> Answer {
    let code = refusal.code();
    let mut answer = Answer::stored(problem_answer(
        Problem::new(code, refusal.detail(limits)),
        request_id,
    ));
    answer.outcome.code = Some(code);
    answer
}

/// The response head of `answer`.
pub fn response_header(answer: &Answer, request_id: &str) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(answer.status, Some(6))?;
    resp.insert_header("Content-Type", answer.content_type)?;
    // An event stream's body is delimited by the connection's close (RFC 9112 §6.3): its
    // session sets `Connection: close`, and its events are written as they are.
    if answer.stream.is_none() {
        resp.insert_header("Content-Length", answer.body.len().to_string())?;
    }
    resp.insert_header("X-Request-Id", request_id)?;
    if let Some(cache) = answer.outcome.cache {
        resp.insert_header("Cache-Status", cache.header)?;
    }
    if answer.status == 401 {
        resp.insert_header("WWW-Authenticate", "Bearer realm=\"callgate\"")?;
    }
    if let Some(retry_after) = &answer.retry_after {
        resp.insert_header("Retry-After", retry_after)?;
    }
    for (name, value) in &answer.headers {
        resp.insert_header(*name, value)?;
    }
    Ok(resp)
}

/// How a request was served: done, or an event stream whose header is written and whose
/// events are still to come.
pub enum Served {
    Done,
    Stream(Box<StreamTail>),
}

/// The rest of an event stream's answer, written by [`StreamTail::run`] on a task of its own
/// straight to the connection: a stream can stay open for an hour, and neither the task that read
/// its request (Pingora's connection task and callgate's request futures, about 20 KiB) nor
/// Pingora's HTTP session (the request's and answer's headers, its buffers) need live that long.
/// Its request's trace span ends with the header; its log line is written when the stream ends.
pub struct StreamTail {
    ctx: RequestCtx,
    stream: EventStream,
    slow: Duration,
    /// The request's path, for the log line (the method is GET).
    path: Box<str>,
}

impl StreamTail {
    /// Writes the stream's events to `conn` until it ends, then its log line and metrics.
    pub async fn run(self: Box<Self>, gateway: Arc<Gateway>, mut conn: Stream) {
        let StreamTail {
            mut ctx,
            stream,
            slow,
            path,
        } = *self;
        ctx.outcome.stream_end = Some(write_stream(&mut conn, stream, slow).await);
        drop(conn);
        ctx.record(&gateway, "GET", &path, None);
    }
}

/// The client's connection of a session whose stream answer's header is written (HTTP/1: the
/// only kind served here).
pub fn into_connection(session: Session) -> Option<Stream> {
    match session {
        Session::H1(h1) => Some(h1.into_inner()),
        _ => None,
    }
}

/// Answers the request whose head `session` has read, then writes its log line and records
/// its metrics — or, for an event stream, hands back the rest to write. On [`Served::Done`] the
/// session is ready to be finished (and its connection reused, if keep-alive is still on).
pub async fn serve(gateway: &Gateway, session: &mut Session, limits: &ConnectionLimits) -> Served {
    let mut ctx = RequestCtx {
        started: Instant::now(),
        request_id: answer::request_id(header(session, "x-request-id")),
        trace_id: None,
        status: 0,
        outcome: Outcome::default(),
        _inflight: Inflight::new(gateway.metrics().inflight()),
    };
    let (span, trace_id) = telemetry::request_span(
        &session.req_header().headers,
        session.req_header().method.as_str(),
        &ctx.request_id,
    );
    ctx.trace_id = trace_id;
    let result = answer_request(gateway, session, limits, &mut ctx)
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", i64::from(ctx.status));
    match result {
        Ok(Some(stream)) => Served::Stream(Box::new(StreamTail {
            ctx,
            stream,
            slow: gateway.runtime().settings.events.slow_client_timeout(),
            path: session.req_header().uri.path().into(),
        })),
        Ok(None) => {
            record_request(gateway, session, &ctx, None);
            Served::Done
        }
        Err(e) => {
            // The answer was not (wholly) written: the connection cannot carry another one.
            session.set_keepalive(None);
            record_request(gateway, session, &ctx, Some(e.etype().as_str()));
            Served::Done
        }
    }
}

/// The log line and metrics of a request whose head was read.
fn record_request(gateway: &Gateway, session: &Session, ctx: &RequestCtx, error: Option<&str>) {
    let req = session.req_header();
    ctx.record(gateway, req.method.as_str(), req.uri.path(), error);
}

/// Reads the body, asks the gateway, writes the answer — all of it, or an event stream's
/// header (the stream is returned, to be written after).
async fn answer_request(
    gateway: &Gateway,
    session: &mut Session,
    limits: &ConnectionLimits,
    ctx: &mut RequestCtx,
) -> Result<Option<EventStream>> {
    let settings = &gateway.runtime().settings;
    // Keep-alive as Pingora's parser decided it (off for HTTP/1.0 without `keep-alive`, for
    // `Connection: close`, for a request with both a length and chunked framing), with callgate's
    // idle timeout when on; reading a broken body below turns it off for good.
    if session.get_keepalive().is_some() {
        session.set_keepalive(Some(limits.idle_timeout_s()));
    }
    // Each read of the body is bounded by the body deadline below (not Pingora's 60 s per read),
    // and each write of the answer by it too: a client that does not take its answer does not
    // hold the connection and its task for ever. (A stream sets its own bound.)
    session.set_read_timeout(Some(limits.body_timeout));
    session.set_write_timeout(Some(limits.body_timeout));
    let reading = read_body(session, settings.max_body_bytes, gateway);
    let mut answer = match tokio::time::timeout(limits.body_timeout, reading).await {
        Ok(body) => {
            let incoming = incoming(session, &ctx.request_id, &body);
            // Boxed: the gateway's future (plans, vendor exchanges) is freed once it answers,
            // not held for as long as an event stream it returns is written.
            Box::pin(gateway.handle(incoming)).await
        }
        Err(_) => {
            session.set_keepalive(None);
            refusal_answer(Refusal::BodyTimeout, limits, &ctx.request_id)
        }
    };
    let resp = response_header(&answer, &ctx.request_id)?;
    let head_only = session.req_header().method == "HEAD";
    let stream = answer.stream.take().filter(|_| !head_only);
    if stream.is_some() {
        // The connection ends with the stream (its client reconnects anyway).
        session.set_keepalive(None);
    }
    ctx.status = answer.status;
    ctx.outcome = std::mem::take(&mut answer.outcome);
    // Pingora bounds body writes by the write timeout, not the header's.
    match tokio::time::timeout(
        limits.body_timeout,
        session.write_response_header(Box::new(resp)),
    )
    .await
    {
        Ok(written) => written?,
        Err(_) => return Error::e_explain(ErrorType::WriteTimedout, "writing the response header"),
    }
    if stream.is_none() && !head_only {
        session.write_response_body(answer.body, true).await?;
    }
    Ok(stream)
}

/// What the request's log line says beside its [`Outcome`].
pub struct LogLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub request_id: &'a str,
    pub trace_id: Option<&'a str>,
    pub started: Instant,
    /// Why writing the answer failed, if it did (Pingora's error kind).
    pub error: Option<&'a str>,
}

/// Records a request's metrics and writes its one log line.
pub fn record(gateway: &Gateway, line: &LogLine<'_>, o: &Outcome) {
    let total = line.started.elapsed();
    gateway.metrics().record(&RequestRecord {
        provider: o.provider.as_deref(),
        operation: o.operation,
        code: o.code,
        total,
        upstream: o.upstream,
        upstream_error: o.upstream_error,
        cache: o.cache.map(|c| c.result),
        drift: &o.drift,
    });
    for d in &o.drift {
        tracing::debug!(
            provider = o.provider.as_deref().unwrap_or(""),
            field = d.field,
            kind = d.kind.name(),
            "vendor drift"
        );
    }
    tracing::info!(
        target: "callgate::request",
        request_id = %line.request_id,
        trace_id = line.trace_id.unwrap_or(""),
        method = %line.method,
        path = %line.path,
        status = line.status,
        code = o.code.map(|c| c.name()).unwrap_or(""),
        tenant = o.tenant.as_deref().unwrap_or(""),
        provider = o.provider.as_deref().unwrap_or(""),
        operation = o.operation.map(|op| op.name()).unwrap_or(""),
        cache = o.cache.map(|c| c.result.name()).unwrap_or(""),
        total_ms = total.as_secs_f64() * 1000.0,
        upstream_ms = o.upstream.as_secs_f64() * 1000.0,
        upstream_error = o.upstream_error.unwrap_or(""),
        drift = o.drift.len(),
        error = line.error.unwrap_or(""),
        stream_end = o.stream_end.unwrap_or(""),
        "request"
    );
}
