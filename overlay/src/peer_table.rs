//! The set of peers: by public key (handshakes), by session index (every
//! other message) and by overlay prefix (cryptokey routing).
//!
//! A table is immutable once built; changing the peer set builds a new one
//! that reuses the `Peer`s whose keys stay, so live sessions survive. Peers
//! that leave are kept aside for a while (see [`RETIRED_GRACE`]), and a
//! configured entry that cannot be added is skipped, not fatal to the rest.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::peer::Peer;
use crate::routing::PrefixTable;
use crate::{OverlayError, PeerConfig, PrivateKey, PublicKey};

/// Session indices carry the peer id in their upper 24 bits.
const MAX_PEER_ID: u32 = (1 << 24) - 1;
/// How long a removed peer is kept. Its session remembers the timestamp
/// (TAI64N) of the last handshake initiation it accepted; if the same key
/// comes back (a member declared dead, then revived) within this time it
/// gets that session back, so a recorded old initiation is refused as a
/// replay (WireGuard whitepaper section 5.1) instead of being accepted and
/// moving the endpoint to whoever replayed it.
pub const RETIRED_GRACE: Duration = Duration::from_secs(15 * 60);
/// Removed peers kept at most (a few KiB each); the oldest go first.
pub const MAX_RETIRED: usize = 256;

/// A configured peer that was left out of the table, and why. The first
/// entry wins, so the outcome does not depend on anything but the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedPeer {
    /// Position of the entry in the configurations given.
    pub index: usize,
    pub public_key: PublicKey,
    pub reason: SkipReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// An earlier entry has the same key (say, two cloned SD cards).
    DuplicateKey,
    /// `prefix` is already routed to the earlier entry `owner`.
    PrefixTaken { prefix: IpNet, owner: PublicKey },
}

impl fmt::Display for SkippedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer entry {} skipped: {}", self.index, OverlayError::from(self.clone()))
    }
}

impl From<SkippedPeer> for OverlayError {
    fn from(skipped: SkippedPeer) -> Self {
        match skipped.reason {
            SkipReason::DuplicateKey => OverlayError::DuplicatePeer(skipped.public_key.to_string()),
            SkipReason::PrefixTaken { prefix, owner } => OverlayError::OverlappingPrefix {
                peer: skipped.public_key.to_string(),
                prefix,
                other: owner.to_string(),
            },
        }
    }
}

/// A peer removed from the table at `since`.
#[derive(Clone)]
struct Retired {
    peer: Arc<Peer>,
    since: Instant,
}

impl Retired {
    fn within_grace(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < RETIRED_GRACE
    }
}

#[derive(Default)]
pub struct PeerTable {
    peers: Vec<Arc<Peer>>,
    by_key: HashMap<PublicKey, usize>,
    by_id: HashMap<u32, usize>,
    routes: PrefixTable<usize>,
    /// Peers removed less than [`RETIRED_GRACE`] ago, oldest first. They
    /// take no part in routing or receiving; their ids stay reserved.
    retired: Vec<Retired>,
    skipped: Vec<SkippedPeer>,
}

impl PeerTable {
    /// Builds the table for `configs`, keeping peers of `previous` (or
    /// retired from it) with the same key. Entries that cannot be added are
    /// skipped and listed in [`Self::skipped`].
    pub fn build(
        own_key: &PrivateKey,
        configs: &[PeerConfig],
        keepalive_secs: u16,
        previous: &PeerTable,
        next_id: &mut u32,
        now: Instant,
    ) -> PeerTable {
        let mut table = PeerTable::default();
        for (index, config) in configs.iter().enumerate() {
            let skip = |reason| SkippedPeer { index, public_key: config.public_key, reason };
            if table.by_key.contains_key(&config.public_key) {
                table.skipped.push(skip(SkipReason::DuplicateKey));
                continue;
            }
            let taken = config
                .allowed_ips
                .iter()
                .find_map(|net| table.routes.get_exact(*net).map(|slot| (*net, slot)));
            if let Some((prefix, slot)) = taken {
                let owner = table.peers[slot].public_key;
                table.skipped.push(skip(SkipReason::PrefixTaken { prefix, owner }));
                continue;
            }
            let peer = match previous.by_key(&config.public_key).or_else(|| previous.retired(&config.public_key, now)) {
                Some(existing) => {
                    existing.reconfigure(config);
                    existing.clone()
                }
                None => {
                    let id = free_id(next_id, previous, &table);
                    Arc::new(Peer::new(id, own_key, config, keepalive_secs))
                }
            };
            let slot = table.peers.len();
            for net in &config.allowed_ips {
                table.routes.insert(*net, slot);
            }
            table.by_key.insert(config.public_key, slot);
            table.by_id.insert(peer.id, slot);
            table.peers.push(peer);
        }
        let still_retired = previous.retired.iter().filter(|r| r.within_grace(now));
        let leaving = previous.peers.iter().map(|peer| Retired { peer: peer.clone(), since: now });
        table.retired = still_retired
            .cloned()
            .chain(leaving)
            .filter(|r| !table.by_key.contains_key(&r.peer.public_key))
            .collect();
        let excess = table.retired.len().saturating_sub(MAX_RETIRED);
        table.retired.drain(..excess);
        table
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

    /// The configured entries this table left out.
    pub fn skipped(&self) -> &[SkippedPeer] {
        &self.skipped
    }

    fn retired(&self, key: &PublicKey, now: Instant) -> Option<&Arc<Peer>> {
        self.retired
            .iter()
            .find(|r| r.peer.public_key == *key && r.within_grace(now))
            .map(|r| &r.peer)
    }
}

/// The next peer id after `next_id` that no peer of `previous` (live or
/// retired) nor of the table being built holds, so that a reused id never
/// sends one peer's messages to another. Ends: far fewer than 2^24 ids are
/// ever in use.
fn free_id(next_id: &mut u32, previous: &PeerTable, table: &PeerTable) -> u32 {
    loop {
        *next_id = if *next_id >= MAX_PEER_ID { 1 } else { *next_id + 1 };
        let id = *next_id;
        let in_use = previous.by_id.contains_key(&id)
            || table.by_id.contains_key(&id)
            || previous.retired.iter().any(|r| r.peer.id == id);
        if !in_use {
            return id;
        }
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

    fn keys<const N: usize>() -> [PrivateKey; N] {
        std::array::from_fn(|_| PrivateKey::generate().expect("key"))
    }

    #[test]
    fn routes_both_ways_and_keeps_sessions_across_rebuilds() {
        let [me, a, b] = keys();
        let mut next_id = 0;
        let now = Instant::now();
        let configs = vec![config(&a, &["10.18.0.0/26"]), config(&b, &["10.18.0.64/26"])];
        let t1 = PeerTable::build(&me, &configs, 25, &PeerTable::default(), &mut next_id, now);
        let pa = t1.route("10.18.0.5".parse().expect("ip")).expect("route a").clone();
        assert_eq!(pa.public_key, a.public_key());
        assert!(t1.source_allowed(&pa, "10.18.0.7".parse().expect("ip")));
        assert!(!t1.source_allowed(&pa, "10.18.0.70".parse().expect("ip")));
        assert!(t1.route("10.19.0.1".parse().expect("ip")).is_none());
        assert!(t1.by_session_index(pa.id << 8 | 3).is_some_and(|p| p.id == pa.id));

        let t2 = PeerTable::build(&me, &configs[..1], 25, &t1, &mut next_id, now);
        let pa2 = t2.by_key(&a.public_key()).expect("kept");
        assert!(Arc::ptr_eq(&pa, pa2), "the same Peer (and session) is reused");
        assert!(t2.by_key(&b.public_key()).is_none());
    }

    #[test]
    fn build_with_two_entries_sharing_a_key_keeps_one_and_builds_the_others() {
        let [me, a, b, c] = keys();
        let mut id = 0;
        let configs = vec![
            config(&a, &["10.0.0.1/32"]),
            config(&b, &["10.0.0.2/32"]),
            config(&a, &["10.0.0.3/32"]),
            config(&c, &["10.0.0.4/32"]),
        ];
        let t = PeerTable::build(&me, &configs, 0, &PeerTable::default(), &mut id, Instant::now());
        assert_eq!(t.peers().len(), 3, "a (first entry), b and c");
        let route = |ip: &str| t.route(ip.parse().expect("ip")).map(|p| p.public_key);
        assert_eq!(route("10.0.0.1"), Some(a.public_key()), "the first entry of a wins");
        assert_eq!(route("10.0.0.3"), None, "the duplicate's prefix is not routed");
        assert_eq!(route("10.0.0.2"), Some(b.public_key()));
        assert_eq!(route("10.0.0.4"), Some(c.public_key()));
        assert_eq!(
            t.skipped(),
            &[SkippedPeer { index: 2, public_key: a.public_key(), reason: SkipReason::DuplicateKey }]
        );
        assert!(matches!(OverlayError::from(t.skipped()[0].clone()), OverlayError::DuplicatePeer(_)));
    }

    #[test]
    fn an_entry_whose_prefix_is_taken_is_skipped_whole() {
        let [me, a, b, c] = keys();
        let mut id = 0;
        let configs = vec![
            config(&a, &["10.0.0.0/24"]),
            config(&b, &["10.0.1.0/24", "10.0.0.0/24"]),
            config(&c, &["10.0.2.0/24"]),
        ];
        let t = PeerTable::build(&me, &configs, 0, &PeerTable::default(), &mut id, Instant::now());
        assert!(t.by_key(&b.public_key()).is_none());
        assert!(t.route("10.0.1.1".parse().expect("ip")).is_none(), "none of b's prefixes is routed");
        assert!(t.by_key(&c.public_key()).is_some());
        let prefix = "10.0.0.0/24".parse().expect("net");
        assert_eq!(t.skipped()[0].reason, SkipReason::PrefixTaken { prefix, owner: a.public_key() });
        assert!(matches!(OverlayError::from(t.skipped()[0].clone()), OverlayError::OverlappingPrefix { .. }));
    }

    #[test]
    fn a_removed_peer_comes_back_as_itself_within_the_grace_period() {
        let [me, a, b] = keys();
        let mut id = 0;
        let t0 = Instant::now();
        let both = vec![config(&a, &["10.0.0.1/32"]), config(&b, &["10.0.0.2/32"])];
        let t1 = PeerTable::build(&me, &both, 0, &PeerTable::default(), &mut id, t0);
        let pa = t1.by_key(&a.public_key()).expect("a").clone();
        let t2 = PeerTable::build(&me, &both[1..], 0, &t1, &mut id, t0);
        assert!(t2.by_key(&a.public_key()).is_none() && t2.by_session_index(pa.id << 8).is_none());
        // A newcomer must not get the id a retired peer will want back.
        let [d] = keys();
        let t3 = PeerTable::build(&me, &[both[1].clone(), config(&d, &["10.0.0.4/32"])], 0, &t2, &mut id, t0);
        assert_ne!(t3.by_key(&d.public_key()).expect("d").id, pa.id);
        let back = PeerTable::build(&me, &both, 0, &t3, &mut id, t0 + RETIRED_GRACE / 2);
        assert!(Arc::ptr_eq(back.by_key(&a.public_key()).expect("a"), &pa), "same Peer, same session state");
        // Past the grace period a returning key starts afresh.
        let gone = PeerTable::build(&me, &both[1..], 0, &back, &mut id, t0 + RETIRED_GRACE);
        let later = PeerTable::build(&me, &both, 0, &gone, &mut id, t0 + RETIRED_GRACE * 2 + Duration::from_secs(1));
        assert!(!Arc::ptr_eq(later.by_key(&a.public_key()).expect("a"), &pa));
    }

    #[test]
    fn retired_peers_are_bounded() {
        let [me] = keys();
        let mut id = 0;
        let now = Instant::now();
        let configs: Vec<PeerConfig> = (0..MAX_RETIRED + 10)
            .map(|i| {
                let mut c = config(&PrivateKey::generate().expect("key"), &[]);
                c.allowed_ips = vec![format!("10.1.{}.{}/32", i / 256, i % 256).parse().expect("net")];
                c
            })
            .collect();
        let full = PeerTable::build(&me, &configs, 0, &PeerTable::default(), &mut id, now);
        let empty = PeerTable::build(&me, &[], 0, &full, &mut id, now);
        assert_eq!(empty.retired.len(), MAX_RETIRED);
    }
}
