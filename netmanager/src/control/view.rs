//! What the control plane shows the outside (local API, `status`,
//! metrics): a snapshot the driver refreshes, read without touching the
//! control plane. Fields are typed; serde spells them for JSON.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dns::Location;
use ipnet::Ipv4Net;
use libp2p_identity::PeerId;
use overlay::PublicKey;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::membership::{Liveness, Member, Membership};
use super::projection::Conflict;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControlView {
    pub local: LocalView,
    pub members: Vec<MemberView>,
    /// Joins, revivals, suspicions, deaths and departures seen since start.
    pub changes: u64,
    /// Instance keys announced by more than one member.
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    /// Connections that are not (yet) members'.
    #[serde(default)]
    pub strangers: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LocalView {
    pub name: String,
    pub peer_id: PeerId,
    pub subnet: Ipv4Net,
    pub authority: PeerId,
    pub is_authority: bool,
    /// Vivaldi's own error estimate (relative).
    pub coordinate_error: f64,
    pub version: u64,
    /// Instances this node announces.
    #[serde(default)]
    pub instances: usize,
    /// Where this node is, as configured (the orchestrator's tiers place by it).
    #[serde(default)]
    pub location: Option<Location>,
}

/// A member's liveness as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    Alive,
    Suspect,
    Dead,
    Left,
}

impl MemberState {
    pub fn of(liveness: &Liveness) -> MemberState {
        match liveness {
            Liveness::Alive => MemberState::Alive,
            Liveness::Suspect { .. } => MemberState::Suspect,
            Liveness::Dead { .. } => MemberState::Dead,
            Liveness::Left { .. } => MemberState::Left,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberView {
    pub name: String,
    pub peer_id: PeerId,
    pub subnet: Ipv4Net,
    /// The member's tunnel (WireGuard) public key.
    pub wg_public_key: PublicKey,
    pub state: MemberState,
    pub endpoints: Vec<SocketAddr>,
    pub location: Option<Location>,
    /// Measured RTT (ms), when this node probes the member.
    pub measured_ms: Option<f64>,
    /// RTT the coordinates predict (ms).
    pub estimated_ms: Option<f64>,
    pub instances: usize,
}

impl MemberView {
    /// The RTT the resolver uses: measured if known, else estimated.
    pub fn rtt_ms(&self) -> Option<(f64, &'static str)> {
        self.measured_ms.map(|m| (m, "measured")).or(self.estimated_ms.map(|e| (e, "estimated")))
    }
}

/// Every member but the local one, by name.
pub fn member_views(membership: &Membership, rtt: impl Fn(&PeerId) -> (Option<Duration>, Option<Duration>)) -> Vec<MemberView> {
    let mut views: Vec<MemberView> = membership
        .members()
        .filter(|m| m.peer != *membership.local())
        .map(|m: &Member| {
            let (measured, estimated) = rtt(&m.peer);
            MemberView {
                name: m.name().to_owned(),
                peer_id: m.peer,
                subnet: m.grant.subnet,
                wg_public_key: PublicKey(m.grant.wg_public_key),
                state: MemberState::of(&m.liveness),
                endpoints: m.record.endpoints.to_vec(),
                location: m.record.location,
                measured_ms: measured.map(|d| d.as_secs_f64() * 1000.0),
                estimated_ms: estimated.map(|d| d.as_secs_f64() * 1000.0),
                instances: m.instances.as_ref().map_or(0, |(_, s)| s.instances.len()),
            }
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

/// Shared between the driver (writer) and readers.
pub type SharedView = Arc<RwLock<Option<ControlView>>>;
