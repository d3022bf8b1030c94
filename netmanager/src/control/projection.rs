//! Membership → the two things that act on it: the tunnel's peer set and
//! the resolver's directory. Pure: it returns what to change, by
//! difference (the directory work is in proportion to what changed, not
//! to members × instances), and the driver applies it.
//!
//! Two nodes announcing the same instance key (service, app, namespace,
//! number) are resolved the same way on every node: the node with the
//! lower peer id serves it, and both are reported as a [`Conflict`].

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use dns::{Instance, InstanceKey, InstanceSpec, Location, NodeId, RttEstimate};
use ipnet::IpNet;
use libp2p_identity::PeerId;
use overlay::{PeerConfig, PublicKey};
use serde::Serialize;

use super::membership::{Member, Membership};

/// One change to the directory; the driver applies a batch in one update.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectoryOp {
    /// The node now serves exactly these instances (none: it is gone).
    Replace { node: NodeId, instances: Vec<Instance> },
    /// Forget the node.
    Remove(NodeId),
    Location(NodeId, Location),
    Rtt(NodeId, Option<RttEstimate>),
}

/// Two or more nodes claim one instance key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Conflict {
    pub instance: String,
    /// Every claimant, the serving one first.
    pub nodes: Vec<String>,
}

/// What the directory was last told about one member.
#[derive(Clone, PartialEq)]
struct Rendered {
    name: String,
    healthy: bool,
    set_version: u64,
    served: Vec<InstanceKey>,
    location: Option<Location>,
}

#[derive(Default)]
pub struct Projection {
    applied_peers: Vec<(PublicKey, Vec<std::net::SocketAddr>, IpNet)>,
    rendered: HashMap<PeerId, Rendered>,
    /// Who announces each key (live members only).
    claims: HashMap<InstanceKey, BTreeSet<PeerId>>,
    announced: HashMap<PeerId, Vec<InstanceKey>>,
    rtts: HashMap<PeerId, (Duration, bool, u32)>,
}

/// The directory's name for a member: its identity, shown by its name.
pub fn node_id(member: &Member) -> NodeId {
    NodeId::named(&member.peer.to_string(), member.name())
}

impl Projection {
    /// The tunnel's peers (every live member but us), if they changed.
    pub fn peers(&mut self, membership: &Membership) -> Option<Vec<PeerConfig>> {
        let mut peers: Vec<(PublicKey, Vec<std::net::SocketAddr>, IpNet)> = membership
            .live()
            .filter(|m| m.peer != *membership.local())
            .map(|m| (PublicKey(m.grant.wg_public_key), m.record.endpoints.to_vec(), IpNet::V4(m.grant.subnet)))
            .collect();
        peers.sort();
        if peers == self.applied_peers {
            return None;
        }
        let configs = peers
            .iter()
            .map(|(key, endpoints, net)| PeerConfig { public_key: *key, endpoints: endpoints.clone(), allowed_ips: vec![*net] })
            .collect();
        self.applied_peers = peers;
        Some(configs)
    }

    /// Directory changes for the members in `touched` (and for those whose
    /// claims they affect). Members no longer in `membership` are removed.
    pub fn directory(&mut self, membership: &Membership, touched: &BTreeSet<PeerId>) -> Vec<DirectoryOp> {
        let mut affected: BTreeSet<PeerId> = touched.clone();
        for peer in touched {
            let keys: Vec<InstanceKey> = match membership.get(peer) {
                Some(m) if !m.liveness.is_gone() => m.instances.iter().flat_map(|(_, s)| s.instances.iter().map(|i| i.key)).collect(),
                _ => Vec::new(),
            };
            let old = self.announced.remove(peer).unwrap_or_default();
            for key in old.iter().filter(|k| !keys.contains(k)) {
                if let Some(claimants) = self.claims.get_mut(key) {
                    claimants.remove(peer);
                    affected.extend(claimants.iter().copied());
                    if claimants.is_empty() {
                        self.claims.remove(key);
                    }
                }
            }
            for key in keys.iter().filter(|k| !old.contains(k)) {
                let claimants = self.claims.entry(*key).or_default();
                affected.extend(claimants.iter().copied());
                claimants.insert(*peer);
                if claimants.len() == 2 {
                    tracing::warn!(instance = %key, "two nodes announce the same instance; the lower peer id serves it");
                }
            }
            if !keys.is_empty() {
                self.announced.insert(*peer, keys);
            }
        }
        let mut ops = Vec::new();
        for peer in affected {
            let Some(member) = membership.get(&peer) else {
                if self.rendered.remove(&peer).is_some() {
                    ops.push(DirectoryOp::Remove(NodeId::new(&peer.to_string())));
                }
                self.rtts.remove(&peer);
                continue;
            };
            let next = self.render(member);
            if self.rendered.get(&peer) == Some(&next) {
                continue;
            }
            let node = node_id(member);
            if let Some(location) = next.location {
                if self.rendered.get(&peer).is_none_or(|r| r.location != Some(location)) {
                    ops.push(DirectoryOp::Location(node.clone(), location));
                }
            }
            ops.push(DirectoryOp::Replace { node, instances: self.instances(member, &next) });
            self.rendered.insert(peer, next);
        }
        ops
    }

    fn render(&self, member: &Member) -> Rendered {
        let gone = member.liveness.is_gone();
        let served = if gone {
            Vec::new()
        } else {
            member
                .instances
                .iter()
                .flat_map(|(_, s)| s.instances.iter())
                .filter(|i| self.claims.get(&i.key).and_then(|c| c.first()) == Some(&member.peer))
                .map(|i| i.key)
                .collect()
        };
        Rendered {
            name: member.name().to_owned(),
            // A suspicion is one watcher's word: served on until a second
            // watcher confirms it (then the member is dead and gone).
            healthy: !gone,
            set_version: member.instances.as_ref().map_or(0, |(_, s)| s.version),
            served,
            location: member.record.location,
        }
    }

    fn instances(&self, member: &Member, rendered: &Rendered) -> Vec<Instance> {
        let node = node_id(member);
        let specs: Vec<&InstanceSpec> = member.instances.iter().flat_map(|(_, s)| s.instances.iter()).collect();
        specs
            .into_iter()
            .filter(|s| rendered.served.contains(&s.key))
            .map(|spec| {
                let mut instance = Instance::new(spec.clone(), node.clone());
                instance.healthy = rendered.healthy;
                instance
            })
            .collect()
    }

    /// RTT changes for `closest`: `(peer, rtt, measured)` for live members,
    /// with the coordinate's confidence for estimates. Only what moved (by
    /// at least 0.1 ms or between measured and estimated) is written: a
    /// directory write copies its snapshot.
    pub fn rtts(&mut self, membership: &Membership, rtts: &[(PeerId, Duration, bool)], confidence: f64) -> Vec<DirectoryOp> {
        let mut ops = Vec::new();
        for (peer, rtt, measured) in rtts {
            let Some(member) = membership.get(peer) else { continue };
            let tenth_ms = u32::try_from(rtt.as_micros() / 100).unwrap_or(u32::MAX);
            if self.rtts.get(peer).is_some_and(|(_, m, t)| *m == *measured && *t == tenth_ms) {
                continue;
            }
            self.rtts.insert(*peer, (*rtt, *measured, tenth_ms));
            let estimate = if *measured { RttEstimate::measured(*rtt) } else { RttEstimate::estimated(*rtt, confidence) };
            ops.push(DirectoryOp::Rtt(node_id(member), Some(estimate)));
        }
        ops
    }

    /// Every instance key announced by more than one live member.
    pub fn conflicts(&self, membership: &Membership) -> Vec<Conflict> {
        let name = |p: &PeerId| membership.get(p).map_or_else(|| p.to_string(), |m| m.name().to_owned());
        let mut out: Vec<Conflict> = self
            .claims
            .iter()
            .filter(|(_, c)| c.len() > 1)
            .map(|(key, claimants)| Conflict { instance: key.to_string(), nodes: claimants.iter().map(name).collect() })
            .collect();
        out.sort_by(|a, b| a.instance.cmp(&b.instance));
        out
    }
}

/// Applies ops to the directory in one update (one snapshot copy).
pub fn apply_directory(directory: &dns::store::MemoryDirectory, ops: Vec<DirectoryOp>) {
    if ops.is_empty() {
        return;
    }
    directory.update(|u| {
        for op in ops {
            match op {
                DirectoryOp::Replace { node, instances } => {
                    u.replace_node(&node, instances);
                }
                DirectoryOp::Remove(node) => u.remove_node(&node),
                DirectoryOp::Location(node, location) => {
                    if let Err(e) = u.set_location(&node, location) {
                        tracing::debug!(%node, "location not used: {e}");
                    }
                }
                DirectoryOp::Rtt(node, rtt) => u.set_rtt(&node, rtt),
            }
        }
    });
}

#[cfg(test)]
#[path = "projection_tests.rs"]
mod tests;
