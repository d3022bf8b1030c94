//! The projection: peer set and directory by difference.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dns::store::MemoryDirectory;

use super::*;
use crate::control::testkit::{host, instances, spec, suspicion, Kit};

fn apply(projection: &mut Projection, membership: &Membership, directory: &MemoryDirectory, touched: &[PeerId]) {
    let touched: BTreeSet<PeerId> = touched.iter().copied().collect();
    apply_directory(directory, projection.directory(membership, &touched));
}

fn hosts(directory: &MemoryDirectory, service: &str) -> Vec<(String, bool)> {
    let snapshot = directory.snapshot();
    let mut out: Vec<(String, bool)> = dns::Directory::service(&*snapshot, service).iter().map(|i| (i.node.name().to_owned(), i.healthy)).collect();
    out.sort();
    out
}

#[test]
fn the_directory_follows_liveness_by_difference() {
    let mut kit = Kit::new();
    let (me, a, b) = (kit.node(), kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    for n in [&me, &a, &b] {
        m.apply_node(&kit.record(n, 1), now).unwrap();
    }
    m.apply_instances(&instances(&a, 1, vec![spec("ms2", 1, host(&a, 2))]), now).unwrap();
    m.apply_instances(&instances(&b, 1, vec![spec("ms2", 2, host(&b, 2))]), now).unwrap();
    let directory = MemoryDirectory::new(dns::NodeId::new(&me.peer.to_string()));
    let mut p = Projection::default();
    apply(&mut p, &m, &directory, &[me.peer, a.peer, b.peer]);
    assert_eq!(hosts(&directory, "ms2"), [(a.name.clone(), true), (b.name.clone(), true)]);
    assert_eq!(p.peers(&m).unwrap().len(), 2);
    assert!(p.peers(&m).is_none(), "unchanged: no new peer set");
    m.apply_suspicion(&suspicion(&me, &a, 1), now).unwrap();
    apply(&mut p, &m, &directory, &[a.peer]);
    assert_eq!(hosts(&directory, "ms2"), [(a.name.clone(), true), (b.name.clone(), true)], "one watcher's suspicion: still served");
    m.tick(now + Duration::from_secs(5));
    apply(&mut p, &m, &directory, &[a.peer]);
    assert_eq!(hosts(&directory, "ms2"), [(b.name.clone(), true)], "dead: gone");
    assert_eq!(p.peers(&m).unwrap().len(), 1, "and out of the tunnel");
}

/// F4's second half: a dead member and a live one with the same display
/// name never touch each other's entries (the directory keys identities).
#[test]
fn a_dead_namesake_never_removes_a_live_members_instances() {
    let mut kit = Kit::new();
    let (me, old) = (kit.node(), kit.node());
    let mut new = kit.node();
    new.name = "edge-1".into();
    let mut old = old;
    old.name = "edge-0".into();
    let mut m = kit.membership(&me);
    let now = Instant::now();
    for n in [&me, &old, &new] {
        m.apply_node(&kit.record(n, 1), now).unwrap();
    }
    m.apply_instances(&instances(&new, 1, vec![spec("ms2", 1, host(&new, 2))]), now).unwrap();
    m.apply_suspicion(&suspicion(&me, &old, 1), now).unwrap();
    m.tick(now + Duration::from_secs(5));
    let directory = MemoryDirectory::new(dns::NodeId::new(&me.peer.to_string()));
    let mut p = Projection::default();
    for _ in 0..50 {
        apply(&mut p, &m, &directory, &[old.peer, new.peer]);
        assert_eq!(hosts(&directory, "ms2"), [("edge-1".to_string(), true)]);
    }
}

/// F7: with one member holding 256 instances of one service and 50 others
/// with 10 each, an unrelated change costs next to nothing.
#[test]
fn an_unrelated_change_costs_nothing_extra() {
    let mut kit = Kit::new();
    let me = kit.node();
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&me, 1), now).unwrap();
    let big = kit.node();
    m.apply_node(&kit.record(&big, 1), now).unwrap();
    let many = (0..256).map(|i| spec("a", i, host(&big, 2 + i % 60))).collect();
    m.apply_instances(&instances(&big, 1, many), now).unwrap();
    let mut others = Vec::new();
    for _ in 0..50 {
        let n = kit.node();
        m.apply_node(&kit.record(&n, 1), now).unwrap();
        let set = (0..10).map(|i| spec(&format!("s{i}"), i, host(&n, 2 + i))).collect();
        m.apply_instances(&instances(&n, 1, set), now).unwrap();
        others.push(n);
    }
    let directory = MemoryDirectory::new(dns::NodeId::new(&me.peer.to_string()));
    let mut p = Projection::default();
    let all: Vec<PeerId> = m.members().map(|x| x.peer).collect();
    apply(&mut p, &m, &directory, &all);
    assert_eq!(hosts(&directory, "a").len(), 256);
    let n = &others[7];
    m.apply_instances(&instances(n, 2, vec![spec("s1", 1, host(n, 3))]), now + Duration::from_secs(1)).unwrap();
    // The cost is counted in operations, not timed: speed is for benches.
    let ops = p.directory(&m, &BTreeSet::from([n.peer]));
    assert_eq!(ops.len(), 1, "one node's entries, nothing else: {ops:?}");
    apply_directory(&directory, ops);
    assert_eq!(hosts(&directory, "a").len(), 256);
}

#[test]
fn the_lower_peer_id_serves_a_contested_key_and_the_other_takes_over_when_it_goes() {
    let mut kit = Kit::new();
    let (me, a, b) = (kit.node(), kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    for n in [&me, &a, &b] {
        m.apply_node(&kit.record(n, 1), now).unwrap();
    }
    m.apply_instances(&instances(&a, 1, vec![spec("db", 1, host(&a, 2))]), now).unwrap();
    m.apply_instances(&instances(&b, 1, vec![spec("db", 1, host(&b, 2))]), now).unwrap();
    let directory = MemoryDirectory::new(dns::NodeId::new(&me.peer.to_string()));
    let mut p = Projection::default();
    apply(&mut p, &m, &directory, &[b.peer, a.peer]);
    let (low, high) = if a.peer < b.peer { (&a, &b) } else { (&b, &a) };
    assert_eq!(hosts(&directory, "db"), [(low.name.clone(), true)]);
    assert_eq!(p.conflicts(&m).len(), 1);
    m.apply_instances(&instances(low, 2, vec![]), now + Duration::from_secs(1)).unwrap();
    apply(&mut p, &m, &directory, &[low.peer]);
    assert_eq!(hosts(&directory, "db"), [(high.name.clone(), true)], "the other claimant serves");
    assert!(p.conflicts(&m).is_empty());
}
