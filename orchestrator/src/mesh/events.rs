//! netmanager's membership events (`GET /v1/events`) as the tiers take
//! them: each line applied to a [`MeshView`], turned into a [`MeshEvent`].
//! Pure; [`super::watch`] does the reading and reconnecting.

use netmanager::api::types::{DownReason, Event, EventKind, MemberEntry, MemberState, RemovedReason};

use super::{MeshView, Peer};

/// What changed in the mesh.
#[derive(Clone, Debug, PartialEq)]
pub enum MeshEvent {
    /// The whole membership, after every (re)connect and resync: reconcile
    /// against the view, events may have been missed.
    Snapshot,
    /// One member changed.
    Member {
        /// Its member name.
        name: String,
        /// How.
        change: MemberChange,
    },
}

/// How a member changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// New in the mesh.
    Joined,
    /// Alive again.
    Up,
    /// Its watchers suspect it (it still counts as up).
    Suspected,
    /// The failure detector holds it dead.
    Down(DownReason),
    /// It said goodbye.
    Left,
    /// Revoked, superseded or long gone.
    Removed(RemovedReason),
    /// Its addresses or location changed.
    Updated,
}

impl MemberChange {
    /// The member is gone: dead, departed or removed.
    pub fn is_gone(self) -> bool {
        matches!(self, MemberChange::Down(_) | MemberChange::Left | MemberChange::Removed(_))
    }

    /// Why, in words, for logs.
    pub fn describe(self) -> &'static str {
        match self {
            MemberChange::Down(DownReason::Confirmed) => "the mesh's failure detector holds it dead (confirmed by its watchers)",
            MemberChange::Down(DownReason::Unrefuted) => "the mesh's failure detector holds it dead (a suspicion went unrefuted)",
            MemberChange::Left => "its node left the mesh",
            MemberChange::Removed(RemovedReason::Revoked) => "its node was removed from the mesh (revoked)",
            MemberChange::Removed(_) => "its node is no longer a mesh member",
            MemberChange::Joined => "joined",
            MemberChange::Up => "up",
            MemberChange::Suspected => "suspected",
            MemberChange::Updated => "updated",
        }
    }
}

/// The events did not follow on from each other: read a fresh snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The seq that was due.
    pub expected: u64,
    /// The seq that came.
    pub got: u64,
}

/// The membership a stream of events adds up to.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    view: Option<MeshView>,
    seq: Option<u64>,
}

impl Tracker {
    /// The view so far (none before the first snapshot).
    pub fn view(&self) -> Option<&MeshView> {
        self.view.as_ref()
    }

    /// A new connection: only a snapshot is taken next.
    pub fn reconnected(&mut self) {
        self.seq = None;
    }

    /// Applies one line; what it changed, if anything.
    pub fn take(&mut self, event: Event) -> Result<Option<MeshEvent>, Gap> {
        let Event { seq, kind } = event;
        match kind {
            EventKind::Snapshot { local, members } => {
                self.view = Some(MeshView::from_entries(&local, &members, self.view.as_ref()));
                self.seq = Some(seq);
                Ok(Some(MeshEvent::Snapshot))
            }
            // A fresh snapshot follows, with its own seq.
            EventKind::Resync { .. } => {
                self.seq = None;
                Ok(None)
            }
            kind => {
                let (Some(held), Some(view)) = (self.seq, self.view.as_mut()) else {
                    return Err(Gap { expected: 0, got: seq });
                };
                if seq != held + 1 {
                    return Err(Gap { expected: held + 1, got: seq });
                }
                self.seq = Some(seq);
                Ok(view.apply(&kind))
            }
        }
    }
}

fn change_of(kind: &EventKind) -> Option<MemberChange> {
    Some(match kind {
        EventKind::Joined { .. } => MemberChange::Joined,
        EventKind::Up { .. } => MemberChange::Up,
        EventKind::Suspected { .. } => MemberChange::Suspected,
        EventKind::Down { reason, .. } => MemberChange::Down(*reason),
        EventKind::Left { .. } => MemberChange::Left,
        EventKind::Removed { reason, .. } => MemberChange::Removed(*reason),
        EventKind::Updated { .. } => MemberChange::Updated,
        EventKind::Snapshot { .. } | EventKind::Resync { .. } => return None,
    })
}

impl Peer {
    fn from_entry(entry: &MemberEntry, rtt_ms: Option<f64>) -> Peer {
        Peer {
            name: entry.name.clone(),
            subnet: entry.subnet,
            up: matches!(entry.state, MemberState::Alive | MemberState::Suspect),
            location: entry.location,
            rtt_ms,
        }
    }
}

impl MeshView {
    /// From a snapshot; RTTs (which the stream does not carry) kept from `before`.
    pub fn from_entries(local: &MemberEntry, members: &[MemberEntry], before: Option<&MeshView>) -> MeshView {
        let rtt = |name: &str| before.and_then(|v| v.peer(name)).and_then(|p| p.rtt_ms);
        MeshView {
            local_name: local.name.clone(),
            local_subnet: local.subnet,
            local_location: local.location,
            peers: members.iter().map(|m| Peer::from_entry(m, rtt(&m.name))).collect(),
        }
    }

    /// Applies one member event.
    pub fn apply(&mut self, kind: &EventKind) -> Option<MeshEvent> {
        let (member, change) = (kind.member()?, change_of(kind)?);
        let at = self.peers.iter().position(|p| p.name == member.name);
        match (change, at) {
            (MemberChange::Removed(_), Some(at)) => {
                self.peers.remove(at);
            }
            (MemberChange::Removed(_), None) => {}
            (_, Some(at)) => {
                let rtt = self.peers[at].rtt_ms;
                self.peers[at] = Peer::from_entry(member, rtt);
            }
            (_, None) => self.peers.push(Peer::from_entry(member, None)),
        }
        Some(MeshEvent::Member { name: member.name.clone(), change })
    }

    /// Takes the RTTs of a fresh `/v1/members` read (the stream carries none).
    pub fn copy_rtts(&mut self, from: &MeshView) {
        for peer in &mut self.peers {
            if let Some(fresh) = from.peer(&peer.name) {
                peer.rtt_ms = fresh.rtt_ms;
            }
        }
    }

    /// The mesh holds `name` dead or departed (a member it does not know of
    /// at all is not held down: it may simply be newer than the view).
    pub fn holds_down(&self, name: &str) -> bool {
        name != self.local_name && self.peer(name).is_some_and(|p| !p.up)
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
