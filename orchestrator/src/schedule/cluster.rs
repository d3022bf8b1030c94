//! A cluster's pick: a worker, from the per-worker state its workers
//! report (fresh, unlike the root's aggregates).

use dns::{Label, Location};
use serde::{Deserialize, Serialize};

use super::filter::{Candidate, Tier};
use super::rtt::RttOracle;
use super::{pick, Decision};
use crate::model::{Capacity, WorkerId};
use crate::sla::ServiceSpec;

/// What a cluster knows about one worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerState {
    /// Its id.
    pub id: WorkerId,
    /// Its node name, which `direct` constraints (and `target_node`) use.
    pub name: Label,
    /// What it offers instances.
    pub capacity: Capacity,
    /// What instances placed on it reserve (NODE_SCHEDULED, CREATING, RUNNING).
    pub reserved: Capacity,
    /// Its CPU architecture (`std::env::consts::ARCH`); reported, not yet
    /// filtered on, because the SLA names no architecture.
    pub arch: String,
    /// Where it is, if known.
    pub location: Option<Location>,
    /// Reported within the liveness window.
    pub alive: bool,
}

impl WorkerState {
    /// Capacity not reserved.
    pub fn free(&self) -> Capacity {
        self.capacity.saturating_sub(self.reserved)
    }

    /// The scheduler's view.
    pub fn candidate(&self) -> Candidate<WorkerId> {
        let free = self.free();
        Candidate { id: self.id, name: self.name, location: self.location, room: free, free, total: self.capacity, alive: self.alive, siblings: 0 }
    }
}

/// Which worker should run one instance of `service`.
pub fn pick_worker(service: &ServiceSpec, workers: &[WorkerState], oracle: &dyn RttOracle<WorkerId>) -> Decision<WorkerId> {
    pick_worker_spread(service, workers, &|_| 0, oracle)
}

/// [`pick_worker`], where `siblings(worker)` instances of the service
/// already run on each worker: the fewest wins before proximity and fit.
pub fn pick_worker_spread(
    service: &ServiceSpec,
    workers: &[WorkerState],
    siblings: &dyn Fn(WorkerId) -> u32,
    oracle: &dyn RttOracle<WorkerId>,
) -> Decision<WorkerId> {
    let candidates: Vec<_> = workers.iter().map(|w| Candidate { siblings: siblings(w.id), ..w.candidate() }).collect();
    pick(service, &candidates, Tier::Cluster, oracle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::fixtures::{label, service, worker, MILAN, MUNICH};
    use crate::schedule::{NoRtt, Reason, Rejection};
    use crate::sla::Constraint;

    fn near_munich(km: f64) -> ServiceSpec {
        service(1, 512, vec![Constraint::Geo { near: MUNICH, within_km: km }])
    }

    #[test]
    fn geo_picks_munich_and_refuses_milan_alone() {
        let workers = [worker(1, "milan", Some(MILAN)), worker(2, "munich", Some(MUNICH))];
        let d = pick_worker(&near_munich(50.0), &workers, &NoRtt);
        assert_eq!(d.placement().map(|p| (p.id, p.name)), Some((WorkerId(2), label("munich"))));
        let d = pick_worker(&near_munich(50.0), &workers[..1], &NoRtt);
        let Decision::Unschedulable(Reason::NoneFit { rejected }) = &d else { panic!("{d:?}") };
        assert!(matches!(rejected[0].why, Rejection::TooFar { km: Some(km), within_km: 50.0 } if km > 300.0), "{d:?}");
        assert!(matches!(&d, Decision::Unschedulable(r) if r.to_string().starts_with("none of 1 candidates fit: milan: too far (")));
        // A wider radius takes Milan, but Munich stays first: nearer wins.
        let d = pick_worker(&near_munich(500.0), &workers, &NoRtt);
        assert_eq!(d.placement().map(|p| (p.id, p.fallbacks.clone())), Some((WorkerId(2), vec![WorkerId(1)])));
    }

    #[test]
    fn reserved_capacity_counts() {
        let mut busy = worker(1, "busy", None);
        busy.reserved = Capacity::new(3500, 0);
        let idle = worker(2, "idle", None);
        // Best fit would prefer the busy one, but it has only 500m free.
        let d = pick_worker(&service(1, 512, vec![]), &[busy.clone(), idle], &NoRtt);
        assert_eq!(d.placement().map(|p| p.id), Some(WorkerId(2)));
        busy.reserved = Capacity::new(3000, 0);
        let d = pick_worker(&service(1, 512, vec![]), &[busy, worker(2, "idle", None)], &NoRtt);
        assert_eq!(d.placement().map(|p| p.id), Some(WorkerId(1)));
    }

    #[test]
    fn node_pin() {
        let workers = [worker(1, "a", None), worker(2, "b", None)];
        let pinned = service(1, 512, vec![Constraint::Direct { clusters: vec![label("ignored-here")], nodes: vec![label("b")] }]);
        assert_eq!(pick_worker(&pinned, &workers, &NoRtt).placement().map(|p| p.id), Some(WorkerId(2)));
    }
}
