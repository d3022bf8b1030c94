//! The rogue's payloads: each one a claim a member must refuse.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{anyhow, Context};
use libp2p::PeerId;
use libp2p_identity::Keypair;
use netmanager::control::admission::SubnetGrant;
use netmanager::control::now_unix_ms;
use netmanager::control::protocol::State;
use netmanager::control::records::{decode, encode, Gossip, InstanceEntry, InstanceSet, NodeRecord, Suspicion};
use netmanager::control::signed::Signed;
use netmanager::control::vivaldi::Coordinate;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What `attack` was told.
pub struct Plan<'a> {
    pub captured: &'a State,
    pub hijack: &'a str,
    pub replay: &'a str,
    pub claim_ip: Ipv4Addr,
    pub advertise: IpAddr,
}

pub struct Attack {
    /// (label, gossip payload), published in order.
    pub gossip: Vec<(String, Vec<u8>)>,
    /// Served to members' syncs.
    pub poison: State,
}

/// A member's record as captured.
struct Known {
    peer: PeerId,
    signed: Signed<NodeRecord>,
    record: NodeRecord,
}

/// [`Signed`]'s wire shape, to swap a payload under someone's signature.
#[derive(Serialize, Deserialize)]
struct RawSigned {
    payload: Vec<u8>,
    signer: Vec<u8>,
    signature: Vec<u8>,
}

fn known(state: &State, name: &str) -> anyhow::Result<Known> {
    state
        .nodes
        .iter()
        .filter_map(|signed| {
            signed.verify().ok().map(|v| Known { peer: v.signer, signed: signed.clone(), record: v.value })
        })
        .find(|k| k.record.name == name)
        .ok_or_else(|| anyhow!("no record of {name:?} in the captured state"))
}

fn postcard<T: Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    Ok(encode(value)?[1..].to_vec())
}

pub fn attack(keypair: &Keypair, plan: &Plan) -> anyhow::Result<Attack> {
    let me = keypair.public().to_peer_id();
    let victim = known(plan.captured, plan.hijack)?;
    let old = known(plan.captured, plan.replay)?;
    let endpoint = SocketAddr::new(plan.advertise, 50103);
    let version = now_unix_ms() + 3_600_000;
    let hijacked = |name: &str, grant: Signed<SubnetGrant>| NodeRecord {
        name: name.to_owned(),
        wg_public_key: [7; 32],
        endpoints: vec![endpoint],
        control: vec![endpoint],
        grant,
        location: victim.record.location,
        coordinate: Coordinate::origin(),
        version,
    };

    // (a) A grant for the victim's subnet, signed by the rogue itself.
    let victim_subnet = victim.record.grant.verify().context("victim's grant")?.value.subnet;
    let self_grant = SubnetGrant { node: me.to_bytes(), subnet: victim_subnet, issued_unix_ms: now_unix_ms() };
    let forged = Signed::sign(&hijacked("rogue-forged", Signed::sign(&self_grant, keypair)?), keypair)?;
    // (b) The victim's genuine grant under the victim's name, signed by us.
    let stolen = Signed::sign(&hijacked(plan.hijack, victim.record.grant.clone()), keypair)?;
    // (c) The victim's own signed record with a newer payload slipped under
    // its signature: our endpoints, higher version.
    let mut raw: RawSigned = decode(&encode(&victim.signed)?).map_err(|e| anyhow!("{e}"))?;
    raw.payload = postcard(&NodeRecord { endpoints: vec![endpoint], version, ..victim.record.clone() })?;
    let tampered: Signed<NodeRecord> = decode(&encode(&raw)?).map_err(|e| anyhow!("{e}"))?;
    // (d) Instances: as ourselves (not a member), and in the victim's name.
    let entries = ["ms2", "evil"].map(|service| InstanceEntry {
        service: service.into(),
        app: "cam".into(),
        namespace: "default".into(),
        number: 66,
        ipv4: Some(plan.claim_ip),
        ports: vec![("http".into(), "tcp".into(), 8080)],
    });
    let set = |node: Vec<u8>| InstanceSet { node, version, instances: entries.to_vec() };
    let own_set = Signed::sign(&set(me.to_bytes()), keypair)?;
    let claimed_set = Signed::sign(&set(victim.peer.to_bytes()), keypair)?;
    // (e) "The victim is not answering", from a non-member.
    let suspicion =
        Signed::sign(&Suspicion { target: victim.peer.to_bytes(), version: victim.record.version }, keypair)?;

    let mut gossip = vec![
        ("forged-grant".to_owned(), encode(&Gossip::Node(forged.clone()))?),
        ("stolen-grant".to_owned(), encode(&Gossip::Node(stolen.clone()))?),
        ("tampered-record".to_owned(), encode(&Gossip::Node(tampered.clone()))?),
        ("rogue-instances".to_owned(), encode(&Gossip::Instances(own_set.clone()))?),
        ("claimed-instances".to_owned(), encode(&Gossip::Instances(claimed_set.clone()))?),
        ("suspicion".to_owned(), encode(&Gossip::Suspect(suspicion))?),
    ];
    // (f) The replay, byte for byte (gossipsub's duplicate cache may eat
    // it) and with a trailing byte so it is a new gossip message carrying
    // the same old signed record.
    let replay = encode(&Gossip::Node(old.signed.clone()))?;
    let mut replay_padded = replay.clone();
    replay_padded.push(0);
    gossip.push(("replay".to_owned(), replay));
    gossip.push(("replay-padded".to_owned(), replay_padded));
    // (g) Garbage: random bytes, a wrong wire version, a truncated record.
    let mut noise: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    noise[0] = 1;
    let mut truncated = encode(&Gossip::Node(forged.clone()))?;
    truncated.truncate(truncated.len() / 2);
    gossip.push(("garbage".to_owned(), noise));
    gossip.push(("wrong-version".to_owned(), vec![0xee, 1, 2, 3]));
    gossip.push(("truncated".to_owned(), truncated));

    let poison = State {
        nodes: vec![forged, stolen, tampered, old.signed],
        instances: vec![own_set, claimed_set],
        accusations: Vec::new(),
    };
    Ok(Attack { gossip, poison })
}

/// The records of a sync answer, as JSON for the test.
pub fn summary(state: &State) -> serde_json::Value {
    let nodes: Vec<_> = state
        .nodes
        .iter()
        .map(|signed| match signed.verify() {
            Ok(v) => json!({
                "name": v.value.name,
                "peer_id": v.signer.to_string(),
                "version": v.value.version,
                "endpoints": v.value.endpoints.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                "location": v.value.location,
            }),
            Err(e) => json!({ "invalid": e.to_string() }),
        })
        .collect();
    let instances: Vec<_> = state
        .instances
        .iter()
        .filter_map(|signed| signed.verify().ok())
        .map(|v| json!({ "peer_id": v.signer.to_string(), "version": v.value.version, "count": v.value.instances.len() }))
        .collect();
    json!({ "nodes": nodes, "instances": instances, "accusations": state.accusations.len() })
}
