//! Placement, as pure functions: filter the candidates that could run an
//! instance ([`filter`]), rank those that can ([`score`]), and answer with a
//! [`Decision`]. The same core serves both tiers: the root picks a cluster
//! from aggregated summaries ([`root`]), a cluster picks a worker from
//! fresh per-worker state ([`cluster`]), and [`reschedule`] re-runs either
//! pick for the instances of a lost worker or cluster. Nothing here reads a
//! clock or the network; RTTs come from an [`RttOracle`] the caller passes.
//!
//! "Nowhere fits" is an outcome ([`Decision::Unschedulable`]) that names
//! why for every candidate, not an error.

pub mod cluster;
pub mod filter;
pub mod reason;
pub mod reschedule;
pub mod root;
pub mod rtt;
pub mod score;

use dns::Label;
use serde::Serialize;

pub use cluster::{pick_worker, pick_worker_spread, WorkerState};
pub use filter::{Candidate, Tier};
pub use reason::{Reason, Rejected, Rejection};
pub use reschedule::{off_cluster, off_worker, Move, Placed};
pub use root::{pick_cluster, pick_cluster_spread, ClusterSummary};
pub use rtt::{GeoRtt, NoRtt, RttOracle};

use crate::model::Capacity;
use crate::sla::ServiceSpec;

/// The answer to "where should this instance run?".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Decision<Id> {
    /// Run it there.
    Place(Placement<Id>),
    /// Nowhere fits, and why.
    Unschedulable(Reason),
}

/// A chosen candidate and the feasible runners-up, best first, so that a
/// refusal (a cluster that cannot place after all) can fall back without
/// scheduling again, as Oakestra's root does with its priority list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement<Id> {
    /// The chosen candidate.
    pub id: Id,
    /// Its name.
    pub name: Label,
    /// Other feasible candidates, best first.
    pub fallbacks: Vec<Id>,
}

impl<Id> Decision<Id> {
    /// The placement, if any.
    pub fn placement(&self) -> Option<&Placement<Id>> {
        match self {
            Decision::Place(placement) => Some(placement),
            Decision::Unschedulable(_) => None,
        }
    }
}

/// Filter, then score: the one pipeline both tiers run.
pub(crate) fn pick<Id: Copy>(
    service: &ServiceSpec,
    candidates: &[Candidate<Id>],
    tier: Tier,
    oracle: &dyn RttOracle<Id>,
) -> Decision<Id> {
    if candidates.is_empty() {
        return Decision::Unschedulable(Reason::NoCandidates);
    }
    let request = Capacity::request(&service.resources);
    let mut feasible = Vec::new();
    let mut rejected = Vec::new();
    for candidate in candidates {
        match filter::check(service, request, candidate, tier, oracle) {
            Ok(()) => feasible.push(candidate),
            Err(why) => rejected.push(Rejected { name: candidate.name, why }),
        }
    }
    let mut ranked = score::rank(service, request, feasible, oracle).into_iter();
    match ranked.next() {
        Some(best) => Decision::Place(Placement { id: best.id, name: best.name, fallbacks: ranked.map(|c| c.id).collect() }),
        None => Decision::Unschedulable(Reason::NoneFit { rejected }),
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
