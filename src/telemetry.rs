//! Distributed tracing: W3C Trace Context in and out, one span per request with children for
//! the rooms it passes (plan, cache, idempotency, each vendor exchange, normalize), and, when
//! `[tracing] otlp_endpoint` is set, export over OTLP/HTTP.
//!
//! Spans are `tracing` spans (target `callgate::trace`); the `tracing-opentelemetry` layer gives
//! them OpenTelemetry ids, so a request's trace is the client's (`traceparent`, `tracestate`)
//! or a new one, the vendor is sent a `traceparent` whose parent is the exchange's span, and
//! every log line written inside a request carries its `trace_id`. Without an endpoint nothing
//! is recorded or exported (the sampler drops every span, and only the request's span is
//! made), but ids are still made and passed on, so logs and vendors can be correlated. Only
//! this module knows OpenTelemetry's types.

use crate::config::TracingSettings;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

/// The spans' target, so filters can keep them whatever the log level.
pub const TARGET: &str = "callgate::trace";

/// Spans below the request's are made only while spans are exported: without an exporter
/// they would cost every request (about a fifth of a cache hit's throughput, measured) for
/// nothing. The request's own span always exists: it carries the trace id into the logs and,
/// as the vendor's parent, into `traceparent`.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// How long the batch exporter waits before sending what it gathered.
const EXPORT_DELAY: Duration = Duration::from_secs(1);

/// The tracer provider; dropping it exports what is still queued.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// A provider that exports to `settings.otlp_endpoint` (sampling by the ratio, following a
/// client's decision), or, without one, records nothing.
pub fn provider(settings: &TracingSettings) -> Tracing {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let exporter = settings.otlp_endpoint.as_ref().and_then(|endpoint| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "OTLP exporter not started; traces are not exported"))
            .ok()
    });
    EXPORTING.store(exporter.is_some(), Ordering::Relaxed);
    let provider = match exporter {
        Some(exporter) => {
            let batch = BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_scheduled_delay(EXPORT_DELAY)
                        .build(),
                )
                .build();
            builder
                .with_span_processor(batch)
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                    settings.sample_ratio,
                ))))
                .build()
        }
        None => builder.with_sampler(Sampler::AlwaysOff).build(),
    };
    Tracing { provider }
}

impl Tracing {
    /// The `tracing` layer that gives spans their OpenTelemetry ids (and exports them).
    pub fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("callgate"))
            // No clock reads on every poll of a request's future, no source locations.
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
    }
}

/// Request headers as OpenTelemetry's propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The span of one request, child of the client's trace when its `traceparent` is valid, and
/// its trace id (hex) when there is one.
pub fn request_span(
    headers: &http::HeaderMap,
    method: &str,
    request_id: &str,
) -> (Span, Option<String>) {
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = span_name(method),
        otel.kind = "server",
        request_id = %request_id,
        trace_id = tracing::field::Empty,
        http.request.method = %method,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
    let trace_id = {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| sc.trace_id().to_string())
    };
    if let Some(id) = &trace_id {
        span.record("trace_id", id.as_str());
    }
    (span, trace_id)
}

/// The request span's name: `callgate METHOD` (static: no allocation per request).
fn span_name(method: &str) -> &'static str {
    match method {
        "GET" => "callgate GET",
        "POST" => "callgate POST",
        "PATCH" => "callgate PATCH",
        "PUT" => "callgate PUT",
        "HEAD" => "callgate HEAD",
        "DELETE" => "callgate DELETE",
        _ => "callgate request",
    }
}

/// A child span of the current one for a room of the request (`plan`, `cache`, …).
pub fn room(name: &'static str) -> Span {
    if !EXPORTING.load(Ordering::Relaxed) {
        return Span::none();
    }
    tracing::info_span!(target: TARGET, "room", otel.name = name)
}

/// The span of one vendor exchange attempt.
pub fn vendor_span(provider: &str, operation: &str, attempt: u32) -> Span {
    if !EXPORTING.load(Ordering::Relaxed) {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "vendor exchange",
        otel.kind = "client",
        provider = %provider,
        operation = %operation,
        attempt = i64::from(attempt),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// Notes on a vendor exchange span what came back: the vendor's status, or the failure kind.
pub fn record_vendor(span: &Span, status: Result<u16, &str>) {
    match status {
        // As i64: the OpenTelemetry layer exports unsigned numbers as strings.
        Ok(s) => span.record("http.response.status_code", i64::from(s)),
        Err(kind) => span.record("error.type", kind),
    };
}

/// The `traceparent` (and `tracestate`) that make the current span the vendor's parent.
pub fn outgoing() -> Vec<(String, String)> {
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut out = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    out.into_iter().collect()
}
