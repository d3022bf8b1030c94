//! Moving the instances of a lost worker or cluster: re-run the pick for
//! each, without the lost one, counting what earlier moves reserved so two
//! instances are not both sent into the same last free slot. Largest
//! requests go first (first-fit decreasing), because small ones fit in the
//! gaps big ones leave and not the other way round.

use std::cmp::Reverse;

use super::cluster::{pick_worker, WorkerState};
use super::root::{pick_cluster, ClusterSummary};
use super::rtt::RttOracle;
use super::Decision;
use crate::model::{Capacity, ClusterId, InstanceId, WorkerId};
use crate::sla::ServiceSpec;

/// An instance that was on the lost worker or cluster.
#[derive(Clone, Copy, Debug)]
pub struct Placed<'a> {
    /// The instance.
    pub instance: InstanceId,
    /// What it runs.
    pub service: &'a ServiceSpec,
}

/// Where one instance goes now (or why it cannot go anywhere).
#[derive(Clone, Debug, PartialEq)]
pub struct Move<Id> {
    /// The instance.
    pub instance: InstanceId,
    /// Where it was.
    pub from: Id,
    /// Where it goes.
    pub decision: Decision<Id>,
}

/// Moves for the instances of worker `lost`, among the other `workers`.
pub fn off_worker(lost: WorkerId, placed: &[Placed<'_>], workers: &[WorkerState], oracle: &dyn RttOracle<WorkerId>) -> Vec<Move<WorkerId>> {
    let mut left: Vec<WorkerState> = workers.iter().filter(|w| w.id != lost).cloned().collect();
    in_order(placed)
        .map(|p| {
            let decision = pick_worker(p.service, &left, oracle);
            if let Some(chosen) = decision.placement().and_then(|d| left.iter_mut().find(|w| w.id == d.id)) {
                chosen.reserved = chosen.reserved.saturating_add(Capacity::request(&p.service.resources));
            }
            Move { instance: p.instance, from: lost, decision }
        })
        .collect()
}

/// Moves for the instances of cluster `lost`, among the other `clusters`.
pub fn off_cluster(
    lost: ClusterId,
    placed: &[Placed<'_>],
    clusters: &[ClusterSummary],
    oracle: &dyn RttOracle<ClusterId>,
) -> Vec<Move<ClusterId>> {
    let mut left: Vec<ClusterSummary> = clusters.iter().filter(|c| c.id != lost).cloned().collect();
    in_order(placed)
        .map(|p| {
            let decision = pick_cluster(p.service, &left, oracle);
            if let Some(chosen) = decision.placement().and_then(|d| left.iter_mut().find(|c| c.id == d.id)) {
                chosen.reserve(Capacity::request(&p.service.resources));
            }
            Move { instance: p.instance, from: lost, decision }
        })
        .collect()
}

/// Largest memory, then CPU, first; instance id breaks ties.
fn in_order<'a>(placed: &'a [Placed<'a>]) -> impl Iterator<Item = &'a Placed<'a>> {
    let mut sorted: Vec<&Placed<'_>> = placed.iter().collect();
    sorted.sort_by_key(|p| {
        let r = Capacity::request(&p.service.resources);
        (Reverse(r.memory_mib), Reverse(r.cpu_millis), p.instance)
    });
    sorted.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::fixtures::{cluster, service, worker, MILAN, MUNICH};
    use crate::schedule::{NoRtt, Reason, Rejection};
    use crate::sla::Constraint;

    fn targets<Id: Copy>(moves: &[Move<Id>]) -> Vec<(InstanceId, Option<Id>)> {
        moves.iter().map(|m| (m.instance, m.decision.placement().map(|p| p.id))).collect()
    }

    #[test]
    fn lost_worker_spreads_by_remaining_room() {
        // Three workers with 4000m/4096 MiB each; w1 is lost.
        let workers = [worker(1, "w1", None), worker(2, "w2", None), worker(3, "w3", None)];
        let (big, small) = (service(3, 3072, vec![]), service(1, 1024, vec![]));
        let placed = [
            Placed { instance: InstanceId(10), service: &small },
            Placed { instance: InstanceId(11), service: &big },
            Placed { instance: InstanceId(12), service: &big },
        ];
        let moves = off_worker(WorkerId(1), &placed, &workers, &NoRtt);
        // Big ones first, one per worker (the second no longer fits on w2);
        // the small one fills w2's remaining gap (best fit, name tie-break).
        assert_eq!(
            targets(&moves),
            [(InstanceId(11), Some(WorkerId(2))), (InstanceId(12), Some(WorkerId(3))), (InstanceId(10), Some(WorkerId(2)))]
        );
        assert!(moves.iter().all(|m| m.from == WorkerId(1)));
    }

    #[test]
    fn unplaceable_instances_say_why() {
        let workers = [worker(1, "munich", Some(MUNICH)), worker(2, "milan", Some(MILAN))];
        let near = service(1, 512, vec![Constraint::Geo { near: MUNICH, within_km: 50.0 }]);
        let moves = off_worker(WorkerId(1), &[Placed { instance: InstanceId(7), service: &near }], &workers, &NoRtt);
        let Decision::Unschedulable(reason) = &moves[0].decision else { panic!("{moves:?}") };
        assert_eq!(reason.count(|r| matches!(r, Rejection::TooFar { .. })), 1);
        // Only the lost worker existed: nothing to choose from.
        let moves = off_worker(WorkerId(1), &[Placed { instance: InstanceId(7), service: &near }], &workers[..1], &NoRtt);
        assert_eq!(moves[0].decision, Decision::Unschedulable(Reason::NoCandidates));
    }

    #[test]
    fn lost_cluster_counts_earlier_moves() {
        let clusters = [
            cluster(1, "lost", Capacity::new(8000, 8192), Some(MUNICH)),
            cluster(2, "a", Capacity::new(2000, 2048), None),
            cluster(3, "b", Capacity::new(2000, 2048), None),
        ];
        let s = service(2, 2048, vec![]);
        let placed: Vec<Placed<'_>> = (1..=3).map(|i| Placed { instance: InstanceId(i), service: &s }).collect();
        let moves = off_cluster(ClusterId(1), &placed, &clusters, &NoRtt);
        assert_eq!(
            targets(&moves),
            [(InstanceId(1), Some(ClusterId(2))), (InstanceId(2), Some(ClusterId(3))), (InstanceId(3), None)]
        );
    }
}
