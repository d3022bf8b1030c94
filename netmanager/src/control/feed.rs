//! The membership event feed: [`Feed`] (pure) numbers the node's
//! [`MemberChange`]s and keeps the table a snapshot is made of;
//! [`FeedHub`] shares it between the driver (which publishes what the node
//! emits) and the local API (which subscribes one stream per reader).
//!
//! Snapshot and subscription are taken under one lock with the publishing,
//! so a reader's first event is exactly the one after its snapshot. The
//! broadcast channel is bounded ([`BACKLOG`]): publishing never waits for a
//! reader, and a reader that falls further behind is told it lagged (the
//! API then sends it a `resync` and a fresh snapshot).

use std::collections::BTreeMap;
use std::sync::Arc;

use libp2p_identity::PeerId;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::events::{ChangeKind, Event, EventKind, MemberChange, MemberEntry};
use super::view::MemberState;

/// Events a reader may fall behind by before it must resync.
pub const BACKLOG: usize = 1024;

/// The numbered membership: what every event so far adds up to.
pub struct Feed {
    seq: u64,
    local: MemberEntry,
    members: BTreeMap<PeerId, MemberEntry>,
}

impl Feed {
    pub fn new(local: MemberEntry) -> Feed {
        Feed { seq: 0, local, members: BTreeMap::new() }
    }

    /// The seq of the last event.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The whole membership now, members by name.
    pub fn snapshot(&self) -> Event {
        let mut members: Vec<MemberEntry> = self.members.values().cloned().collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Event { seq: self.seq, kind: EventKind::Snapshot { local: self.local.clone(), members } }
    }

    /// Applies one change; the event to send, if it is one. The local node
    /// is the snapshot's `local`, never a member; a newer record that moves
    /// nothing is no event.
    pub fn apply(&mut self, change: MemberChange) -> Option<Event> {
        let kind = match change {
            MemberChange::Entry { entry, kind } => {
                if entry.peer_id == self.local.peer_id {
                    return None;
                }
                let held = self.members.insert(entry.peer_id, entry.clone());
                event_for(held.as_ref(), entry, kind)?
            }
            MemberChange::Removed { peer, reason } => {
                let member = self.members.remove(&peer)?;
                EventKind::Removed { member, reason }
            }
        };
        self.seq += 1;
        Some(Event { seq: self.seq, kind })
    }
}

/// What a change of a member the feed held as `held` is to readers.
fn event_for(held: Option<&MemberEntry>, member: MemberEntry, kind: ChangeKind) -> Option<EventKind> {
    Some(match (held, kind) {
        (None, ChangeKind::Joined | ChangeKind::Updated | ChangeKind::Up) => EventKind::Joined { member },
        (Some(held), ChangeKind::Joined | ChangeKind::Updated) => {
            if held.state != MemberState::Alive && member.state == MemberState::Alive {
                EventKind::Up { member }
            } else if !held.same_place(&member) {
                EventKind::Updated { member }
            } else {
                return None;
            }
        }
        (_, ChangeKind::Up) => EventKind::Up { member },
        (_, ChangeKind::Suspected) => EventKind::Suspected { member },
        (_, ChangeKind::Down(reason)) => EventKind::Down { member, reason },
        (_, ChangeKind::Left) => EventKind::Left { member },
    })
}

/// A reader's start: the membership now, and every event after it.
pub struct Subscription {
    pub snapshot: Event,
    pub events: broadcast::Receiver<Event>,
}

struct Live {
    feed: Feed,
    sender: broadcast::Sender<Event>,
}

/// The feed shared by the driver and the API; empty until the control
/// plane runs and after it stopped (readers then see the stream end).
#[derive(Clone)]
pub struct FeedHub {
    live: Arc<Mutex<Option<Live>>>,
    backlog: usize,
}

impl Default for FeedHub {
    fn default() -> FeedHub {
        FeedHub::new(BACKLOG)
    }
}

impl FeedHub {
    /// A hub whose readers may lag `backlog` events.
    pub fn new(backlog: usize) -> FeedHub {
        FeedHub { live: Arc::new(Mutex::new(None)), backlog: backlog.max(1) }
    }

    /// The control plane runs, as `local`.
    pub fn start(&self, local: MemberEntry) {
        let (sender, _) = broadcast::channel(self.backlog);
        *self.live.lock() = Some(Live { feed: Feed::new(local), sender });
    }

    /// Numbers and sends the node's changes. Never waits for a reader.
    pub fn publish(&self, changes: Vec<MemberChange>) {
        let mut live = self.live.lock();
        let Some(live) = live.as_mut() else { return };
        for change in changes {
            if let Some(event) = live.feed.apply(change) {
                // No reader is no error: the feed still counts.
                let _ = live.sender.send(event);
            }
        }
    }

    /// A snapshot and the events after it; none before the control plane
    /// runs or after it stopped.
    pub fn subscribe(&self) -> Option<Subscription> {
        let live = self.live.lock();
        let live = live.as_ref()?;
        Some(Subscription { snapshot: live.feed.snapshot(), events: live.sender.subscribe() })
    }

    /// The control plane stopped: every reader's stream ends.
    pub fn stop(&self) {
        *self.live.lock() = None;
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
