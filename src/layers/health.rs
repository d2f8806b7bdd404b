//! The health layer: what the last exchange with each provider showed (passive health),
//! reported by `/v1/providers`. It sits where the circuit breaker goes — between the cache and
//! the retries, seeing every exchange's verdict — and today never refuses traffic.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Unknown,
    Healthy,
    Unhealthy,
}

#[derive(Default)]
pub struct HealthBoard {
    last: Mutex<HashMap<String, Health>>,
}

impl HealthBoard {
    /// Records one exchange: `status` is the vendor's answer, `None` when none arrived. A vendor
    /// is healthy when it answers, without a server error and accepting callgate's credentials.
    pub fn record_exchange(&self, provider: &str, status: Option<u16>) {
        self.record(
            provider,
            status.is_some_and(|s| s < 500 && s != 401 && s != 403),
        );
    }

    fn record(&self, provider: &str, healthy: bool) {
        let h = if healthy {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        if let Ok(mut map) = self.last.lock() {
            if map.get(provider) != Some(&h) {
                map.insert(provider.to_string(), h);
            }
        }
    }

    pub fn get(&self, provider: &str) -> Health {
        self.last
            .lock()
            .ok()
            .and_then(|m| m.get(provider).copied())
            .unwrap_or(Health::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_per_exchange() {
        let b = HealthBoard::default();
        assert_eq!(b.get("p"), Health::Unknown);
        b.record_exchange("p", Some(404));
        assert_eq!(b.get("p"), Health::Healthy, "a 404 is an answer");
        for bad in [None, Some(500), Some(503), Some(401), Some(403)] {
            b.record_exchange("p", Some(200));
            b.record_exchange("p", bad);
            assert_eq!(b.get("p"), Health::Unhealthy, "{bad:?}");
        }
    }
}
