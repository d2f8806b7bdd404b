//! The bulkhead layer: a bound on the requests in flight to each provider (`max_in_flight`), so
//! one slow vendor cannot hold all of callgate's capacity. Over it, a request is refused at once
//! with `503 provider_unavailable` and `Retry-After: 1`; nothing is sent.
//!
//! A slot is held from before the first attempt to the end of the last (retries included) and
//! given back when its [`Slot`] drops, also when the request is abandoned.

use crate::canonical::{ErrorCode, Problem};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

/// The in-flight counts of every provider.
#[derive(Default)]
pub struct Bulkheads {
    in_flight: RwLock<HashMap<String, Arc<AtomicU32>>>,
}

/// One request's place in its provider's bound.
#[derive(Debug)]
pub struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Bulkheads {
    fn counter(&self, provider: &str) -> Arc<AtomicU32> {
        if let Some(c) = self
            .in_flight
            .read()
            .ok()
            .and_then(|m| m.get(provider).cloned())
        {
            return c;
        }
        match self.in_flight.write() {
            Ok(mut m) => m.entry(provider.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// A place among the `max` requests in flight to `provider`, or the problem to answer.
    pub fn enter(&self, provider: &str, max: u32) -> Result<Slot, Problem> {
        let counter = self.counter(provider);
        let taken = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        match taken {
            Ok(_) => Ok(Slot(counter)),
            Err(_) => {
                let mut p = Problem::new(
                    ErrorCode::ProviderUnavailable,
                    format!(
                        "provider {provider:?} has {max} requests in flight, its bound (max_in_flight); retry shortly"
                    ),
                )
                .with_provider(provider);
                p.retry_after = Some("1".into());
                Err(p)
            }
        }
    }

    /// Requests in flight to `provider` now.
    pub fn in_flight(&self, provider: &str) -> u32 {
        self.counter(provider).load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_holds_and_slots_come_back_when_dropped() {
        let b = Bulkheads::default();
        let first = b.enter("p", 2).unwrap();
        let second = b.enter("p", 2).unwrap();
        let p = b.enter("p", 2).unwrap_err();
        assert_eq!(p.code, ErrorCode::ProviderUnavailable);
        assert_eq!(p.retry_after.as_deref(), Some("1"));
        assert!(b.enter("q", 2).is_ok(), "each provider has its own bound");
        drop(first);
        assert_eq!(b.in_flight("p"), 1);
        let _third = b.enter("p", 2).unwrap();
        drop(second);
        assert_eq!(b.in_flight("p"), 1);
    }
}
