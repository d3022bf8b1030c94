//! Membership rules: verification, replay, ownership, liveness.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use libp2p_identity::{Keypair, PeerId};

use super::*;
use crate::control::admission::SubnetGrant;
use crate::control::records::{InstanceEntry, InstanceSet, NodeRecord, Suspicion};
use crate::control::signed::Signed;
use crate::control::vivaldi::Coordinate;

struct Node {
    key: Keypair,
    peer: PeerId,
    subnet: Ipv4Net,
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn node(authority: &Keypair, subnet: &str) -> Node {
    let key = Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let _ = authority;
    Node { key, peer, subnet: net(subnet) }
}

fn grant(authority: &Keypair, peer: &PeerId, subnet: Ipv4Net) -> Signed<SubnetGrant> {
    Signed::sign(&SubnetGrant { node: peer.to_bytes(), subnet, issued_unix_ms: 1 }, authority).unwrap()
}

fn record(authority: &Keypair, n: &Node, name: &str, version: u64) -> Signed<NodeRecord> {
    let r = NodeRecord {
        name: name.into(),
        wg_public_key: [7; 32],
        endpoints: vec!["198.18.0.2:50103".parse().unwrap()],
        control: vec!["198.18.0.2:50103".parse().unwrap()],
        grant: grant(authority, &n.peer, n.subnet),
        location: Some((48.1, 11.6)),
        coordinate: Coordinate::origin(),
        version,
    };
    Signed::sign(&r, &n.key).unwrap()
}

fn instances(n: &Node, version: u64, ip: &str) -> Signed<InstanceSet> {
    let set = InstanceSet {
        node: n.peer.to_bytes(),
        version,
        instances: vec![InstanceEntry {
            service: "ms2".into(),
            app: "cam".into(),
            namespace: "default".into(),
            number: 1,
            ipv4: Some(ip.parse().unwrap()),
            ports: vec![],
        }],
    };
    Signed::sign(&set, &n.key).unwrap()
}

fn suspicion(by: &Node, target: &Node, version: u64) -> Signed<Suspicion> {
    Signed::sign(&Suspicion { target: target.peer.to_bytes(), version }, &by.key).unwrap()
}

fn setup() -> (Keypair, Node, Membership) {
    let authority = Keypair::generate_ed25519();
    let local = node(&authority, "10.18.0.0/26");
    let m = Membership::new(local.peer, authority.public().to_peer_id());
    (authority, local, m)
}

#[test]
fn records_join_update_and_replays_are_refused() {
    let (auth, _local, mut m) = setup();
    let a = node(&auth, "10.18.0.64/26");
    assert_eq!(m.apply_node(&record(&auth, &a, "a", 10)).unwrap(), Change::Joined(a.peer));
    assert_eq!(m.apply_node(&record(&auth, &a, "a", 10)).unwrap(), Change::None, "duplicate");
    assert_eq!(m.apply_node(&record(&auth, &a, "a", 11)).unwrap(), Change::Updated(a.peer));
    let replay = m.apply_node(&record(&auth, &a, "a", 9));
    assert!(matches!(replay, Err(Rejection::Stale { held: 11, got: 9 })), "{replay:?}");
    assert_eq!(m.get(&a.peer).unwrap().subnet, a.subnet);
}

#[test]
fn forged_and_unowned_claims_are_rejected() {
    let (auth, _local, mut m) = setup();
    let a = node(&auth, "10.18.0.64/26");
    // Grant signed by someone who is not the authority.
    let rogue_authority = Keypair::generate_ed25519();
    let forged = record(&rogue_authority, &a, "a", 1);
    assert!(matches!(m.apply_node(&forged), Err(Rejection::Grant(_))));
    // Somebody else's grant in my record.
    let b = node(&auth, "10.18.0.128/26");
    let mut stolen = NodeRecord {
        name: "b".into(),
        wg_public_key: [1; 32],
        endpoints: vec![],
        control: vec![],
        grant: grant(&auth, &a.peer, a.subnet),
        location: None,
        coordinate: Coordinate::origin(),
        version: 1,
    };
    assert!(matches!(m.apply_node(&Signed::sign(&stolen, &b.key).unwrap()), Err(Rejection::Grant(_))));
    // A record tampered with after signing (re-wrapped under another key).
    stolen.grant = grant(&auth, &b.peer, b.subnet);
    let signed_by_a = Signed::sign(&stolen, &a.key).unwrap();
    assert!(matches!(m.apply_node(&signed_by_a), Err(Rejection::Grant(_))));
    assert_eq!(m.members().count(), 0);
}

#[test]
fn two_nodes_cannot_hold_one_name() {
    let (auth, _local, mut m) = setup();
    let a = node(&auth, "10.18.0.64/26");
    let b = node(&auth, "10.18.0.128/26");
    m.apply_node(&record(&auth, &a, "same", 1)).unwrap();
    assert!(matches!(m.apply_node(&record(&auth, &b, "same", 1)), Err(Rejection::NameTaken { .. })));
}

#[test]
fn instances_must_be_signed_by_their_node_and_lie_in_its_subnet() {
    let (auth, _local, mut m) = setup();
    let a = node(&auth, "10.18.0.64/26");
    let b = node(&auth, "10.18.0.128/26");
    m.apply_node(&record(&auth, &a, "a", 1)).unwrap();
    m.apply_node(&record(&auth, &b, "b", 1)).unwrap();
    assert_eq!(m.apply_instances(&instances(&a, 1, "10.18.0.70")).unwrap(), Change::Instances(a.peer));
    let outside = m.apply_instances(&instances(&a, 2, "10.18.0.130"));
    assert!(matches!(outside, Err(Rejection::NotInSubnet { .. })), "{outside:?}");
    // b signs a set that claims to be a's.
    let mut set = InstanceSet { node: a.peer.to_bytes(), version: 5, instances: vec![] };
    let claimed = m.apply_instances(&Signed::sign(&set, &b.key).unwrap());
    assert!(matches!(claimed, Err(Rejection::SignerMismatch { .. })));
    set.version = 0;
    let old = m.apply_instances(&Signed::sign(&set, &a.key).unwrap());
    assert!(matches!(old, Err(Rejection::Stale { .. })));
}

#[test]
fn instances_before_their_node_record_are_held_until_it_arrives() {
    let (auth, _local, mut m) = setup();
    let a = node(&auth, "10.18.0.64/26");
    let early = instances(&a, 1, "10.18.0.70");
    assert_eq!(m.apply_instances(&early).unwrap(), Change::None);
    m.apply_node(&record(&auth, &a, "a", 1)).unwrap();
    let pending = m.take_pending(&a.peer).expect("held");
    assert_eq!(m.apply_instances(&pending).unwrap(), Change::Instances(a.peer));
}

#[test]
fn suspicion_then_second_watcher_or_timeout_declares_death_and_a_newer_record_revives() {
    let (auth, local, mut m) = setup();
    let (a, w1, w2) = (node(&auth, "10.18.0.64/26"), node(&auth, "10.18.0.128/26"), node(&auth, "10.18.0.192/26"));
    for (n, name) in [(&a, "a"), (&w1, "w1"), (&w2, "w2")] {
        m.apply_node(&record(&auth, n, name, 5)).unwrap();
    }
    let t0 = Instant::now();
    assert_eq!(m.apply_suspicion(&suspicion(&w1, &a, 5), t0).unwrap(), Change::Suspected(a.peer));
    assert_eq!(m.apply_suspicion(&suspicion(&w1, &a, 5), t0).unwrap(), Change::None, "same watcher twice");
    assert_eq!(m.apply_suspicion(&suspicion(&w2, &a, 5), t0).unwrap(), Change::Died(a.peer));
    assert!(m.live().all(|x| x.peer != a.peer));
    assert_eq!(m.apply_node(&record(&auth, &a, "a", 6)).unwrap(), Change::Revived(a.peer));
    // A suspicion of the old incarnation no longer counts.
    assert_eq!(m.apply_suspicion(&suspicion(&w1, &a, 5), t0).unwrap(), Change::None);
    // One suspicion and silence: dead after the timeout.
    assert_eq!(m.apply_suspicion(&suspicion(&w1, &a, 6), t0).unwrap(), Change::Suspected(a.peer));
    assert!(m.tick(t0 + SUSPECT_TIMEOUT - Duration::from_millis(1)).is_empty());
    assert_eq!(m.tick(t0 + SUSPECT_TIMEOUT), vec![Change::Died(a.peer)]);
    // Suspicion of ourselves asks for a refutation.
    let me = Node { key: Keypair::generate_ed25519(), peer: local.peer, subnet: local.subnet };
    assert_eq!(m.apply_suspicion(&suspicion(&w1, &me, 1), t0).unwrap(), Change::Refute);
    // Strangers cannot accuse.
    let stranger = node(&auth, "10.18.1.0/26");
    assert!(matches!(m.apply_suspicion(&suspicion(&stranger, &w1, 5), t0), Err(Rejection::UnknownSuspector(_))));
    assert!(m.accusations().iter().any(|(p, _)| *p == a.peer));
    assert!(m.changes() >= 5);
}

#[test]
fn every_node_is_watched_by_as_many_others_as_it_watches() {
    let auth = Keypair::generate_ed25519();
    let nodes: Vec<Node> = (0..7).map(|i| node(&auth, &format!("10.18.{i}.0/26"))).collect();
    let mut watched_by = std::collections::HashMap::<PeerId, usize>::new();
    for me in &nodes {
        let mut m = Membership::new(me.peer, auth.public().to_peer_id());
        for (i, n) in nodes.iter().enumerate() {
            m.apply_node(&record(&auth, n, &format!("n{i}"), 1)).unwrap();
        }
        let targets = m.watch_targets(3);
        assert_eq!(targets.len(), 3);
        assert!(!targets.contains(&me.peer));
        for t in targets {
            *watched_by.entry(t).or_default() += 1;
        }
    }
    assert!(watched_by.values().all(|&n| n == 3), "{watched_by:?}");
}
