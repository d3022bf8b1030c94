//! Who is in the mesh, as far as this node knows: verified node records,
//! their instance sets, and each member's liveness (alive → suspect → dead,
//! back to alive on a newer record). Pure: callers pass the time and act on
//! what the methods return, so every rule here is unit-tested without
//! sockets.
//!
//! Failure detection follows SWIM's shape with tighter clocks: watchers
//! probe a node; one watcher's suspicion makes every resolver avoid the
//! node's instances at once, a second watcher's suspicion (or
//! [`SUSPECT_TIMEOUT`] without a refutation) declares it dead. A suspected
//! node refutes by publishing a newer record.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use libp2p_identity::PeerId;

use super::admission::{verify_grant, AdmissionError};
use super::records::{InstanceSet, NodeRecord, Suspicion};
use super::signed::{Signed, SignedError};

/// How long a suspicion stands before the node is declared dead.
pub const SUSPECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Independent suspicions that declare a node dead at once.
pub const CONFIRMATIONS: usize = 2;
/// Instance sets held for nodes whose record has not arrived yet.
const MAX_PENDING: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Suspect { since: Instant, by: BTreeSet<PeerId> },
    Dead { since: Instant },
}

impl Liveness {
    pub fn label(&self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Suspect { .. } => "suspect",
            Liveness::Dead { .. } => "dead",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub peer: PeerId,
    pub record: NodeRecord,
    pub signed: Signed<NodeRecord>,
    pub subnet: Ipv4Net,
    pub instances: Option<(Signed<InstanceSet>, InstanceSet)>,
    pub liveness: Liveness,
}

/// What applying something changed; the caller logs it and re-derives the
/// peer set and the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Joined(PeerId),
    Updated(PeerId),
    Revived(PeerId),
    Instances(PeerId),
    Suspected(PeerId),
    Died(PeerId),
    /// Someone suspects this node: publish a newer record.
    Refute,
    /// Nothing new (a duplicate).
    None,
}

/// Why a record was not used; logged by the caller.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("bad signature or encoding: {0}")]
    Signature(#[from] SignedError),
    #[error("subnet grant not valid for this node: {0}")]
    Grant(#[from] AdmissionError),
    #[error("old version {got} (holding {held}): replayed or reordered")]
    Stale { held: u64, got: u64 },
    #[error("subnet {subnet} is granted to {holder}")]
    SubnetTaken { subnet: Ipv4Net, holder: PeerId },
    #[error("name {name:?} is taken by {holder}")]
    NameTaken { name: String, holder: PeerId },
    #[error("instance set signed by {signer} claims to be {claimed}'s")]
    SignerMismatch { signer: PeerId, claimed: String },
    #[error("instance {instance} at {address} lies outside the node's subnet {subnet}")]
    NotInSubnet { instance: String, address: std::net::Ipv4Addr, subnet: Ipv4Net },
    #[error("suspicion from {0}, which is not a live member")]
    UnknownSuspector(PeerId),
    #[error("record invalid: {0}")]
    Invalid(String),
}

pub struct Membership {
    local: PeerId,
    authority: PeerId,
    members: HashMap<PeerId, Member>,
    pending: HashMap<PeerId, Signed<InstanceSet>>,
    changes: u64,
}

impl Membership {
    pub fn new(local: PeerId, authority: PeerId) -> Membership {
        Membership {
            local,
            authority,
            members: HashMap::new(),
            pending: HashMap::new(),
            changes: 0,
        }
    }

    pub fn local(&self) -> &PeerId {
        &self.local
    }

    pub fn authority(&self) -> &PeerId {
        &self.authority
    }

    pub fn get(&self, peer: &PeerId) -> Option<&Member> {
        self.members.get(peer)
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Members not declared dead (the tunnel keeps peers it suspects).
    pub fn live(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !matches!(m.liveness, Liveness::Dead { .. }))
    }

    /// Total joins, revivals, suspicions and deaths seen (a metric).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Verifies and applies a node record (including this node's own, so the
    /// local member is in the table like any other).
    pub fn apply_node(&mut self, signed: &Signed<NodeRecord>) -> Result<Change, Rejection> {
        let verified = signed.verify()?;
        let (peer, record) = (verified.signer, verified.value);
        let subnet = verify_grant(&record.grant, &self.authority, &peer)?;
        check_record(&record)?;
        if let Some(held) = self.members.get(&peer) {
            if record.version < held.record.version {
                return Err(Rejection::Stale { held: held.record.version, got: record.version });
            }
            if record.version == held.record.version {
                return Ok(Change::None);
            }
        }
        for other in self.live().filter(|m| m.peer != peer) {
            if other.subnet == subnet {
                return Err(Rejection::SubnetTaken { subnet, holder: other.peer });
            }
            if other.record.name == record.name {
                return Err(Rejection::NameTaken { name: record.name, holder: other.peer });
            }
        }
        let change = match self.members.get_mut(&peer) {
            Some(member) => {
                let was_down = member.liveness != Liveness::Alive;
                member.record = record;
                member.signed = signed.clone();
                member.subnet = subnet;
                member.liveness = Liveness::Alive;
                if was_down {
                    Change::Revived(peer)
                } else {
                    Change::Updated(peer)
                }
            }
            None => {
                self.members.insert(
                    peer,
                    Member { peer, record, signed: signed.clone(), subnet, instances: None, liveness: Liveness::Alive },
                );
                Change::Joined(peer)
            }
        };
        if !matches!(change, Change::Updated(_)) {
            self.changes += 1;
        }
        Ok(change)
    }

    /// An instance set whose node record may not have arrived yet is held
    /// and applied when it does; call [`Membership::take_pending`] after a
    /// `Joined`.
    pub fn apply_instances(&mut self, signed: &Signed<InstanceSet>) -> Result<Change, Rejection> {
        let verified = signed.verify()?;
        let (peer, set) = (verified.signer, verified.value);
        if set.node != peer.to_bytes() {
            let claimed = PeerId::from_bytes(&set.node).map(|p| p.to_string()).unwrap_or_else(|_| "garbage".into());
            return Err(Rejection::SignerMismatch { signer: peer, claimed });
        }
        let Some(member) = self.members.get_mut(&peer) else {
            if self.pending.len() < MAX_PENDING || self.pending.contains_key(&peer) {
                self.pending.insert(peer, signed.clone());
            }
            return Ok(Change::None);
        };
        if let Some((_, held)) = &member.instances {
            if set.version < held.version {
                return Err(Rejection::Stale { held: held.version, got: set.version });
            }
            if set.version == held.version {
                return Ok(Change::None);
            }
        }
        for instance in &set.instances {
            if let Some(address) = instance.ipv4 {
                if !member.subnet.contains(&address) || address == member.subnet.network() {
                    return Err(Rejection::NotInSubnet {
                        instance: format!("{}.{}.{}#{}", instance.service, instance.app, instance.namespace, instance.number),
                        address,
                        subnet: member.subnet,
                    });
                }
            }
        }
        member.instances = Some((signed.clone(), set));
        Ok(Change::Instances(peer))
    }

    /// The held instance set of a node that just joined, if any.
    pub fn take_pending(&mut self, peer: &PeerId) -> Option<Signed<InstanceSet>> {
        self.pending.remove(peer)
    }

    /// Applies a watcher's suspicion (ours or gossiped).
    pub fn apply_suspicion(&mut self, signed: &Signed<Suspicion>, now: Instant) -> Result<Change, Rejection> {
        let verified = signed.verify()?;
        let (by, suspicion) = (verified.signer, verified.value);
        let target = PeerId::from_bytes(&suspicion.target).map_err(|e| Rejection::Invalid(format!("target: {e}")))?;
        // Strangers never count. A member we hold dead may still accuse us
        // (it holds us dead too, across a partition): that must reach the
        // refutation, so the liveness check comes after it.
        if by != self.local && !self.members.contains_key(&by) {
            return Err(Rejection::UnknownSuspector(by));
        }
        if target == self.local {
            return Ok(Change::Refute);
        }
        if by != self.local && !self.live().any(|m| m.peer == by) {
            return Err(Rejection::UnknownSuspector(by));
        }
        let Some(member) = self.members.get_mut(&target) else { return Ok(Change::None) };
        if member.record.version != suspicion.version {
            return Ok(Change::None); // about an older incarnation: already refuted
        }
        let change = match &mut member.liveness {
            Liveness::Dead { .. } => Change::None,
            Liveness::Alive => {
                member.liveness = Liveness::Suspect { since: now, by: BTreeSet::from([by]) };
                Change::Suspected(target)
            }
            Liveness::Suspect { by: suspectors, .. } => {
                if suspectors.insert(by) && suspectors.len() >= CONFIRMATIONS {
                    member.liveness = Liveness::Dead { since: now };
                    Change::Died(target)
                } else {
                    Change::None
                }
            }
        };
        if change != Change::None {
            self.changes += 1;
        }
        Ok(change)
    }

    /// Suspicions that stood too long become deaths.
    pub fn tick(&mut self, now: Instant) -> Vec<Change> {
        let mut died = Vec::new();
        for member in self.members.values_mut() {
            if let Liveness::Suspect { since, .. } = member.liveness {
                if now.saturating_duration_since(since) >= SUSPECT_TIMEOUT {
                    member.liveness = Liveness::Dead { since: now };
                    died.push(Change::Died(member.peer));
                }
            }
        }
        self.changes += died.len() as u64;
        died
    }

    /// The suspicion this node would sign about `target`, if it holds a
    /// record of it that is not already dead.
    pub fn suspicion_of(&self, target: &PeerId) -> Option<Suspicion> {
        let member = self.members.get(target)?;
        (!matches!(member.liveness, Liveness::Dead { .. }))
            .then(|| Suspicion { target: target.to_bytes(), version: member.record.version })
    }

    /// Whom this node watches: the next `count` live members after it on
    /// the ring of peer ids. Every node is thereby watched by `count`
    /// others, and no node probes everyone.
    pub fn watch_targets(&self, count: usize) -> Vec<PeerId> {
        let mut ring: Vec<PeerId> = self.live().map(|m| m.peer).filter(|p| *p != self.local).collect();
        ring.sort();
        let start = ring.partition_point(|p| *p < self.local);
        (0..count.min(ring.len())).map(|i| ring[(start + i) % ring.len()]).collect()
    }

    /// Members this node believes suspect or dead, with the version
    /// accused; sent in sync answers so an accused node that was cut off
    /// learns of it and refutes.
    pub fn accusations(&self) -> Vec<(PeerId, u64)> {
        self.members
            .values()
            .filter(|m| m.liveness != Liveness::Alive)
            .map(|m| (m.peer, m.record.version))
            .collect()
    }

    /// All records held (for a joining or re-connecting node).
    pub fn records(&self) -> (Vec<Signed<NodeRecord>>, Vec<Signed<InstanceSet>>) {
        let nodes = self.members.values().map(|m| m.signed.clone()).collect();
        let sets = self.members.values().filter_map(|m| m.instances.as_ref().map(|(s, _)| s.clone())).collect();
        (nodes, sets)
    }
}

/// Sanity limits on what a record may say (it is signed, not trusted).
fn check_record(record: &NodeRecord) -> Result<(), Rejection> {
    let name_ok = !record.name.is_empty()
        && record.name.len() <= 63
        && record.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !name_ok {
        return Err(Rejection::Invalid(format!("node name {:?}", record.name)));
    }
    if record.endpoints.len() > 8 || record.control.len() > 8 {
        return Err(Rejection::Invalid("more than 8 endpoints".into()));
    }
    if !record.coordinate.is_valid() {
        return Err(Rejection::Invalid("coordinate not finite".into()));
    }
    if let Some((lat, lon)) = record.location {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(Rejection::Invalid(format!("location ({lat}, {lon})")));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
