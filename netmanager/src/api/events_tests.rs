//! `/v1/events` over a real unix socket and hyper, read by the client's
//! [`crate::api::watch`]: snapshot then events, a reader that falls behind,
//! the stream cap, the end when the control plane stops.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::Either;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use super::*;
use crate::api::watch::{watch, EventStream};
use crate::control::events::{ChangeKind, MemberChange, MemberEntry};
use crate::control::membership::DownReason;
use crate::control::view::MemberState;

use crate::control::testkit::member_entry as entry;

fn change(entry: &MemberEntry, state: MemberState, kind: ChangeKind) -> MemberChange {
    MemberChange::Entry { entry: MemberEntry { state, ..entry.clone() }, kind }
}

/// Serves `respond(feed)` on a fresh socket, as the API does.
fn serve(feed: FeedHub, slots: StreamSlots) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("grove-events-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("api.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (feed, slots) = (feed.clone(), slots.clone());
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let answer = match respond(feed.clone(), &slots) {
                        Ok(stream) => stream.map(Either::Right),
                        Err(e) => e.into_response().map(Either::Left),
                    };
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    path
}

async fn next(stream: &mut EventStream) -> Event {
    tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event in time").unwrap().expect("stream open")
}

fn hub_with(members: &[&MemberEntry], backlog: usize) -> FeedHub {
    let hub = FeedHub::new(backlog);
    hub.start(entry("me", MemberState::Alive));
    hub.publish(members.iter().map(|m| change(m, MemberState::Alive, ChangeKind::Joined)).collect());
    hub
}

#[tokio::test]
async fn a_stream_starts_with_the_snapshot_then_numbered_events() {
    let w1 = entry("w1", MemberState::Alive);
    let hub = hub_with(&[&w1], 64);
    let socket = serve(hub.clone(), StreamSlots::default());
    let mut stream = watch(&socket).await.unwrap();
    let snapshot = next(&mut stream).await;
    assert_eq!(snapshot.seq, 1);
    let EventKind::Snapshot { local, members } = snapshot.kind else { panic!("{snapshot:?}") };
    assert_eq!((local.name.as_str(), members.len(), members[0].name.as_str()), ("me", 1, "w1"));
    hub.publish(vec![change(&w1, MemberState::Suspect, ChangeKind::Suspected)]);
    hub.publish(vec![change(&w1, MemberState::Dead, ChangeKind::Down(DownReason::Confirmed))]);
    let suspected = next(&mut stream).await;
    let down = next(&mut stream).await;
    assert!(matches!(suspected, Event { seq: 2, kind: EventKind::Suspected { .. } }), "{suspected:?}");
    assert!(matches!(&down, Event { seq: 3, kind: EventKind::Down { member, reason: DownReason::Confirmed } } if member.name == "w1" && member.state == MemberState::Dead), "{down:?}");
    // The control plane stops: the stream ends.
    hub.stop();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn a_reader_that_falls_behind_gets_resync_and_a_fresh_snapshot() {
    let w1 = entry("w1", MemberState::Alive);
    let hub = hub_with(&[&w1], 4);
    let socket = serve(hub.clone(), StreamSlots::default());
    let mut stream = watch(&socket).await.unwrap();
    assert_eq!(next(&mut stream).await.seq, 1);
    // The reader is not reading; the control plane publishes on, unhindered.
    for i in 0..100 {
        let (state, kind) = if i % 2 == 0 { (MemberState::Suspect, ChangeKind::Suspected) } else { (MemberState::Alive, ChangeKind::Up) };
        hub.publish(vec![change(&w1, state, kind)]);
    }
    let resync = next(&mut stream).await;
    assert_eq!(resync, Event { seq: 101, kind: EventKind::Resync { missed: 96 } });
    let fresh = next(&mut stream).await;
    assert!(matches!(&fresh, Event { seq: 101, kind: EventKind::Snapshot { members, .. } } if members[0].state == MemberState::Alive), "{fresh:?}");
    hub.publish(vec![change(&w1, MemberState::Left, ChangeKind::Left)]);
    assert!(matches!(next(&mut stream).await, Event { seq: 102, kind: EventKind::Left { .. } }));
}

#[tokio::test]
async fn streams_are_capped_and_a_closed_one_frees_its_slot() {
    let hub = hub_with(&[], 16);
    let socket = serve(hub.clone(), StreamSlots::new(1));
    let mut first = watch(&socket).await.unwrap();
    next(&mut first).await;
    let refused = watch(&socket).await.err().expect("a second stream is refused");
    assert!(refused.to_string().contains("HTTP 503") && refused.to_string().contains("event streams are open"), "{refused}");
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(stream) = watch(&socket).await {
            reopened = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut second = reopened.expect("the closed stream's slot is free again, without any event");
    assert!(matches!(next(&mut second).await.kind, EventKind::Snapshot { .. }));
}

#[tokio::test]
async fn no_stream_before_the_control_plane_runs() {
    let socket = serve(FeedHub::new(16), StreamSlots::default());
    let refused = watch(&socket).await.err().expect("refused");
    assert!(refused.to_string().contains("HTTP 503"), "{refused}");
}
