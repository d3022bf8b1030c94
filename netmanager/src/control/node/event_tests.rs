//! The membership events nodes emit, through the harness: what a reader of
//! `/v1/events` learns when a member dies, leaves or is revoked, and that
//! the events add up to what the node's own view says.

use std::time::Duration;

use super::harness::Harness;
use super::*;
use crate::control::events::{Event, EventKind};
use crate::control::membership::{DownReason, RemovedReason};
use crate::control::view::MemberState;
use crate::control::wire::records::Gossip;

fn mesh(n: usize) -> Harness {
    let mut h = Harness::new(n);
    h.connect_all();
    assert!(h.until(Duration::from_secs(5), Harness::converged).is_some(), "{n} nodes did not converge");
    h
}

/// Events node `observer` emitted about node `subject`, from `from` on.
fn about(h: &Harness, observer: usize, subject: usize, from: usize) -> Vec<Event> {
    let peer = h.nodes[subject].peer;
    h.nodes[observer].events[from..].iter().filter(|e| e.kind.member().is_some_and(|m| m.peer_id == peer)).cloned().collect()
}

/// The feed's snapshot holds every member in the state the view shows.
fn feed_matches_view(h: &Harness, i: usize) {
    let Some(node) = h.nodes[i].node.as_ref() else { return };
    let view: Vec<(String, MemberState)> = node.view(h.now).members.into_iter().map(|m| (m.name, m.state)).collect();
    let EventKind::Snapshot { local, members } = h.nodes[i].feed.snapshot().kind else { panic!("not a snapshot") };
    let fed: Vec<(String, MemberState)> = members.into_iter().map(|m| (m.name, m.state)).collect();
    assert_eq!(fed, view, "node {i}: the events do not add up to the view");
    assert_eq!(local.peer_id, h.nodes[i].peer);
}

#[test]
fn a_crash_reaches_every_reader_as_down_with_the_detectors_reason() {
    let mut h = mesh(5);
    let joined = about(&h, 0, 3, 0);
    assert!(matches!(joined.first().map(|e| &e.kind), Some(EventKind::Joined { member }) if member.name == "n3"), "{joined:?}");
    let marks: Vec<usize> = (0..5).map(|i| h.nodes[i].events.len()).collect();
    h.crash(3);
    assert!(h.until(Duration::from_secs(5), |h| h.all_see(3, MemberState::Dead)).is_some(), "declared dead");
    for i in [0, 1, 2, 4] {
        let events = about(&h, i, 3, marks[i]);
        let down: Vec<&Event> = events.iter().filter(|e| matches!(e.kind, EventKind::Down { .. })).collect();
        assert_eq!(down.len(), 1, "node {i}: {events:?}");
        assert!(matches!(&down[0].kind, EventKind::Down { member, reason: DownReason::Confirmed } if member.state == MemberState::Dead), "{down:?}");
        let seqs: Vec<u64> = h.nodes[i].events.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "node {i}: seqs not consecutive: {seqs:?}");
        feed_matches_view(&h, i);
    }
}

#[test]
fn a_leave_is_left_without_suspicion_and_a_revocation_is_removed() {
    let mut h = mesh(4);
    let marks: Vec<usize> = (0..4).map(|i| h.nodes[i].events.len()).collect();
    h.command(2, Command::Leave);
    assert!(h.until(Duration::from_secs(1), |h| h.all_see(2, MemberState::Left)).is_some());
    h.crash(2);
    h.run(Duration::from_secs(5));
    for i in [0, 1, 3] {
        let kinds: Vec<&'static str> = about(&h, i, 2, marks[i]).iter().map(|e| kind(&e.kind)).collect();
        assert_eq!(kinds, ["left"], "node {i}");
    }
    let (_, revocation) = h.authority.revoke("n3").expect("revoke");
    h.command(0, Command::Publish(Gossip::Revoke(revocation)));
    assert!(h.until(Duration::from_secs(1), |h| (0..2).all(|i| h.state_of(i, 3).is_none())).is_some(), "removed");
    for i in [0, 1] {
        let last = about(&h, i, 3, 0).pop().expect("events about n3");
        assert!(matches!(&last.kind, EventKind::Removed { member, reason: RemovedReason::Revoked } if member.name == "n3"), "node {i}: {last:?}");
        feed_matches_view(&h, i);
    }
}

#[test]
fn a_healthy_mesh_stays_quiet() {
    let mut h = mesh(4);
    let marks: Vec<usize> = (0..4).map(|i| h.nodes[i].events.len()).collect();
    // Records are re-signed with fresh coordinates meanwhile: no events.
    h.run(Duration::from_secs(400));
    for i in 0..4 {
        assert_eq!(h.nodes[i].events.len(), marks[i], "node {i}: {:?}", &h.nodes[i].events[marks[i]..]);
        feed_matches_view(&h, i);
    }
}

fn kind(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Snapshot { .. } => "snapshot",
        EventKind::Joined { .. } => "joined",
        EventKind::Up { .. } => "up",
        EventKind::Suspected { .. } => "suspected",
        EventKind::Down { .. } => "down",
        EventKind::Left { .. } => "left",
        EventKind::Removed { .. } => "removed",
        EventKind::Updated { .. } => "updated",
        EventKind::Resync { .. } => "resync",
    }
}
