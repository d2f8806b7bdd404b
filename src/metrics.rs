//! Prometheus metrics: every series of DESIGN.md's "Metrics", registered once, rendered in the
//! text format on the admin listener's `/metrics` (with the process collector's `process_*` and
//! the allocator's `callgate_memory_*`, [`crate::memory`]).
//!
//! Label values come only from closed sets: provider names from config (or `none`), fixed
//! operation names, fixed error codes, fixed kinds. Nothing a client sends becomes a label.

use crate::adapter::rules::Drift;
use crate::canonical::{ErrorCode, Operation};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::time::Duration;

/// Histogram buckets from 100 µs to 30 s, in a 1–2.5–5 series people can read on a dashboard.
const LATENCY_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// How a cache lookup went (label `result` of `callgate_cache_requests_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    /// Served stale because the vendor failed (stale-if-error).
    Stale,
    Miss,
    /// Waited for another request's identical miss (single-flight).
    Collapsed,
    /// The client asked for a fresh answer (`Cache-Control: no-cache`) or caching is off.
    Bypass,
}

impl CacheResult {
    pub fn name(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Stale => "stale",
            CacheResult::Miss => "miss",
            CacheResult::Collapsed => "collapsed",
            CacheResult::Bypass => "bypass",
        }
    }
}

/// One finished request, as the metrics see it.
pub struct RequestRecord<'a> {
    pub provider: Option<&'a str>,
    pub operation: Option<Operation>,
    pub code: Option<ErrorCode>,
    pub total: Duration,
    pub upstream: Duration,
    pub upstream_error: Option<&'static str>,
    pub cache: Option<CacheResult>,
    pub drift: &'a [Drift],
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_duration: HistogramVec,
    overhead_duration: HistogramVec,
    upstream_errors: IntCounterVec,
    cache_requests: IntCounterVec,
    cache_bytes: IntGauge,
    inflight: IntGauge,
    config_reloads: IntCounterVec,
    list_incomplete: IntCounterVec,
    fields_dropped: IntCounterVec,
    config_last_reload: Gauge,
    drift: IntCounterVec,
    circuit_open: IntGaugeVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The registry, for series a module owns itself (the shared state's).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn new() -> Metrics {
        let m = Metrics::register();
        m.touch();
        m
    }

    fn register() -> Metrics {
        let r = Registry::new();
        let cache_bytes = IntGauge::new(
            "callgate_cache_bytes",
            "Bytes held by the response cache (weighed).",
        )
        .expect("valid");
        let inflight = IntGauge::new("callgate_inflight_requests", "Requests being handled now.")
            .expect("valid");
        let config_last_reload = Gauge::new(
            "callgate_config_last_reload_timestamp_seconds",
            "Unix time of the last successful config load.",
        )
        .expect("valid");
        for g in [
            Box::new(cache_bytes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(inflight.clone()),
            Box::new(config_last_reload.clone()),
        ] {
            r.register(g).expect("unique metric");
        }
        #[cfg(target_os = "linux")]
        {
            let _ = r.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        if let Some(allocator) = crate::memory::collector() {
            let _ = r.register(allocator);
        }
        Metrics {
            requests: counter(&r, "callgate_requests_total", "Requests answered, by provider, operation and code (ok or the problem code).", &["provider", "operation", "code"]),
            request_duration: histogram(&r, "callgate_request_duration_seconds", "Time from request to answer.", &["operation"]),
            upstream_duration: histogram(&r, "callgate_upstream_duration_seconds", "Time waiting on the vendor.", &["provider", "operation"]),
            overhead_duration: histogram(&r, "callgate_overhead_duration_seconds", "Time spent in callgate itself: total minus time waiting on the vendor.", &["operation"]),
            upstream_errors: counter(&r, "callgate_upstream_errors_total", "Failed vendor exchanges, by kind.", &["provider", "kind"]),
            cache_requests: counter(&r, "callgate_cache_requests_total", "Cache lookups, by result.", &["result"]),
            config_reloads: counter(&r, "callgate_config_reloads_total", "Config loads after start, by result.", &["result"]),
            list_incomplete: counter(&r, "callgate_list_incomplete_total", "Providers a merged list page lacked (failed, or could not serve the list), by code.", &["provider", "code"]),
            fields_dropped: counter(&r, "callgate_write_fields_dropped_total", "Request fields a write sent without, because the provider's vendor cannot take them (lenient handling), by canonical field.", &["provider", "field"]),
            drift: counter(&r, "callgate_vendor_drift_total", "Vendor values the adapter did not expect (unknown enum value, missing required field, wrong type).", &["provider", "field", "kind"]),
            circuit_open: {
                let g = IntGaugeVec::new(
                    Opts::new("callgate_circuit_open", "1 while the circuit of a provider's operation is open or half-open (requests refused without asking the vendor), else 0."),
                    &["provider", "operation"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            registry: r,
            cache_bytes,
            inflight,
            config_last_reload,
        }
    }

    /// Makes the series of fixed label sets visible at zero before anything happens, so
    /// dashboards and `rate()` see them from the first scrape.
    fn touch(&self) {
        for result in ["success", "error"] {
            self.config_reloads.with_label_values(&[result]);
        }
        for r in [
            CacheResult::Hit,
            CacheResult::Stale,
            CacheResult::Miss,
            CacheResult::Collapsed,
            CacheResult::Bypass,
        ] {
            self.cache_requests.with_label_values(&[r.name()]);
        }
    }

    pub fn record(&self, rec: &RequestRecord<'_>) {
        let provider = rec.provider.unwrap_or("none");
        let op = rec.operation.map_or("other", |o| o.name());
        let code = rec.code.map_or("ok", |c| c.name());
        self.requests.with_label_values(&[provider, op, code]).inc();
        self.request_duration
            .with_label_values(&[op])
            .observe(rec.total.as_secs_f64());
        self.overhead_duration
            .with_label_values(&[op])
            .observe(rec.total.saturating_sub(rec.upstream).as_secs_f64());
        if !rec.upstream.is_zero() {
            self.upstream_duration
                .with_label_values(&[provider, op])
                .observe(rec.upstream.as_secs_f64());
        }
        if let Some(kind) = rec.upstream_error {
            self.upstream_errors
                .with_label_values(&[provider, kind])
                .inc();
        }
        if let Some(c) = rec.cache {
            self.cache_requests.with_label_values(&[c.name()]).inc();
        }
        for d in rec.drift {
            self.drift
                .with_label_values(&[provider, d.field, d.kind.name()])
                .inc();
        }
    }

    pub fn inflight(&self) -> &IntGauge {
        &self.inflight
    }

    /// The circuits' state: every vendor operation of every configured provider, 1 where `open`
    /// names it. Providers no longer configured disappear.
    pub fn set_circuits(&self, providers: &[&str], open: &[(&str, Operation)]) {
        self.circuit_open.reset();
        for provider in providers {
            for op in Operation::ALL {
                if !op.is_vendor_operation() {
                    continue;
                }
                let value = open.contains(&(*provider, op));
                self.circuit_open
                    .with_label_values(&[provider, op.name()])
                    .set(i64::from(value));
            }
        }
    }

    pub fn set_cache_bytes(&self, bytes: u64) {
        self.cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A provider a merged list page lacked, and the problem code why.
    pub fn list_incomplete(&self, provider: &str, code: &str) {
        self.list_incomplete
            .with_label_values(&[provider, code])
            .inc();
    }

    /// A request field a write was sent without (lenient handling).
    pub fn field_dropped(&self, provider: &str, field: &str) {
        self.fields_dropped
            .with_label_values(&[provider, field])
            .inc();
    }

    /// A config load after start: `ok` or `error`.
    pub fn config_reloaded(&self, ok: bool) {
        self.config_reloads
            .with_label_values(&[if ok { "success" } else { "error" }])
            .inc();
        if ok {
            self.config_loaded_now();
        }
    }

    pub fn config_loaded_now(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.config_last_reload.set(now);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_span_100us_to_30s_in_order() {
        assert_eq!((LATENCY_BUCKETS[0], LATENCY_BUCKETS[16]), (0.0001, 30.0));
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn records_overhead_as_total_minus_upstream() {
        let m = Metrics::new();
        m.record(&RequestRecord {
            provider: Some("zudu"),
            operation: Some(Operation::GetCall),
            code: None,
            total: Duration::from_millis(30),
            upstream: Duration::from_millis(29),
            upstream_error: None,
            cache: Some(CacheResult::Miss),
            drift: &[],
        });
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(
            "callgate_requests_total{code=\"ok\",operation=\"get_call\",provider=\"zudu\"} 1"
        ));
        assert!(
            text.contains("callgate_overhead_duration_seconds_sum{operation=\"get_call\"} 0.001\n")
        );
        assert!(text.contains("callgate_cache_requests_total{result=\"miss\"} 1"));
    }
}
