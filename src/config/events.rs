//! `[events]`: live call event streams (`GET /v1/calls/{id}/events`): how often a vendor without
//! a stream of its own is asked, and the bounds that keep streams from taking the gateway.

use super::runtime::Errors;
use serde::Deserialize;
use std::time::Duration;

/// The `[events]` section, as written and as used.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    /// How often a live call is read while it changes.
    pub poll_ms: u64,
    /// The longest pause between two reads of a live call that stopped changing (the pause
    /// doubles while nothing changes).
    pub poll_quiet_max_ms: u64,
    /// For a vendor that streams messages (adapter `[events] style = "sse"`): how often the
    /// call is read for its status (its stream carries messages only). While the vendor stream
    /// is down the call is read every `poll_ms` instead, so no message waits for it.
    pub stream_status_poll_ms: u64,
    /// A comment line every this many seconds keeps idle connections (and proxies) open.
    pub heartbeat_seconds: u64,
    /// The `retry:` hint (milliseconds) given when a stream opens and when callgate ends it.
    pub retry_ms: u64,
    /// A stream is ended (with a resumable id) after this long; the client reconnects.
    pub max_duration_seconds: u64,
    /// Streams open at once, in all.
    pub max_streams: usize,
    /// Streams open at once per tenant.
    pub max_streams_per_tenant: usize,
    /// A client that takes longer than this to take one write is disconnected (it resumes
    /// with the last id it read); it never holds up the others.
    pub slow_client_timeout_ms: u64,
}

impl Default for EventsSettings {
    fn default() -> Self {
        EventsSettings {
            poll_ms: 1000,
            poll_quiet_max_ms: 10_000,
            stream_status_poll_ms: 5000,
            heartbeat_seconds: 15,
            retry_ms: 3000,
            max_duration_seconds: 3600,
            max_streams: 10_000,
            max_streams_per_tenant: 1000,
            slow_client_timeout_ms: 10_000,
        }
    }
}

impl EventsSettings {
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }

    pub fn poll_quiet_max(&self) -> Duration {
        Duration::from_millis(self.poll_quiet_max_ms)
    }

    pub fn stream_status_poll(&self) -> Duration {
        Duration::from_millis(self.stream_status_poll_ms)
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds)
    }

    pub fn max_duration(&self) -> Duration {
        Duration::from_secs(self.max_duration_seconds)
    }

    pub fn slow_client_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_client_timeout_ms)
    }
}

/// Checks `[events]`.
pub(super) fn build(s: EventsSettings, errs: &mut Errors) -> EventsSettings {
    if s.poll_ms < 100 {
        errs.add(
            "events.poll_ms",
            "must be at least 100 (each read is a vendor request)",
        );
    }
    if s.stream_status_poll_ms < s.poll_ms {
        errs.add(
            "events.stream_status_poll_ms",
            "must be at least events.poll_ms",
        );
    }
    if s.poll_quiet_max_ms < s.poll_ms {
        errs.add(
            "events.poll_quiet_max_ms",
            "must be at least events.poll_ms",
        );
    }
    if s.heartbeat_seconds == 0 || s.max_duration_seconds == 0 || s.slow_client_timeout_ms == 0 {
        errs.add(
            "events.heartbeat_seconds",
            "heartbeat_seconds, max_duration_seconds and slow_client_timeout_ms must be above 0",
        );
    }
    if s.max_streams == 0 || s.max_streams_per_tenant == 0 {
        errs.add(
            "events.max_streams",
            "max_streams and max_streams_per_tenant must be above 0",
        );
    }
    s
}
