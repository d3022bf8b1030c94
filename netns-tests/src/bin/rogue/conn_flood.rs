//! `rogue conn-flood`: many TCP connections to a member's control port
//! that never start a handshake, held open, then real libp2p connections
//! with fresh identities (F8). The member must cap what one address holds
//! ([`netmanager::control::gate::PER_IP`]), close handshakes that never
//! come and strangers that never prove membership, and stay responsive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p_identity::Keypair;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::peer::{Peer, Policy};

pub struct ConnFloodArgs {
    pub dial: SocketAddr,
    pub n: usize,
    pub libp2p: usize,
    pub hold: Duration,
}

/// When each raw connection was closed by the member (ms after it opened).
type Closures = Arc<Mutex<Vec<u64>>>;

async fn raw_connections(dial: SocketAddr, n: usize, closures: &Closures) -> (Vec<OwnedWriteHalf>, usize) {
    let mut open = Vec::new();
    let mut refused = 0usize;
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(dial)).await {
            Ok(Ok(stream)) => open.push(stream),
            _ => refused += 1,
        }
    }
    let mut held = Vec::new();
    for stream in open {
        let closures = closures.clone();
        let (mut read, write) = stream.into_split();
        let opened = Instant::now();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        closures.lock().push(opened.elapsed().as_millis() as u64);
                        return;
                    }
                    Ok(_) => {}
                }
            }
        });
        // Keep the write half: dropping it would send our FIN.
        held.push(write);
    }
    (held, refused)
}

/// `n` fresh identities dial at once and hold until `until`; what became of them.
async fn wave(dial: SocketAddr, n: usize, until: Instant) -> anyhow::Result<Value> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(tokio::spawn(async move {
            let mut peer = Peer::new(Keypair::generate_ed25519(), Policy::stranger())?;
            let opened = Instant::now();
            let result = peer.connect(dial, Duration::from_secs(5)).await;
            let Ok(member) = result else { return anyhow::Ok(None) };
            let gone = peer
                .wait_for(until.saturating_duration_since(Instant::now()), |me| {
                    (!me.connected.contains_key(&member)).then_some(())
                })
                .await;
            anyhow::Ok(Some(gone.map(|()| opened.elapsed().as_millis() as u64)))
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.map_err(|e| anyhow::anyhow!("task: {e}"))??);
    }
    let established = outcomes.iter().filter(|o| o.is_some()).count();
    let closes: Vec<u64> = outcomes.iter().flatten().flatten().copied().collect();
    Ok(json!({
        "attempted": n,
        "established": established,
        "refused": n - established,
        "closed_by_member": closes.len(),
        "closed_after_ms": closes,
    }))
}

pub async fn run(args: ConnFloodArgs) -> anyhow::Result<Value> {
    let started = Instant::now();
    let end = started + args.hold;
    let closures: Closures = Arc::default();
    let (_held, tcp_refused) = raw_connections(args.dial, args.n, &closures).await;
    let tcp_connected = args.n - tcp_refused;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed_within_1s = closures.lock().len();
    // While the handshake-less connections hold this address's slots…
    let first = tokio::spawn(wave(args.dial, args.libp2p, end));
    // …and once the member has closed them.
    tokio::time::sleep(args.hold / 2 - Duration::from_secs(1)).await;
    let second = wave(args.dial, args.libp2p, end).await?;
    let first = first.await.map_err(|e| anyhow::anyhow!("task: {e}"))??;
    tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
    let closed = closures.lock().clone();
    Ok(json!({
        "dial": args.dial.to_string(),
        "tcp_attempted": args.n,
        "tcp_connected": tcp_connected,
        "tcp_refused": tcp_refused,
        "tcp_closed_within_1s": closed_within_1s,
        "tcp_closed_by_member": closed.len(),
        "tcp_open_at_end": tcp_connected.saturating_sub(closed.len()),
        "tcp_close_ms_max": closed.iter().max(),
        "first_wave": first,
        "second_wave": second,
    }))
}
