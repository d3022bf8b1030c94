//! The control plane as a whole, in memory: several nodes wired through
//! [`Harness`], a virtual clock, no sockets.

use std::time::Duration;

use libp2p_identity::Keypair;

use super::harness::Harness;
use super::*;
use crate::control::view::MemberState;
use crate::control::wire::protocol::SyncRequest;
use crate::control::wire::records::{Gossip, NodeRecord, Suspicion};
use crate::control::wire::{decode, encode};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn mesh(n: usize) -> Harness {
    let mut h = Harness::new(n);
    h.connect_all();
    assert!(h.until(secs(5.0), Harness::converged).is_some(), "{n} nodes did not converge");
    h
}

#[test]
fn nodes_converge_and_instances_reach_every_directory() {
    let mut h = mesh(5);
    h.register(3, "ms2", 1);
    let took = h.until(secs(2.0), |h| (0..5).all(|i| h.healthy_hosts(i, "ms2") == ["n3"])).expect("instance everywhere");
    assert!(took < secs(0.5), "convergence took {took:?}");
    for i in 0..5 {
        let peers = h.nodes[i].peers.len();
        assert_eq!(peers, 4, "node {i} has {peers} tunnel peers");
    }
}

/// `bench deploy`'s pattern: one worker starts and removes services back
/// to back (two instance sets each), each waited for on another node's
/// directory. A set past the member's budget there must arrive late, not
/// be lost: nothing would repair it before the next set.
#[test]
fn instance_sets_published_back_to_back_all_reach_the_directory() {
    let mut h = mesh(5);
    let mut missed = Vec::new();
    for i in 0..60 {
        let service = format!("web{i}");
        let key = h.register(3, &service, 1);
        if h.until(secs(1.0), |h| h.healthy_hosts(0, &service) == ["n3"]).is_none() {
            missed.push(i);
        }
        h.command(3, Command::Deregister(key));
    }
    assert!(missed.is_empty(), "deployments never seen on node 0: {missed:?}");
}

#[test]
fn a_crashed_node_is_suspected_within_a_second_and_dies() {
    let mut h = mesh(6);
    h.register(2, "ms2", 1);
    h.register(4, "ms2", 2);
    h.run(secs(1.0));
    h.crash(2);
    let suspected = h.until(secs(3.0), |h| (0..6).filter(|i| *i != 2).all(|i| h.healthy_hosts(i, "ms2") == ["n4"])).expect("failover");
    assert!(suspected < secs(1.0), "failover took {suspected:?}");
    assert!(h.until(secs(5.0), |h| h.all_see(2, MemberState::Dead)).is_some(), "declared dead");
    assert!(h.nodes[0].peers.iter().all(|p| p.public_key.0 != [3; 32]), "the dead node left the tunnel");
}

#[test]
fn a_silent_node_is_found_through_indirect_probes() {
    let mut h = mesh(5);
    h.nodes[1].silent = true;
    let took = h.until(secs(5.0), |h| (0..5).filter(|i| *i != 1).all(|i| h.state_of(i, 1) != Some(MemberState::Alive))).expect("suspected");
    assert!(took < secs(2.0), "a silent node took {took:?} to suspect");
}

/// F22: a lossy path between a watcher and its target must not make it
/// suspect a healthy node: others reach it, and say so.
#[test]
fn one_bad_path_does_not_make_a_healthy_node_suspect() {
    let mut h = mesh(6);
    let changes_before: u64 = (0..6).map(|i| h.nodes[i].node.as_ref().map_or(0, |n| n.membership().changes())).sum();
    for a in 0..6 {
        for b in 0..6 {
            if a != b && (a == 0 || b == 0) && (a == 3 || b == 3) {
                h.lossy.insert((a, b));
            }
        }
    }
    h.run(secs(20.0));
    for i in 0..6 {
        for j in 0..6 {
            if i != j {
                assert_eq!(h.state_of(i, j), Some(MemberState::Alive), "{i} holds {j} {:?}", h.state_of(i, j));
            }
        }
    }
    let changes_after: u64 = (0..6).map(|i| h.nodes[i].node.as_ref().map_or(0, |n| n.membership().changes())).sum();
    assert_eq!(changes_before, changes_after, "no suspicion anywhere");
}

#[test]
fn a_leaving_node_is_dropped_at_once_without_suspicion() {
    let mut h = mesh(4);
    h.register(2, "ms2", 1);
    h.run(secs(0.5));
    h.command(2, Command::Leave);
    let took = h.until(secs(1.0), |h| h.all_see(2, MemberState::Left)).expect("left everywhere");
    assert!(took <= secs(0.1), "took {took:?} (the check runs once per tick)");
    h.crash(2);
    h.run(secs(5.0));
    assert!(h.all_see(2, MemberState::Left), "never suspected, never dead: it left");
    assert!(h.healthy_hosts(0, "ms2").is_empty());
}

#[test]
fn strangers_get_nothing_and_are_closed() {
    let mut h = mesh(3);
    // A key with no grant: it forges a record signed by itself.
    let stranger = Keypair::generate_ed25519();
    let record = h.nodes[1].node.as_ref().and_then(|n| n.membership().get(&h.nodes[1].peer)).map(|m| m.record.clone()).expect("record");
    let forged = Signed::sign(&NodeRecord { version: 1, ..record }, &stranger).expect("sign");
    let peer = stranger.public().to_peer_id();
    let now = h.now;
    let victim = h.nodes[1].peer;
    let node = h.nodes[0].node.as_mut().expect("running");
    let mut out = node.handle(Input::Connected { peer, ip: "198.18.9.9".parse().expect("ip"), dialer: false }, now);
    assert!(out.iter().any(|o| matches!(o, Output::Trust { member: false, .. })), "graylisted");
    let sync = ControlRequest::Sync(SyncRequest { me: forged, after: None });
    out.extend(node.handle(Input::ControlRequest { from: peer, request: sync, reply: ReplyId(1) }, now));
    let ping = ProbeRequest::Ping { coordinate: crate::control::vivaldi::Coordinate::origin(), suspected: true };
    out.extend(node.handle(Input::ProbeRequest { from: peer, request: ping, reply: ReplyId(2) }, now));
    let suspicion = Suspicion { target: victim.to_bytes(), version: 1 };
    let gossip = encode(&Gossip::Suspect(Signed::sign(&suspicion, &stranger).expect("sign"))).expect("encode");
    out.extend(node.handle(Input::Gossip { source: peer, id: vec![1], data: gossip }, now));
    for o in &out {
        match o {
            Output::ReplyControl { response, .. } => assert!(matches!(response, ControlResponse::NotMember), "{response:?}"),
            Output::ReplyProbe { response, .. } => assert!(matches!(response, ProbeResponse::NotMember), "{response:?}"),
            Output::Verdict { verdict, .. } => assert_eq!(*verdict, Verdict::Reject),
            Output::Publish(_) => panic!("a stranger's probe made us re-sign our record"),
            Output::Trust { .. } => {}
            _ => panic!("a stranger got something"),
        }
    }
    let later = now + serve::STRANGER_GRACE + secs(0.2);
    let out = node.handle(Input::Tick, later);
    assert!(out.iter().any(|o| matches!(o, Output::Disconnect(p) if *p == peer)), "the stranger is closed after the grace period");
}

/// F3: a member that is not among the target's watchers cannot make it suspect.
#[test]
fn only_watchers_may_suspect() {
    let mut h = mesh(8);
    let target = 5;
    let node = h.nodes[0].node.as_ref().expect("running");
    let watchers = node.membership().watchers_of(&h.nodes[target].peer, crate::control::membership::WATCHERS + 2);
    let outsider = (1..8).find(|i| *i != target && !watchers.contains(&h.nodes[*i].peer)).expect("an outsider");
    let version = node.membership().get(&h.nodes[target].peer).expect("member").record.version;
    let suspicion = Suspicion { target: h.nodes[target].peer.to_bytes(), version };
    let signed = Signed::sign(&suspicion, &h.nodes[outsider].keypair).expect("sign");
    let data = encode(&Gossip::Suspect(signed)).expect("encode");
    let source = h.nodes[outsider].peer;
    let now = h.now;
    let out = h.nodes[0].node.as_mut().expect("running").handle(Input::Gossip { source, id: vec![9], data }, now);
    assert!(out.iter().any(|o| matches!(o, Output::Verdict { verdict: Verdict::Reject, .. })));
    assert_eq!(h.state_of(0, target), Some(MemberState::Alive));
}

/// F16: a node restarted with its state lost (incarnation back at 1) sees
/// its own higher version in a sync page and supersedes it.
#[test]
fn a_restart_that_lost_its_versions_is_not_locked_out() {
    let mut h = mesh(3);
    let key = h.nodes[2].keypair.clone();
    let old = h.nodes[0].node.as_ref().and_then(|n| n.membership().get(&h.nodes[2].peer)).map(|m| m.record.version).expect("version");
    h.crash(2);
    h.add(key.clone(), "n2", 7);
    h.connect_all();
    h.run(secs(0.3));
    h.crash(2);
    h.add(key, "n2", 1);
    h.connect_all();
    let took = h.until(secs(5.0), Harness::converged).expect("back");
    let now = h.nodes[0].node.as_ref().and_then(|n| n.membership().get(&h.nodes[2].peer)).map(|m| m.record.version).expect("version");
    assert!(now > old && now > (7u64 << 32), "version {now:x} after {took:?}");
}

#[test]
fn two_nodes_announcing_one_instance_resolve_the_same_way_everywhere() {
    let mut h = mesh(4);
    h.register(1, "db", 1);
    h.register(3, "db", 1);
    h.run(secs(1.0));
    let answers: Vec<Vec<String>> = (0..4).map(|i| h.healthy_hosts(i, "db")).collect();
    assert!(answers.iter().all(|a| a.len() == 1 && *a == answers[0]), "{answers:?}");
    let view = h.nodes[0].node.as_ref().expect("running").view(h.now);
    assert_eq!(view.conflicts.len(), 1, "{:?}", view.conflicts);
    assert_eq!(view.conflicts[0].nodes.len(), 2, "both are reported");
}

#[test]
fn a_revoked_member_is_dropped_everywhere() {
    let mut h = mesh(4);
    let (_, revocation) = h.authority.revoke("n3").expect("revoke");
    h.command(0, Command::Publish(Gossip::Revoke(revocation)));
    assert!(h.until(secs(1.0), |h| (0..3).all(|i| h.state_of(i, 3).is_none())).is_some(), "removed everywhere");
}

#[test]
fn a_healed_partition_brings_both_sides_back() {
    let mut h = mesh(6);
    h.register(4, "ms2", 1);
    h.run(secs(0.5));
    for a in 0..3 {
        for b in 3..6 {
            h.lossy.insert((a, b));
            h.lossy.insert((b, a));
        }
    }
    assert!(h.until(secs(10.0), |h| h.state_of(0, 4) == Some(MemberState::Dead)).is_some(), "the far side dies");
    h.lossy.clear();
    let took = h.until(secs(15.0), Harness::converged).expect("healed");
    assert!(h.healthy_hosts(0, "ms2") == ["n4"], "instances are back after {took:?}");
}

#[test]
fn registering_an_address_outside_the_subnet_is_refused_and_nothing_published() {
    let mut h = mesh(2);
    let before = h.nodes[1].published;
    let key = dns::InstanceKey::new("ms2", "cam", "default", 1).expect("key");
    h.command(1, Command::Register(vec![dns::InstanceSpec::new(key).with_ipv4("10.99.0.5".parse().expect("ip"))]));
    assert!(matches!(h.nodes[1].done.last(), Some(Err(ControlError::OutsideSubnet { .. }))));
    assert_eq!(h.nodes[1].published, before);
    let _ = decode::<u8>(&[2, 0]);
}
