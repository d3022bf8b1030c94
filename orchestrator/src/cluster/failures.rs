//! Which workers the mesh says are gone, from its membership events. Pure:
//! the cluster hands each event and the view after it, and loses what this
//! returns.
//!
//! An event about a worker's node that is down, left or removed loses it at
//! once; a snapshot (every (re)connect to netmanager, every resync) loses
//! every live worker it does not hold up, which covers whatever happened
//! while the stream was away. Suspicion alone loses nothing: the failure
//! detector's verdict comes a moment later.

use crate::mesh::events::MeshEvent;
use crate::mesh::MeshView;

use super::state::ClusterState;

/// (worker, why) for each live worker `event` says is gone.
pub fn lost_workers(state: &ClusterState, event: &MeshEvent, view: &MeshView) -> Vec<(String, String)> {
    let live = |name: &str| state.workers.get(name).is_some_and(|w| w.alive);
    match event {
        MeshEvent::Member { name, change } if change.is_gone() && live(name) => vec![(name.clone(), change.describe().to_owned())],
        MeshEvent::Member { .. } => Vec::new(),
        MeshEvent::Snapshot => state
            .workers
            .iter()
            .filter(|(name, w)| w.alive && !view.is_up(name))
            .map(|(name, _)| (name.clone(), "the mesh no longer holds its node up (seen on reconnecting to netmanager)".to_owned()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use netmanager::api::types::{DownReason, RemovedReason};

    use super::*;
    use crate::mesh::events::MemberChange;
    use crate::mesh::Peer;
    use crate::model::Capacity;
    use crate::proto::WorkerReport;

    fn state(workers: &[&str]) -> ClusterState {
        let mut s = ClusterState::default();
        for name in workers {
            let report = WorkerReport { name: (*name).into(), arch: "x86_64".into(), capacity: Capacity::new(1000, 512), reserved: Capacity::ZERO, load: 0.0, location: None };
            s.worker_up(name, report);
        }
        s
    }

    fn view(up: &[(&str, bool)]) -> MeshView {
        let peers = up
            .iter()
            .enumerate()
            .map(|(i, (name, up))| Peer { name: (*name).into(), subnet: format!("10.64.{}.0/26", i + 1).parse().expect("subnet"), up: *up, location: None, rtt_ms: None })
            .collect();
        MeshView { local_name: "c1".into(), local_subnet: "10.64.0.0/26".parse().expect("subnet"), local_location: None, peers }
    }

    fn member(name: &str, change: MemberChange) -> MeshEvent {
        MeshEvent::Member { name: name.into(), change }
    }

    #[test]
    fn down_left_and_removed_lose_a_live_worker_at_once() {
        let s = state(&["w1", "w2"]);
        let v = view(&[("w1", false), ("w2", true)]);
        for change in [MemberChange::Down(DownReason::Confirmed), MemberChange::Left, MemberChange::Removed(RemovedReason::Revoked)] {
            let lost = lost_workers(&s, &member("w1", change), &v);
            assert_eq!(lost.len(), 1, "{change:?}");
            assert_eq!(lost[0].0, "w1");
            assert!(!lost[0].1.is_empty());
        }
    }

    #[test]
    fn suspicion_other_members_and_lost_workers_change_nothing() {
        let mut s = state(&["w1"]);
        let v = view(&[("w1", true), ("r", false)]);
        assert!(lost_workers(&s, &member("w1", MemberChange::Suspected), &v).is_empty(), "suspect is still up");
        assert!(lost_workers(&s, &member("w1", MemberChange::Up), &v).is_empty());
        assert!(lost_workers(&s, &member("r", MemberChange::Down(DownReason::Confirmed)), &v).is_empty(), "not a worker");
        s.worker_lost("w1", &crate::schedule::NoRtt);
        assert!(lost_workers(&s, &member("w1", MemberChange::Left), &v).is_empty(), "already lost");
    }

    #[test]
    fn a_snapshot_reconciles_what_the_stream_missed() {
        let s = state(&["w1", "w2", "w3"]);
        // w1 died while netmanager was away, w3 was pruned meanwhile, w2 is fine.
        let v = view(&[("w1", false), ("w2", true)]);
        let mut lost: Vec<String> = lost_workers(&s, &MeshEvent::Snapshot, &v).into_iter().map(|(w, _)| w).collect();
        lost.sort();
        assert_eq!(lost, ["w1", "w3"]);
    }
}
