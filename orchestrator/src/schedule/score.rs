//! Ranking of feasible candidates, best first, by four keys in order:
//!
//! 0. spread: fewest instances of the same service already there, so
//!    replicas land in different clusters (sites) and on different
//!    workers while any feasible one has fewer;
//! 1. proximity, when the service has a `latency` constraint (lowest RTT
//!    to its target) or else a `geo` one (shortest distance to its point):
//!    the user asked to be near something, so nearer is better than fuller;
//! 2. best fit: least free capacity left after placement, as a share of
//!    the candidate's total, CPU and memory summed (Oakestra's ROM packs;
//!    packing leaves whole workers free for large requests);
//! 3. name, so equal candidates always rank the same way.

use dns::haversine_km;

use super::filter::Candidate;
use super::rtt::RttOracle;
use crate::model::Capacity;
use crate::sla::{Constraint, ServiceSpec};

/// `feasible`, best first.
pub fn rank<'a, Id>(
    service: &ServiceSpec,
    request: Capacity,
    feasible: Vec<&'a Candidate<Id>>,
    oracle: &dyn RttOracle<Id>,
) -> Vec<&'a Candidate<Id>> {
    let mut keyed: Vec<(f64, f64, &Candidate<Id>)> = feasible
        .into_iter()
        .map(|c| (proximity(service, c, oracle), c.free.leftover_share(request, c.total), c))
        .collect();
    keyed.sort_by(|a, b| {
        a.2.siblings
            .cmp(&b.2.siblings)
            .then(a.0.total_cmp(&b.0))
            .then(a.1.total_cmp(&b.1))
            .then_with(|| a.2.name.cmp(&b.2.name))
    });
    keyed.into_iter().map(|(_, _, c)| c).collect()
}

/// RTT (ms) to the first latency constraint's target, else distance (km)
/// to the first geo constraint's point, else 0 (no preference). Unknown is
/// ranked last (infinity), though the filter has already rejected it.
fn proximity<Id>(service: &ServiceSpec, candidate: &Candidate<Id>, oracle: &dyn RttOracle<Id>) -> f64 {
    let latency = service.constraints.iter().find_map(|c| match c {
        Constraint::Latency { from, .. } => Some(oracle.rtt_ms(candidate, from)),
        _ => None,
    });
    let distance = || {
        service.constraints.iter().find_map(|c| match c {
            Constraint::Geo { near, .. } => Some(candidate.location.map(|at| haversine_km(at, *near))),
            _ => None,
        })
    };
    match latency.or_else(distance) {
        None => 0.0,
        Some(known) => known.unwrap_or(f64::INFINITY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::fixtures::{candidate, label, service, FixedRtt, MILAN, MUNICH};
    use crate::sla::LatencyFrom;

    fn names(ranked: Vec<&Candidate<u32>>) -> Vec<String> {
        ranked.into_iter().map(|c| c.name.to_string()).collect()
    }

    fn with_free(name: &str, free: Capacity) -> Candidate<u32> {
        let mut c = candidate(name, Some(MUNICH));
        c.free = free;
        c.room = free;
        c
    }

    #[test]
    fn best_fit_then_name() {
        let s = service(1, 1024, vec![]);
        let request = Capacity::request(&s.resources);
        let roomy = with_free("roomy", Capacity::new(4000, 8192));
        let snug = with_free("snug", Capacity::new(1000, 2048));
        let twin = with_free("a-twin", Capacity::new(1000, 2048));
        let ranked = rank(&s, request, vec![&roomy, &snug, &twin], &FixedRtt(vec![]));
        assert_eq!(names(ranked), ["a-twin", "snug", "roomy"]);
    }

    #[test]
    fn spread_beats_proximity_and_fit() {
        let s = service(1, 512, vec![Constraint::Geo { near: MUNICH, within_km: 500.0 }]);
        let request = Capacity::request(&s.resources);
        let mut near = candidate("munich", Some(MUNICH));
        near.siblings = 1;
        let far = candidate("milan", Some(MILAN));
        let ranked = rank(&s, request, vec![&near, &far], &FixedRtt(vec![]));
        assert_eq!(names(ranked), ["milan", "munich"], "the cluster without an instance first");
        near.siblings = 0;
        let ranked = rank(&s, request, vec![&near, &far], &FixedRtt(vec![]));
        assert_eq!(names(ranked), ["munich", "milan"], "then the nearer");
    }

    #[test]
    fn proximity_beats_fit() {
        let rtt = FixedRtt(vec![(label("munich"), 3.0), (label("milan"), 12.0)]);
        let mut munich = candidate("munich", Some(MUNICH));
        munich.free = munich.total; // empty: the worst fit
        let mut milan = candidate("milan", Some(MILAN));
        milan.free = Capacity::new(1000, 512); // a perfect fit
        let cases = [
            (vec![], vec!["milan", "munich"]),
            (vec![Constraint::Geo { near: MUNICH, within_km: 1000.0 }], vec!["munich", "milan"]),
            (vec![Constraint::Geo { near: MILAN, within_km: 1000.0 }], vec!["milan", "munich"]),
            (vec![Constraint::Latency { from: LatencyFrom::Location(MILAN), within_ms: 50.0 }], vec!["munich", "milan"]),
            // Latency wins over geo when both are given.
            (
                vec![
                    Constraint::Geo { near: MILAN, within_km: 1000.0 },
                    Constraint::Latency { from: LatencyFrom::Location(MILAN), within_ms: 50.0 },
                ],
                vec!["munich", "milan"],
            ),
        ];
        for (constraints, want) in cases {
            let s = service(1, 512, constraints.clone());
            let ranked = rank(&s, Capacity::request(&s.resources), vec![&milan, &munich], &rtt);
            assert_eq!(names(ranked), want, "{constraints:?}");
        }
    }
}
