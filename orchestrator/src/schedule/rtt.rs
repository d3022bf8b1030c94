//! Round-trip estimates for `latency` constraints. The schedulers do not
//! measure: the caller passes an [`RttOracle`]. The root, which sees only
//! cluster locations, can use [`GeoRtt`] (distance over fibre); a cluster
//! can wrap the mesh's network coordinates.

use std::collections::HashMap;

use dns::{haversine_km, Label, Location};

use super::filter::Candidate;
use crate::sla::LatencyFrom;

/// Estimated round trip between a candidate and a constraint's target.
pub trait RttOracle<Id> {
    /// Milliseconds, or `None` when there is no estimate (the candidate
    /// is then rejected: an unknown latency cannot satisfy a bound).
    fn rtt_ms(&self, candidate: &Candidate<Id>, target: &LatencyFrom) -> Option<f64>;
}

/// Knows nothing: every latency constraint rejects every candidate.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRtt;

impl<Id> RttOracle<Id> for NoRtt {
    fn rtt_ms(&self, _: &Candidate<Id>, _: &LatencyFrom) -> Option<f64> {
        None
    }
}

/// RTT from great-circle distance: light in fibre covers about 200 km per
/// ms one way, so 1 ms of RTT per 100 km, times `inflation` for paths that
/// are not great circles, plus `base_ms` for last-mile and processing.
/// Named areas (`munich-1`) are looked up in `areas`.
#[derive(Clone, Debug)]
pub struct GeoRtt {
    /// Where each named area is.
    pub areas: HashMap<Label, Location>,
    /// Path length over great-circle distance (≥ 1).
    pub inflation: f64,
    /// Fixed part of every round trip, ms.
    pub base_ms: f64,
}

impl Default for GeoRtt {
    /// Inflation 2 and 1 ms base: the rule of thumb for routed
    /// internet paths, erring on slow so that "fits" stays true in practice.
    fn default() -> GeoRtt {
        GeoRtt { areas: HashMap::new(), inflation: 2.0, base_ms: 1.0 }
    }
}

impl GeoRtt {
    /// The estimate between two points.
    pub fn between(&self, a: Location, b: Location) -> f64 {
        self.base_ms + haversine_km(a, b) / 100.0 * self.inflation
    }

    fn point(&self, target: &LatencyFrom) -> Option<Location> {
        match target {
            LatencyFrom::Location(point) => Some(*point),
            LatencyFrom::Area(area) => self.areas.get(area).copied(),
        }
    }
}

impl<Id> RttOracle<Id> for GeoRtt {
    fn rtt_ms(&self, candidate: &Candidate<Id>, target: &LatencyFrom) -> Option<f64> {
        Some(self.between(candidate.location?, self.point(target)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::fixtures::{candidate, label, MILAN, MUNICH};

    #[test]
    fn estimates_from_distance_and_areas() {
        let oracle = GeoRtt { areas: HashMap::from([(label("munich-1"), MUNICH)]), ..GeoRtt::default() };
        let milan = candidate("milan", Some(MILAN));
        let ms = oracle.rtt_ms(&milan, &LatencyFrom::Area(label("munich-1"))).expect("estimate");
        // Munich–Milan is about 350 km: 1 + 3.5 × 2.
        assert!((ms - 8.0).abs() < 0.2, "{ms}");
        assert_eq!(oracle.rtt_ms(&milan, &LatencyFrom::Area(label("berlin-1"))), None);
        assert_eq!(oracle.rtt_ms(&candidate("nowhere", None), &LatencyFrom::Location(MUNICH)), None);
        assert_eq!(RttOracle::<u32>::rtt_ms(&NoRtt, &milan, &LatencyFrom::Location(MUNICH)), None);
    }
}
