//! The set of peers: by public key (handshakes), by session index (every
//! other message) and by overlay prefix (cryptokey routing).
//!
//! A table is immutable once built; changing the peer set builds a new one
//! that reuses the `Peer`s whose keys stay, so live sessions survive.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::peer::Peer;
use crate::routing::PrefixTable;
use crate::{OverlayError, PeerConfig, PrivateKey, PublicKey};

/// Session indices carry the peer id in their upper 24 bits.
const MAX_PEER_ID: u32 = (1 << 24) - 1;

#[derive(Default)]
pub struct PeerTable {
    peers: Vec<Arc<Peer>>,
    by_key: HashMap<PublicKey, usize>,
    by_id: HashMap<u32, usize>,
    routes: PrefixTable<usize>,
}

impl PeerTable {
    /// Builds the table for `configs`, keeping peers of `previous` with the same key.
    pub fn build(
        own_key: &PrivateKey,
        configs: &[PeerConfig],
        keepalive_secs: u16,
        previous: &PeerTable,
        next_id: &mut u32,
    ) -> Result<PeerTable, OverlayError> {
        let mut table = PeerTable::default();
        for config in configs {
            if table.by_key.contains_key(&config.public_key) {
                return Err(OverlayError::DuplicatePeer(config.public_key.to_string()));
            }
            let peer = match previous.by_key(&config.public_key) {
                Some(existing) => {
                    existing.reconfigure(config);
                    existing.clone()
                }
                None => {
                    *next_id = if *next_id >= MAX_PEER_ID { 1 } else { *next_id + 1 };
                    Arc::new(Peer::new(*next_id, own_key, config, keepalive_secs))
                }
            };
            let slot = table.peers.len();
            for net in &config.allowed_ips {
                if let Some(other) = table.routes.get_exact(*net) {
                    return Err(OverlayError::OverlappingPrefix {
                        peer: config.public_key.to_string(),
                        prefix: *net,
                        other: table.peers[other].public_key.to_string(),
                    });
                }
                table.routes.insert(*net, slot);
            }
            table.by_key.insert(config.public_key, slot);
            table.by_id.insert(peer.id, slot);
            table.peers.push(peer);
        }
        Ok(table)
    }

    /// The peer owning the destination of an outbound packet.
    #[inline]
    pub fn route(&self, dst: IpAddr) -> Option<&Arc<Peer>> {
        self.routes.lookup(dst).map(|slot| &self.peers[slot])
    }

    /// Whether `src` lies in the allowed prefixes of `peer` (and no more
    /// specific prefix of another peer claims it).
    #[inline]
    pub fn source_allowed(&self, peer: &Peer, src: IpAddr) -> bool {
        self.routes
            .lookup(src)
            .is_some_and(|slot| self.peers[slot].id == peer.id)
    }

    pub fn by_key(&self, key: &PublicKey) -> Option<&Arc<Peer>> {
        self.by_key.get(key).map(|slot| &self.peers[*slot])
    }

    /// The peer a receiver index (from any non-initiation message) belongs to.
    #[inline]
    pub fn by_session_index(&self, receiver_idx: u32) -> Option<&Arc<Peer>> {
        self.by_id.get(&(receiver_idx >> 8)).map(|slot| &self.peers[*slot])
    }

    pub fn peers(&self) -> &[Arc<Peer>] {
        &self.peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: &PrivateKey, nets: &[&str]) -> PeerConfig {
        PeerConfig {
            public_key: key.public_key(),
            endpoints: vec!["198.18.0.2:50103".parse().expect("addr")],
            allowed_ips: nets.iter().map(|n| n.parse().expect("net")).collect(),
        }
    }

    #[test]
    fn routes_both_ways_and_keeps_sessions_across_rebuilds() {
        let me = PrivateKey::generate().expect("key");
        let (a, b) = (PrivateKey::generate().expect("key"), PrivateKey::generate().expect("key"));
        let mut next_id = 0;
        let configs = vec![config(&a, &["10.18.0.0/26"]), config(&b, &["10.18.0.64/26"])];
        let t1 = PeerTable::build(&me, &configs, 25, &PeerTable::default(), &mut next_id)
            .expect("build");
        let pa = t1.route("10.18.0.5".parse().expect("ip")).expect("route a").clone();
        assert_eq!(pa.public_key, a.public_key());
        assert!(t1.source_allowed(&pa, "10.18.0.7".parse().expect("ip")));
        assert!(!t1.source_allowed(&pa, "10.18.0.70".parse().expect("ip")));
        assert!(t1.route("10.19.0.1".parse().expect("ip")).is_none());
        assert!(t1.by_session_index(pa.id << 8 | 3).is_some_and(|p| p.id == pa.id));

        let t2 = PeerTable::build(&me, &configs[..1], 25, &t1, &mut next_id).expect("rebuild");
        let pa2 = t2.by_key(&a.public_key()).expect("kept");
        assert!(Arc::ptr_eq(&pa, pa2), "the same Peer (and session) is reused");
        assert!(t2.by_key(&b.public_key()).is_none());
    }

    #[test]
    fn rejects_duplicates_and_overlaps() {
        let me = PrivateKey::generate().expect("key");
        let a = PrivateKey::generate().expect("key");
        let b = PrivateKey::generate().expect("key");
        let mut id = 0;
        let dup = vec![config(&a, &["10.0.0.1/32"]), config(&a, &["10.0.0.2/32"])];
        assert!(matches!(
            PeerTable::build(&me, &dup, 0, &PeerTable::default(), &mut id),
            Err(OverlayError::DuplicatePeer(_))
        ));
        let overlap = vec![config(&a, &["10.0.0.0/24"]), config(&b, &["10.0.0.0/24"])];
        assert!(matches!(
            PeerTable::build(&me, &overlap, 0, &PeerTable::default(), &mut id),
            Err(OverlayError::OverlappingPrefix { .. })
        ));
    }
}
