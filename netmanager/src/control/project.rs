//! Membership → the two things that act on it: the tunnel's peer set and
//! the resolver's directory. Both are re-derived as a whole from the
//! membership (never patched), so they cannot drift from it.

use std::sync::Arc;
use std::time::Duration;

use dns::store::MemoryDirectory;
use dns::{Instance, Location, NodeId, Protocol, RttEstimate};
use ipnet::IpNet;
use libp2p_identity::PeerId;
use overlay::{Device, PeerConfig, PublicKey};

use super::membership::{Liveness, Member, Membership};
use super::records::InstanceEntry;
use super::view::MemberView;

pub struct Projection {
    device: Arc<Device>,
    directory: Arc<MemoryDirectory>,
    /// What the tunnel was last given, to skip identical rebuilds.
    applied_peers: Vec<(PublicKey, Vec<std::net::SocketAddr>, IpNet)>,
    applied_rtts: Vec<(String, Duration, bool)>,
}

impl Projection {
    pub fn new(device: Arc<Device>, directory: Arc<MemoryDirectory>) -> Projection {
        Projection { device, directory, applied_peers: Vec::new(), applied_rtts: Vec::new() }
    }

    pub fn apply(&mut self, membership: &Membership) {
        self.apply_peers(membership);
        self.apply_directory(membership);
    }

    /// Every live member but us is a tunnel peer owning its subnet.
    fn apply_peers(&mut self, membership: &Membership) {
        let mut peers: Vec<(PublicKey, Vec<std::net::SocketAddr>, IpNet)> = membership
            .live()
            .filter(|m| m.peer != *membership.local())
            .map(|m| (PublicKey(m.record.wg_public_key), m.record.endpoints.clone(), IpNet::V4(m.subnet)))
            .collect();
        peers.sort();
        if peers == self.applied_peers {
            return;
        }
        let configs: Vec<PeerConfig> = peers
            .iter()
            .map(|(key, endpoints, net)| PeerConfig { public_key: *key, endpoints: endpoints.clone(), allowed_ips: vec![*net] })
            .collect();
        match self.device.set_peers(&configs) {
            Ok(()) => {
                tracing::info!(peers = configs.len(), "tunnel peer set updated from membership");
                self.applied_peers = peers;
            }
            Err(e) => tracing::error!("tunnel peer set not updated: {e}"),
        }
    }

    /// Instances of live members; a suspected member's instances stay but
    /// are marked unhealthy (served only when nothing healthy is left), a
    /// dead member's leave.
    fn apply_directory(&self, membership: &Membership) {
        self.directory.update(|u| {
            for member in membership.members() {
                let node = NodeId::new(&member.record.name);
                u.deregister_node(&node);
                if let Some((lat, lon)) = member.record.location {
                    let _ = u.set_location(&node, Location { lat, lon });
                }
                if matches!(member.liveness, Liveness::Dead { .. }) {
                    continue;
                }
                let healthy = member.liveness == Liveness::Alive;
                for entry in member.instances.iter().flat_map(|(_, set)| &set.instances) {
                    let mut instance = to_instance(entry, &member.record.name);
                    instance.healthy = healthy;
                    if let Err(e) = u.register(instance) {
                        tracing::warn!(member = %member.record.name, "instance not served: {e}");
                    }
                }
            }
        });
    }

    /// Per-member RTTs for `closest` (measured, or estimated with the
    /// coordinate's confidence); written only when they moved.
    pub fn set_rtts(&mut self, rtts: &[(String, (Duration, bool))], confidence: f64) {
        let mut next: Vec<(String, Duration, bool)> = rtts.iter().map(|(n, (r, m))| (n.clone(), *r, *m)).collect();
        next.sort();
        if next == self.applied_rtts {
            return;
        }
        self.directory.update(|u| {
            for (name, rtt, measured) in &next {
                let estimate = if *measured { RttEstimate::measured(*rtt) } else { RttEstimate::estimated(*rtt, confidence) };
                u.set_rtt(&NodeId::new(name), Some(estimate));
            }
        });
        self.applied_rtts = next;
    }
}

pub fn to_instance(entry: &InstanceEntry, node: &str) -> Instance {
    let mut instance = Instance::new(&entry.service, &entry.app, &entry.namespace, entry.number, node);
    if let Some(ipv4) = entry.ipv4 {
        instance = instance.with_ipv4(ipv4);
    }
    for (name, protocol, port) in &entry.ports {
        let protocol = if protocol == "udp" { Protocol::Udp } else { Protocol::Tcp };
        instance = instance.with_port(name, protocol, *port);
    }
    instance
}

pub fn member_views(
    membership: &Membership,
    rtt: impl Fn(&PeerId) -> (Option<Duration>, Option<Duration>),
) -> Vec<MemberView> {
    let mut views: Vec<MemberView> = membership
        .members()
        .filter(|m| m.peer != *membership.local())
        .map(|m: &Member| {
            let (measured, estimated) = rtt(&m.peer);
            MemberView {
                name: m.record.name.clone(),
                peer_id: m.peer.to_string(),
                subnet: m.subnet.to_string(),
                wg_public_key: PublicKey(m.record.wg_public_key).to_string(),
                state: m.liveness.label().to_owned(),
                endpoints: m.record.endpoints.iter().map(|e| e.to_string()).collect(),
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
