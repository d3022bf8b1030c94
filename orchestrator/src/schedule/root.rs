//! The root's pick: a cluster, from the aggregated summaries clusters
//! report. The root never sees single workers, so it filters on the
//! roomiest worker's free capacity (an instance runs on one worker) and
//! scores on the cluster's total; the cluster then picks the worker.

use dns::{Label, Location};
use serde::{Deserialize, Serialize};

use super::filter::{Candidate, Tier};
use super::rtt::RttOracle;
use super::{pick, Decision};
use crate::model::{Capacity, ClusterId};
use crate::sla::ServiceSpec;

/// What the root knows about one cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Its id.
    pub id: ClusterId,
    /// Its name, which `direct`/`clusters` constraints use.
    pub name: Label,
    /// Sum over its live workers.
    pub total: Capacity,
    /// Sum of their free capacity.
    pub free: Capacity,
    /// The free capacity of its roomiest worker (the most one instance can get).
    pub largest_worker_free: Capacity,
    /// Its location (the operator's, or its workers' centroid).
    pub location: Option<Location>,
    /// Reported within the liveness window.
    pub alive: bool,
}

impl ClusterSummary {
    /// The scheduler's view.
    pub fn candidate(&self) -> Candidate<ClusterId> {
        Candidate {
            id: self.id,
            name: self.name,
            location: self.location,
            room: self.largest_worker_free,
            free: self.free,
            total: self.total,
            alive: self.alive,
            siblings: 0,
        }
    }

    /// The summary after one more instance needing `request` was sent
    /// here, until the next report: `free` and the roomiest worker shrink
    /// (a lower bound, since the instance may land elsewhere).
    pub fn reserve(&mut self, request: Capacity) {
        self.free = self.free.saturating_sub(request);
        self.largest_worker_free = self.largest_worker_free.saturating_sub(request);
    }
}

/// Where one instance of `service` should go, among `clusters`.
pub fn pick_cluster(service: &ServiceSpec, clusters: &[ClusterSummary], oracle: &dyn RttOracle<ClusterId>) -> Decision<ClusterId> {
    pick_cluster_spread(service, clusters, &|_| 0, oracle)
}

/// [`pick_cluster`], where `siblings(cluster)` instances of the service
/// are already placed in each cluster: the fewest wins before proximity
/// and fit, so a service's instances spread over sites (failure domains)
/// as far as its constraints allow, as Kubernetes' topology spread and
/// Nomad's `spread` do by default.
pub fn pick_cluster_spread(
    service: &ServiceSpec,
    clusters: &[ClusterSummary],
    siblings: &dyn Fn(ClusterId) -> u32,
    oracle: &dyn RttOracle<ClusterId>,
) -> Decision<ClusterId> {
    let candidates: Vec<_> = clusters.iter().map(|c| Candidate { siblings: siblings(c.id), ..c.candidate() }).collect();
    pick(service, &candidates, Tier::Root, oracle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::fixtures::{cluster, label, service, MILAN, MUNICH};
    use crate::schedule::{GeoRtt, NoRtt, Reason, Rejection};
    use crate::sla::{Constraint, LatencyFrom};

    fn placed(d: &Decision<ClusterId>) -> Option<(ClusterId, Vec<ClusterId>)> {
        d.placement().map(|p| (p.id, p.fallbacks.clone()))
    }

    #[test]
    fn picks_the_tightest_fit_and_lists_fallbacks() {
        let clusters = [cluster(1, "big", Capacity::new(8000, 16384), Some(MUNICH)), cluster(2, "small", Capacity::new(2000, 2048), Some(MILAN))];
        let d = pick_cluster(&service(1, 1024, vec![]), &clusters, &NoRtt);
        assert_eq!(placed(&d), Some((ClusterId(2), vec![ClusterId(1)])));
    }

    #[test]
    fn needs_one_worker_with_room_not_the_sum() {
        let mut c = cluster(1, "split", Capacity::new(4000, 4096), Some(MUNICH));
        c.largest_worker_free = Capacity::new(1000, 1024); // four small workers
        let d = pick_cluster(&service(2, 512, vec![]), &[c], &NoRtt);
        let Decision::Unschedulable(reason) = d else { panic!("{d:?}") };
        assert_eq!(reason.count(|r| matches!(r, Rejection::NotEnoughResources { .. })), 1);
    }

    #[test]
    fn latency_from_an_area_estimated_from_locations() {
        let oracle = GeoRtt { areas: [(label("munich-1"), MUNICH)].into(), ..GeoRtt::default() };
        let clusters = [cluster(1, "milan", Capacity::new(4000, 4096), Some(MILAN)), cluster(2, "munich", Capacity::new(4000, 4096), Some(MUNICH))];
        let fast = |ms| service(1, 512, vec![Constraint::Latency { from: LatencyFrom::Area(label("munich-1")), within_ms: ms }]);
        assert_eq!(placed(&pick_cluster(&fast(20.0), &clusters, &oracle)), Some((ClusterId(2), vec![ClusterId(1)])));
        assert_eq!(placed(&pick_cluster(&fast(5.0), &clusters, &oracle)), Some((ClusterId(2), vec![])));
        assert_eq!(pick_cluster(&fast(5.0), &[], &oracle), Decision::Unschedulable(Reason::NoCandidates));
    }

    #[test]
    fn cluster_pins_and_dead_clusters() {
        let mut dead = cluster(1, "edge", Capacity::new(4000, 4096), Some(MUNICH));
        dead.alive = false;
        let clusters = [dead, cluster(2, "cloud", Capacity::new(4000, 4096), None)];
        let pinned = service(1, 512, vec![Constraint::Direct { clusters: vec![label("edge")], nodes: vec![] }]);
        let Decision::Unschedulable(Reason::NoneFit { rejected }) = pick_cluster(&pinned, &clusters, &NoRtt) else { panic!() };
        let why: Vec<_> = rejected.into_iter().map(|r| r.why).collect();
        assert_eq!(why, [Rejection::Down, Rejection::NotAllowed]);
    }

    #[test]
    fn reserve_shrinks_the_summary() {
        let mut c = cluster(1, "c", Capacity::new(2000, 2048), None);
        c.reserve(Capacity::new(1500, 1024));
        assert_eq!((c.free, c.largest_worker_free), (Capacity::new(500, 1024), Capacity::new(500, 1024)));
        c.reserve(Capacity::new(1000, 0));
        assert_eq!(c.free.cpu_millis, 0);
    }
}
