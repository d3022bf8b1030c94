//! Tests of the in-memory directory.

use std::time::Duration;

use super::*;
use crate::test_support::instance;

fn node(id: &str) -> NodeId {
    NodeId::new(id)
}

fn loc(lat: f64, lon: f64) -> Location {
    Location { lat, lon }
}

fn key(service: &str, app: &str, number: u32) -> InstanceKey {
    InstanceKey::new(service, app, "prod", number).expect("key")
}

/// `instance` of another service.
fn of_service(service: &str, number: u32, at: &str) -> Instance {
    let mut i = instance("web", "prod", number, at);
    i.spec.key.service = Label::parse(service).expect("label");
    i
}

#[test]
fn register_replace_deregister() {
    let dir = MemoryDirectory::new(node("local"));
    assert!(dir.service("ms2").is_empty());
    assert_eq!(dir.register(instance("web", "prod", 1, "n1")).expect("ok"), None);
    assert_eq!(dir.register(instance("web", "prod", 2, "n2")).expect("ok"), None);
    let moved = instance("web", "prod", 1, "n3");
    let old = dir.register(moved).expect("ok").expect("replaced");
    assert_eq!(old.node, node("n1"));
    let list = dir.service("ms2");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].node, node("n3"));
    assert_eq!(list[0].app, "web");
    assert_eq!(dir.instances("ms2", Some("web"), Some("prod")).len(), 2);
    assert!(dir.instances("ms2", Some("cam"), None).is_empty());
    assert_eq!(dir.update(|u| u.deregister_node(&node("n1"))), 0, "n1 lost its instance to n3");

    assert!(dir.deregister(&key("MS2", "WEB", 1)).is_some(), "keys are lowercased");
    assert!(dir.deregister(&key("ms2", "web", 1)).is_none());
    assert!(dir.deregister(&key("ms2", "web", 2)).is_some());
    assert_eq!(dir.snapshot().service_names().count(), 0);
}

#[test]
fn health_by_instance_and_by_node() {
    let dir = MemoryDirectory::new(node("local"));
    dir.update(|u| {
        for (n, at) in [(1, "n1"), (2, "n1"), (3, "n2")] {
            u.register(instance("web", "prod", n, at)).expect("ok");
        }
        u.register(of_service("db", 1, "n1")).expect("ok");
    });
    assert!(dir.set_healthy(&key("ms2", "web", 3), false));
    assert!(!dir.set_healthy(&key("ms2", "web", 9), false));
    assert!(!dir.service("ms2")[2].healthy);
    assert_eq!(dir.update(|u| u.set_node_healthy(&node("n1"), false)), 3);
    assert!(dir.service("ms2").iter().all(|i| !i.healthy));
    assert!(!dir.service("db")[0].healthy);
    assert_eq!(dir.update(|u| u.deregister_node(&node("n1"))), 3);
    assert_eq!(dir.service("ms2").len(), 1);
    assert!(dir.service("db").is_empty());
}

#[test]
fn replace_node_changes_only_that_node_and_follows_renames() {
    let dir = MemoryDirectory::new(node("local"));
    let a = NodeId::named("peer-a", "edge-1");
    let b = NodeId::named("peer-b", "edge-1");
    dir.update(|u| {
        u.replace_node(&a, vec![instance("web", "prod", 1, "peer-a"), of_service("db", 1, "peer-a")]);
        u.replace_node(&b, vec![instance("web", "prod", 2, "peer-b")]);
    });
    assert_eq!(dir.service("ms2").len(), 2, "two nodes sharing a name keep their own instances");
    // A dead node with the same name leaving takes nothing of the live one.
    assert_eq!(dir.update(|u| u.replace_node(&a, Vec::new())), 2);
    assert_eq!(dir.service("ms2").len(), 1);
    assert_eq!(dir.service("ms2")[0].node, b);
    assert!(dir.service("db").is_empty());
    let renamed = NodeId::named("peer-b", "edge-2");
    dir.update(|u| u.replace_node(&renamed, vec![instance("web", "prod", 2, "peer-b"), instance("web", "prod", 3, "peer-b")]));
    let list = dir.service("ms2");
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|i| i.node.name() == "edge-2"), "{list:?}");
    dir.update(|u| u.remove_node(&renamed));
    assert!(dir.service("ms2").is_empty());
}

#[test]
fn batches_cost_time_linear_in_their_size() {
    let dir = MemoryDirectory::new(node("local"));
    let batch = |base: u32| (base..base + 20_000).map(|n| instance("web", "prod", n, "n1")).collect::<Vec<_>>();
    let started = std::time::Instant::now();
    assert_eq!(dir.update(|u| u.register_all(batch(0))), 0);
    assert_eq!(dir.update(|u| u.register_all(batch(10_000))), 10_000);
    let node_only = started.elapsed();
    assert_eq!(dir.service("ms2").len(), 30_000);
    // One register per instance would copy the list 40,000 times (about
    // 10^9 instance clones); the batches copy it twice.
    assert!(node_only < Duration::from_secs(5), "{node_only:?}");
    let started = std::time::Instant::now();
    dir.update(|u| u.replace_node(&node("n2"), vec![of_service("db", 1, "n2")]));
    assert!(started.elapsed() < Duration::from_millis(50), "an unrelated change does not touch ms2: {:?}", started.elapsed());
}

#[test]
fn distances_follow_locations_and_rtts() {
    let dir = MemoryDirectory::new(node("berlin"));
    let munich = node("munich");
    assert_eq!(dir.distance(&munich), Distance::UNKNOWN);
    assert_eq!(dir.distance(&node("berlin")), Distance::LOCAL);

    dir.set_location(&munich, loc(48.1351, 11.5820)).expect("ok");
    assert_eq!(dir.distance(&munich).km, None, "local location still unknown");
    dir.set_location(&node("berlin"), loc(52.52, 13.405)).expect("ok");
    let km = dir.distance(&munich).km.expect("both known");
    assert!((km - 504.4).abs() < 1.0, "{km}");

    dir.set_rtt(&munich, Some(RttEstimate::estimated(Duration::from_millis(9), 7.0)));
    let rtt = dir.distance(&munich).rtt.expect("set");
    assert_eq!(rtt.confidence, 1.0, "clamped");
    assert!(!rtt.measured);
    dir.set_rtt(
        &munich,
        Some(RttEstimate::estimated(Duration::from_millis(9), f64::NAN)),
    );
    assert_eq!(dir.distance(&munich).rtt.map(|r| r.confidence), Some(0.0));
    dir.set_rtt(&munich, None);
    assert_eq!(dir.distance(&munich).rtt, None);
    // The local node is always zero.
    dir.set_rtt(&node("berlin"), Some(RttEstimate::measured(Duration::from_millis(50))));
    assert_eq!(dir.distance(&node("berlin")), Distance::LOCAL);

    assert!(dir.set_location(&munich, loc(95.0, 0.0)).is_err());
}

#[test]
fn snapshots_are_stable_while_writers_change_things() {
    let dir = MemoryDirectory::new(node("local"));
    dir.register(instance("web", "prod", 1, "n1")).expect("ok");
    let before = dir.snapshot();
    dir.register(instance("web", "prod", 2, "n2")).expect("ok");
    assert_eq!(before.service("ms2").len(), 1);
    assert_eq!(dir.snapshot().service("ms2").len(), 2);
}

#[test]
fn concurrent_readers_and_writers() {
    let dir = Arc::new(MemoryDirectory::new(node("local")));
    std::thread::scope(|s| {
        for w in 0..2u32 {
            let dir = &dir;
            s.spawn(move || {
                for n in 0..200 {
                    dir.register(instance("web", "prod", w * 1000 + n, "n1")).expect("ok");
                }
            });
        }
        let dir = &dir;
        s.spawn(move || {
            let mut last = 0;
            for _ in 0..2000 {
                let now = dir.service("ms2").len();
                assert!(now >= last, "a reader saw instances disappear");
                last = now;
            }
        });
    });
    assert_eq!(dir.service("ms2").len(), 400, "no update lost");
}

#[test]
fn nodes_known_first_from_instances_get_distances_later() {
    let dir = MemoryDirectory::new(node("local"));
    dir.register(instance("web", "prod", 1, "n9")).expect("ok");
    let n9 = dir.service("ms2")[0].node.clone();
    assert_eq!(dir.distance(&n9), Distance::UNKNOWN);
    dir.set_location(&node("local"), loc(0.0, 0.0)).expect("ok");
    dir.set_location(&node("n9"), loc(1.0, 0.0)).expect("ok");
    dir.set_rtt(&node("n9"), Some(RttEstimate::measured(Duration::from_millis(4))));
    let d = dir.distance(&n9);
    assert!(d.km.is_some_and(|km| (km - 111.2).abs() < 0.2), "{d:?}");
    assert_eq!(d.rtt.map(|r| r.rtt), Some(Duration::from_millis(4)));
    assert_eq!(
        dir.distance(&node("local")),
        Distance::LOCAL,
        "the local node stays at zero"
    );
}
