//! What the memory allocator holds, on `/metrics`: so that the person on call can tell memory the
//! gateway uses (live allocations) from memory the allocator keeps (free pages not yet given back)
//! when `process_resident_memory_bytes` grows — Envoy's `server.memory_allocated` /
//! `server.memory_physical_size` for callgate.
//!
//! The allocator is the binary's choice (`src/main.rs`: jemalloc), not the library's, so the binary
//! hands in a [`Probe`] at start with [`set_probe`]; without one (tests, the simulators) there are
//! no allocator series. The probe is read at each scrape.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::IntGauge;
use std::sync::OnceLock;

/// The allocator's totals, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Held by live allocations.
    pub allocated: u64,
    /// In pages that hold live allocations (allocated plus their pages' free space).
    pub active: u64,
    /// Physically resident in the allocator's pages (active, free pages not yet purged, metadata).
    pub resident: u64,
    /// Mapped but given back to the system (not resident; kept for reuse of the address space).
    pub retained: u64,
}

/// Reads the allocator's totals now, or `None` when it cannot.
pub type Probe = fn() -> Option<AllocatorStats>;

static PROBE: OnceLock<Probe> = OnceLock::new();

/// Sets the process's allocator probe (once; later calls are ignored).
pub fn set_probe(probe: Probe) {
    let _ = PROBE.set(probe);
}

/// The allocator's series for a registry, when the binary set a probe.
pub fn collector() -> Option<Box<dyn Collector>> {
    PROBE
        .get()
        .map(|&probe| Box::new(AllocatorCollector::new(probe)) as Box<dyn Collector>)
}

/// `callgate_memory_*_bytes`, read from the probe at each collection.
struct AllocatorCollector {
    probe: Probe,
    allocated: IntGauge,
    active: IntGauge,
    resident: IntGauge,
    retained: IntGauge,
}

impl AllocatorCollector {
    fn new(probe: Probe) -> AllocatorCollector {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        AllocatorCollector {
            probe,
            allocated: gauge(
                "callgate_memory_allocated_bytes",
                "Bytes in live allocations (the allocator's count).",
            ),
            active: gauge(
                "callgate_memory_active_bytes",
                "Bytes in the allocator's pages that hold live allocations.",
            ),
            resident: gauge(
                "callgate_memory_resident_bytes",
                "Bytes resident in the allocator's pages: live, free but not yet given back, metadata.",
            ),
            retained: gauge(
                "callgate_memory_retained_bytes",
                "Bytes of address space the allocator gave back to the system and keeps mapped.",
            ),
        }
    }

    fn gauges(&self) -> [&IntGauge; 4] {
        [
            &self.allocated,
            &self.active,
            &self.resident,
            &self.retained,
        ]
    }
}

impl Collector for AllocatorCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.gauges().into_iter().flat_map(|g| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(stats) = (self.probe)() else {
            return Vec::new();
        };
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.allocated.set(clamp(stats.allocated));
        self.active.set(clamp(stats.active));
        self.resident.set(clamp(stats.resident));
        self.retained.set(clamp(stats.retained));
        self.gauges()
            .into_iter()
            .flat_map(|g| g.collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    fn exposition(probe: Probe) -> String {
        let r = Registry::new();
        r.register(Box::new(AllocatorCollector::new(probe)))
            .unwrap();
        let mut out = Vec::new();
        TextEncoder::new().encode(&r.gather(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_probe_is_read_at_each_scrape_and_a_failed_read_gives_no_series() {
        let text = exposition(|| {
            Some(AllocatorStats {
                allocated: 10,
                active: 20,
                resident: 30,
                retained: 40,
            })
        });
        for line in [
            "callgate_memory_allocated_bytes 10",
            "callgate_memory_active_bytes 20",
            "callgate_memory_resident_bytes 30",
            "callgate_memory_retained_bytes 40",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert_eq!(exposition(|| None), "");
    }
}
