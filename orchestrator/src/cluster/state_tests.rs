use super::*;
use crate::schedule::fixtures::service;
use crate::schedule::NoRtt;

fn report(name: &str, memory_mib: u64) -> WorkerReport {
    WorkerReport { name: name.into(), arch: "x86_64".into(), capacity: Capacity::new(4000, memory_mib), reserved: Capacity::ZERO, load: 0.0, location: None }
}

fn key(n: u32) -> InstanceKey {
    InstanceKey::new("web", "shop", "prod", n).expect("key")
}

#[test]
fn places_on_a_worker_counts_reservations_and_refuses_with_a_reason() {
    let mut s = ClusterState::default();
    s.worker_up("w1", report("w1", 1024));
    let out = s.place(key(0), service(1, 768, vec![]), &NoRtt);
    assert!(matches!(out.as_slice(), [(w, Message::Start { .. })] if w == "w1"));
    // A repeated Place is a no-op.
    assert!(s.place(key(0), service(1, 768, vec![]), &NoRtt).is_empty());
    // The second does not fit next to the first.
    assert!(s.place(key(1), service(1, 768, vec![]), &NoRtt).is_empty());
    let Message::Report { instances, workers } = s.report() else { panic!() };
    assert_eq!(workers[0].reserved, Capacity::new(1000, 768));
    let refused = instances.iter().find(|i| i.key == key(1)).expect("reported");
    assert_eq!(refused.state, InstanceState::Requested);
    assert!(refused.reason.as_deref().is_some_and(|r| r.contains("not enough resources")), "{refused:?}");
    // Reported once, then forgotten.
    let Message::Report { instances, .. } = s.report() else { panic!() };
    assert_eq!(instances.len(), 1);
}

#[test]
fn a_lost_worker_moves_its_instances_or_fails_them_with_why() {
    let mut s = ClusterState::default();
    s.worker_up("w1", report("w1", 4096));
    s.place(key(0), service(1, 512, vec![]), &NoRtt);
    s.place(key(1), service(1, 3000, vec![]), &NoRtt);
    s.worker_up("w2", report("w2", 1024));
    let out = s.worker_lost("w1", &NoRtt);
    assert!(matches!(out.as_slice(), [(w, Message::Start { key: k, .. })] if w == "w2" && *k == key(0)), "{out:?}");
    let big = &s.instances[&key(1)];
    assert_eq!(big.state, InstanceState::Failed);
    assert!(big.reason.as_deref().is_some_and(|r| r.starts_with("worker w1 lost")), "{big:?}");
    // A second death notice changes nothing.
    assert!(s.worker_lost("w1", &NoRtt).is_empty());
}

#[test]
fn worker_status_updates_and_stops_what_is_not_placed_there() {
    let mut s = ClusterState::default();
    s.worker_up("w1", report("w1", 4096));
    s.worker_up("w2", report("w2", 4096));
    s.place(key(0), service(1, 512, vec![]), &NoRtt);
    let on = s.instances[&key(0)].worker.clone().expect("placed");
    let other = if on == "w1" { "w2" } else { "w1" };
    let running = InstanceReport { key: key(0), state: InstanceState::Running, reason: None, node: None, address: None, restarts: 1 };
    assert!(s.worker_status(&on, report(&on, 4096), vec![running.clone()]).is_empty());
    assert_eq!(s.instances[&key(0)].state, InstanceState::Running);
    let out = s.worker_status(other, report(other, 4096), vec![running]);
    assert!(matches!(out.as_slice(), [(w, Message::Stop { .. })] if w == other));
}

#[test]
fn a_services_instances_spread_over_workers_before_packing() {
    let mut s = ClusterState::default();
    // w1 is the tighter fit for both; spreading puts the second on w2.
    s.worker_up("w1", report("w1", 4096));
    s.worker_up("w2", report("w2", 8192));
    let mut on: Vec<String> = Vec::new();
    for n in 0..2 {
        on.extend(s.place(key(n), service(1, 512, vec![]), &NoRtt).into_iter().map(|(w, _)| w));
    }
    assert_eq!(on, ["w1", "w2"]);
}
