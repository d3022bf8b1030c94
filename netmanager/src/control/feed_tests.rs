//! The feed: numbering, what is (not) an event, snapshots, lagging readers,
//! the JSON readers parse.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::control::membership::{DownReason, RemovedReason};

use crate::control::testkit::member_entry as entry;

fn with(e: &MemberEntry, state: MemberState) -> MemberEntry {
    MemberEntry { state, ..e.clone() }
}

fn change(entry: &MemberEntry, kind: ChangeKind) -> MemberChange {
    MemberChange::Entry { entry: entry.clone(), kind }
}

#[test]
fn a_members_life_is_numbered_in_order_and_reasons_travel() {
    let mut feed = Feed::new(entry("me", MemberState::Alive));
    let w = entry("w1", MemberState::Alive);
    let life = [
        change(&w, ChangeKind::Joined),
        change(&with(&w, MemberState::Suspect), ChangeKind::Suspected),
        change(&with(&w, MemberState::Dead), ChangeKind::Down(DownReason::Confirmed)),
        change(&w, ChangeKind::Up),
        change(&with(&w, MemberState::Left), ChangeKind::Left),
        MemberChange::Removed { peer: w.peer_id, reason: RemovedReason::Pruned },
    ];
    let events: Vec<Event> = life.into_iter().filter_map(|c| feed.apply(c)).collect();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    assert!(matches!(&events[0].kind, EventKind::Joined { member } if member.name == "w1"));
    assert!(matches!(&events[1].kind, EventKind::Suspected { member } if member.state == MemberState::Suspect));
    assert!(matches!(&events[2].kind, EventKind::Down { reason: DownReason::Confirmed, member } if member.state == MemberState::Dead));
    assert!(matches!(&events[3].kind, EventKind::Up { .. }));
    assert!(matches!(&events[4].kind, EventKind::Left { .. }));
    // The removal names the member by its last entry, though the node no longer holds it.
    assert!(matches!(&events[5].kind, EventKind::Removed { member, reason: RemovedReason::Pruned } if member.name == "w1" && member.state == MemberState::Left));
    assert_eq!(feed.seq(), 6);
    assert!(matches!(feed.snapshot().kind, EventKind::Snapshot { members, .. } if members.is_empty()));
}

#[test]
fn re_signed_records_are_no_event_but_a_move_is_and_the_local_node_is_not_a_member() {
    let local = entry("me", MemberState::Alive);
    let mut feed = Feed::new(local.clone());
    assert_eq!(feed.apply(change(&local, ChangeKind::Joined)), None, "the local node is the snapshot's `local`");
    let w = entry("w1", MemberState::Alive);
    assert!(feed.apply(change(&w, ChangeKind::Joined)).is_some());
    assert_eq!(feed.apply(change(&w, ChangeKind::Updated)), None, "a fresh coordinate moves nothing");
    let moved = MemberEntry { endpoints: vec!["198.51.100.3:50103".parse().unwrap()], ..w.clone() };
    let event = feed.apply(change(&moved, ChangeKind::Updated)).unwrap();
    assert!(matches!(&event.kind, EventKind::Updated { member } if member.endpoints == moved.endpoints));
    assert_eq!(event.seq, 2, "only events are counted");
    // Removing what the feed never held tells nobody anything.
    assert_eq!(feed.apply(MemberChange::Removed { peer: PeerId::random(), reason: RemovedReason::Revoked }), None);
    // An update of a member the feed did not hold introduces it.
    let x = entry("x", MemberState::Alive);
    assert!(matches!(feed.apply(change(&x, ChangeKind::Updated)).unwrap().kind, EventKind::Joined { .. }));
    let EventKind::Snapshot { local: shown, members } = feed.snapshot().kind else { panic!() };
    assert_eq!(shown, local);
    assert_eq!(members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), vec!["w1", "x"]);
}

#[test]
fn a_subscriber_gets_a_snapshot_then_exactly_the_later_events() {
    let hub = FeedHub::new(16);
    assert!(hub.subscribe().is_none(), "nothing to read before the control plane runs");
    hub.start(entry("me", MemberState::Alive));
    let a = entry("a", MemberState::Alive);
    hub.publish(vec![change(&a, ChangeKind::Joined)]);
    let mut sub = hub.subscribe().unwrap();
    assert_eq!(sub.snapshot.seq, 1);
    assert!(matches!(&sub.snapshot.kind, EventKind::Snapshot { members, .. } if members.len() == 1));
    hub.publish(vec![change(&with(&a, MemberState::Dead), ChangeKind::Down(DownReason::Unrefuted))]);
    let next = sub.events.try_recv().unwrap();
    assert_eq!(next.seq, 2);
    assert!(sub.events.try_recv().is_err(), "nothing before the snapshot is replayed");
    hub.stop();
    assert!(matches!(sub.events.try_recv(), Err(broadcast::error::TryRecvError::Closed)));
    assert!(hub.subscribe().is_none());
}

#[test]
fn a_reader_that_falls_behind_is_told_and_publishing_never_waits() {
    let hub = FeedHub::new(4);
    hub.start(entry("me", MemberState::Alive));
    let mut sub = hub.subscribe().unwrap();
    let a = entry("a", MemberState::Alive);
    hub.publish(vec![change(&a, ChangeKind::Joined)]);
    for i in 0..50 {
        let state = if i % 2 == 0 { MemberState::Suspect } else { MemberState::Alive };
        let kind = if i % 2 == 0 { ChangeKind::Suspected } else { ChangeKind::Up };
        hub.publish(vec![change(&with(&a, state), kind)]);
    }
    match sub.events.try_recv() {
        Err(broadcast::error::TryRecvError::Lagged(missed)) => assert_eq!(missed, 47),
        other => panic!("expected a lag, got {other:?}"),
    }
    // What is left is the newest few, still in order.
    let rest: Vec<u64> = std::iter::from_fn(|| sub.events.try_recv().ok()).map(|e| e.seq).collect();
    assert_eq!(rest, vec![48, 49, 50, 51]);
}

#[test]
fn events_are_json_lines_readers_can_parse() {
    let mut feed = Feed::new(entry("me", MemberState::Alive));
    let w = entry("w1", MemberState::Alive);
    feed.apply(change(&w, ChangeKind::Joined));
    let down = feed.apply(change(&with(&w, MemberState::Dead), ChangeKind::Down(DownReason::Confirmed))).unwrap();
    let json = serde_json::to_value(&down).unwrap();
    assert_eq!(json["seq"], 2);
    assert_eq!(json["type"], "down");
    assert_eq!(json["reason"], "confirmed");
    assert_eq!(json["member"]["name"], "w1");
    assert_eq!(json["member"]["state"], "dead");
    assert_eq!(json["member"]["subnet"], "10.64.0.64/26");
    let back: Event = serde_json::from_value(json).unwrap();
    assert_eq!(back, down);
    let snapshot = serde_json::to_value(feed.snapshot()).unwrap();
    assert_eq!((snapshot["type"].as_str(), snapshot["seq"].as_u64()), (Some("snapshot"), Some(2)));
    assert_eq!(snapshot["local"]["name"], "me");
    let resync: Event = serde_json::from_str(r#"{"seq":9,"type":"resync","missed":3}"#).unwrap();
    assert_eq!(resync.kind, EventKind::Resync { missed: 3 });
}
