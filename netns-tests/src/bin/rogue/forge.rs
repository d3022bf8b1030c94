//! What the rogue forges: grants it signs itself, records around them,
//! instance sets and suspicions, byte variants of one message, garbage.
//! Pure: no sockets, so every forgery is the same whatever attack sends it.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{anyhow, Context};
use dns::{InstanceKey, InstanceSpec};
use ipnet::Ipv4Net;
use libp2p_identity::{Keypair, PeerId};
use netmanager::control::vivaldi::Coordinate;
use netmanager::control::wire::records::{Delegation, Gossip, InstanceSet, NodeRecord, SubnetGrant, Suspicion};
use netmanager::control::wire::{encode, Bounded, RecordKind, Signed};

/// 32 random bytes (tunnel keys, junk).
pub fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // The OS random source does not fail on Linux; zeros would still be junk.
    let _ = getrandom::fill(&mut bytes);
    bytes
}

/// A subnet inside the default pool that no testbed mesh grants early.
pub fn far_subnet() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 18, 250, 0), 26).unwrap_or_default()
}

/// "The authority grants `node` …", except that the rogue signs it itself.
pub fn self_grant(
    signer: &Keypair,
    node: &PeerId,
    name: &str,
    subnet: Ipv4Net,
    wg_public_key: [u8; 32],
) -> anyhow::Result<Signed<SubnetGrant>> {
    let grant = SubnetGrant {
        node: node.to_bytes(),
        subnet,
        name: name.to_owned(),
        wg_public_key,
        serial: 1,
        issued_unix_ms: 0,
    };
    Signed::sign(&grant, signer).context("signing a forged grant")
}

/// A node record around `grant`, signed by `keypair`.
pub fn record(
    keypair: &Keypair,
    grant: Signed<SubnetGrant>,
    endpoints: Vec<SocketAddr>,
    control: Vec<SocketAddr>,
    version: u64,
) -> anyhow::Result<Signed<NodeRecord>> {
    let record = NodeRecord {
        endpoints: Bounded::truncate(endpoints),
        control: Bounded::truncate(control),
        grant,
        delegation: None,
        location: None,
        coordinate: Coordinate::origin(),
        version,
    };
    Signed::sign(&record, keypair).context("signing a node record")
}

/// "The authority lets `cluster` admit into `block`", signed by the rogue:
/// a member making itself a site's authority.
pub fn self_delegation(signer: &Keypair, cluster: &PeerId, block: Ipv4Net) -> anyhow::Result<Signed<Delegation>> {
    let delegation = Delegation { cluster: cluster.to_bytes(), block, serial: 1, cluster_grant_serial: u64::MAX, issued_unix_ms: 0 };
    Signed::sign(&delegation, signer).context("signing a forged delegation")
}

/// A node record with a grant and a delegation beside it, signed by `keypair`.
pub fn delegated_record(
    keypair: &Keypair,
    grant: Signed<SubnetGrant>,
    delegation: Signed<Delegation>,
    advertise: SocketAddr,
) -> anyhow::Result<Signed<NodeRecord>> {
    let record = NodeRecord {
        endpoints: Bounded::truncate(vec![advertise]),
        control: Bounded::truncate(vec![advertise]),
        grant,
        delegation: Some(delegation),
        location: None,
        coordinate: Coordinate::origin(),
        version: 1,
    };
    Signed::sign(&record, keypair).context("signing a node record")
}

/// A record whose grant the rogue signed itself: what a stranger claims.
pub fn self_signed_record(keypair: &Keypair, name: &str, advertise: SocketAddr) -> anyhow::Result<Signed<NodeRecord>> {
    let peer = keypair.public().to_peer_id();
    let grant = self_grant(keypair, &peer, name, far_subnet(), random32())?;
    record(keypair, grant, vec![advertise], vec![advertise], 1)
}

/// One instance `service`/cam/default/`number` at `ip`.
pub fn spec(service: &str, number: u32, ip: Ipv4Addr) -> anyhow::Result<InstanceSpec> {
    let key = InstanceKey::new(service, "cam", "default", number).map_err(|e| anyhow!("instance key {service}/{number}: {e}"))?;
    Ok(InstanceSpec::new(key).with_ipv4(ip))
}

/// An instance set of `keypair`'s node.
pub fn instance_set(keypair: &Keypair, version: u64, specs: Vec<InstanceSpec>) -> anyhow::Result<Signed<InstanceSet>> {
    let node = keypair.public().to_peer_id().to_bytes();
    let instances = Bounded::new(specs).ok_or_else(|| anyhow!("too many instances"))?;
    Signed::sign(&InstanceSet { node, version, instances }, keypair).context("signing an instance set")
}

/// A suspicion of `target` at `version`, signed by `keypair`.
pub fn suspicion(keypair: &Keypair, target: &PeerId, version: u64) -> anyhow::Result<Signed<Suspicion>> {
    Signed::sign(
        &Suspicion {
            target: target.to_bytes(),
            version,
        },
        keypair,
    )
    .context("signing a suspicion")
}

/// Encodes gossip for the records topic.
pub fn gossip(g: &Gossip) -> anyhow::Result<Vec<u8>> {
    encode(g).map_err(|e| anyhow!("encoding gossip: {e}"))
}

/// The three parts of a signed value (payload, signer, signature).
pub fn parts<T>(signed: &Signed<T>) -> anyhow::Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let bytes = signed.to_bytes().map_err(|e| anyhow!("{e}"))?;
    postcard::from_bytes(&bytes).map_err(|e| anyhow!("splitting a signed value: {e}"))
}

/// A signed value put together from arbitrary parts (the fields are
/// private to netmanager; postcard is the way in, as for any peer).
pub fn assemble<T: RecordKind>(payload: Vec<u8>, signer: Vec<u8>, signature: Vec<u8>) -> anyhow::Result<Signed<T>> {
    let bytes = postcard::to_stdvec(&(payload, signer, signature)).map_err(|e| anyhow!("{e}"))?;
    Signed::from_bytes(&bytes).map_err(|e| anyhow!("{e}"))
}

/// `n` distinct byte strings that all carry `message` (F20): trailing
/// bytes after the encoding, a payload with a trailing byte (the signature
/// no longer covers it), and a signer key padded with an unknown protobuf
/// field (prost would accept it). Gossip deduplicates by content, so each
/// is a new message to a member that decodes loosely.
pub fn variants(message: &Signed<NodeRecord>, n: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let base = gossip(&Gossip::Node(message.clone()))?;
    let (payload, signer, signature) = parts(message)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let tag = (i as u32).to_le_bytes();
        let bytes = match i % 3 {
            0 => {
                let mut b = base.clone();
                b.extend_from_slice(&tag);
                b
            }
            1 => {
                let mut p = payload.clone();
                p.extend_from_slice(&tag);
                gossip(&Gossip::Node(assemble(p, signer.clone(), signature.clone())?))?
            }
            _ => {
                let mut s = signer.clone();
                // Field 9 (varint), then field 10 (varint) with the counter.
                s.extend_from_slice(&[0x48, 0x01, 0x50]);
                s.extend(varint(i as u64));
                gossip(&Gossip::Node(assemble(payload.clone(), s, signature.clone())?))?
            }
        };
        out.push(bytes);
    }
    Ok(out)
}

/// Messages that are not grove gossip at all: empty, wrong version tag,
/// truncated, random.
pub fn garbage() -> Vec<Vec<u8>> {
    let mut out = vec![
        vec![0xff],
        vec![1, 0, 0, 0],
        vec![2],
        vec![2, 9, 9, 9],
        vec![2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ];
    for _ in 0..8 {
        out.push(random32().to_vec());
    }
    out.push(vec![0u8; 60 << 10]);
    out
}

/// A postcard varint.
pub fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmanager::control::wire::decode;

    #[test]
    fn variants_are_distinct_and_none_verifies_as_a_different_record() {
        let kp = Keypair::generate_ed25519();
        let record = self_signed_record(&kp, "rogue", "198.18.9.2:50103".parse().expect("addr")).expect("record");
        let all = variants(&record, 30).expect("variants");
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 30);
        for bytes in &all {
            if let Ok(Gossip::Node(signed)) = decode::<Gossip>(bytes) {
                assert!(signed.verify().is_err(), "a variant verifies");
            }
        }
    }
}
