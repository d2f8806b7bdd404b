//! The bounds of a client connection (`[server]` keys): how long a client may take to send a
//! request, and how large its head may be. They are what keeps a slow or hostile client from
//! holding a connection, and memory, for as long as it likes.

use super::file::ServerSection;
use super::runtime::Errors;
use std::time::Duration;

/// Pingora parses the head callgate has read; it refuses more header fields than this, and a
/// head larger than [`PINGORA_MAX_HEAD`], whatever callgate allows.
pub const PINGORA_MAX_HEADERS: usize = 256;
const PINGORA_MAX_HEAD: usize = 1024 * 1024 - 1;

/// A client connection's bounds, checked when the config is loaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// Idle time allowed between two requests on a kept-alive connection.
    pub idle_timeout: Duration,
    /// Time to send a whole request head.
    pub header_timeout: Duration,
    /// Time to send a whole request body.
    pub body_timeout: Duration,
    pub max_request_line_bytes: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl ConnectionLimits {
    /// The idle timeout in whole seconds (Pingora's keep-alive setting), at least 1.
    pub fn idle_timeout_s(&self) -> u64 {
        self.idle_timeout.as_millis().div_ceil(1000).max(1) as u64
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        build(&ServerSection::default(), &mut Errors::default())
    }
}

/// The limits from `[server]`; what is out of range is reported in `errs`.
pub(super) fn build(s: &ServerSection, errs: &mut Errors) -> ConnectionLimits {
    for (key, ms) in [
        ("server.client_idle_timeout_ms", s.client_idle_timeout_ms),
        ("server.header_timeout_ms", s.header_timeout_ms),
        ("server.body_timeout_ms", s.body_timeout_ms),
    ] {
        if ms < 100 {
            errs.add(key, "must be at least 100 (milliseconds)");
        }
    }
    if !(1..=PINGORA_MAX_HEADERS).contains(&s.max_headers) {
        errs.add(
            "server.max_headers",
            format!("must be between 1 and {PINGORA_MAX_HEADERS}"),
        );
    }
    if !(1024..=PINGORA_MAX_HEAD).contains(&s.max_header_bytes) {
        errs.add(
            "server.max_header_bytes",
            format!("must be between 1024 and {PINGORA_MAX_HEAD}"),
        );
    }
    if s.max_request_line_bytes < 64 || s.max_request_line_bytes > s.max_header_bytes {
        errs.add(
            "server.max_request_line_bytes",
            "must be at least 64 and at most server.max_header_bytes (the line is part of the head)",
        );
    }
    ConnectionLimits {
        idle_timeout: Duration::from_millis(s.client_idle_timeout_ms),
        header_timeout: Duration::from_millis(s.header_timeout_ms),
        body_timeout: Duration::from_millis(s.body_timeout_ms),
        max_request_line_bytes: s.max_request_line_bytes,
        max_header_bytes: s.max_header_bytes,
        max_headers: s.max_headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_out_of_range_values_are_named() {
        let mut errs = Errors::default();
        let d = build(&ServerSection::default(), &mut errs);
        assert!(errs.list.is_empty(), "{:?}", errs.list);
        assert_eq!(d.idle_timeout_s(), 60);
        assert_eq!(d.max_headers, 100);
        let bad = ServerSection {
            header_timeout_ms: 0,
            max_headers: 1000,
            max_header_bytes: 2 * 1024 * 1024,
            max_request_line_bytes: 10,
            ..ServerSection::default()
        };
        let mut errs = Errors::default();
        build(&bad, &mut errs);
        let keys: Vec<&str> = errs.list.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.header_timeout_ms",
                "server.max_headers",
                "server.max_header_bytes",
                "server.max_request_line_bytes"
            ]
        );
    }
}
