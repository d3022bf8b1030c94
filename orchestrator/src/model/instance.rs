//! An instance's life cycle, with Oakestra's state names (so its tooling
//! and documentation read the same) and a transition check, so that a late
//! or duplicated report cannot move an instance backwards (RUNNING is never
//! overwritten by a stale NODE_SCHEDULED).
//!
//! ```text
//! REQUESTED → CLUSTER_SCHEDULED → NODE_SCHEDULED → CREATING → RUNNING
//!     ↑  (cluster can't place / ack lost)  ↓            ↓         ↓
//!     └──────────── FAILED, DEAD ←──────────┴────────────┴─────────┘
//! RUNNING/CREATING → COMPLETED (one-shot done); anything → UNDEPLOYED (final)
//! ```
//! FAILED (exit ≠ 0, lost worker) and DEAD (exited 0 but not one-shot) go
//! back to REQUESTED to be rescheduled; both carry a reason.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceState {
    /// Accepted, waiting for the root to pick a cluster.
    Requested,
    /// A cluster was picked; waiting for it to pick a worker.
    ClusterScheduled,
    /// A worker was picked; waiting for it to acknowledge.
    NodeScheduled,
    /// The worker is starting it.
    Creating,
    /// Up.
    Running,
    /// Exited non-zero, or its worker was lost; to be rescheduled.
    Failed,
    /// Exited 0 though not one-shot; to be restarted.
    Dead,
    /// A one-shot instance finished.
    Completed,
    /// Removed by the user; final.
    Undeployed,
}

use InstanceState::*;

impl InstanceState {
    /// Oakestra's spelling, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Requested => "REQUESTED",
            ClusterScheduled => "CLUSTER_SCHEDULED",
            NodeScheduled => "NODE_SCHEDULED",
            Creating => "CREATING",
            Running => "RUNNING",
            Failed => "FAILED",
            Dead => "DEAD",
            Completed => "COMPLETED",
            Undeployed => "UNDEPLOYED",
        }
    }

    /// True when `self → next` is a legal step (staying put is not a step).
    pub fn can_become(self, next: InstanceState) -> bool {
        match (self, next) {
            (Undeployed, _) => false,
            (_, Undeployed) => true,
            (Requested, ClusterScheduled | Failed) => true,
            // The cluster found no worker: the root tries another cluster.
            (ClusterScheduled, NodeScheduled | Requested | Failed) => true,
            // No ack in time (Oakestra #419): back to the cluster's pick, or up to the root.
            (NodeScheduled, Creating | ClusterScheduled | Requested | Failed) => true,
            (Creating, Running | Completed | Failed | Dead) => true,
            (Running, Completed | Failed | Dead) => true,
            (Failed | Dead, Requested) => true,
            _ => false,
        }
    }

    /// FAILED and DEAD say why.
    pub fn has_reason(self) -> bool {
        matches!(self, Failed | Dead)
    }

    /// Holds a reservation on a worker (or is about to).
    pub fn occupies_worker(self) -> bool {
        matches!(self, NodeScheduled | Creating | Running)
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused transition.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TransitionError {
    /// Not an edge of the life cycle.
    #[error("an instance cannot go from {from} to {to}")]
    Illegal {
        /// Current state.
        from: InstanceState,
        /// Asked-for state.
        to: InstanceState,
    },
    /// Only FAILED and DEAD take a reason.
    #[error("{to} takes no reason")]
    UnexpectedReason {
        /// Asked-for state.
        to: InstanceState,
    },
}

/// An instance's state, why (FAILED/DEAD only) and since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The state.
    pub state: InstanceState,
    /// Why it failed or died; `None` otherwise.
    pub reason: Option<String>,
    /// When it entered `state`, ms on the caller's clock.
    pub since_ms: u64,
}

impl InstanceStatus {
    /// A new instance, REQUESTED at `now_ms`.
    pub fn requested(now_ms: u64) -> InstanceStatus {
        InstanceStatus { state: Requested, reason: None, since_ms: now_ms }
    }

    /// The status after moving to `to` at `now_ms`. Asking for the current
    /// state again is a no-op (workers repeat their state in every report),
    /// keeping the original `since_ms` and reason.
    pub fn transition(&self, to: InstanceState, reason: Option<String>, now_ms: u64) -> Result<InstanceStatus, TransitionError> {
        if reason.is_some() && !to.has_reason() {
            return Err(TransitionError::UnexpectedReason { to });
        }
        if to == self.state {
            return Ok(self.clone());
        }
        if !self.state.can_become(to) {
            return Err(TransitionError::Illegal { from: self.state, to });
        }
        Ok(InstanceStatus { state: to, reason, since_ms: now_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [InstanceState; 9] =
        [Requested, ClusterScheduled, NodeScheduled, Creating, Running, Failed, Dead, Completed, Undeployed];

    #[test]
    fn serde_uses_oakestras_names() {
        for state in ALL {
            let json = serde_json::to_string(&state).expect("json");
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<InstanceState>(&json).expect("json"), state);
        }
        assert_eq!(serde_json::to_string(&ClusterScheduled).expect("json"), "\"CLUSTER_SCHEDULED\"");
    }

    #[test]
    fn legal_and_illegal_steps() {
        let legal = [
            (Requested, ClusterScheduled),
            (ClusterScheduled, NodeScheduled),
            (ClusterScheduled, Requested),
            (NodeScheduled, Creating),
            (NodeScheduled, ClusterScheduled),
            (Creating, Running),
            (Creating, Completed),
            (Running, Failed),
            (Running, Dead),
            (Running, Completed),
            (Failed, Requested),
            (Dead, Requested),
            (Completed, Undeployed),
            (Requested, Undeployed),
        ];
        let illegal = [
            (Running, NodeScheduled),
            (Running, Requested),
            (Requested, Running),
            (Requested, NodeScheduled),
            (Completed, Running),
            (Completed, Requested),
            (Failed, Running),
            (Undeployed, Requested),
            (Undeployed, Running),
        ];
        for (from, to) in legal {
            assert!(from.can_become(to), "{from} → {to}");
        }
        for (from, to) in illegal {
            assert!(!from.can_become(to), "{from} → {to}");
        }
        // Every state but UNDEPLOYED can be undeployed.
        assert!(ALL.iter().all(|&s| s == Undeployed || s.can_become(Undeployed)));
    }

    #[test]
    fn transition_records_time_and_reason() {
        let s = InstanceStatus::requested(10);
        let s = s.transition(ClusterScheduled, None, 20).expect("legal");
        assert_eq!((s.state, s.since_ms), (ClusterScheduled, 20));
        // A repeated report keeps the original time.
        assert_eq!(s.transition(ClusterScheduled, None, 99).expect("no-op").since_ms, 20);
        let failed = s.transition(Failed, Some("worker lost".into()), 30).expect("legal");
        assert_eq!(failed.reason.as_deref(), Some("worker lost"));
        let again = failed.transition(Requested, None, 40).expect("reschedule");
        assert_eq!(again.reason, None);
    }

    #[test]
    fn refusals_are_typed() {
        let s = InstanceStatus::requested(0);
        assert_eq!(s.transition(Running, None, 1), Err(TransitionError::Illegal { from: Requested, to: Running }));
        assert_eq!(
            s.transition(ClusterScheduled, Some("x".into()), 1),
            Err(TransitionError::UnexpectedReason { to: ClusterScheduled })
        );
        let done = InstanceStatus { state: Undeployed, reason: None, since_ms: 0 };
        let e = done.transition(Requested, None, 1).expect_err("final");
        assert_eq!(e.to_string(), "an instance cannot go from UNDEPLOYED to REQUESTED");
    }
}
