//! The link to Redis that every shared store goes through: a few multiplexed connections
//! (redis-rs's `ConnectionManager`, which reconnects by itself, or a Cluster connection), one
//! deadline for every call, and a short back-off after a failure so that while Redis is down a
//! request pays nothing for it (the stores fall back at once instead of each waiting out a
//! timeout). It also owns the state metrics and what `/readyz` says of Redis.
//!
//! Nothing here knows what the stores keep: they hand [`RedisLink::exec`] a closure over a
//! connection and get its result or a [`StateError`].

use crate::config::{RedisMode, RedisSettings};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// After a failed call, Redis is not tried again for this long: the stores fall back at once.
const BACK_OFF: Duration = Duration::from_millis(250);

/// What a shared store uses Redis for (label `function` of the state metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Idempotency,
    RateLimit,
    Invalidation,
}

impl Function {
    const ALL: [Function; 3] = [
        Function::Idempotency,
        Function::RateLimit,
        Function::Invalidation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Idempotency => "idempotency",
            Function::RateLimit => "rate_limit",
            Function::Invalidation => "invalidation",
        }
    }
}

/// Why a Redis call gave no answer. Messages never carry the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("Redis was unreachable moments ago; not tried again yet")]
    BackingOff,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis failed ({0:?})")]
    Redis(redis::ErrorKind),
}

/// One connection of the pool.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The state series: `callgate_state_operations_total{function,result}`,
/// `callgate_state_operation_duration_seconds{function}`, `callgate_state_fallbacks_total{function}`
/// and `callgate_state_up`.
#[derive(Clone)]
pub struct StateMetrics {
    ops: IntCounterVec,
    duration: HistogramVec,
    fallbacks: IntCounterVec,
    up: IntGauge,
}

impl StateMetrics {
    pub fn register(r: &Registry) -> StateMetrics {
        let ops = IntCounterVec::new(
            Opts::new(
                "callgate_state_operations_total",
                "Calls to the shared state store (Redis), by function and result (ok, error, timeout, backing_off).",
            ),
            &["function", "result"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "callgate_state_operation_duration_seconds",
                "Time of one call to the shared state store, by function.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0,
            ]),
            &["function"],
        )
        .expect("valid metric");
        let fallbacks = IntCounterVec::new(
            Opts::new(
                "callgate_state_fallbacks_total",
                "Requests served by a function's fallback (local state, or refused) because the shared state store failed.",
            ),
            &["function"],
        )
        .expect("valid metric");
        let up = IntGauge::new(
            "callgate_state_up",
            "1 when the last call to the shared state store succeeded, else 0.",
        )
        .expect("valid metric");
        for c in [
            Box::new(ops.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(fallbacks.clone()),
            Box::new(up.clone()),
        ] {
            r.register(c).expect("unique metric");
        }
        for f in Function::ALL {
            for result in ["ok", "error", "timeout", "backing_off"] {
                ops.with_label_values(&[f.name(), result]);
            }
            fallbacks.with_label_values(&[f.name()]);
        }
        StateMetrics {
            ops,
            duration,
            fallbacks,
            up,
        }
    }

    /// One request served by `function`'s fallback.
    pub fn fell_back(&self, function: Function) {
        self.fallbacks.with_label_values(&[function.name()]).inc();
    }
}

/// The shared connections to Redis.
pub struct RedisLink {
    settings: RedisSettings,
    slots: Vec<OnceCell<Conn>>,
    /// Cluster mode: a connection to the node of the first URL (see [`RedisLink::conn_for`]).
    first_node: OnceCell<Conn>,
    next: AtomicUsize,
    /// Milliseconds since `born` before which Redis is not tried (0: try).
    back_off_until: AtomicU64,
    born: Instant,
    ever_up: AtomicBool,
    up: AtomicBool,
    pub metrics: StateMetrics,
}

impl RedisLink {
    pub fn new(settings: RedisSettings, metrics: StateMetrics) -> RedisLink {
        RedisLink {
            slots: (0..settings.pool_size).map(|_| OnceCell::new()).collect(),
            first_node: OnceCell::new(),
            settings,
            next: AtomicUsize::new(0),
            back_off_until: AtomicU64::new(0),
            born: Instant::now(),
            ever_up: AtomicBool::new(false),
            up: AtomicBool::new(false),
            metrics,
        }
    }

    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// `{prefix}:{rest}`: every key and channel of this gateway.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.settings.key_prefix)
    }

    /// Whether the last call succeeded.
    pub fn reachable(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether any call ever succeeded.
    pub fn ever_reachable(&self) -> bool {
        self.ever_up.load(Ordering::Relaxed)
    }

    /// A client for the first URL (the pub/sub subscriber's; in a cluster any node hears every
    /// PUBLISH).
    pub fn first_client(&self) -> redis::RedisResult<redis::Client> {
        let url = self.settings.urls.first().map(|u| u.expose()).unwrap_or("");
        redis::Client::open(url)
    }

    /// Pings Redis over a connection of its own (not the pool's: a pooled connection's driver
    /// runs on the runtime that opened it, and the prober's is not the API's), noting whether
    /// it answered.
    pub async fn probe(&self) -> bool {
        let bound = self.settings.command_timeout + self.settings.connect_timeout;
        let ping = async {
            let client = self.first_client()?;
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        let ok = matches!(tokio::time::timeout(bound, ping).await, Ok(Ok(_)));
        if ok {
            self.ever_up.store(true, Ordering::Relaxed);
        }
        self.up.store(ok, Ordering::Relaxed);
        self.metrics.up.set(i64::from(ok));
        ok
    }

    /// A reconnecting connection to the first URL's server.
    async fn connect_first(&self) -> redis::RedisResult<Conn> {
        let s = &self.settings;
        let url = s.urls.first().map(|u| u.expose()).unwrap_or("");
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(s.connect_timeout))
            .set_response_timeout(Some(s.command_timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(3);
        let c = ConnectionManager::new_with_config(redis::Client::open(url)?, config).await?;
        Ok(Conn::Single(c))
    }

    async fn connect(&self) -> redis::RedisResult<Conn> {
        let s = &self.settings;
        let urls: Vec<&str> = s.urls.iter().map(|u| u.expose()).collect();
        match s.mode {
            RedisMode::Standalone => self.connect_first().await,
            RedisMode::Cluster => {
                let client = redis::cluster::ClusterClient::builder(urls)
                    .connection_timeout(s.connect_timeout)
                    .response_timeout(s.command_timeout)
                    .retries(1)
                    .build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// The connection for `function`. In a cluster, invalidations are published on the node
    /// every replica subscribes on (the first URL): that node has handed the message to its
    /// subscribers when PUBLISH returns, where a message through the cluster bus could still
    /// be on its way when the write is answered.
    async fn conn_for(&self, function: Function) -> redis::RedisResult<Conn> {
        if function == Function::Invalidation && self.settings.mode == RedisMode::Cluster {
            return self
                .first_node
                .get_or_try_init(|| self.connect_first())
                .await
                .cloned();
        }
        self.conn().await
    }

    async fn conn(&self) -> redis::RedisResult<Conn> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len().max(1);
        let slot = &self.slots[i];
        slot.get_or_try_init(|| self.connect()).await.cloned()
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Runs `call` on a pooled connection within the command deadline (connecting first if
    /// need be), counting it. While backing off after a failure it is not run at all.
    pub async fn exec<T, F, Fut>(&self, function: Function, call: F) -> Result<T, StateError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let f = function.name();
        if self.now_ms() < self.back_off_until.load(Ordering::Relaxed) {
            self.metrics
                .ops
                .with_label_values(&[f, "backing_off"])
                .inc();
            return Err(StateError::BackingOff);
        }
        let started = Instant::now();
        // One bound for connecting and the command together.
        let bound = self.settings.command_timeout + self.settings.connect_timeout;
        let result = tokio::time::timeout(bound, async {
            let c = self.conn_for(function).await?;
            call(c).await
        })
        .await;
        self.metrics
            .duration
            .with_label_values(&[f])
            .observe(started.elapsed().as_secs_f64());
        let (label, out) = match result {
            Ok(Ok(v)) => ("ok", Ok(v)),
            Ok(Err(e)) if e.is_timeout() => ("timeout", Err(StateError::Timeout(bound))),
            Ok(Err(e)) => ("error", Err(StateError::Redis(e.kind()))),
            Err(_) => ("timeout", Err(StateError::Timeout(bound))),
        };
        self.metrics.ops.with_label_values(&[f, label]).inc();
        let ok = out.is_ok();
        if ok {
            self.ever_up.store(true, Ordering::Relaxed);
            self.back_off_until.store(0, Ordering::Relaxed);
        } else {
            let until = self.now_ms() + BACK_OFF.as_millis() as u64;
            self.back_off_until.store(until, Ordering::Relaxed);
        }
        if self.up.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!(function = f, "shared state store (Redis) reachable");
            } else if let Err(e) = &out {
                tracing::warn!(function = f, error = %e, "shared state store (Redis) unreachable; functions fall back as configured");
            }
        }
        self.metrics.up.set(i64::from(ok));
        out
    }
}
