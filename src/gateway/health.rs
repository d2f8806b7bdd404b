//! Passive provider health: what the last exchange with each provider showed. Reported by
//! `/v1/providers`; never used to refuse traffic (a circuit breaker is a later layer).

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
    pub fn record(&self, provider: &str, healthy: bool) {
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
