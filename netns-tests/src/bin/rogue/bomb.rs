//! `rogue bomb`: a bootstrap address that answers every control request
//! with a response bomb (F2), in turn:
//!
//! * `elements`: a page claiming ~300 k empty records in under 1 MiB
//!   (3 bytes each on the wire, tens of bytes each in memory);
//! * `claim16`: a length prefix claiming 16 MiB;
//! * `records`: a well-formed page of 256 records whose grants the rogue
//!   signed itself (256 signature checks, and once a log line per record).
//!
//! A node that syncs with it must refuse the first two before allocating
//! for them and reject the third with a single log line, its memory flat.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::request_response::{self, Message};
use libp2p::swarm::SwarmEvent;
use libp2p_identity::Keypair;
use netmanager::control::admission::join::multiaddr;
use netmanager::control::wire::protocol::{ControlRequest, ControlResponse, Page, PAGE_ITEMS};
use netmanager::control::wire::{decode, encode, Bounded, WIRE_VERSION};
use serde_json::{json, Value};

use crate::forge;
use crate::raw::{self, RawBehaviourEvent};

/// Empty records in the `elements` bomb.
pub const ELEMENTS: u32 = 300_000;

pub struct BombArgs {
    pub listen: SocketAddr,
    pub seconds: u64,
}

/// The three bombs, as whole wire images.
fn bombs(advertise: SocketAddr) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    // `ControlResponse::Page` is variant 2; its first field, `nodes`, is a
    // sequence of `Signed` (three empty byte strings: 3 zero bytes each).
    let mut elements = vec![WIRE_VERSION, 2];
    elements.extend(forge::varint(u64::from(ELEMENTS)));
    elements.extend(std::iter::repeat_n(0u8, 3 * ELEMENTS as usize));
    let mut claim = (16u32 << 20).to_be_bytes().to_vec();
    claim.extend(std::iter::repeat_n(0u8, 64 << 10));
    let mut nodes = Vec::with_capacity(PAGE_ITEMS);
    for i in 0..PAGE_ITEMS {
        nodes.push(forge::self_signed_record(
            &Keypair::generate_ed25519(),
            &format!("bomb-{i}"),
            advertise,
        )?);
    }
    let page = ControlResponse::Page(Page {
        nodes: Bounded::truncate(nodes),
        ..Page::default()
    });
    let records = encode(&page).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(vec![
        ("elements", raw::frame(&elements)),
        ("claim16", claim),
        ("records", raw::frame(&records)),
    ])
}

pub async fn run(args: BombArgs) -> anyhow::Result<Value> {
    let keypair = Keypair::generate_ed25519();
    let id = keypair.public().to_peer_id();
    let bombs = bombs(args.listen)?;
    let mut swarm = raw::build(keypair)?;
    swarm
        .listen_on(multiaddr(args.listen))
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", args.listen))?;
    let end = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let (mut requests, mut connections) = (BTreeMap::<String, usize>::new(), 0usize);
    let mut served: Vec<Value> = Vec::new();
    let mut peers = std::collections::BTreeSet::new();
    while let Ok(event) = tokio::time::timeout_at(end, swarm.select_next_some()).await {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                connections += 1;
                peers.insert(peer_id.to_string());
            }
            SwarmEvent::Behaviour(RawBehaviourEvent::Control(request_response::Event::Message {
                peer,
                message: Message::Request { request, channel, .. },
                ..
            })) => {
                let kind = match decode::<ControlRequest>(&request) {
                    Ok(ControlRequest::Sync(_)) => "sync",
                    Ok(ControlRequest::Join(_)) => "join",
                    Err(_) => "undecodable",
                };
                *requests.entry(kind.to_owned()).or_default() += 1;
                let (name, bytes) = &bombs[served.len() % bombs.len()];
                let sent = swarm.behaviour_mut().control.send_response(channel, bytes.clone()).is_ok();
                served.push(json!({ "bomb": name, "to": peer.to_string(), "bytes": bytes.len(), "sent": sent, "at_ms": started.elapsed().as_millis() as u64 }));
            }
            _ => {}
        }
    }
    Ok(json!({
        "rogue": id.to_string(),
        "listen": args.listen.to_string(),
        "connections": connections,
        "peers": peers,
        "requests": requests,
        "served": served,
    }))
}
