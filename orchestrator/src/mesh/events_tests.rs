#![allow(clippy::unwrap_used)]

use netmanager::api::types::{DownReason, Event, EventKind, MemberEntry, MemberState, RemovedReason};

use libp2p_identity::PeerId;

use super::*;

fn entry(name: &str, subnet: &str, state: MemberState) -> MemberEntry {
    MemberEntry {
        name: name.into(),
        peer_id: PeerId::random(),
        subnet: subnet.parse().unwrap(),
        state,
        endpoints: Vec::new(),
        location: None,
    }
}

fn snapshot(seq: u64, members: Vec<MemberEntry>) -> Event {
    Event { seq, kind: EventKind::Snapshot { local: entry("c1", "10.64.0.0/26", MemberState::Alive), members } }
}

fn down(seq: u64, name: &str, subnet: &str) -> Event {
    Event { seq, kind: EventKind::Down { member: entry(name, subnet, MemberState::Dead), reason: DownReason::Confirmed } }
}

#[test]
fn a_snapshot_then_events_keep_the_view_and_say_what_changed() {
    let mut t = Tracker::default();
    assert_eq!(t.take(snapshot(7, vec![entry("w1", "10.64.0.64/26", MemberState::Alive)])), Ok(Some(MeshEvent::Snapshot)));
    let view = t.view().unwrap();
    assert_eq!(view.local_name, "c1");
    assert_eq!(view.identify("10.64.0.70".parse().unwrap()).as_deref(), Some("w1"));
    let suspected = Event { seq: 8, kind: EventKind::Suspected { member: entry("w1", "10.64.0.64/26", MemberState::Suspect) } };
    assert_eq!(t.take(suspected), Ok(Some(MeshEvent::Member { name: "w1".into(), change: MemberChange::Suspected })));
    assert!(t.view().unwrap().is_up("w1"), "a suspect still counts as up");
    let event = t.take(down(9, "w1", "10.64.0.64/26")).unwrap().unwrap();
    assert_eq!(event, MeshEvent::Member { name: "w1".into(), change: MemberChange::Down(DownReason::Confirmed) });
    assert!(matches!(event, MeshEvent::Member { change, .. } if change.is_gone()));
    let view = t.view().unwrap();
    assert!(!view.is_up("w1") && view.holds_down("w1"));
    assert_eq!(view.identify("10.64.0.70".parse().unwrap()), None, "a dead member's address is no one's");
    let joined = Event { seq: 10, kind: EventKind::Joined { member: entry("w2", "10.64.0.128/26", MemberState::Alive) } };
    t.take(joined).unwrap();
    assert!(t.view().unwrap().is_up("w2"));
    let removed = Event { seq: 11, kind: EventKind::Removed { member: entry("w1", "10.64.0.64/26", MemberState::Dead), reason: RemovedReason::Pruned } };
    assert_eq!(t.take(removed), Ok(Some(MeshEvent::Member { name: "w1".into(), change: MemberChange::Removed(RemovedReason::Pruned) })));
    let view = t.view().unwrap();
    assert!(view.peer("w1").is_none() && !view.holds_down("w1"), "removed: unknown, not held down");
}

#[test]
fn gaps_are_caught_and_a_resync_waits_for_its_snapshot() {
    let mut t = Tracker::default();
    assert!(t.take(down(3, "w1", "10.64.0.64/26")).is_err(), "an event before any snapshot");
    t.take(snapshot(3, vec![entry("w1", "10.64.0.64/26", MemberState::Alive)])).unwrap();
    assert_eq!(t.take(down(5, "w1", "10.64.0.64/26")), Err(Gap { expected: 4, got: 5 }));
    // A resync is nothing by itself; the snapshot after it reconciles.
    assert_eq!(t.take(Event { seq: 40, kind: EventKind::Resync { missed: 30 } }), Ok(None));
    assert!(t.take(down(41, "w1", "10.64.0.64/26")).is_err(), "only the snapshot may follow a resync");
    assert_eq!(t.take(snapshot(40, vec![entry("w1", "10.64.0.64/26", MemberState::Dead)])), Ok(Some(MeshEvent::Snapshot)));
    assert!(t.view().unwrap().holds_down("w1"));
    // A new connection (netmanager restarted: seqs start again) starts from its snapshot.
    t.reconnected();
    assert!(t.take(down(41, "w1", "10.64.0.64/26")).is_err());
    t.take(snapshot(0, vec![])).unwrap();
    assert!(t.view().unwrap().peers.is_empty());
}

#[test]
fn rtts_survive_events_and_snapshots() {
    let mut t = Tracker::default();
    t.take(snapshot(1, vec![entry("w1", "10.64.0.64/26", MemberState::Alive)])).unwrap();
    let mut view = t.view().unwrap().clone();
    let mut polled = view.clone();
    polled.peers[0].rtt_ms = Some(4.5);
    view.copy_rtts(&polled);
    assert_eq!(view.peer("w1").unwrap().rtt_ms, Some(4.5));
    let updated = EventKind::Updated { member: entry("w1", "10.64.0.64/26", MemberState::Alive) };
    view.apply(&updated);
    assert_eq!(view.peer("w1").unwrap().rtt_ms, Some(4.5), "an event keeps what the stream does not carry");
    let again = MeshView::from_entries(&entry("c1", "10.64.0.0/26", MemberState::Alive), &[entry("w1", "10.64.0.64/26", MemberState::Alive)], Some(&view));
    assert_eq!(again.peer("w1").unwrap().rtt_ms, Some(4.5));
}
