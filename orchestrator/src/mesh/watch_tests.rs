//! The watch against a fake netmanager that writes canned streams: it
//! starts from the snapshot, follows events, and reconnects (to a fresh
//! snapshot) when the stream ends, breaks its numbering, or netmanager is
//! not there yet.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use netmanager::api::types::{DownReason, Event, EventKind, MemberEntry, MemberState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::*;
use crate::mesh::events::MemberChange;

fn entry(name: &str, subnet: &str, state: MemberState) -> MemberEntry {
    MemberEntry { name: name.into(), peer_id: libp2p_identity::PeerId::random(), subnet: subnet.parse().unwrap(), state, endpoints: Vec::new(), location: None }
}

fn line(event: Event) -> String {
    serde_json::to_string(&event).unwrap() + "\n"
}

fn snapshot(seq: u64, members: Vec<MemberEntry>) -> String {
    line(Event { seq, kind: EventKind::Snapshot { local: entry("c1", "10.64.0.0/26", MemberState::Alive), members } })
}

fn socket_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("grove-watch-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("api.sock")
}

/// Answers one connection per entry of `streams`: the lines as chunks, then closes.
fn fake_netmanager(path: PathBuf, streams: Vec<Vec<String>>) {
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        for lines in streams {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            let mut out = String::from("HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n");
            for l in lines {
                out += &format!("{:x}\r\n{l}\r\n", l.len());
            }
            out += "0\r\n\r\n";
            stream.write_all(out.as_bytes()).await.unwrap();
        }
        // Keep the last listener open and silent.
        let _kept = listener.accept().await;
        std::future::pending::<()>().await;
    });
}

async fn next(watch: &mut MemberWatch) -> MeshEvent {
    tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("an event in time")
}

#[tokio::test]
async fn follows_events_and_reconciles_from_a_fresh_snapshot_after_each_reconnect() {
    let path = socket_path("reconnect");
    let w1 = entry("w1", "10.64.0.64/26", MemberState::Alive);
    let dead = MemberEntry { state: MemberState::Dead, ..w1.clone() };
    let down = |seq| line(Event { seq, kind: EventKind::Down { member: dead.clone(), reason: DownReason::Confirmed } });
    fake_netmanager(
        path.clone(),
        vec![
            // Snapshot, one event, then netmanager goes away.
            vec![snapshot(5, vec![w1.clone()]), down(6)],
            // It is back (seqs start again) but the numbering breaks.
            vec![snapshot(0, vec![w1.clone()]), down(2)],
            // A clean stream holding w1 dead.
            vec![snapshot(0, vec![dead.clone()])],
        ],
    );
    let mut watch = MemberWatch::new(path);
    assert_eq!(next(&mut watch).await, MeshEvent::Snapshot);
    assert!(watch.view().unwrap().is_up("w1"));
    assert_eq!(next(&mut watch).await, MeshEvent::Member { name: "w1".into(), change: MemberChange::Down(DownReason::Confirmed) });
    assert!(watch.view().unwrap().holds_down("w1"));
    // Reconnected: a snapshot again (w1 up in it), then the gap makes it reconnect once more.
    assert_eq!(next(&mut watch).await, MeshEvent::Snapshot);
    assert!(watch.view().unwrap().is_up("w1"));
    assert_eq!(next(&mut watch).await, MeshEvent::Snapshot, "the event after the gap is not believed");
    assert!(watch.view().unwrap().holds_down("w1"));
}

#[tokio::test]
async fn waits_for_a_netmanager_that_is_not_there_yet() {
    let path = socket_path("late");
    let mut watch = MemberWatch::new(path.clone());
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        fake_netmanager(path, vec![vec![snapshot(0, vec![])]]);
    });
    assert_eq!(next(&mut watch).await, MeshEvent::Snapshot);
    assert!(watch.view().unwrap().peers.is_empty());
    late.await.unwrap();
}
