//! Membership changes as events for the local API's stream
//! ([`crate::control::feed`]): collected while an input is handled, emitted
//! once at its end as [`Output::Members`].

use super::{ControlNode, Output};
use crate::control::events::{ChangeKind, MemberChange, MemberEntry};
use crate::control::membership::Change;

impl ControlNode {
    /// Notes what `change` is to a reader of the stream (the entry as the
    /// membership holds it now; a removed member is named by the feed).
    pub(super) fn note_event(&mut self, change: &Change) {
        let (peer, kind) = match change {
            Change::Joined(p) => (p, ChangeKind::Joined),
            Change::Updated(p) => (p, ChangeKind::Updated),
            Change::Revived(p) => (p, ChangeKind::Up),
            Change::Suspected(p) => (p, ChangeKind::Suspected),
            Change::Died(p, reason) => (p, ChangeKind::Down(*reason)),
            Change::Left(p) => (p, ChangeKind::Left),
            Change::Removed(peer, reason) => {
                self.member_events.push(MemberChange::Removed { peer: *peer, reason: *reason });
                return;
            }
            Change::Instances(_) | Change::Refute { .. } => return,
        };
        if *peer == self.local_peer {
            return;
        }
        if let Some(member) = self.membership.get(peer) {
            self.member_events.push(MemberChange::Entry { entry: MemberEntry::of(member), kind });
        }
    }

    /// The events noted so far, as one output.
    pub(super) fn emit_events(&mut self, out: &mut Vec<Output>) {
        if !self.member_events.is_empty() {
            out.push(Output::Members(std::mem::take(&mut self.member_events)));
        }
    }

    /// This node as the stream's snapshot shows it.
    pub fn local_entry(&self) -> MemberEntry {
        match self.membership.get(&self.local_peer) {
            Some(member) => MemberEntry::of(member),
            None => MemberEntry {
                name: self.local.name().to_owned(),
                peer_id: self.local_peer,
                subnet: self.local.subnet(),
                state: crate::control::view::MemberState::Alive,
                endpoints: Vec::new(),
                location: self.local.location(),
            },
        }
    }
}
