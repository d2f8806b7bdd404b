//! Live call events — `GET /v1/calls/{id}/events` as `text/event-stream`.
//!
//! - **One reader per call** ([`Hub`]): every client watching a call shares one reader, which
//!   publishes each view of the call in a `watch` channel; it stops when the call has ended or
//!   the last client has left (clients hold the watched call; the reader holds it only weakly).
//!   Which reader is the adapter's word (`[events]`): [`source::poll`] reads the call through
//!   the vendor side (`get_call`: breaker, bulkhead, retries, health as for any read) every
//!   `[events] poll_ms` while it changes, backing off while it does not; [`upstream::stream`]
//!   reads the vendor's own stream of messages and the call's status from `get_call`.
//! - **Each client its own position** ([`EventStream`]): a [`Tracker`] from the client's
//!   `Last-Event-ID` (or `?after=`) turns each view into the events that client has not seen,
//!   so a client that reads slowly skips views but loses no message (views are cumulative),
//!   and memory per client is bounded by one view. A client that does not take a write within
//!   `slow_client_timeout_ms` is disconnected by the proxy; it resumes with the last id it read.
//! - **Bounds**: streams in all and per tenant (`429` over them, before the first byte), a
//!   maximum duration, a heartbeat comment, a `retry:` hint when the stream opens and when
//!   callgate ends it (duration reached, the process draining for a stop or an upgrade, or the
//!   vendor refusing to stream again).
//!
//! Anything refused before the stream starts (unknown call, other tenant's provider, limits,
//! the first read failing, the vendor refusing its stream) is an ordinary problem answer.

mod source;
mod upstream;

use super::plan::GetPlan;
use super::upstream::VendorSide;
use crate::canonical::events::{Event, Resume, Tracker};
use crate::canonical::{Call, ErrorCode, Problem};
use crate::config::{EventsSettings, Provider};
use bytes::Bytes;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;
use tokio::time::Instant;

/// The latest view of a watched call: the call, or why the last read failed.
type View = Arc<Published>;

/// A view as its reader published it.
struct Published {
    view: Result<Call, Problem>,
    /// When it was published: what a client's delivery time is measured from.
    at: Instant,
}

/// A call being watched; clients hold it, its poller only weakly.
struct Watched {
    views: watch::Receiver<Option<View>>,
}

/// The comment line sent as a heartbeat (an SSE comment: clients ignore it).
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// Why a stream ended (label `reason` of `callgate_event_streams_ended_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The call ended (`end` was sent).
    CallEnded,
    /// `max_duration_seconds` passed.
    MaxDuration,
    /// The process is stopping or handing over to a new binary.
    Draining,
    /// The client did not take a write in time.
    SlowClient,
    /// The client went away.
    ClientGone,
    /// The vendor refused to open its stream again (the client resumes later).
    UpstreamRefused,
}

impl Ended {
    const ALL: [Ended; 6] = [
        Ended::CallEnded,
        Ended::MaxDuration,
        Ended::Draining,
        Ended::SlowClient,
        Ended::ClientGone,
        Ended::UpstreamRefused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Ended::CallEnded => "call_ended",
            Ended::MaxDuration => "max_duration",
            Ended::Draining => "draining",
            Ended::SlowClient => "slow_client",
            Ended::ClientGone => "client_gone",
            Ended::UpstreamRefused => "upstream_refused",
        }
    }
}

/// The stream series: `callgate_event_streams_open`, `callgate_events_sent_total{event}`,
/// `callgate_event_reads_total{provider,result}`, `callgate_event_streams_ended_total{reason}`.
#[derive(Clone)]
struct EventMetrics {
    open: IntGauge,
    sent: IntCounterVec,
    reads: IntCounterVec,
    upstream: IntCounterVec,
    ended: IntCounterVec,
    delivery: Histogram,
}

impl EventMetrics {
    fn register(r: &Registry) -> EventMetrics {
        let open = IntGauge::new(
            "callgate_event_streams_open",
            "Live call event streams open now.",
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let sent = counter(
            "callgate_events_sent_total",
            "Events sent to stream clients, by event (message, status, end, heartbeat).",
            &["event"],
        );
        let reads = counter(
            "callgate_event_reads_total",
            "Reads of watched calls from their vendors (one per poll, shared by every client of the call), by result.",
            &["provider", "result"],
        );
        let upstream = counter(
            "callgate_event_upstream_connects_total",
            "Vendor event streams opened (one per watched call, and one per reconnect), by result (ok, refused, failed).",
            &["provider", "result"],
        );
        let ended = counter(
            "callgate_event_streams_ended_total",
            "Event streams ended, by reason (call_ended, max_duration, draining, slow_client, client_gone, upstream_refused).",
            &["reason"],
        );
        let delivery = Histogram::with_opts(
            HistogramOpts::new(
                "callgate_event_delivery_seconds",
                "From a vendor event (or a read that changed the call) to its event written to a client, per client.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid metric");
        for c in [
            Box::new(open.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(delivery.clone()),
            Box::new(sent.clone()),
            Box::new(reads.clone()),
            Box::new(upstream.clone()),
            Box::new(ended.clone()),
        ] {
            r.register(c).expect("unique metric");
        }
        for e in ["message", "status", "end", "heartbeat"] {
            sent.with_label_values(&[e]);
        }
        for e in Ended::ALL {
            ended.with_label_values(&[e.name()]);
        }
        EventMetrics {
            open,
            sent,
            reads,
            upstream,
            ended,
            delivery,
        }
    }
}

/// The watched calls and the open streams of one gateway.
pub struct Hub {
    watched: Mutex<HashMap<String, Weak<Watched>>>,
    open: Mutex<HashMap<String, usize>>,
    draining: watch::Sender<bool>,
    metrics: EventMetrics,
}

/// A client's place among the open streams; given back when the stream ends.
struct Slot {
    hub: Arc<Hub>,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.hub.open.lock() {
            if let Some(n) = open.get_mut(&self.tenant) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.tenant);
                }
            }
        }
        self.hub.metrics.open.dec();
    }
}

/// What a stream needs from the request that opens it.
pub struct Opening<'a> {
    pub tenant: &'a str,
    pub provider: Arc<Provider>,
    pub plan: GetPlan,
    /// The resume position as sent, and the field it came in (`Last-Event-ID` or `after`).
    pub resume: Option<(&'a str, &'a str)>,
    pub max_body: usize,
    pub settings: &'a EventsSettings,
}

impl Hub {
    pub fn new(registry: &Registry) -> Arc<Hub> {
        Arc::new(Hub {
            watched: Mutex::default(),
            open: Mutex::default(),
            draining: watch::channel(false).0,
            metrics: EventMetrics::register(registry),
        })
    }

    /// Ends every stream with a retry hint (the process stops or hands over); new ones are
    /// refused from now on.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    fn admit(self: &Arc<Self>, tenant: &str, s: &EventsSettings) -> Result<Slot, Problem> {
        if *self.draining.borrow() {
            return Err(Problem::new(
                ErrorCode::ProviderUnavailable,
                "this gateway is stopping; reconnect (another replica or the new process takes the stream)",
            ));
        }
        let mut open = match self.open.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let total: usize = open.values().sum();
        let mine = open.get(tenant).copied().unwrap_or(0);
        let over = if total >= s.max_streams {
            Some(format!(
                "{} event streams are open, the gateway's limit",
                s.max_streams
            ))
        } else if mine >= s.max_streams_per_tenant {
            Some(format!(
                "this tenant has {} event streams open, its limit",
                s.max_streams_per_tenant
            ))
        } else {
            None
        };
        if let Some(detail) = over {
            let mut p = Problem::new(
                ErrorCode::RateLimited,
                format!("{detail}; close one or retry later"),
            );
            p.retry_after = Some(s.retry_ms.div_ceil(1000).max(1).to_string());
            return Err(p);
        }
        *open.entry(tenant.to_string()).or_insert(0) += 1;
        self.metrics.open.inc();
        Ok(Slot {
            hub: self.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// Opens a stream: admitted, resumed, and the call read once (its first view, or the
    /// problem to answer instead).
    pub async fn open(
        self: &Arc<Self>,
        vendor: &Arc<VendorSide>,
        o: Opening<'_>,
    ) -> Result<EventStream, Problem> {
        let resume = match o.resume {
            Some((text, field)) => Resume::decode(text, field)?,
            None => Resume::start(),
        };
        let slot = self.admit(o.tenant, o.settings)?;
        let key = format!("{}\u{0}{}", o.provider.name, o.plan.call_id);
        let s = o.settings;
        let watched = self.watch(key, vendor, o.provider, o.plan, o.max_body, s);
        let mut views = watched.views.clone();
        let first = match views.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        match first.as_deref().map(|p| &p.view) {
            Some(Ok(_)) => {}
            Some(Err(p)) => return Err(p.clone()),
            None => {
                return Err(Problem::new(
                    ErrorCode::ProviderUnavailable,
                    "the call could not be read",
                ))
            }
        }
        let mut pending = VecDeque::new();
        let hint = sse_stream::Sse::default().retry(s.retry_ms).encode().ok();
        pending.extend(hint.map(|h| (h, None)));
        Ok(EventStream {
            _watched: watched,
            views,
            tracker: Tracker::new(resume),
            pending,
            in_flight: None,
            seen_first: false,
            heartbeat: tokio::time::interval_at(Instant::now() + s.heartbeat(), s.heartbeat()),
            ends_at: Instant::now() + s.max_duration(),
            draining: self.draining.subscribe(),
            retry_ms: s.retry_ms,
            ended: None,
            metrics: self.metrics.clone(),
            _slot: slot,
        })
    }

    /// The watched call for `key`, its poller started if nobody watches it yet.
    fn watch(
        self: &Arc<Self>,
        key: String,
        vendor: &Arc<VendorSide>,
        provider: Arc<Provider>,
        plan: GetPlan,
        max_body: usize,
        settings: &EventsSettings,
    ) -> Arc<Watched> {
        let mut map = match self.watched.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(w) = map.get(&key).and_then(Weak::upgrade) {
            return w;
        }
        let (tx, rx) = watch::channel(None);
        let watched = Arc::new(Watched { views: rx });
        map.insert(key.clone(), Arc::downgrade(&watched));
        let streams = provider.adapter.sse().is_some();
        let reader = source::Reader {
            hub: self.clone(),
            key,
            watched: Arc::downgrade(&watched),
            views: tx,
            vendor: vendor.clone(),
            provider,
            plan,
            max_body,
            fast: settings.poll(),
            slowest: settings.poll_quiet_max(),
            status_poll: settings.stream_status_poll(),
        };
        if streams {
            tokio::spawn(upstream::stream(reader));
        } else {
            tokio::spawn(source::poll(reader));
        }
        watched
    }
}

/// What woke a waiting stream.
enum Wake {
    /// A new view (false: the poller is gone).
    View(bool),
    Heartbeat,
    MaxDuration,
    Draining,
}

/// One client's stream: SSE chunks to write, until it ends.
pub struct EventStream {
    _watched: Arc<Watched>,
    views: watch::Receiver<Option<View>>,
    tracker: Tracker,
    /// Chunks to write, each with when the view it came from was published (events of views
    /// that arrived while the stream was open).
    pending: VecDeque<(Bytes, Option<Instant>)>,
    /// The publication time of the chunk being written.
    in_flight: Option<Instant>,
    /// The view present when the stream opened was turned into events.
    seen_first: bool,
    heartbeat: tokio::time::Interval,
    ends_at: Instant,
    draining: watch::Receiver<bool>,
    retry_ms: u64,
    ended: Option<Ended>,
    metrics: EventMetrics,
    _slot: Slot,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("position", self.tracker.position())
            .finish()
    }
}

impl EventStream {
    /// The next chunk to write, or `None` once the stream is over.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some((chunk, at)) = self.pending.pop_front() {
                self.in_flight = at;
                return Some(chunk);
            }
            if self.ended.is_some() {
                return None;
            }
            if !self.seen_first {
                self.seen_first = true;
                self.take_view(false);
                continue;
            }
            let wake = tokio::select! {
                changed = self.views.changed() => Wake::View(changed.is_ok()),
                _ = self.heartbeat.tick() => Wake::Heartbeat,
                _ = tokio::time::sleep_until(self.ends_at) => Wake::MaxDuration,
                _ = self.draining.wait_for(|d| *d) => Wake::Draining,
            };
            match wake {
                Wake::View(true) => self.take_view(true),
                // The poller stopped without an end (it ends only with the call).
                Wake::View(false) => self.end(Ended::CallEnded),
                Wake::Heartbeat => {
                    self.metrics.sent.with_label_values(&["heartbeat"]).inc();
                    self.pending
                        .push_back((Bytes::from_static(HEARTBEAT), None));
                }
                Wake::MaxDuration => self.end(Ended::MaxDuration),
                Wake::Draining => self.end(Ended::Draining),
            }
        }
    }

    /// The client did not take a write in time (`slow`), or went away: the stream is over.
    pub fn abandoned(&mut self, slow: bool) {
        if self.ended.is_none() {
            let why = if slow {
                Ended::SlowClient
            } else {
                Ended::ClientGone
            };
            self.ended = Some(why);
            self.metrics.ended.with_label_values(&[why.name()]).inc();
        }
    }

    /// The last chunk [`next`](Self::next) gave was written to the client: its delivery time
    /// is observed when it carried an event of a view that arrived while the stream was open.
    pub fn written(&mut self) {
        if let Some(at) = self.in_flight.take() {
            self.metrics.delivery.observe(at.elapsed().as_secs_f64());
        }
    }

    /// Why the stream ended, once it has.
    pub fn ended(&self) -> Option<Ended> {
        self.ended
    }

    /// Turns the latest view into events; `timed`: it arrived while the stream was open.
    fn take_view(&mut self, timed: bool) {
        let view = self.views.borrow_and_update().clone();
        let Some(published) = view else { return };
        let at = timed.then_some(published.at);
        let call = match &published.view {
            Ok(call) => call,
            // Published only when the vendor refused to go on streaming: the client resumes
            // later from its last id.
            Err(_) => return self.end(Ended::UpstreamRefused),
        };
        let now = crate::canonical::timestamp::now();
        for e in self.tracker.observe(call, &now) {
            self.send(&e, at);
        }
        if self.tracker.ended() {
            self.ended = Some(Ended::CallEnded);
            self.metrics
                .ended
                .with_label_values(&[Ended::CallEnded.name()])
                .inc();
        }
    }

    fn send(&mut self, e: &Event, at: Option<Instant>) {
        let framed = sse_stream::Sse::default()
            .event(e.kind.name())
            .id(e.id.clone())
            .data(e.data.clone())
            .encode();
        if let Ok(chunk) = framed {
            self.metrics.sent.with_label_values(&[e.kind.name()]).inc();
            self.pending.push_back((chunk, at));
        }
    }

    /// callgate ends the stream: a retry hint, and the client resumes from its last id.
    fn end(&mut self, why: Ended) {
        if let Ok(hint) = sse_stream::Sse::default().retry(self.retry_ms).encode() {
            self.pending.push_back((hint, None));
        }
        self.ended = Some(why);
        self.metrics.ended.with_label_values(&[why.name()]).inc();
    }
}
