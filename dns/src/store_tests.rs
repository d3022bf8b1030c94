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

#[test]
fn register_replace_deregister() {
    let dir = MemoryDirectory::new(node("local"));
    assert!(dir.service("ms2").is_empty());
    assert_eq!(dir.register(instance("web", "prod", 1, "n1")).expect("ok"), None);
    assert_eq!(dir.register(instance("web", "prod", 2, "n2")).expect("ok"), None);
    let mut moved = instance("web", "prod", 1, "n3");
    moved.service = "MS2".into();
    moved.app = "Web".into();
    let old = dir.register(moved).expect("ok").expect("replaced");
    assert_eq!(old.node, node("n1"));
    let list = dir.service("ms2");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].node, node("n3"));
    assert_eq!(list[0].app, "web");
    assert_eq!(dir.instances("ms2", Some("web"), Some("prod")).len(), 2);
    assert!(dir.instances("ms2", Some("cam"), None).is_empty());

    assert!(dir.deregister("ms2", "WEB", "prod", 1).is_some());
    assert!(dir.deregister("ms2", "web", "prod", 1).is_none());
    assert!(dir.deregister("ms2", "web", "prod", 2).is_some());
    assert_eq!(dir.snapshot().service_names().count(), 0);
}

#[test]
fn refuses_names_that_cannot_be_asked_for() {
    let dir = MemoryDirectory::new(node("local"));
    for (field, value) in [
        ("service", "ms_2"),
        ("app", "svc"),
        ("namespace", ""),
        ("port", "h ttp"),
    ] {
        let mut i = instance("web", "prod", 1, "n1");
        match field {
            "service" => i.service = value.into(),
            "app" => i.app = value.into(),
            "namespace" => i.namespace = value.into(),
            _ => i.ports[0].name = value.into(),
        }
        assert!(
            matches!(dir.register(i), Err(DnsError::InvalidName { .. })),
            "{field}={value:?}"
        );
    }
    assert!(dir.service("ms2").is_empty());
}

#[test]
fn health_by_instance_and_by_node() {
    let dir = MemoryDirectory::new(node("local"));
    dir.update(|u| {
        for (n, at) in [(1, "n1"), (2, "n1"), (3, "n2")] {
            u.register(instance("web", "prod", n, at)).expect("ok");
        }
        let mut other = instance("web", "prod", 1, "n1");
        other.service = "db".into();
        u.register(other).expect("ok");
    });
    assert!(dir.set_healthy("ms2", "web", "prod", 3, false));
    assert!(!dir.set_healthy("ms2", "web", "prod", 9, false));
    assert!(!dir.service("ms2")[2].healthy);
    assert_eq!(dir.update(|u| u.set_node_healthy(&node("n1"), false)), 3);
    assert!(dir.service("ms2").iter().all(|i| !i.healthy));
    assert!(!dir.service("db")[0].healthy);
    assert_eq!(dir.update(|u| u.deregister_node(&node("n1"))), 3);
    assert_eq!(dir.service("ms2").len(), 1);
    assert!(dir.service("db").is_empty());
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
