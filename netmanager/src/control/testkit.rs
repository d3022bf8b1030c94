//! Signed records for unit tests: an authority, members with grants, their
//! node records, instance sets, suspicions and leaves.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};

use dns::{InstanceKey, InstanceSpec};
use ipnet::Ipv4Net;
use libp2p_identity::{Keypair, PeerId};

use super::admission::GrantRules;
use super::membership::Membership;
use super::vivaldi::Coordinate;
use super::wire::records::{Delegation, InstanceSet, Leave, NodeRecord, Revocation, SubnetGrant, Suspicion};
use super::wire::{Bounded, Signed};

pub struct Node {
    pub key: Keypair,
    pub peer: PeerId,
    pub subnet: Ipv4Net,
    pub name: String,
    pub wg: [u8; 32],
    pub serial: u64,
}

pub struct Kit {
    pub authority: Keypair,
    next: u32,
}

impl Kit {
    pub fn new() -> Kit {
        Kit { authority: Keypair::generate_ed25519(), next: 0 }
    }

    pub fn authority_peer(&self) -> PeerId {
        self.authority.public().to_peer_id()
    }

    pub fn membership(&self, local: &Node) -> Membership {
        Membership::new(local.peer, self.authority_peer(), GrantRules::default())
    }

    /// A fresh member with the next /26, a unique name and key.
    pub fn node(&mut self) -> Node {
        self.next += 1;
        let n = self.next;
        let key = Keypair::generate_ed25519();
        let subnet = Ipv4Net::new(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 18, 0, 0)) + n * 64), 26).unwrap();
        Node { peer: key.public().to_peer_id(), key, subnet, name: format!("node-{n}"), wg: [n as u8; 32], serial: u64::from(n) }
    }

    pub fn grant(&self, n: &Node) -> Signed<SubnetGrant> {
        let grant = SubnetGrant { node: n.peer.to_bytes(), subnet: n.subnet, name: n.name.clone(), wg_public_key: n.wg, serial: n.serial, issued_unix_ms: 0 };
        Signed::sign(&grant, &self.authority).unwrap()
    }

    pub fn record(&self, n: &Node, version: u64) -> Signed<NodeRecord> {
        self.record_with(n, version, "198.18.0.2:50103".parse().unwrap())
    }

    pub fn record_with(&self, n: &Node, version: u64, endpoint: SocketAddr) -> Signed<NodeRecord> {
        let record = NodeRecord {
            endpoints: Bounded::new(vec![endpoint]).unwrap(),
            control: Bounded::new(vec![endpoint]).unwrap(),
            grant: self.grant(n),
            delegation: None,
            location: Some(dns::Location { lat: 48.1, lon: 11.6 }),
            coordinate: Coordinate::origin(),
            version,
        };
        Signed::sign(&record, &n.key).unwrap()
    }
}

impl Kit {
    /// The authority's delegation of `block` to `cluster`.
    pub fn delegation(&self, cluster: &Node, block: &str, serial: u64) -> Signed<Delegation> {
        let d = Delegation { cluster: cluster.peer.to_bytes(), block: block.parse().unwrap(), serial, cluster_grant_serial: cluster.serial, issued_unix_ms: 0 };
        Signed::sign(&d, &self.authority).unwrap()
    }

    /// A record of `n` whose grant (for `subnet`) `issuer` signed, with `delegation` beside it.
    pub fn delegated_record(&self, n: &Node, subnet: &str, issuer: &Node, delegation: Option<Signed<Delegation>>, version: u64) -> Signed<NodeRecord> {
        let grant = SubnetGrant { node: n.peer.to_bytes(), subnet: subnet.parse().unwrap(), name: n.name.clone(), wg_public_key: n.wg, serial: n.serial, issued_unix_ms: 0 };
        let endpoint: SocketAddr = "198.18.0.9:50103".parse().unwrap();
        let record = NodeRecord {
            endpoints: Bounded::new(vec![endpoint]).unwrap(),
            control: Bounded::new(vec![endpoint]).unwrap(),
            grant: Signed::sign(&grant, &issuer.key).unwrap(),
            delegation,
            location: None,
            coordinate: Coordinate::origin(),
            version,
        };
        Signed::sign(&record, &n.key).unwrap()
    }

    /// A revocation of `n`'s grants up to `serial`, signed by `key`.
    pub fn revocation_by(key: &Keypair, n: &Node, serial: u64) -> Signed<Revocation> {
        Signed::sign(&Revocation { node: n.peer.to_bytes(), serial }, key).unwrap()
    }
}

pub fn spec(service: &str, number: u32, ip: Ipv4Addr) -> InstanceSpec {
    InstanceSpec::new(InstanceKey::new(service, "cam", "default", number).unwrap()).with_ipv4(ip)
}

/// Host `k` of the node's subnet.
pub fn host(n: &Node, k: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(n.subnet.network()) + k)
}

pub fn instances(n: &Node, version: u64, specs: Vec<InstanceSpec>) -> Signed<InstanceSet> {
    let set = InstanceSet { node: n.peer.to_bytes(), version, instances: Bounded::new(specs).unwrap() };
    Signed::sign(&set, &n.key).unwrap()
}

pub fn suspicion(by: &Node, target: &Node, version: u64) -> Signed<Suspicion> {
    Signed::sign(&Suspicion { target: target.peer.to_bytes(), version }, &by.key).unwrap()
}

pub fn leave(n: &Node, version: u64) -> Signed<Leave> {
    Signed::sign(&Leave { node: n.peer.to_bytes(), version }, &n.key).unwrap()
}

/// A membership entry for feed and event-stream tests: a random peer id,
/// one endpoint.
pub fn member_entry(name: &str, state: super::view::MemberState) -> super::events::MemberEntry {
    super::events::MemberEntry {
        name: name.into(),
        peer_id: PeerId::random(),
        subnet: "10.64.0.64/26".parse().expect("a subnet"),
        state,
        endpoints: vec!["192.0.2.7:50103".parse().expect("an endpoint")],
        location: None,
    }
}
