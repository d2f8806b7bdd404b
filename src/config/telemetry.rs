//! `[tracing]`: distributed tracing (W3C Trace Context, OTLP export). Off by default: without
//! `otlp_endpoint` nothing is exported, but trace ids are still made, logged and sent on to
//! vendors in `traceparent`. `crate::telemetry` builds the tracer from it.

use super::runtime::Errors;
use serde::Deserialize;

/// The `[tracing]` section, as written and as used (it needs no resolving).
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TracingSettings {
    /// OTLP/HTTP (protobuf) traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub otlp_endpoint: Option<String>,
    /// Share of the traces started here that are exported (0 to 1); a client's `traceparent`
    /// decides for its own traces.
    pub sample_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TracingSettings {
    fn default() -> Self {
        TracingSettings {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            service_name: "callgate".into(),
        }
    }
}

/// Checks `[tracing]`.
pub(super) fn build(s: TracingSettings, errs: &mut Errors) -> TracingSettings {
    if let Some(e) = &s.otlp_endpoint {
        match e.parse::<http::Uri>() {
            Ok(u) if u.scheme_str() == Some("http") && u.host().is_some() => {}
            Ok(u) if u.scheme_str() == Some("https") => errs.add(
                "tracing.otlp_endpoint",
                "https is not supported yet: send to a collector on the node or in the pod (http://…:4318/v1/traces), which forwards over TLS",
            ),
            _ => errs.add(
                "tracing.otlp_endpoint",
                "must be an http:// URL of an OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces",
            ),
        }
    }
    if !(0.0..=1.0).contains(&s.sample_ratio) {
        errs.add("tracing.sample_ratio", "must be between 0 and 1");
    }
    if s.service_name.trim().is_empty() {
        errs.add("tracing.service_name", "must not be empty");
    }
    s
}
