//! Injectable faults: what a test arms on a simulator to make the next matching vendor requests
//! slow, fail, or break at the HTTP/TCP level, so the gateway's error paths can be exercised.

use serde::{Deserialize, Serialize};

/// One armed fault. Matches requests by method and path prefix; fires `times` times (or until
/// cleared), waits `latency_ms`, then does `action`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Fault {
    /// Match only this method (None = any). Compared case-insensitively.
    #[serde(default)]
    pub method: Option<String>,
    /// Match only paths starting with this (None = any).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Fire this many times then disappear (None = until cleared).
    #[serde(default)]
    pub times: Option<u32>,
    /// Delay before answering.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// What to answer.
    #[serde(default)]
    pub action: FaultAction,
}

/// What a fault does to the request it fires on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Only the latency; the request is then answered normally.
    #[default]
    None,
    /// Answer exactly this (plus `Content-Length`).
    Status {
        status: u16,
        body: String,
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// 200, `Content-Type: application/json`, a body that is not valid JSON.
    Malformed,
    /// 200 with a `Content-Length` larger than the bytes sent, then the connection is closed.
    Truncated,
    /// Read the request, then close the connection without any response.
    Reset,
    /// 200, valid JSON of the wrong shape.
    WrongShape,
    /// On an event stream request: the stream sends this many message events (heartbeats not
    /// counted, waiting for live ones if need be), then the connection is dropped without
    /// ending the body. On any other request: the same as `Reset`.
    Disconnect { after_events: u32 },
}

impl Fault {
    fn matches(&self, method: &str, path: &str) -> bool {
        if self.times == Some(0) {
            return false;
        }
        if let Some(m) = &self.method {
            if !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        if let Some(prefix) = &self.path_prefix {
            if !path.starts_with(prefix.as_str()) {
                return false;
            }
        }
        true
    }
}

/// Find the first fault matching `method` and `path`, consume one firing, and drop it when spent.
pub(crate) fn take_matching(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<Fault> {
    let idx = faults.iter().position(|f| f.matches(method, path))?;
    let fired = faults[idx].clone();
    if let Some(times) = faults[idx].times.as_mut() {
        *times = times.saturating_sub(1);
        if *times == 0 {
            faults.remove(idx);
        }
    }
    Some(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_consumed_and_prefix_matched() {
        let mut faults = vec![Fault {
            method: Some("get".into()),
            path_prefix: Some("/api/calls".into()),
            times: Some(2),
            ..Fault::default()
        }];
        assert!(take_matching(&mut faults, "POST", "/api/calls").is_none());
        assert!(take_matching(&mut faults, "GET", "/other").is_none());
        assert!(take_matching(&mut faults, "GET", "/api/calls/1").is_some());
        assert!(take_matching(&mut faults, "GET", "/api/calls").is_some());
        assert!(take_matching(&mut faults, "GET", "/api/calls").is_none());
        assert!(faults.is_empty());
    }

    #[test]
    fn fault_json_round_trips() {
        let json = r#"{"times":1,"action":{"kind":"status","status":503,"body":"busy"}}"#;
        let f: Fault = serde_json::from_str(json).unwrap();
        assert!(matches!(f.action, FaultAction::Status { status: 503, .. }));
        let f: Fault = serde_json::from_str(r#"{"action":{"kind":"reset"}}"#).unwrap();
        assert!(matches!(f.action, FaultAction::Reset));
        let json = r#"{"action":{"kind":"disconnect","after_events":3}}"#;
        let f: Fault = serde_json::from_str(json).unwrap();
        assert!(matches!(
            f.action,
            FaultAction::Disconnect { after_events: 3 }
        ));
        let f: Fault = serde_json::from_str("{}").unwrap();
        assert!(matches!(f.action, FaultAction::None));
    }
}
