//! Membership events: what the node's state machine reports when a member
//! joins, comes back, is suspected, dies, leaves, is removed or moves
//! ([`MemberChange`], emitted as [`super::node::Output::Members`]), and the
//! numbered form the local API streams ([`Event`], one JSON object per
//! line of `GET /v1/events`).
//!
//! ```json
//! {"seq":0,"type":"snapshot","local":{…},"members":[{…}]}
//! {"seq":1,"type":"joined","member":{"name":"w1","peer_id":"12D3…","subnet":"10.64.0.64/26","state":"alive","endpoints":["192.0.2.7:50103"],"location":null}}
//! {"seq":2,"type":"suspected","member":{…,"state":"suspect"}}
//! {"seq":3,"type":"down","member":{…,"state":"dead"},"reason":"confirmed"}
//! {"seq":4,"type":"up","member":{…,"state":"alive"}}
//! {"seq":5,"type":"left","member":{…,"state":"left"}}
//! {"seq":6,"type":"removed","member":{…},"reason":"revoked"}
//! {"seq":7,"type":"updated","member":{…}}
//! {"seq":7,"type":"resync","missed":1024}
//! ```
//!
//! Every member event carries the member's whole entry as it is now, so a
//! reader replaces what it holds. `seq` counts changes since this
//! netmanager started: a snapshot's is the last change it includes, every
//! later event's is one more than the one before; a `resync` (the reader
//! fell behind and `missed` events were dropped for it) carries the seq of
//! the fresh snapshot that follows it.

use std::net::SocketAddr;

use dns::Location;
use ipnet::Ipv4Net;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use super::membership::{DownReason, Member, RemovedReason};
use super::view::MemberState;

/// A member as the event stream shows it: who, where, and whether it is up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub name: String,
    pub peer_id: PeerId,
    pub subnet: Ipv4Net,
    pub state: MemberState,
    /// Its tunnel endpoints (underlay addresses).
    #[serde(default)]
    pub endpoints: Vec<SocketAddr>,
    #[serde(default)]
    pub location: Option<Location>,
}

impl MemberEntry {
    pub fn of(member: &Member) -> MemberEntry {
        MemberEntry {
            name: member.name().to_owned(),
            peer_id: member.peer,
            subnet: member.grant.subnet,
            state: MemberState::of(&member.liveness),
            endpoints: member.record.endpoints.to_vec(),
            location: member.record.location,
        }
    }

    /// Same identity and addresses, whatever the liveness: a newer record
    /// that only re-signs (a fresh coordinate) is no event.
    pub fn same_place(&self, other: &MemberEntry) -> bool {
        self.name == other.name && self.subnet == other.subnet && self.endpoints == other.endpoints && self.location == other.location
    }
}

/// What happened to a member, as the node reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum MemberChange {
    /// Its entry now, and what made it so.
    Entry { entry: MemberEntry, kind: ChangeKind },
    /// It left the table (its entry is the feed's last one).
    Removed { peer: PeerId, reason: RemovedReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Joined,
    /// Alive again after being suspected, dead or gone.
    Up,
    Suspected,
    Down(DownReason),
    Left,
    /// A newer record; an event only if name, subnet, endpoints or location changed.
    Updated,
}

/// One line of the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The whole membership at `seq`: the first line of every stream, and
    /// the line after a `resync`.
    Snapshot { local: MemberEntry, members: Vec<MemberEntry> },
    Joined { member: MemberEntry },
    Up { member: MemberEntry },
    Suspected { member: MemberEntry },
    Down { member: MemberEntry, reason: DownReason },
    Left { member: MemberEntry },
    Removed { member: MemberEntry, reason: RemovedReason },
    /// Its name, subnet, endpoints or location changed.
    Updated { member: MemberEntry },
    /// This reader fell behind and `missed` events were dropped for it; a
    /// fresh snapshot follows.
    Resync { missed: u64 },
}

impl EventKind {
    /// The member an event is about (none for snapshots and resyncs).
    pub fn member(&self) -> Option<&MemberEntry> {
        match self {
            EventKind::Joined { member }
            | EventKind::Up { member }
            | EventKind::Suspected { member }
            | EventKind::Down { member, .. }
            | EventKind::Left { member }
            | EventKind::Removed { member, .. }
            | EventKind::Updated { member } => Some(member),
            EventKind::Snapshot { .. } | EventKind::Resync { .. } => None,
        }
    }
}
