//! Who is in the mesh, as far as this node knows: verified node records,
//! their instance sets, and each member's liveness (alive → suspect →
//! dead, or left; back to alive on a newer record). Pure: callers pass the
//! time and act on the [`Change`]s returned, so every rule here is
//! unit-tested without sockets.
//!
//! What is checked before anything is believed:
//! * every record is signed by its subject, and its grant by the pinned
//!   authority (or by a cluster with the authority's delegation beside it,
//!   for a subnet of the delegated block), for that subject, in the address
//!   plan ([`verify_grant`]);
//! * names, tunnel keys and subnets are the grant's, so they are unique; two
//!   grants of one name (or key, or subnet) by one issuer are ordered by its
//!   serial, the later one wins and the earlier holder is dropped; across
//!   issuers the authority's grant wins, and between two clusters the
//!   holder keeps it;
//! * a revocation counts from the authority (for anyone; a removed cluster
//!   takes the nodes it admitted along) or from a cluster for the nodes it
//!   admitted;
//! * advertised endpoints are unicast addresses outside the mesh;
//! * instances lie in their node's subnet;
//! * a suspicion counts only from one of the target's watchers;
//! * each member's records and suspicions are rate-limited (an instance set
//!   over the budget is deferred, not dropped: see [`Membership::apply_instances`]).
//!
//! Failure detection follows SWIM: watchers probe a node, directly and
//! then through others; a second watcher's suspicion (or
//! [`SUSPECT_TIMEOUT`] without a refutation) declares it dead, and only
//! then do resolvers drop its instances, so one member's word alone never
//! steers DNS. A crash is seen by all watchers at once (the connection
//! closes), so that costs no speed. A suspected node refutes by publishing
//! a newer record; a leaving node says so and is dropped at once.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use super::admission::{verify_grant, AdmissionError, GrantInfo, GrantRules};
use super::node::limits::TokenBucket;
use super::wire::records::{InstanceSet, Leave, NodeRecord, Revocation, Suspicion};
use super::wire::{Signed, SignedError};

/// How long a suspicion stands before the node is declared dead.
pub const SUSPECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Independent suspicions that declare a node dead at once.
pub const CONFIRMATIONS: usize = 2;
/// Each node is watched by this many others (the ones before it on the
/// ring of peer ids).
pub const WATCHERS: usize = 3;
/// Suspicions are accepted from this many ring predecessors beyond the
/// watchers, for views that differ by a join or two.
const WATCHER_SLACK: usize = 2;
/// Dead and departed members are forgotten after this long…
pub const PRUNE_AFTER: Duration = Duration::from_secs(600);
/// …and their last version remembered this much longer, so an old record
/// replayed soon after cannot bring them back.
const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);
/// Instance sets held for nodes whose record has not arrived yet, and how long.
const MAX_PENDING: usize = 64;
const PENDING_TTL: Duration = Duration::from_secs(60);
/// Members, tombstones and revocations held at most (the default pool has
/// 1024 subnets).
pub const MAX_MEMBERS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Suspect { since: Instant, by: BTreeSet<PeerId> },
    Dead { since: Instant },
    Left { since: Instant },
}

impl Liveness {
    /// Dead or departed: not a tunnel peer, not in the directory.
    pub fn is_gone(&self) -> bool {
        matches!(self, Liveness::Dead { .. } | Liveness::Left { .. })
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub peer: PeerId,
    pub grant: GrantInfo,
    pub record: NodeRecord,
    pub signed: Signed<NodeRecord>,
    pub instances: Option<(Signed<InstanceSet>, InstanceSet)>,
    /// The newest set that came over the budget, applied by [`Membership::tick`]
    /// when the budget refills.
    deferred: Option<(Signed<InstanceSet>, InstanceSet)>,
    pub liveness: Liveness,
    pub leave: Option<Signed<Leave>>,
    records_budget: TokenBucket,
    sets_budget: TokenBucket,
    suspicion_budget: TokenBucket,
}

/// What applying something changed; the caller logs it and updates the
/// tunnel's peers and the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Joined(PeerId),
    Updated(PeerId),
    Revived(PeerId),
    Instances(PeerId),
    Suspected(PeerId),
    Died(PeerId, DownReason),
    Left(PeerId),
    Removed(PeerId, RemovedReason),
    /// A watcher suspects this node's record `version`: publish a newer
    /// one (unless it already has).
    Refute { version: u64 },
}

/// Why the failure detector declared a member dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    /// Enough of its watchers suspected it ([`CONFIRMATIONS`], or its only
    /// watcher in a mesh of two).
    Confirmed,
    /// A suspicion stood [`SUSPECT_TIMEOUT`] without a refutation.
    Unrefuted,
}

/// Why a member left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedReason {
    /// The authority revoked its grant.
    Revoked,
    /// A later grant of its name, key or subnet went to another node.
    Superseded,
    /// Dead or departed for [`PRUNE_AFTER`].
    Pruned,
}

/// Why a record was not used; logged by the caller (quietly for the
/// harmless ones, see [`Rejection::is_noise`]).
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("bad signature or encoding: {0}")]
    Signature(#[from] SignedError),
    #[error("grant not valid: {0}")]
    Grant(#[from] AdmissionError),
    #[error("old version {got} (holding {held}): replayed or reordered")]
    Stale { held: u64, got: u64 },
    #[error("nothing new")]
    Duplicate,
    #[error("held until the node's record arrives")]
    Held,
    #[error("too many records from this member: rate-limited")]
    RateLimited,
    #[error("over this member's budget for instance sets: applied when it refills")]
    Deferred,
    #[error("the authority revoked this node's grant")]
    Revoked,
    #[error("{what} is held by {holder} under a later grant")]
    Conflict { what: &'static str, holder: PeerId },
    #[error("{kind} signed by {signer} claims to be another node's")]
    SignerMismatch { kind: &'static str, signer: PeerId },
    #[error("instance {instance} at {address} lies outside the node's subnet {subnet}")]
    NotInSubnet { instance: String, address: IpAddr, subnet: ipnet::Ipv4Net },
    #[error("suspicion from {0}, which is not one of the target's watchers")]
    NotWatcher(PeerId),
    #[error("from {0}, which is not a live member")]
    NotMember(PeerId),
    #[error("record invalid: {0}")]
    Invalid(String),
}

impl Rejection {
    /// Gossip and sync crossing each other produce these all the time, and
    /// the held and deferred sets are applied later, not lost.
    pub fn is_noise(&self) -> bool {
        matches!(self, Rejection::Stale { .. } | Rejection::Duplicate | Rejection::Held | Rejection::Deferred)
    }
}

pub struct Membership {
    local: PeerId,
    authority: PeerId,
    rules: GrantRules,
    members: HashMap<PeerId, Member>,
    pending: HashMap<PeerId, (Signed<InstanceSet>, Instant)>,
    tombstones: HashMap<PeerId, (u64, Instant)>,
    /// (revoked node, signer) → serial: the authority revokes any grant,
    /// a delegate only those it signed.
    revoked: HashMap<(PeerId, PeerId), (u64, Signed<Revocation>)>,
    changes: u64,
}

impl Membership {
    pub fn new(local: PeerId, authority: PeerId, rules: GrantRules) -> Membership {
        Membership {
            local,
            authority,
            rules,
            members: HashMap::new(),
            pending: HashMap::new(),
            tombstones: HashMap::new(),
            revoked: HashMap::new(),
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

    /// Members neither dead nor departed (the tunnel keeps peers it suspects).
    pub fn live(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !m.liveness.is_gone())
    }

    /// Admitted identities we hold a record of, whatever their liveness.
    pub fn is_member(&self, peer: &PeerId) -> bool {
        self.members.contains_key(peer)
    }

    /// Joins, revivals, suspicions, deaths and departures seen (a metric).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Verifies and applies a node record (this node's own too, so the
    /// local member is in the table like any other).
    pub fn apply_node(&mut self, signed: &Signed<NodeRecord>, now: Instant) -> Result<Vec<Change>, Rejection> {
        let verified = signed.verify()?;
        let (peer, record) = (verified.signer, verified.value);
        let grant = verify_grant(&record.grant, record.delegation.as_ref(), &self.authority, &peer, &self.rules)?;
        if self.is_revoked(&peer, &grant) {
            return Err(Rejection::Revoked);
        }
        check_record(&record)?;
        if let Some((version, _)) = self.tombstones.get(&peer) {
            if record.version <= *version {
                return Err(Rejection::Stale { held: *version, got: record.version });
            }
        }
        if let Some(held) = self.members.get_mut(&peer) {
            if record.version < held.record.version {
                return Err(Rejection::Stale { held: held.record.version, got: record.version });
            }
            if record.version == held.record.version {
                return Err(Rejection::Duplicate);
            }
            if peer != self.local && !held.records_budget.allow(now) {
                return Err(Rejection::RateLimited);
            }
        }
        let superseded = self.conflicts(&peer, &grant)?;
        let mut changes = Vec::new();
        for other in superseded {
            self.remove(&other, now);
            changes.push(Change::Removed(other, RemovedReason::Superseded));
        }
        let change = match self.members.get_mut(&peer) {
            Some(member) => {
                let was_down = member.liveness != Liveness::Alive;
                member.record = record;
                member.signed = signed.clone();
                member.grant = grant;
                member.liveness = Liveness::Alive;
                member.leave = None;
                if was_down {
                    Change::Revived(peer)
                } else {
                    Change::Updated(peer)
                }
            }
            None => {
                if self.members.len() >= MAX_MEMBERS {
                    return Err(Rejection::Invalid("membership is full".into()));
                }
                self.tombstones.remove(&peer);
                self.members.insert(peer, Member::new(peer, grant, record, signed.clone()));
                Change::Joined(peer)
            }
        };
        if !matches!(change, Change::Updated(_)) {
            self.changes += 1;
        }
        changes.push(change);
        if let Some((pending, _)) = self.pending.remove(&peer) {
            if let Ok(more) = self.apply_instances(&pending, now) {
                changes.extend(more);
            }
        }
        Ok(changes)
    }

    /// Members holding `grant`'s name, key or subnet under an earlier grant
    /// (to be dropped); an error if one holds it under a later grant.
    /// Revoked by its issuer; or a delegate's grant when the authority
    /// revoked the node itself, or the delegate since it delegated.
    fn is_revoked(&self, peer: &PeerId, grant: &GrantInfo) -> bool {
        let by = |node: &PeerId, signer: &PeerId| self.revoked.get(&(*node, *signer)).map(|(serial, _)| *serial);
        if by(peer, &grant.issuer).is_some_and(|serial| grant.serial <= serial) {
            return true;
        }
        match grant.delegate_grant_serial {
            Some(bound_to) => by(peer, &self.authority).is_some() || by(&grant.issuer, &self.authority).is_some_and(|serial| bound_to <= serial),
            None => false,
        }
    }

    fn conflicts(&self, peer: &PeerId, grant: &GrantInfo) -> Result<Vec<PeerId>, Rejection> {
        let mut superseded = Vec::new();
        for other in self.members.values().filter(|m| m.peer != *peer) {
            let what = if other.grant.name == grant.name {
                "the name"
            } else if other.grant.wg_public_key == grant.wg_public_key {
                "the tunnel key"
            } else if other.grant.subnet == grant.subnet {
                "the subnet"
            } else {
                continue;
            };
            // Serials order one issuer's grants. Across issuers the
            // authority's grant wins; between two delegates the holder keeps
            // it (their blocks are disjoint, so only names and keys clash).
            let newer = if other.grant.issuer == grant.issuer {
                grant.serial > other.grant.serial
            } else {
                grant.issuer == self.authority
            };
            if !newer {
                return Err(Rejection::Conflict { what, holder: other.peer });
            }
            superseded.push(other.peer);
        }
        Ok(superseded)
    }

    /// An instance set whose node record has not arrived yet is held (a
    /// few, briefly) and applied when it does.
    ///
    /// A set over the member's budget is deferred, not dropped: sets are
    /// whole state, so only the newest matters, and nothing would bring a
    /// dropped one back — gossipsub's duplicate cache stops every other
    /// copy of the message, and the member may publish nothing more for
    /// minutes (the bench's 12th back-to-back deployment stayed out of DNS
    /// this way). The newest deferred set is applied by [`Membership::tick`]
    /// when the budget refills, so a looping member still costs at most its
    /// budget, and one set (the newest) more memory.
    pub fn apply_instances(&mut self, signed: &Signed<InstanceSet>, now: Instant) -> Result<Vec<Change>, Rejection> {
        let verified = signed.verify()?;
        let (peer, set) = (verified.signer, verified.value);
        if set.node != peer.to_bytes() {
            return Err(Rejection::SignerMismatch { kind: "instance set", signer: peer });
        }
        let Some(member) = self.members.get_mut(&peer) else {
            let newer = self.pending.get(&peer).is_none_or(|(held, _)| held_version(held) < set.version);
            if newer && (self.pending.len() < MAX_PENDING || self.pending.contains_key(&peer)) {
                self.pending.insert(peer, (signed.clone(), now));
            }
            return Err(Rejection::Held);
        };
        if let Some((_, held)) = &member.instances {
            if set.version < held.version {
                return Err(Rejection::Stale { held: held.version, got: set.version });
            }
            if set.version == held.version {
                return Err(Rejection::Duplicate);
            }
        }
        if let Some((_, deferred)) = &member.deferred {
            if set.version < deferred.version {
                return Err(Rejection::Stale { held: deferred.version, got: set.version });
            }
            if set.version == deferred.version {
                return Err(Rejection::Duplicate);
            }
        }
        check_instances(&set, &member.grant)?;
        if peer != self.local && !member.sets_budget.allow(now) {
            // Newer than any deferred one (checked above): it replaces it.
            member.deferred = Some((signed.clone(), set));
            return Err(Rejection::Deferred);
        }
        member.instances = Some((signed.clone(), set));
        // Anything deferred is older (checked above).
        member.deferred = None;
        Ok(vec![Change::Instances(peer)])
    }

    /// Applies a watcher's suspicion (ours or gossiped).
    pub fn apply_suspicion(&mut self, signed: &Signed<Suspicion>, now: Instant) -> Result<Vec<Change>, Rejection> {
        let verified = signed.verify()?;
        let (by, suspicion) = (verified.signer, verified.value);
        let target = PeerId::from_bytes(&suspicion.target).map_err(|e| Rejection::Invalid(format!("target: {e}")))?;
        // Strangers never count. A member we hold dead may still accuse us
        // (it holds us dead too, across a partition): that must reach the
        // refutation, so the liveness check comes after it.
        if by != self.local && !self.members.contains_key(&by) {
            return Err(Rejection::NotMember(by));
        }
        if target == self.local {
            return if self.accusation_counts(&by, now) {
                Ok(vec![Change::Refute { version: suspicion.version }])
            } else {
                Err(Rejection::NotWatcher(by))
            };
        }
        if by != self.local {
            if !self.live().any(|m| m.peer == by) {
                return Err(Rejection::NotMember(by));
            }
            if !self.watchers_of(&target, WATCHERS + WATCHER_SLACK).contains(&by) {
                return Err(Rejection::NotWatcher(by));
            }
        }
        let Some(member) = self.members.get(&target) else { return Err(Rejection::Duplicate) };
        if member.record.version != suspicion.version || member.liveness.is_gone() {
            return Err(Rejection::Stale { held: member.record.version, got: suspicion.version });
        }
        if let Liveness::Suspect { by: suspectors, .. } = &member.liveness {
            if suspectors.contains(&by) {
                return Err(Rejection::Duplicate);
            }
        }
        if by != self.local {
            let allowed = self.members.get_mut(&by).is_some_and(|m| m.suspicion_budget.allow(now));
            if !allowed {
                return Err(Rejection::RateLimited);
            }
        }
        // Two watchers' word kills; a target that has only one watcher
        // (a mesh of two) dies on that one's.
        let needed = CONFIRMATIONS.min(self.watchers_of(&target, WATCHERS).len()).max(1);
        let Some(member) = self.members.get_mut(&target) else { return Err(Rejection::Duplicate) };
        let change = match &mut member.liveness {
            Liveness::Alive if needed == 1 => {
                member.liveness = Liveness::Dead { since: now };
                Change::Died(target, DownReason::Confirmed)
            }
            Liveness::Alive => {
                member.liveness = Liveness::Suspect { since: now, by: BTreeSet::from([by]) };
                Change::Suspected(target)
            }
            Liveness::Suspect { by: suspectors, .. } => {
                suspectors.insert(by);
                if suspectors.len() < needed {
                    return Ok(Vec::new());
                }
                member.liveness = Liveness::Dead { since: now };
                Change::Died(target, DownReason::Confirmed)
            }
            Liveness::Dead { .. } | Liveness::Left { .. } => return Err(Rejection::Duplicate),
        };
        self.changes += 1;
        Ok(vec![change])
    }

    /// A member's own notice that it leaves (SIGTERM).
    pub fn apply_leave(&mut self, signed: &Signed<Leave>, now: Instant) -> Result<Vec<Change>, Rejection> {
        let verified = signed.verify()?;
        let (peer, leave) = (verified.signer, verified.value);
        if leave.node != peer.to_bytes() {
            return Err(Rejection::SignerMismatch { kind: "leave", signer: peer });
        }
        let member = self.members.get_mut(&peer).ok_or(Rejection::NotMember(peer))?;
        if leave.version < member.record.version {
            return Err(Rejection::Stale { held: member.record.version, got: leave.version });
        }
        if matches!(member.liveness, Liveness::Left { .. }) {
            return Err(Rejection::Duplicate);
        }
        member.liveness = Liveness::Left { since: now };
        member.leave = Some(signed.clone());
        self.changes += 1;
        Ok(vec![Change::Left(peer)])
    }

    /// The removal of a member: by the authority (any member; a removed
    /// delegate takes the nodes it admitted along), or by a delegate (only
    /// a member whose grant it signed, so it can neither touch others nor
    /// fill the table with revocations of strangers).
    pub fn apply_revocation(&mut self, signed: &Signed<Revocation>, now: Instant) -> Result<Vec<Change>, Rejection> {
        let verified = signed.verify()?;
        let signer = verified.signer;
        let peer = PeerId::from_bytes(&verified.value.node).map_err(|e| Rejection::Invalid(format!("revoked node: {e}")))?;
        let serial = verified.value.serial;
        let issued_by_signer = self.members.get(&peer).is_some_and(|m| m.grant.issuer == signer);
        if signer != self.authority && !issued_by_signer {
            return Err(Rejection::Grant(AdmissionError::NotAuthority { signer: signer.to_string(), authority: self.authority.to_string() }));
        }
        let key = (peer, signer);
        if self.revoked.get(&key).is_some_and(|(held, _)| *held >= serial) {
            return Err(Rejection::Duplicate);
        }
        if self.revoked.len() >= MAX_MEMBERS && !self.revoked.contains_key(&key) {
            return Err(Rejection::Invalid("too many revocations held".into()));
        }
        self.revoked.insert(key, (serial, signed.clone()));
        let gone: Vec<PeerId> = self.members.values().filter(|m| self.is_revoked(&m.peer, &m.grant)).map(|m| m.peer).collect();
        let mut changes = Vec::new();
        for peer in gone {
            self.remove(&peer, now);
            self.changes += 1;
            changes.push(Change::Removed(peer, RemovedReason::Revoked));
        }
        Ok(changes)
    }

    fn remove(&mut self, peer: &PeerId, now: Instant) {
        if let Some(member) = self.members.remove(peer) {
            if self.tombstones.len() < MAX_MEMBERS {
                self.tombstones.insert(*peer, (member.record.version, now));
            }
        }
    }

    /// Suspicions that stood too long become deaths; deferred instance
    /// sets are applied as their member's budget refills; long-gone
    /// members, tombstones and held sets are forgotten.
    pub fn tick(&mut self, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        for member in self.members.values_mut() {
            if member.apply_deferred(now) {
                changes.push(Change::Instances(member.peer));
            }
        }
        let applied = changes.len();
        for member in self.members.values_mut() {
            if let Liveness::Suspect { since, .. } = member.liveness {
                if now.saturating_duration_since(since) >= SUSPECT_TIMEOUT {
                    member.liveness = Liveness::Dead { since: now };
                    changes.push(Change::Died(member.peer, DownReason::Unrefuted));
                }
            }
        }
        // Deaths count as membership changes, applied sets do not.
        self.changes += (changes.len() - applied) as u64;
        let expired: Vec<PeerId> = self
            .members
            .values()
            .filter(|m| match m.liveness {
                Liveness::Dead { since } | Liveness::Left { since } => now.saturating_duration_since(since) >= PRUNE_AFTER,
                _ => false,
            })
            .map(|m| m.peer)
            .collect();
        for peer in expired {
            self.remove(&peer, now);
            changes.push(Change::Removed(peer, RemovedReason::Pruned));
        }
        self.tombstones.retain(|_, (_, at)| now.saturating_duration_since(*at) < TOMBSTONE_TTL);
        self.pending.retain(|_, (_, at)| now.saturating_duration_since(*at) < PENDING_TTL);
        changes
    }

    /// The suspicion this node would sign about `target`, if it holds a
    /// record of it that is neither dead nor gone.
    pub fn suspicion_of(&self, target: &PeerId) -> Option<Suspicion> {
        let member = self.members.get(target)?;
        (!member.liveness.is_gone()).then(|| Suspicion { target: target.to_bytes(), version: member.record.version })
    }

    /// Whom this node watches: the next `count` live members after it on
    /// the ring of peer ids. Every node is thereby watched by `count`
    /// others, and no node probes everyone.
    pub fn watch_targets(&self, count: usize) -> Vec<PeerId> {
        let ring = self.ring();
        let others: Vec<PeerId> = ring.iter().copied().filter(|p| *p != self.local).collect();
        let start = others.partition_point(|p| *p < self.local);
        (0..count.min(others.len())).map(|i| others[(start + i) % others.len()]).collect()
    }

    /// Whether `by` accusing this node deserves a refutation: only what
    /// the others would accept — a watcher's word (or that of a member we
    /// hold gone: across a healed partition each side holds the other
    /// dead), within the same per-suspector budget — so a member cannot
    /// make this node re-sign and re-gossip its record at will.
    pub fn accusation_counts(&mut self, by: &PeerId, now: Instant) -> bool {
        if *by == self.local {
            return false;
        }
        let across = self.members.get(by).is_some_and(|m| m.liveness != Liveness::Alive);
        if !across && !self.watchers_of(&self.local, WATCHERS + WATCHER_SLACK).contains(by) {
            return false;
        }
        self.members.get_mut(by).is_some_and(|m| m.suspicion_budget.allow(now))
    }

    /// The `count` live members before `target` on the ring: its watchers.
    pub fn watchers_of(&self, target: &PeerId, count: usize) -> Vec<PeerId> {
        let others: Vec<PeerId> = self.ring().into_iter().filter(|p| p != target).collect();
        if others.is_empty() {
            return Vec::new();
        }
        let start = others.partition_point(|p| p < target);
        let n = others.len();
        (1..=count.min(n)).map(|i| others[(start + n - i) % n]).collect()
    }

    fn ring(&self) -> Vec<PeerId> {
        let mut ring: Vec<PeerId> = self.live().map(|m| m.peer).collect();
        if !ring.contains(&self.local) {
            ring.push(self.local);
        }
        ring.sort();
        ring
    }

    /// Members this node believes suspect or dead, with the version
    /// accused; sent in sync answers so an accused node that was cut off
    /// learns of it and refutes.
    pub fn accusations(&self) -> impl Iterator<Item = (PeerId, u64)> + '_ {
        self.members
            .values()
            .filter(|m| matches!(m.liveness, Liveness::Suspect { .. } | Liveness::Dead { .. }))
            .map(|m| (m.peer, m.record.version))
    }

    /// Revocations held, for sync answers.
    pub fn revocations(&self) -> impl Iterator<Item = &Signed<Revocation>> {
        self.revoked.values().map(|(_, s)| s)
    }

    /// Members in peer-id order after `after` (for paged sync answers).
    pub fn after(&self, after: Option<&PeerId>) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.members.values().filter(|m| after.is_none_or(|a| m.peer > *a)).collect();
        members.sort_by_key(|a| a.peer);
        members
    }

    /// Sizes of the bounded tables (for tests and metrics).
    pub fn table_sizes(&self) -> (usize, usize, usize, usize) {
        (self.members.len(), self.pending.len(), self.tombstones.len(), self.revoked.len())
    }
}

impl Member {
    fn new(peer: PeerId, grant: GrantInfo, record: NodeRecord, signed: Signed<NodeRecord>) -> Member {
        Member {
            peer,
            grant,
            record,
            signed,
            instances: None,
            deferred: None,
            liveness: Liveness::Alive,
            leave: None,
            // Refutations come at most every 250 ms, republishing every
            // 30 s: 10 at once and one a second is generous for honest
            // nodes and caps a looping one.
            records_budget: TokenBucket::new(10, Duration::from_secs(1)),
            // Every instance started or stopped is a set: an orchestrator
            // deploying back to back publishes ~20 a second, and at one
            // each 500 ms every deployment past the burst waited ~500 ms
            // for its set. One a tick (as often as `tick` applies a
            // deferred set) still holds a looping member to 10 directory
            // writes a second.
            sets_budget: TokenBucket::new(20, super::node::TICK),
            // A watcher suspects when a node fails, which is rare.
            suspicion_budget: TokenBucket::new(3, Duration::from_secs(5)),
        }
    }

    /// The member's name (from its grant).
    pub fn name(&self) -> &str {
        &self.grant.name
    }

    /// Applies the deferred set if the budget allows; true if it did. The
    /// set is checked again (a newer grant may have moved the subnet); one
    /// that no longer fits is dropped, as it would have been at the door.
    fn apply_deferred(&mut self, now: Instant) -> bool {
        if self.deferred.is_none() || !self.sets_budget.allow(now) {
            return false;
        }
        let Some((signed, set)) = self.deferred.take() else { return false };
        if check_instances(&set, &self.grant).is_err() {
            return false;
        }
        self.instances = Some((signed, set));
        true
    }
}

fn held_version(signed: &Signed<InstanceSet>) -> u64 {
    signed.verify().map(|v| v.value.version).unwrap_or(0)
}

/// Sanity limits on what a record may say (it is signed, not trusted).
fn check_record(record: &NodeRecord) -> Result<(), Rejection> {
    for addr in record.endpoints.iter().chain(record.control.iter()) {
        if let Err(why) = routable(addr) {
            return Err(Rejection::Invalid(format!("advertised address {addr}: {why}")));
        }
    }
    if !record.coordinate.is_valid() {
        return Err(Rejection::Invalid("coordinate not finite or out of range".into()));
    }
    if let Some(location) = record.location {
        if dns::Location::new(location.lat, location.lon).is_err() {
            return Err(Rejection::Invalid(format!("location ({}, {})", location.lat, location.lon)));
        }
    }
    Ok(())
}

/// An advertised underlay address every member may send to: unicast, not
/// this host (loopback), not link-local, not inside the mesh itself. Nodes
/// dial and send handshakes to what records say, so anything else would
/// turn every node into a reflector aimed wherever a member likes (F15).
pub fn routable(addr: &SocketAddr) -> Result<(), &'static str> {
    if addr.port() == 0 {
        return Err("port 0");
    }
    match addr.ip() {
        IpAddr::V4(ip) => {
            if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() || ip.is_link_local() {
                return Err("not a unicast address another host can reach");
            }
            if super::admission::pool::default_pool().contains(&ip) {
                return Err("inside the mesh's own address plan");
            }
        }
        IpAddr::V6(ip) => {
            if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_unicast_link_local() {
                return Err("not a unicast address another host can reach");
            }
        }
    }
    Ok(())
}

/// Instances must be distinct, addressed, and inside the node's subnet
/// (IPv6: a unique-local address, the mesh's IPv6 plan).
fn check_instances(set: &InstanceSet, grant: &GrantInfo) -> Result<(), Rejection> {
    let mut keys = BTreeSet::new();
    let subnet = grant.subnet;
    for instance in set.instances.iter() {
        if !keys.insert(instance.key) {
            return Err(Rejection::Invalid(format!("instance {} listed twice", instance.key)));
        }
        if instance.ipv4.is_none() && instance.ipv6.is_none() {
            return Err(Rejection::Invalid(format!("instance {} has no address", instance.key)));
        }
        if let Some(address) = instance.ipv4 {
            if !subnet.contains(&address) || address == subnet.network() || address == subnet.broadcast() {
                return Err(Rejection::NotInSubnet { instance: instance.key.to_string(), address: address.into(), subnet });
            }
        }
        if let Some(address) = instance.ipv6 {
            if !address.is_unique_local() {
                return Err(Rejection::NotInSubnet { instance: instance.key.to_string(), address: address.into(), subnet });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
