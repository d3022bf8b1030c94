//! What nodes and the authority sign. Records travel by gossip and sync
//! and are verified ([`super::super::membership`]) before anything uses
//! them; all of them are small and bounded.
//!
//! * [`SubnetGrant`] (by the authority, or by a cluster it delegated a
//!   block to): this identity owns this subnet, this name and this tunnel
//!   key;
//! * [`Delegation`] (by the authority): this cluster may grant subnets of
//!   this block — the middle link of the chain root → cluster → node;
//! * [`NodeRecord`] (by the node): where it is reachable, its coordinate,
//!   its grant;
//! * [`InstanceSet`] (by the node): the service instances it runs;
//! * [`Suspicion`] (by a watcher), [`Leave`] (by the node),
//!   [`Revocation`] (by the authority): liveness and departure.
//!
//! Versions order one signer's records: a record is accepted only if its
//! version is higher than the one held, so a replayed old record changes
//! nothing. A node's versions are `incarnation << 32 | sequence`, the
//! incarnation counted on disk at every start (not the wall clock, which a
//! Raspberry Pi without a battery gets wrong after a reboot).

use std::net::SocketAddr;

use dns::{InstanceSpec, Location};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::bounded::Bounded;
use super::signed::{RecordKind, Signed};
use crate::control::vivaldi::Coordinate;

/// Endpoints (UDP) and control addresses (TCP) a record may list.
pub const MAX_ADDRESSES: usize = 8;
/// Instances one node may announce: a /26 holds 61 workload addresses, and
/// a few instances may share one; more is a mistake or an attack (every
/// member keeps every set).
pub const MAX_INSTANCES: usize = 256;
/// Longest node name (one DNS label).
pub const MAX_NAME: usize = 63;

/// "The authority gives `node` the subnet `subnet`, the name `name` and the
/// tunnel key `wg_public_key`", signed by the authority. Names and keys are
/// unique because the authority hands each out once; `serial` (its own
/// counter) orders two grants of the same name or subnet when one was
/// released and handed out again: the higher one is the current owner.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubnetGrant {
    /// `PeerId::to_bytes()` of the grantee.
    pub node: Vec<u8>,
    pub subnet: Ipv4Net,
    pub name: String,
    pub wg_public_key: [u8; 32],
    pub serial: u64,
    /// When it was signed (information only: nothing depends on clocks).
    pub issued_unix_ms: u64,
}

impl RecordKind for SubnetGrant {
    const KIND: &'static str = "grove/grant/2";
}

/// "`cluster` may admit nodes and grant them subnets of `block`", signed by
/// the pinned authority. A grant signed by `cluster` is believed only with
/// this beside it, and only for a subnet inside `block`; `serial` is the
/// authority's, like a grant's. It is bound to the cluster's own grant
/// (`cluster_grant_serial`): revoking that grant voids the delegation and
/// every grant made under it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delegation {
    /// `PeerId::to_bytes()` of the delegate (a member the authority admitted).
    pub cluster: Vec<u8>,
    pub block: Ipv4Net,
    pub serial: u64,
    pub cluster_grant_serial: u64,
    pub issued_unix_ms: u64,
}

impl RecordKind for Delegation {
    const KIND: &'static str = "grove/delegation/1";
}

/// A node's self-description. Its name and tunnel key are the grant's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Underlay UDP endpoints of the tunnel, tried in order.
    pub endpoints: Bounded<SocketAddr, MAX_ADDRESSES>,
    /// Underlay TCP addresses of the control plane (libp2p).
    pub control: Bounded<SocketAddr, MAX_ADDRESSES>,
    /// The grant signed by the admission authority, or by a delegate…
    pub grant: Signed<SubnetGrant>,
    /// …with the authority's delegation to it (`None` for a grant the
    /// authority signed itself).
    pub delegation: Option<Signed<Delegation>>,
    /// Configured geography.
    pub location: Option<Location>,
    /// The node's network coordinate when the record was signed.
    pub coordinate: Coordinate,
    pub version: u64,
}

impl RecordKind for NodeRecord {
    const KIND: &'static str = "grove/node/3";
}

/// Every instance a node runs, replaced as a whole on each change (whole
/// sets make deletion and replay trivial).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceSet {
    /// The node's PeerId bytes: binds the set to its signer.
    pub node: Vec<u8>,
    pub version: u64,
    pub instances: Bounded<InstanceSpec, MAX_INSTANCES>,
}

impl RecordKind for InstanceSet {
    const KIND: &'static str = "grove/instances/2";
}

/// "`target` at `version` answered neither my probes nor those I asked
/// others to make." Signed by one of the target's watchers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspicion {
    pub target: Vec<u8>,
    pub version: u64,
}

impl RecordKind for Suspicion {
    const KIND: &'static str = "grove/suspect/2";
}

/// "I, `node`, at record `version`, am leaving": peers drop the node at
/// once, without suspecting it first. A later record (a restart) revives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    pub node: Vec<u8>,
    pub version: u64,
}

impl RecordKind for Leave {
    const KIND: &'static str = "grove/leave/2";
}

/// "The grants of `node` up to `serial` are void", signed by the authority:
/// the node was removed (decommissioned, key stolen), its name and subnet
/// may be handed out again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub node: Vec<u8>,
    pub serial: u64,
}

impl RecordKind for Revocation {
    const KIND: &'static str = "grove/revoke/2";
}

/// Everything that travels on the gossip topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Gossip {
    Node(Signed<NodeRecord>),
    Instances(Signed<InstanceSet>),
    Suspect(Signed<Suspicion>),
    Leave(Signed<Leave>),
    Revoke(Signed<Revocation>),
}

impl Gossip {
    /// Who claims to have signed it (unchecked), for routing and logs.
    pub fn signer(&self) -> Option<libp2p_identity::PeerId> {
        match self {
            Gossip::Node(s) => s.signer().ok(),
            Gossip::Instances(s) => s.signer().ok(),
            Gossip::Suspect(s) => s.signer().ok(),
            Gossip::Leave(s) => s.signer().ok(),
            Gossip::Revoke(s) => s.signer().ok(),
        }
    }

    /// What it is, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Gossip::Node(_) => "node record",
            Gossip::Instances(_) => "instance set",
            Gossip::Suspect(_) => "suspicion",
            Gossip::Leave(_) => "leave",
            Gossip::Revoke(_) => "revocation",
        }
    }
}
