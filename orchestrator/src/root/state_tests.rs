use super::*;
use crate::proto::{InstanceReport, WorkerReport};
use crate::schedule::fixtures::service;
use crate::sla::{AppSpec, SlaSpec};

fn label(s: &str) -> dns::Label {
    dns::Label::parse(s).expect("label")
}

fn sla(instances: u32, memory_mib: u32) -> SlaSpec {
    let mut web = service(1, memory_mib, vec![]);
    web.instances = instances;
    SlaSpec { customer: "me".into(), apps: vec![AppSpec { name: label("shop"), namespace: label("prod"), description: None, services: vec![web] }] }
}

fn worker(name: &str, memory_mib: u64) -> WorkerReport {
    WorkerReport { name: name.into(), arch: "x86_64".into(), capacity: Capacity::new(4000, memory_mib), reserved: Capacity::ZERO, load: 0.0, location: None }
}

fn placed(out: &[Outbound]) -> Vec<(String, InstanceKey)> {
    out.iter().filter_map(|(c, m)| match m {
        Message::Place { key, .. } => Some((c.clone(), *key)),
        _ => None,
    }).collect()
}

const T: Duration = Duration::from_secs(3);

#[test]
fn deploy_places_reports_advance_and_a_lost_cluster_moves_instances() {
    let mut s = RootState::default();
    s.cluster_connected("edge", "10.18.0.1".parse().expect("ip"), None, 0);
    s.apply_report("edge", vec![worker("w1", 4096)], vec![], 0);
    s.cluster_connected("cloud", "10.18.0.65".parse().expect("ip"), None, 0);
    s.apply_report("cloud", vec![worker("w2", 8192)], vec![], 0);
    let (keys, _) = s.deploy(sla(2, 1024), 10);
    assert_eq!(keys, ["shop.prod"]);
    let out = s.reconcile(10, T);
    let sent = placed(&out);
    assert_eq!(sent.len(), 2, "{out:?}");
    assert!(!s.take_dirty().is_empty());
    let service = &s.services["web.shop.prod"];
    assert!(service.instances.values().all(|i| i.status.state == InstanceState::ClusterScheduled));
    // The cluster says RUNNING straight away: the root walks the steps in between.
    let (cluster, key) = sent[0].clone();
    let report = InstanceReport { key, state: InstanceState::Running, reason: None, node: Some("w1".into()), address: None, restarts: 0 };
    s.apply_report(&cluster, vec![worker("w1", 4096)], vec![report], 100);
    assert_eq!(s.instance(&key).map(|i| i.status.state), Some(InstanceState::Running));
    // Silent past the timeout: lost, and its instances go back to REQUESTED elsewhere.
    let other = if cluster == "edge" { "cloud" } else { "edge" };
    s.apply_report(other, vec![worker("w", 8192)], vec![], 3000);
    let out = s.reconcile(3500, T);
    assert!(!s.clusters[&cluster].alive);
    assert!(placed(&out).iter().any(|(c, k)| c == other && *k == key), "{out:?}");
}

#[test]
fn nothing_fits_gives_a_reason_and_refusals_go_elsewhere() {
    let mut s = RootState::default();
    s.deploy(sla(1, 1024), 0);
    s.reconcile(0, T);
    let reason = s.services["web.shop.prod"].instances[&0].pending.clone().expect("a reason");
    assert!(reason.contains("no cluster has registered"), "{reason}");
    s.cluster_connected("a", "10.18.0.1".parse().expect("ip"), None, 0);
    s.apply_report("a", vec![worker("w1", 4096)], vec![], 0);
    s.cluster_connected("b", "10.18.0.65".parse().expect("ip"), None, 0);
    s.apply_report("b", vec![worker("w2", 4096)], vec![], 0);
    let first = placed(&s.reconcile(10, T))[0].clone();
    let refusal = InstanceReport { key: first.1, state: InstanceState::Requested, reason: Some("none fit".into()), node: None, address: None, restarts: 0 };
    s.apply_report(&first.0, vec![worker("w", 4096)], vec![refusal], 20);
    let second = placed(&s.reconcile(30, T));
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].0, first.0, "a refusing cluster is not asked again at once");
}

#[test]
fn scale_and_remove_stop_instances_and_unknown_reports_are_stopped() {
    let mut s = RootState::default();
    s.cluster_connected("a", "10.18.0.1".parse().expect("ip"), None, 0);
    s.apply_report("a", vec![worker("w1", 8192)], vec![], 0);
    s.deploy(sla(3, 512), 0);
    assert_eq!(placed(&s.reconcile(0, T)).len(), 3);
    let out = s.scale("web.shop.prod", 1, 10);
    assert_eq!(out.iter().filter(|(_, m)| matches!(m, Message::Stop { .. })).count(), 2);
    assert_eq!(s.services["web.shop.prod"].instances.len(), 1);
    let ghost = InstanceKey::new("ghost", "shop", "prod", 9).expect("key");
    let report = InstanceReport { key: ghost, state: InstanceState::Running, reason: None, node: None, address: None, restarts: 0 };
    let out = s.apply_report("a", vec![], vec![report], 20);
    assert!(matches!(out.as_slice(), [(_, Message::Stop { key })] if *key == ghost));
    let mut out = Vec::new();
    assert!(s.remove_app_key("shop.prod", &mut out).is_some());
    assert_eq!(out.len(), 1);
    assert!(s.services.is_empty());
}

#[test]
fn references_resolve_by_prefix_and_say_when_ambiguous() {
    let mut s = RootState::default();
    s.deploy(sla(1, 64), 0);
    assert_eq!(s.find_service("web").expect("found"), "web.shop.prod");
    assert_eq!(s.find_service("WEB.shop").expect("found"), "web.shop.prod");
    assert!(matches!(s.find_service("we"), Err(OrchestratorError::NotFound { .. })));
    let mut other = sla(1, 64);
    other.apps[0].namespace = label("dev");
    s.deploy(other, 0);
    assert!(matches!(s.find_service("web"), Err(OrchestratorError::Ambiguous { .. })));
    assert_eq!(s.find_app("shop.dev").expect("found"), "shop.dev");
}

#[test]
fn records_survive_the_store_encoding() {
    let mut s = RootState::default();
    s.deploy(sla(2, 64), 5);
    s.reconcile(5, T);
    let store = crate::store::MemoryStore::new();
    let dirty = s.take_dirty();
    crate::root::persist::Batch::collect(&s, dirty).write(&store).expect("write");
    let (apps, services) = crate::root::persist::load(&store).expect("load");
    assert_eq!(apps.len(), 1);
    let (stored, held) = (&services[0], &s.services["web.shop.prod"]);
    assert_eq!((&stored.spec, stored.wanted, stored.next_number), (&held.spec, held.wanted, held.next_number));
    let states = |r: &crate::root::records::ServiceRecord| r.instances.values().map(|i| (i.status.clone(), i.cluster.clone())).collect::<Vec<_>>();
    assert_eq!(states(stored), states(held));
}

#[test]
fn a_services_instances_spread_over_clusters_before_packing() {
    let mut s = RootState::default();
    // Without spreading, best fit would put both first instances together.
    s.cluster_connected("big", "10.18.0.1".parse().expect("ip"), None, 0);
    s.apply_report("big", vec![worker("w1", 4096), worker("w2", 4096)], vec![], 0);
    s.cluster_connected("small", "10.18.0.65".parse().expect("ip"), None, 0);
    s.apply_report("small", vec![worker("w3", 16384)], vec![], 0);
    s.deploy(sla(3, 1024), 10);
    let sent = placed(&s.reconcile(10, T));
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_ne!(sent[0].0, sent[1].0, "the first two in different clusters: {sent:?}");
    let on = |c: &str| sent.iter().filter(|(cluster, _)| cluster == c).count();
    assert_eq!(on("big").abs_diff(on("small")), 1, "then the third where it fits best: {sent:?}");
}

