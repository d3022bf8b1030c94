//! `rogue listen`: a fake authority and bootstrap peer (F1). It listens
//! where a joining node might look, optionally dials the joiner again and
//! again, answers any `Join` with a grant it signs itself and any `Sync`
//! with records around such grants, and counts what reached it. A joining
//! node that pins its authority must never present its token here, and
//! must believe none of the answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use libp2p_identity::Keypair;
use netmanager::control::wire::protocol::Page;
use netmanager::control::wire::Bounded;
use serde_json::{json, Value};

use crate::forge;
use crate::peer::{JoinAnswer, Peer, Policy, ProbeAnswer, SyncAnswer};

pub struct ListenArgs {
    pub listen: SocketAddr,
    pub seconds: u64,
    /// Dial this address (the joiner) every `dial_every`.
    pub dial: Option<SocketAddr>,
    pub dial_every: Duration,
}

/// Records around grants the rogue signed (itself and two made-up nodes).
fn poison(keypair: &Keypair, advertise: SocketAddr) -> anyhow::Result<Page> {
    let mut nodes = vec![forge::self_signed_record(keypair, "rogue-authority", advertise)?];
    let mut instances = Vec::new();
    for i in 0..2u32 {
        let other = Keypair::generate_ed25519();
        nodes.push(forge::self_signed_record(&other, &format!("rogue-node-{i}"), advertise)?);
        let ip = forge::far_subnet()
            .hosts()
            .nth(10 + i as usize)
            .ok_or_else(|| anyhow!("far subnet"))?;
        instances.push(forge::instance_set(&other, 1, vec![forge::spec("evil", i + 1, ip)?])?);
    }
    Ok(Page {
        nodes: Bounded::truncate(nodes),
        instances: Bounded::truncate(instances),
        ..Page::default()
    })
}

pub async fn run(args: ListenArgs) -> anyhow::Result<Value> {
    let keypair = Keypair::generate_ed25519();
    let page = poison(&keypair, args.listen)?;
    let policy = Policy {
        sync: SyncAnswer::Page(Box::new(page)),
        join: JoinAnswer::SelfGrant,
        probe: ProbeAnswer::NotMember,
    };
    let mut peer = Peer::new(keypair, policy)?;
    peer.listen(args.listen).await?;
    let (mut dials, mut dialled) = (0usize, 0usize);
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut next_dial = started;
    let mut peers = std::collections::BTreeSet::new();
    while Instant::now() < end {
        if let Some(target) = args.dial.filter(|_| Instant::now() >= next_dial) {
            next_dial = Instant::now() + args.dial_every;
            dials += 1;
            if let Ok(p) = peer.connect(target, Duration::from_millis(500)).await {
                dialled += 1;
                peers.insert(p.to_string());
            }
        }
        peer.pump(Duration::from_millis(50)).await;
        peers.extend(peer.connected.keys().map(|p| p.to_string()));
    }
    Ok(json!({
        "rogue": peer.id.to_string(),
        "listen": args.listen.to_string(),
        "dials": dials,
        "dials_connected": dialled,
        "peers": peers,
        "seen": peer.seen,
    }))
}
