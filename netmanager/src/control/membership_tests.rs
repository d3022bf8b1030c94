//! Membership rules: verification, replay, ownership, liveness, bounds.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use super::*;
use libp2p_identity::Keypair;
use crate::control::testkit::{host, instances, leave, spec, suspicion, Kit};

#[test]
fn records_are_verified_versioned_and_replays_change_nothing() {
    let mut kit = Kit::new();
    let (me, a) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    assert_eq!(m.apply_node(&kit.record(&a, 5), now).unwrap(), vec![Change::Joined(a.peer)]);
    assert!(matches!(m.apply_node(&kit.record(&a, 5), now), Err(Rejection::Duplicate)));
    assert!(matches!(m.apply_node(&kit.record(&a, 4), now), Err(Rejection::Stale { .. })));
    assert_eq!(m.apply_node(&kit.record(&a, 6), now).unwrap(), vec![Change::Updated(a.peer)]);
    // The same record re-signed by another key: its grant is not for that key.
    let grant_for_a = kit.record(&a, 7);
    let resigned: Signed<NodeRecord> = {
        let value = grant_for_a.verify().unwrap().value;
        Signed::sign(&value, &Keypair::generate_ed25519()).unwrap()
    };
    assert!(matches!(m.apply_node(&resigned, now), Err(Rejection::Grant(_))), "a grant for someone else");
}

/// F4, F5: names, keys and subnets are the grant's; a second holder under
/// an earlier grant is dropped, one under a later grant wins.
#[test]
fn names_keys_and_subnets_follow_the_latest_grant() {
    let mut kit = Kit::new();
    let (me, old) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&old, 1), now).unwrap();
    let mut new = kit.node();
    new.name = old.name.clone();
    let changes = m.apply_node(&kit.record(&new, 1), now).unwrap();
    assert_eq!(changes, vec![Change::Removed(old.peer, RemovedReason::Superseded), Change::Joined(new.peer)], "the later grant of the name wins");
    // The old holder's refutation cannot take the name back.
    assert!(matches!(m.apply_node(&kit.record(&old, 2), now), Err(Rejection::Conflict { what: "the name", .. })));
    let mut clone = kit.node();
    clone.wg = new.wg;
    clone.serial = 0;
    assert!(matches!(m.apply_node(&kit.record(&clone, 1), now), Err(Rejection::Conflict { what: "the tunnel key", .. })), "a cloned key never displaces the holder");
}

/// F15: advertised addresses must be unicast and outside the mesh.
#[test]
fn advertised_addresses_are_validated() {
    let mut kit = Kit::new();
    let (me, a) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    for bad in ["127.0.0.1:22", "224.0.0.1:1", "0.0.0.0:50103", "169.254.1.1:50103", "10.18.0.5:50103", "198.18.0.2:0", "[::1]:50103"] {
        let record = kit.record_with(&a, 1, bad.parse().unwrap());
        assert!(matches!(m.apply_node(&record, Instant::now()), Err(Rejection::Invalid(_))), "{bad}");
    }
    assert!(m.apply_node(&kit.record_with(&a, 1, "192.168.1.20:50103".parse().unwrap()), Instant::now()).is_ok());
}

#[test]
fn instances_must_lie_in_the_subnet_be_distinct_and_addressed() {
    let mut kit = Kit::new();
    let (me, a) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    // Before the record: held, applied when it arrives.
    assert!(matches!(m.apply_instances(&instances(&a, 1, vec![spec("ms2", 1, host(&a, 2))]), now), Err(Rejection::Held)));
    let changes = m.apply_node(&kit.record(&a, 1), now).unwrap();
    assert_eq!(changes, vec![Change::Joined(a.peer), Change::Instances(a.peer)]);
    for (bad, why) in [
        (vec![spec("ms2", 1, "10.99.0.1".parse().unwrap())], "outside"),
        (vec![spec("ms2", 1, a.subnet.broadcast())], "broadcast"),
        (vec![spec("ms2", 1, host(&a, 2)), spec("ms2", 1, host(&a, 3))], "twice"),
        (vec![dns::InstanceSpec::new(dns::InstanceKey::new("ms2", "cam", "default", 9).unwrap())], "no address"),
    ] {
        assert!(m.apply_instances(&instances(&a, 5, bad), now).is_err(), "{why}");
    }
}

/// F7: one member's records and instance sets are rate-limited.
#[test]
fn a_member_looping_new_versions_is_rate_limited() {
    let mut kit = Kit::new();
    let (me, a) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&a, 1), now).unwrap();
    let accepted = (2..200).filter(|v| m.apply_node(&kit.record(&a, *v), now).is_ok()).count();
    assert!(accepted <= 10, "{accepted} records accepted at once");
    assert!(m.apply_node(&kit.record(&a, 500), now + Duration::from_secs(2)).is_ok(), "the budget refills");
}

/// F3: suspicions count only from watchers, at the current version, and
/// two of them kill.
#[test]
fn suspicions_need_watchers_and_two_kill() {
    let mut kit = Kit::new();
    let nodes: Vec<_> = (0..8).map(|_| kit.node()).collect();
    let me = &nodes[0];
    let mut m = kit.membership(me);
    let now = Instant::now();
    for n in &nodes {
        m.apply_node(&kit.record(n, 1), now).unwrap();
    }
    let target = &nodes[4];
    let watchers = m.watchers_of(&target.peer, WATCHERS);
    let outsiders: Vec<_> = nodes.iter().filter(|n| n.peer != target.peer && n.peer != me.peer && !m.watchers_of(&target.peer, WATCHERS + 2).contains(&n.peer)).collect();
    if let Some(outsider) = outsiders.first() {
        assert!(matches!(m.apply_suspicion(&suspicion(outsider, target, 1), now), Err(Rejection::NotWatcher(_))));
    }
    let w: Vec<_> = nodes.iter().filter(|n| watchers.contains(&n.peer) && n.peer != me.peer).collect();
    assert!(matches!(m.apply_suspicion(&suspicion(w[0], target, 0), now), Err(Rejection::Stale { .. })), "an old incarnation");
    assert_eq!(m.apply_suspicion(&suspicion(w[0], target, 1), now).unwrap(), vec![Change::Suspected(target.peer)]);
    assert!(matches!(m.apply_suspicion(&suspicion(w[0], target, 1), now), Err(Rejection::Duplicate)));
    assert_eq!(m.apply_suspicion(&suspicion(w[1], target, 1), now).unwrap(), vec![Change::Died(target.peer, DownReason::Confirmed)]);
    // A refutation (newer record) revives.
    assert_eq!(m.apply_node(&kit.record(target, 2), now).unwrap(), vec![Change::Revived(target.peer)]);
    // A watcher's suspicion of ourselves is refuted, within its budget;
    // anyone else's is not worth a new record.
    let my_watchers = m.watchers_of(&me.peer, WATCHERS + 2);
    let mine = nodes.iter().find(|n| my_watchers.contains(&n.peer)).expect("a watcher of ours");
    let later = now + Duration::from_secs(60);
    for _ in 0..3 {
        assert_eq!(m.apply_suspicion(&suspicion(mine, me, 1), later).unwrap(), vec![Change::Refute { version: 1 }]);
    }
    assert!(m.apply_suspicion(&suspicion(mine, me, 1), later).is_err(), "past its budget a watcher's accusations are not refuted");
    if let Some(other) = nodes.iter().find(|n| n.peer != me.peer && !my_watchers.contains(&n.peer)) {
        assert!(matches!(m.apply_suspicion(&suspicion(other, me, 1), later), Err(Rejection::NotWatcher(_))));
    }
    let stranger = kit.node();
    assert!(matches!(m.apply_suspicion(&suspicion(&stranger, me, 1), now), Err(Rejection::NotMember(_))));
}

#[test]
fn suspicions_time_out_into_deaths_and_the_long_gone_are_pruned() {
    let mut kit = Kit::new();
    let (me, a, b) = (kit.node(), kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    for n in [&me, &a, &b] {
        m.apply_node(&kit.record(n, 1), now).unwrap();
    }
    m.apply_suspicion(&suspicion(&me, &a, 1), now).unwrap();
    assert_eq!(m.tick(now + SUSPECT_TIMEOUT), vec![Change::Died(a.peer, DownReason::Unrefuted)]);
    assert_eq!(m.apply_leave(&leave(&b, 1), now).unwrap(), vec![Change::Left(b.peer)]);
    assert!(matches!(m.apply_leave(&leave(&b, 0), now), Err(Rejection::Stale { .. })));
    let later = now + SUSPECT_TIMEOUT + PRUNE_AFTER;
    let removed = m.tick(later);
    assert!(removed.contains(&Change::Removed(a.peer, RemovedReason::Pruned)) && removed.contains(&Change::Removed(b.peer, RemovedReason::Pruned)), "{removed:?}");
    assert!(matches!(m.apply_node(&kit.record(&a, 1), later), Err(Rejection::Stale { .. })), "the tombstone stops a replay");
    assert!(m.apply_node(&kit.record(&a, 2), later).is_ok(), "a newer record is a comeback");
}

#[test]
fn revocations_come_from_the_authority_only() {
    let mut kit = Kit::new();
    let (me, a) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&a, 1), now).unwrap();
    let revocation = crate::control::wire::records::Revocation { node: a.peer.to_bytes(), serial: a.serial };
    let forged = Signed::sign(&revocation, &a.key).unwrap();
    assert!(m.apply_revocation(&forged, now).is_err());
    let signed = Signed::sign(&revocation, &kit.authority).unwrap();
    assert_eq!(m.apply_revocation(&signed, now).unwrap(), vec![Change::Removed(a.peer, RemovedReason::Revoked)]);
    assert!(matches!(m.apply_node(&kit.record(&a, 2), now), Err(Rejection::Revoked)));
}

/// F9 at the membership: a grant outside the address plan is refused
/// before any route could follow from it.
#[test]
fn grants_outside_the_plan_are_refused() {
    let mut kit = Kit::new();
    let (me, mut a) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    a.subnet = "0.0.0.0/1".parse().unwrap();
    let err = m.apply_node(&kit.record(&a, 1), Instant::now());
    assert!(matches!(err, Err(Rejection::Grant(AdmissionError::GrantShape { .. }))), "{err:?}");
}

#[test]
fn held_sets_and_tables_stay_bounded() {
    let mut kit = Kit::new();
    let me = kit.node();
    let mut m = kit.membership(&me);
    let now = Instant::now();
    for _ in 0..500 {
        let n = kit.node();
        let _ = m.apply_instances(&instances(&n, 1, vec![spec("ms2", 1, host(&n, 2))]), now);
    }
    let (_, pending, _, _) = m.table_sizes();
    assert!(pending <= 64, "{pending} held sets");
    m.tick(now + Duration::from_secs(61));
    assert_eq!(m.table_sizes().1, 0, "held sets expire");
}

/// Root → cluster → node: a grant a cluster signed is believed only with
/// the authority's delegation to that cluster, for a subnet of its block.
#[test]
fn a_delegated_grant_needs_the_whole_chain() {
    let mut kit = Kit::new();
    let (me, cluster, node, other) = (kit.node(), kit.node(), kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&cluster, 1), now).unwrap();
    let delegation = kit.delegation(&cluster, "10.18.128.0/22", 50);
    let good = kit.delegated_record(&node, "10.18.128.64/26", &cluster, Some(delegation.clone()), 1);
    assert_eq!(m.apply_node(&good, now).unwrap(), vec![Change::Joined(node.peer)]);
    assert_eq!(m.get(&node.peer).unwrap().grant.issuer, cluster.peer);

    let fresh = kit.node();
    let cases = [
        ("no delegation beside the grant", kit.delegated_record(&fresh, "10.18.128.128/26", &cluster, None, 1)),
        ("a delegation to another cluster", kit.delegated_record(&fresh, "10.18.128.128/26", &other, Some(delegation.clone()), 1)),
        ("a subnet outside the block", kit.delegated_record(&fresh, "10.18.200.0/26", &cluster, Some(delegation.clone()), 1)),
        (
            "a delegation the cluster signed itself",
            kit.delegated_record(&fresh, "10.18.128.128/26", &cluster, Some(Signed::sign(&delegation.verify().unwrap().value, &cluster.key).unwrap()), 1),
        ),
        (
            "a block that is the whole pool's parent",
            kit.delegated_record(&fresh, "10.18.128.128/26", &cluster, Some(kit.delegation(&cluster, "10.0.0.0/8", 51)), 1),
        ),
    ];
    for (what, record) in cases {
        assert!(matches!(m.apply_node(&record, now), Err(Rejection::Grant(_))), "{what}");
        assert!(m.get(&fresh.peer).is_none(), "{what}");
    }
}

/// A cluster revokes only what it granted; the authority removing the
/// cluster takes the nodes it admitted along, and keeps them out.
#[test]
fn revocations_follow_the_issuer() {
    let mut kit = Kit::new();
    let (me, cluster, node, rooted) = (kit.node(), kit.node(), kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&cluster, 1), now).unwrap();
    m.apply_node(&kit.record(&rooted, 1), now).unwrap();
    let delegation = kit.delegation(&cluster, "10.18.128.0/22", 50);
    let record = kit.delegated_record(&node, "10.18.128.64/26", &cluster, Some(delegation.clone()), 1);
    m.apply_node(&record, now).unwrap();

    // The cluster cannot remove a member the authority admitted.
    assert!(matches!(m.apply_revocation(&Kit::revocation_by(&cluster.key, &rooted, rooted.serial), now), Err(Rejection::Grant(_))));
    assert!(m.get(&rooted.peer).is_some());
    // It can remove its own.
    assert_eq!(m.apply_revocation(&Kit::revocation_by(&cluster.key, &node, node.serial), now).unwrap(), vec![Change::Removed(node.peer, RemovedReason::Revoked)]);
    assert!(matches!(m.apply_node(&kit.delegated_record(&node, "10.18.128.64/26", &cluster, Some(delegation.clone()), 2), now), Err(Rejection::Revoked)));

    // Another node of the cluster; then the authority removes the cluster.
    let second = kit.node();
    m.apply_node(&kit.delegated_record(&second, "10.18.128.128/26", &cluster, Some(delegation.clone()), 1), now).unwrap();
    let changes = m.apply_revocation(&Kit::revocation_by(&kit.authority, &cluster, cluster.serial), now).unwrap();
    assert!(changes.contains(&Change::Removed(cluster.peer, RemovedReason::Revoked)) && changes.contains(&Change::Removed(second.peer, RemovedReason::Revoked)), "{changes:?}");
    let again = kit.delegated_record(&second, "10.18.128.128/26", &cluster, Some(delegation), 2);
    assert!(matches!(m.apply_node(&again, now), Err(Rejection::Revoked)), "a removed cluster's grants stay void");
}

/// Across issuers serials mean nothing: the authority's grant of a name
/// beats a cluster's; between clusters the holder keeps it.
#[test]
fn the_authority_wins_a_name_over_a_delegate() {
    let mut kit = Kit::new();
    let (me, c1, c2) = (kit.node(), kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&c1, 1), now).unwrap();
    m.apply_node(&kit.record(&c2, 1), now).unwrap();
    let mut squatter = kit.node();
    squatter.name = "web-1".into();
    squatter.serial = 1_000_000;
    let d1 = kit.delegation(&c1, "10.18.128.0/22", 50);
    m.apply_node(&kit.delegated_record(&squatter, "10.18.128.64/26", &c1, Some(d1), 1), now).unwrap();
    let mut rival = kit.node();
    rival.name = "web-1".into();
    let d2 = kit.delegation(&c2, "10.18.132.0/22", 51);
    let rival_record = kit.delegated_record(&rival, "10.18.132.64/26", &c2, Some(d2), 1);
    assert!(matches!(m.apply_node(&rival_record, now), Err(Rejection::Conflict { .. })), "between delegates the holder keeps the name");
    let mut owner = kit.node();
    owner.name = "web-1".into();
    let changes = m.apply_node(&kit.record(&owner, 1), now).unwrap();
    assert_eq!(changes, vec![Change::Removed(squatter.peer, RemovedReason::Superseded), Change::Joined(owner.peer)], "the authority's grant wins despite a lower serial");
}

/// Instance sets are whole state, so one over a member's budget must be
/// late, never lost: gossipsub will not deliver the same message again
/// (its duplicate cache holds the id) and the member may publish nothing
/// more for minutes. The newest is kept and applied when the budget
/// refills; a looping member still gets no more than its budget.
#[test]
fn a_set_over_the_budget_is_applied_when_the_budget_refills() {
    let mut kit = Kit::new();
    let (me, a) = (kit.node(), kit.node());
    let mut m = kit.membership(&me);
    let now = Instant::now();
    m.apply_node(&kit.record(&a, 1), now).unwrap();
    let held = |m: &Membership| m.get(&a.peer).and_then(|x| x.instances.as_ref()).map(|(_, s)| s.version);
    let applied = (1..=100).filter(|v| m.apply_instances(&instances(&a, *v, vec![spec("web", *v as u32, host(&a, 2))]), now).is_ok()).count();
    assert!(applied <= 20, "{applied} sets applied at once");
    assert!(held(&m) < Some(100), "the last one is over the budget");
    assert_eq!(m.tick(now + Duration::from_millis(500)), vec![Change::Instances(a.peer)], "applied once the budget refills");
    assert_eq!(held(&m), Some(100), "the newest set, not one in between");
    assert!(m.tick(now + Duration::from_secs(1)).is_empty(), "applied once");
}
