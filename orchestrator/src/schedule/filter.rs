//! Feasibility: can this one candidate take one instance of the service?
//! Checks run cheapest first and the first failure is the answer: alive,
//! `direct`, resources, `geo`, `latency`. Constraints are hard filters
//! (grove ignores `rigidness`; see `sla::constraint`).
//!
//! Architecture is not checked: the SLA names none (grove runs a host
//! executable, and `ServiceSpec` has no architecture field yet).

use dns::{haversine_km, Label, Location};

use super::reason::Rejection;
use super::rtt::RttOracle;
use crate::model::Capacity;
use crate::sla::{Constraint, ServiceSpec};

/// Which tier is picking, which decides what a `direct` constraint's lists
/// mean here (Oakestra's `ORCHESTRATION_PLANE`): the root checks
/// `clusters`, a cluster checks `nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Candidates are clusters.
    Root,
    /// Candidates are workers.
    Cluster,
}

/// The one view of a cluster or a worker that filtering and scoring need.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate<Id> {
    /// Its id, for the result and the RTT oracle.
    pub id: Id,
    /// Its name, which `direct` constraints use.
    pub name: Label,
    /// Where it is, if known.
    pub location: Option<Location>,
    /// The largest request one instance may make here: a worker's free
    /// capacity; a cluster's roomiest worker (an instance cannot span two).
    pub room: Capacity,
    /// Free capacity overall, for best-fit scoring.
    pub free: Capacity,
    /// Total capacity, which scoring normalises by.
    pub total: Capacity,
    /// Reporting.
    pub alive: bool,
    /// Instances of the service being placed already here: ranking spreads
    /// a service's instances over candidates before anything else.
    pub siblings: u32,
}

/// `Ok` when `candidate` can take one instance needing `request`.
pub fn check<Id>(
    service: &ServiceSpec,
    request: Capacity,
    candidate: &Candidate<Id>,
    tier: Tier,
    oracle: &dyn RttOracle<Id>,
) -> Result<(), Rejection> {
    if !candidate.alive {
        return Err(Rejection::Down);
    }
    if !allowed(service, candidate.name, tier) {
        return Err(Rejection::NotAllowed);
    }
    if !candidate.room.fits(request) {
        return Err(Rejection::NotEnoughResources { need: request, free: candidate.room });
    }
    for constraint in &service.constraints {
        match constraint {
            Constraint::Geo { near, within_km } => {
                let km = candidate.location.map(|at| haversine_km(at, *near));
                if !km.is_some_and(|km| km <= *within_km) {
                    return Err(Rejection::TooFar { km, within_km: *within_km });
                }
            }
            Constraint::Latency { from, within_ms } => {
                let ms = oracle.rtt_ms(candidate, from);
                if !ms.is_some_and(|ms| ms <= *within_ms) {
                    return Err(Rejection::TooSlow { ms, within_ms: *within_ms });
                }
            }
            Constraint::Direct { .. } => {}
        }
    }
    Ok(())
}

/// Every `direct` constraint whose list for this tier is non-empty must
/// name the candidate; an empty list means "any".
fn allowed(service: &ServiceSpec, name: Label, tier: Tier) -> bool {
    service.constraints.iter().all(|c| match c {
        Constraint::Direct { clusters, nodes } => {
            let names = if tier == Tier::Root { clusters } else { nodes };
            names.is_empty() || names.contains(&name)
        }
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::fixtures::{candidate, label, service, FixedRtt, MILAN, MUNICH};
    use crate::sla::LatencyFrom;

    /// What the case is, constraints, candidate, tier, expected verdict.
    type Case<'a> = (&'static str, Vec<Constraint>, &'a Candidate<u32>, Tier, Result<(), Rejection>);

    fn run(constraints: Vec<Constraint>, c: &Candidate<u32>, tier: Tier) -> Result<(), Rejection> {
        let s = service(1, 512, constraints);
        let oracle = FixedRtt(vec![(label("munich"), 3.0), (label("milan"), 12.0)]);
        check(&s, Capacity::request(&s.resources), c, tier, &oracle)
    }

    #[test]
    fn table() {
        let munich = candidate("munich", Some(MUNICH));
        let milan = candidate("milan", Some(MILAN));
        let mut down = munich.clone();
        down.alive = false;
        let mut small = munich.clone();
        small.room = Capacity::new(500, 4096);
        let nowhere = candidate("nowhere", None);
        let geo = |km| Constraint::Geo { near: MUNICH, within_km: km };
        let lat = |ms| Constraint::Latency { from: LatencyFrom::Location(MUNICH), within_ms: ms };
        let pin = |clusters: &[&str], nodes: &[&str]| Constraint::Direct {
            clusters: clusters.iter().map(|n| label(n)).collect(),
            nodes: nodes.iter().map(|n| label(n)).collect(),
        };
        let too_far = |km: Option<f64>| Rejection::TooFar { km, within_km: 50.0 };
        let cases: Vec<Case<'_>> = vec![
            ("no constraints", vec![], &munich, Tier::Cluster, Ok(())),
            ("down first", vec![geo(1.0)], &down, Tier::Cluster, Err(Rejection::Down)),
            (
                "cpu short",
                vec![],
                &small,
                Tier::Cluster,
                Err(Rejection::NotEnoughResources { need: Capacity::new(1000, 512), free: small.room }),
            ),
            ("geo near", vec![geo(50.0)], &munich, Tier::Cluster, Ok(())),
            ("geo no location", vec![geo(50.0)], &nowhere, Tier::Cluster, Err(too_far(None))),
            ("latency fast", vec![lat(5.0)], &munich, Tier::Cluster, Ok(())),
            ("latency slow", vec![lat(5.0)], &milan, Tier::Cluster, Err(Rejection::TooSlow { ms: Some(12.0), within_ms: 5.0 })),
            ("latency unknown", vec![lat(5.0)], &nowhere, Tier::Cluster, Err(Rejection::TooSlow { ms: None, within_ms: 5.0 })),
            ("node pin matches", vec![pin(&[], &["munich"])], &munich, Tier::Cluster, Ok(())),
            ("node pin other", vec![pin(&[], &["milan"])], &munich, Tier::Cluster, Err(Rejection::NotAllowed)),
            ("root ignores node pins", vec![pin(&[], &["milan"])], &munich, Tier::Root, Ok(())),
            ("cluster pin at root", vec![pin(&["milan"], &[])], &munich, Tier::Root, Err(Rejection::NotAllowed)),
            ("cluster ignores cluster pins", vec![pin(&["milan"], &[])], &munich, Tier::Cluster, Ok(())),
        ];
        for (what, constraints, c, tier, want) in cases {
            assert_eq!(run(constraints, c, tier), want, "{what}");
        }
        let Err(Rejection::TooFar { km: Some(km), .. }) = run(vec![geo(50.0)], &milan, Tier::Cluster) else {
            panic!("milan is too far from munich")
        };
        assert!((340.0..360.0).contains(&km), "{km}");
    }
}
