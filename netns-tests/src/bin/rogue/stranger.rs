//! `rogue stranger`: a peer with no grant tries everything a member may
//! do. It syncs with a record whose grant it signed itself, probes
//! (`Ping { suspected: true }`, the refute storm of F6, and `PingReq`),
//! and publishes forged gossip: its record, suspicions, an instance set,
//! byte variants of one message (F20) and garbage. A member must answer
//! `NotMember` to everything, hand out no record, not re-sign its own, and
//! close the connection after its grace period (F2, F6, F8, F20).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use libp2p_identity::Keypair;
use netmanager::control::vivaldi::Coordinate;
use netmanager::control::wire::protocol::{ControlRequest, ControlResponse, ProbeRequest, SyncRequest};
use netmanager::control::wire::records::Gossip;
use serde_json::{json, Value};

use crate::forge;
use crate::peer::{answer_kind, probe_kind, source_ip, Peer, Policy};

/// Suspected pings sent (one every 100 ms: ten times the refute rate limit).
const SUSPECTED_PINGS: usize = 20;

pub struct StrangerArgs {
    pub dial: SocketAddr,
    pub variants: usize,
    /// How long to wait for the member to close the connection.
    pub wait_close: Duration,
}

pub async fn run(args: StrangerArgs) -> anyhow::Result<Value> {
    let keypair = Keypair::generate_ed25519();
    let mut peer = Peer::new(keypair.clone(), Policy::stranger())?;
    peer.subscribe()?;
    let member = peer
        .connect(args.dial, Duration::from_secs(10))
        .await
        .map_err(|e| anyhow!("connecting to {}: {e}", args.dial))?;
    let connected = Instant::now();
    let advertise = SocketAddr::new(source_ip(args.dial)?, args.dial.port());
    let forged = forge::self_signed_record(&keypair, "rogue-stranger", advertise)?;

    let sync = peer
        .control(
            member,
            ControlRequest::Sync(SyncRequest {
                me: forged.clone(),
                after: None,
            }),
            Duration::from_secs(5),
        )
        .await;
    let records = match &sync {
        Ok(ControlResponse::Page(page)) => page.nodes.len() + page.instances.len(),
        _ => 0,
    };
    let mut pings = BTreeMap::<String, usize>::new();
    for _ in 0..SUSPECTED_PINGS {
        let ping = ProbeRequest::Ping {
            coordinate: Coordinate::origin(),
            suspected: true,
        };
        *pings
            .entry(probe_kind(&peer.probe(member, ping, Duration::from_secs(2)).await))
            .or_default() += 1;
        peer.pump(Duration::from_millis(100)).await;
    }
    let pingreq = peer
        .probe(member, ProbeRequest::PingReq { target: member.to_bytes() }, Duration::from_secs(2))
        .await;

    let mut messages = Vec::new();
    messages.push(forge::gossip(&Gossip::Node(forged.clone()))?);
    for version in [0, 1, 1 << 32 | 1, u64::MAX] {
        messages.push(forge::gossip(&Gossip::Suspect(forge::suspicion(&keypair, &member, version)?))?);
    }
    let ip = forge::far_subnet().hosts().nth(9).ok_or_else(|| anyhow!("far subnet"))?;
    let set = forge::instance_set(&keypair, 1, vec![forge::spec("evil", 1, ip)?])?;
    messages.push(forge::gossip(&Gossip::Instances(set))?);
    messages.extend(forge::variants(&forged, args.variants)?);
    messages.extend(forge::garbage());
    let (mut published, mut refused) = (0usize, BTreeMap::<String, usize>::new());
    for (i, message) in messages.into_iter().enumerate() {
        match peer.publish(message) {
            Ok(()) => published += 1,
            Err(e) => *refused.entry(e).or_default() += 1,
        }
        if i % 100 == 99 {
            peer.pump(Duration::from_millis(20)).await;
        }
    }

    let closed = peer
        .wait_for(args.wait_close.saturating_sub(connected.elapsed()), |me| {
            (!me.connected.contains_key(&member)).then_some(())
        })
        .await;
    let closed_after = closed.map(|()| connected.elapsed().as_millis() as u64);
    Ok(json!({
        "rogue": peer.id.to_string(),
        "member": member.to_string(),
        "sync": answer_kind(&sync),
        "records_received": records,
        "suspected_pings": pings,
        "pingreq": probe_kind(&pingreq),
        "published": published,
        "publish_refused": refused,
        "gossip_received": peer.seen.gossip_received,
        "closed_after_ms": closed_after,
        "seen": peer.seen,
    }))
}
