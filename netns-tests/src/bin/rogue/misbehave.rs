//! What a joined rogue member does with its membership (`--mode`):
//!
//! * `quiet`: nothing (a baseline, and a target for conflicts);
//! * `suspect-all` (F3): suspicions of every member at its current version,
//!   again whenever it sees a newer record;
//! * `version-loop` (F7): its own record re-signed ~200 times a second;
//! * `bad-endpoints` (F15): a record advertising loopback, multicast and
//!   in-mesh addresses, by gossip and as its sync `me`;
//! * `pending-fill`: instance sets signed by thousands of unknown keys,
//!   for the table of sets waiting for their node's record;
//! * `conflict` (known gap 4): an instance key another node announces;
//! * `replay` (F20): records captured at join time, replayed later as
//!   they were and in many byte variants;
//! * `forge-delegation`: a delegation to itself that it signed, and
//!   under it grants and records for ghost nodes (a member making itself a
//!   site's admission authority), by gossip and in its sync answers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::ValueEnum;
use libp2p_identity::Keypair;
use netmanager::control::wire::protocol::{ControlRequest, Page, SyncRequest};
use netmanager::control::wire::records::Gossip;
use netmanager::control::wire::Bounded;
use serde_json::{json, Value};

use crate::forge;
use crate::member::Session;
use crate::peer::{answer_kind, ProbeAnswer, SyncAnswer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Quiet,
    SuspectAll,
    VersionLoop,
    BadEndpoints,
    PendingFill,
    Conflict,
    Replay,
    ForgeDelegation,
}

pub struct Misbehave {
    pub mode: Mode,
    pub seconds: u64,
    /// `conflict`: the instance to claim.
    pub service: String,
    pub number: u32,
    /// `replay`: when to replay, and how many variants of each record.
    pub replay_after: u64,
    pub variants: usize,
    /// `pending-fill`: how many unknown signers.
    pub keys: usize,
    /// `version-loop`: records per second.
    pub rate: u32,
}

/// A tally of publish outcomes.
#[derive(Default)]
struct Published {
    ok: usize,
    refused: BTreeMap<String, usize>,
}

impl Published {
    fn note(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => self.ok += 1,
            Err(e) => *self.refused.entry(e).or_default() += 1,
        }
    }

    fn json(&self) -> Value {
        json!({ "ok": self.ok, "refused": self.refused })
    }
}

pub async fn run(mut s: Session, m: Misbehave) -> anyhow::Result<Value> {
    let end = Instant::now() + Duration::from_secs(m.seconds);
    let report = match m.mode {
        Mode::Quiet => {
            until(&mut s, end).await;
            json!({})
        }
        Mode::SuspectAll => suspect_all(&mut s, end).await?,
        Mode::VersionLoop => version_loop(&mut s, end, m.rate).await?,
        Mode::BadEndpoints => bad_endpoints(&mut s, end).await?,
        Mode::PendingFill => pending_fill(&mut s, end, m.keys).await?,
        Mode::Conflict => conflict(&mut s, end, &m.service, m.number).await?,
        Mode::Replay => replay(&mut s, end, m.replay_after, m.variants).await?,
        Mode::ForgeDelegation => forge_delegation(&mut s, end).await?,
    };
    let mut summary = s.summary();
    summary["mode"] = json!(format!("{:?}", m.mode));
    summary["report"] = report;
    Ok(summary)
}

/// Serves members (probes, syncs) until `end`.
async fn until(s: &mut Session, end: Instant) {
    while Instant::now() < end {
        s.peer.pump(Duration::from_millis(50)).await;
        s.drain_gossip();
    }
}

async fn suspect_all(s: &mut Session, end: Instant) -> anyhow::Result<Value> {
    let mut published = Published::default();
    let (mut rounds, mut last_round, mut last_sync) = (0usize, None::<Instant>, Instant::now());
    let authority = s.authority;
    while Instant::now() < end {
        let fresh = s.drain_gossip();
        if fresh > 0 || last_round.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            let targets: Vec<_> = s.known.iter().map(|(p, k)| (*p, k.version)).collect();
            for (target, version) in targets {
                let bytes = forge::gossip(&Gossip::Suspect(forge::suspicion(&s.peer.keypair, &target, version)?))?;
                published.note(s.peer.publish(bytes));
            }
            rounds += 1;
            last_round = Some(Instant::now());
        }
        if last_sync.elapsed() >= Duration::from_millis(700) {
            s.sync(authority).await;
            last_sync = Instant::now();
        }
        s.peer.pump(Duration::from_millis(20)).await;
    }
    Ok(json!({ "rounds": rounds, "suspicions": published.json() }))
}

async fn version_loop(s: &mut Session, end: Instant, rate: u32) -> anyhow::Result<Value> {
    let interval = Duration::from_secs(1) / rate.max(1);
    let (started, base) = (Instant::now(), s.version);
    let mut published = Published::default();
    let mut sent = 0u64;
    // What each member holds, read back every 250 ms: how often it changes
    // is how many of our versions it accepted (at most).
    let mut held: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let (mut polls, mut last_poll) = (0u64, Instant::now());
    while Instant::now() < end {
        let due = (started.elapsed().as_secs_f64() / interval.as_secs_f64()) as u64;
        while sent < due {
            sent += 1;
            published.note(s.republish().map_err(|e| e.to_string()));
        }
        if last_poll.elapsed() >= Duration::from_millis(250) {
            last_poll = Instant::now();
            polls += 1;
            for peer in s.connected_members() {
                let name = s.known.get(&peer).map(|k| k.name.clone()).unwrap_or_else(|| peer.to_string());
                if let Some(v) = s.held_version(peer).await {
                    held.entry(name).or_default().insert(v);
                }
            }
        }
        s.peer.pump(Duration::from_millis(2)).await;
    }
    let distinct: BTreeMap<&String, usize> = held.iter().map(|(n, v)| (n, v.len())).collect();
    let last: BTreeMap<&String, u64> = held.iter().map(|(n, v)| (n, v.last().map_or(0, |v| v - base))).collect();
    Ok(json!({
        "versions_published": published.json(),
        "rate": rate,
        "polls": polls,
        "distinct_held": distinct,
        "last_held_increment": last,
        "last_increment": s.version - base,
    }))
}

async fn bad_endpoints(s: &mut Session, end: Instant) -> anyhow::Result<Value> {
    let endpoints: Vec<SocketAddr> = ["127.0.0.1:22", "224.0.0.1:1", "10.18.0.5:80"]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let control: Vec<SocketAddr> = ["127.0.0.1:50103", "224.0.0.1:50103", "10.18.0.5:50103"]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let bad = s.sign_record(s.version + 1, endpoints, control)?;
    let mut published = Published::default();
    published.note(s.peer.publish(forge::gossip(&Gossip::Node(bad.clone()))?));
    let mut answers = BTreeMap::<String, usize>::new();
    for peer in s.connected_members() {
        let answer = s
            .peer
            .control(
                peer,
                ControlRequest::Sync(SyncRequest {
                    me: bad.clone(),
                    after: None,
                }),
                Duration::from_secs(5),
            )
            .await;
        *answers.entry(answer_kind(&answer)).or_default() += 1;
    }
    until(s, end.checked_sub(Duration::from_secs(3)).unwrap_or(end)).await;
    let mut held = BTreeMap::new();
    for peer in s.connected_members() {
        let name = s.known.get(&peer).map(|k| k.name.clone()).unwrap_or_else(|| peer.to_string());
        let record = s.held_record(peer).await;
        held.insert(
            name,
            record.map(|r| {
                r.endpoints
                    .iter()
                    .chain(r.control.iter())
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
            }),
        );
    }
    Ok(json!({ "published": published.json(), "bad_sync_answers": answers, "held_addresses": held }))
}

async fn pending_fill(s: &mut Session, end: Instant, keys: usize) -> anyhow::Result<Value> {
    let mut published = Published::default();
    let hosts: Vec<_> = forge::far_subnet().hosts().collect();
    for i in 0..keys {
        let signer = Keypair::generate_ed25519();
        let ip = hosts[i % hosts.len()];
        let set = forge::instance_set(&signer, 1 << 32 | 1, vec![forge::spec("fill", i as u32 + 1, ip)?])?;
        published.note(s.peer.publish(forge::gossip(&Gossip::Instances(set))?));
        if i % 50 == 49 {
            s.peer.pump(Duration::from_millis(20)).await;
        }
    }
    until(s, end).await;
    Ok(json!({ "signers": keys, "published": published.json() }))
}

async fn conflict(s: &mut Session, end: Instant, service: &str, number: u32) -> anyhow::Result<Value> {
    let ip = s.subnet.hosts().nth(9).ok_or_else(|| anyhow!("subnet {} has no .10", s.subnet))?;
    s.announce(vec![forge::spec(service, number, ip)?])?;
    until(s, end).await;
    Ok(json!({ "instance": format!("{service}/cam/default/{number}"), "address": ip.to_string() }))
}

async fn replay(s: &mut Session, end: Instant, after: u64, variants: usize) -> anyhow::Result<Value> {
    let captured = s.known.clone();
    let sets = s.sets.clone();
    until(s, (Instant::now() + Duration::from_secs(after)).min(end)).await;
    // The originals go out in our sync answers (gossip would drop them as
    // duplicates of what it carried before), and an ack version ahead of
    // what members hold makes every member sync with us soon.
    let mut page = Page {
        nodes: Bounded::truncate(vec![s.record.clone()]),
        ..Page::default()
    };
    let mut nodes = page.nodes.to_vec();
    nodes.extend(captured.values().map(|k| k.signed.clone()));
    page.nodes = Bounded::truncate(nodes);
    page.instances = Bounded::truncate(sets.values().cloned().collect());
    s.peer.policy.sync = SyncAnswer::Page(Box::new(page));
    s.peer.policy.probe = ProbeAnswer::Ack {
        version: s.version + (1 << 20),
    };
    let syncs_before = s.peer.seen.syncs_received;
    let mut originals = Published::default();
    let mut mutated = Published::default();
    let mut replayed = BTreeMap::new();
    for known in captured.values() {
        replayed.insert(known.name.clone(), known.version);
        originals.note(s.peer.publish(forge::gossip(&Gossip::Node(known.signed.clone()))?));
        for (i, bytes) in forge::variants(&known.signed, variants)?.into_iter().enumerate() {
            mutated.note(s.peer.publish(bytes));
            if i % 100 == 99 {
                s.peer.pump(Duration::from_millis(20)).await;
            }
        }
    }
    for set in sets.values() {
        originals.note(s.peer.publish(forge::gossip(&Gossip::Instances(set.clone()))?));
    }
    until(s, end).await;
    let served = s.peer.seen.syncs_received - syncs_before;
    Ok(json!({ "replayed_versions": replayed, "originals": originals.json(), "variants": mutated.json(), "replay_syncs_served": served }))
}

/// Ghost nodes "admitted" under a delegation the rogue signed itself: one
/// inside a block the rogue claims, gossiped every second and served in
/// sync answers, until `end`.
async fn forge_delegation(s: &mut Session, end: Instant) -> anyhow::Result<Value> {
    let me = s.peer.keypair.public().to_peer_id();
    let block = ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(10, 18, 240, 0), 22).map_err(|e| anyhow!("{e}"))?;
    let delegation = forge::self_delegation(&s.peer.keypair, &me, block)?;
    let mut ghosts = Vec::new();
    for (i, subnet) in block.subnets(26).map_err(|e| anyhow!("{e}"))?.take(4).enumerate() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let grant = forge::self_grant(&s.peer.keypair, &peer, &format!("ghost-{i}"), subnet, forge::random32())?;
        ghosts.push(forge::delegated_record(&key, grant, delegation.clone(), s.addr)?);
    }
    let mut page = Page { nodes: Bounded::truncate(vec![s.record.clone()]), ..Page::default() };
    let mut nodes = page.nodes.to_vec();
    nodes.extend(ghosts.iter().cloned());
    page.nodes = Bounded::truncate(nodes);
    s.peer.policy.sync = SyncAnswer::Page(Box::new(page));
    let mut published = Published::default();
    let mut rounds = 0usize;
    while Instant::now() < end {
        for ghost in &ghosts {
            published.note(s.peer.publish(forge::gossip(&Gossip::Node(ghost.clone()))?));
        }
        rounds += 1;
        let until_next = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until_next.min(end) {
            s.peer.pump(Duration::from_millis(50)).await;
            s.drain_gossip();
        }
    }
    Ok(json!({ "rounds": rounds, "ghosts": ghosts.len(), "block": block.to_string(), "published": published.json() }))
}
