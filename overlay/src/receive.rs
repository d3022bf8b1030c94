//! The inbound decision for one datagram, without I/O: which peer sent it,
//! whether it authenticates, and whether its inner packet may enter the TUN.
//!
//! The inbound thread calls [`Receiver::receive`] for every datagram; the
//! fuzz target and the regression tests call the same function with bytes
//! of their choosing.

use std::net::SocketAddr;
use std::time::Instant;

use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, TunnResult};
use boringtun::x25519;
use parking_lot::Mutex;

use crate::counters::{DropCounters, DropReason};
use crate::packet;
use crate::peer::Decapsulated;
use crate::peer_table::PeerTable;
use crate::source_limit::{Rate, SourceLimit, TokenBucket, PER_SOURCE, SOURCE_SLOTS};
use crate::{PrivateKey, PublicKey};

/// Handshakes per second across all peers before cookies are demanded.
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// Type, reserved, receiver index and counter of a data message.
const DATA_HEADER: usize = 16;
/// Handshakes this node offers, across all peers, in answer to data for a
/// session it does not have: enough for a restart among dozens of peers,
/// little enough that forged data cannot make a handshake storm.
const OFFER_BUDGET: Rate = Rate { per_second: 2, burst: 16 };
/// MAC2, the cookie MAC, is the last 16 bytes of a handshake message.
const MAC2_LEN: usize = 16;

/// What became of a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// `len` bytes at the start of `out` are a packet for the TUN.
    ToTun { len: usize },
    /// Consumed (handshake, keepalive, cookie) or dropped and counted.
    Nothing,
}

/// Node-wide receive state: our key, the handshake rate limiters, and the
/// drops that belong to no known peer.
pub struct Receiver {
    own_key: PrivateKey,
    own_public: x25519::PublicKey,
    rate_limiter: RateLimiter,
    /// Handshakes per source once cookies are in play (see `receive`).
    sources: Mutex<SourceLimit>,
    /// Handshakes offered to peers that send data for a session we lack.
    offers: Mutex<TokenBucket>,
    pub drops: DropCounters,
}

impl Receiver {
    pub fn new(own_key: PrivateKey) -> Self {
        let own_public = own_key.public_key().to_x25519();
        Self {
            rate_limiter: RateLimiter::new(&own_public, HANDSHAKE_RATE_LIMIT),
            sources: Mutex::new(SourceLimit::new(SOURCE_SLOTS, PER_SOURCE)),
            offers: Mutex::new(TokenBucket::new(OFFER_BUDGET)),
            own_key,
            own_public,
            drops: DropCounters::default(),
        }
    }

    /// Starts a new rate-limiting window; call once a second.
    pub fn reset_rate_limit(&self) {
        self.rate_limiter.reset_count();
    }

    /// Handles one datagram from `from`. A decrypted packet is written to
    /// `out`; replies (handshake responses, cookies, packets released by a
    /// completed handshake) go to `send` with their destination.
    pub fn receive(
        &self,
        table: &PeerTable,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        now: Instant,
        mut send: impl FnMut(&[u8], SocketAddr),
    ) -> Received {
        // The shared rate limiter checks MAC1 and, under a handshake flood,
        // answers with a cookie before we spend a Diffie-Hellman on anyone.
        let mut cookie = [0u8; 64];
        let parsed = match self.rate_limiter.verify_packet(Some(from.ip()), datagram, &mut cookie) {
            Ok(p) => p,
            Err(TunnResult::WriteToNetwork(reply)) => {
                send(reply, from);
                return self.drop(DropReason::RateLimited);
            }
            Err(TunnResult::Err(e)) => return self.drop(DropReason::from_wireguard(&e)),
            Err(_) => return self.drop(DropReason::Other),
        };
        // A cookie proves the source owns its address, but not that it asks
        // for little: each source gets 20 handshakes a second (WireGuard's
        // per-source ratelimiter), checked before the Diffie-Hellman below
        // or in the peer's session. boringtun does not say whether it was
        // under load, so this covers every handshake carrying a MAC2: under
        // load those are the ones with a valid cookie; otherwise the global
        // limit bounds the work anyway. Data messages skip the check.
        if let Packet::HandshakeInit(_) | Packet::HandshakeResponse(_) = parsed {
            if carries_mac2(datagram) && !self.sources.lock().allow(from.ip(), now) {
                return self.drop(DropReason::HandshakeRateLimited);
            }
        }
        // A data message decrypts to its length minus header (16) and tag
        // (16); boringtun panics rather than fail if `out` is too small, so
        // anything larger than our buffer is refused here, unauthenticated.
        if let Packet::PacketData(_) = parsed {
            if datagram.len().saturating_sub(DATA_HEADER) > out.len() {
                return self.drop(DropReason::Malformed);
            }
        }
        let peer = match parsed {
            Packet::HandshakeInit(init) => {
                match parse_handshake_anon(self.own_key.secret(), &self.own_public, &init) {
                    Ok(half) => match table.by_key(&PublicKey(half.peer_static_public)) {
                        Some(p) => p,
                        None => {
                            tracing::debug!(%from, key = %PublicKey(half.peer_static_public), "handshake from unknown key");
                            return self.drop(DropReason::UnknownKey);
                        }
                    },
                    Err(e) => return self.drop(DropReason::from_wireguard(&e)),
                }
            }
            Packet::HandshakeResponse(p) => match table.by_session_index(p.receiver_idx) {
                Some(p) => p,
                None => return self.drop(DropReason::UnknownSession),
            },
            Packet::PacketCookieReply(p) => match table.by_session_index(p.receiver_idx) {
                Some(p) => p,
                None => return self.drop(DropReason::UnknownSession),
            },
            Packet::PacketData(p) => match table.by_session_index(p.receiver_idx) {
                Some(p) => p,
                None => return self.drop(DropReason::UnknownSession),
            },
        };
        match peer.decapsulate(from, datagram, out, now, &mut send) {
            Decapsulated::ToTun { len } => match packet::source(&out[..len]) {
                // Cryptokey routing, inbound half: the inner source must be
                // one this peer owns.
                Some(src) if table.source_allowed(peer, src) => {
                    peer.counters.rx.add(1, len as u64);
                    Received::ToTun { len }
                }
                Some(src) => {
                    tracing::debug!(peer = %peer.public_key.short(), %src, "inner source outside allowed prefixes");
                    peer.counters.drops.add(DropReason::SourceNotAllowed);
                    Received::Nothing
                }
                None => {
                    peer.counters.drops.add(DropReason::InvalidInner);
                    Received::Nothing
                }
            },
            Decapsulated::Consumed => Received::Nothing,
            Decapsulated::Dropped(reason) => {
                peer.counters.drops.add(reason);
                Received::Nothing
            }
            Decapsulated::NoSession(reason) => {
                peer.counters.drops.add(reason);
                peer.offer_fresh_handshake(out, now, || self.offers.lock().allow(now), &mut send);
                Received::Nothing
            }
        }
    }

    fn drop(&self, reason: DropReason) -> Received {
        self.drops.add(reason);
        Received::Nothing
    }
}

/// Whether a handshake message (MAC1 already checked) carries a MAC2: an
/// initiator only sets one when it holds a cookie from us.
fn carries_mac2(datagram: &[u8]) -> bool {
    datagram.len() >= MAC2_LEN && datagram[datagram.len() - MAC2_LEN..].iter().any(|b| *b != 0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use boringtun::noise::Tunn;

    use super::*;
    use crate::fuzz_harness::ipv4;
    use crate::peer::Encapsulated;
    use crate::PeerConfig;

    /// One side of an in-memory mesh: key, receiver and peer table.
    struct Node {
        key: PrivateKey,
        receiver: Receiver,
        table: PeerTable,
        addr: SocketAddr,
    }

    fn node(addr: &str) -> Node {
        let key = PrivateKey::generate().expect("key");
        Node {
            receiver: Receiver::new(key.clone()),
            key,
            table: PeerTable::default(),
            addr: addr.parse().expect("addr"),
        }
    }

    fn connect(a: &mut Node, b: &Node, b_prefix: &str) {
        let config = PeerConfig {
            public_key: b.key.public_key(),
            endpoints: vec![b.addr],
            allowed_ips: vec![b_prefix.parse().expect("net")],
        };
        let mut id = 0;
        a.table = PeerTable::build(&a.key, &[config], 0, &PeerTable::default(), &mut id, Instant::now());
    }

    /// Delivers `datagram` from `from` to `to`, returning the TUN packet (if
    /// any) and the replies `to` sent.
    fn deliver(to: &Node, from: &Node, datagram: &[u8]) -> (Option<Vec<u8>>, Vec<Vec<u8>>) {
        let mut out = vec![0u8; 2048];
        let mut replies = Vec::new();
        let r = to.receiver.receive(&to.table, from.addr, datagram, &mut out, Instant::now(), |p, _| {
            replies.push(p.to_vec())
        });
        let packet = match r {
            Received::ToTun { len } => Some(out[..len].to_vec()),
            Received::Nothing => None,
        };
        (packet, replies)
    }

    /// Runs the handshake A→B and returns the first data datagram A sent.
    fn established() -> (Node, Node, Vec<u8>, Vec<u8>) {
        let (a, b, _, packet, data) = established_recording();
        (a, b, packet, data)
    }

    /// [`established`], and A's handshake initiation as recorded on the wire.
    fn established_recording() -> (Node, Node, Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut a = node("198.18.1.2:50103");
        let mut b = node("198.18.2.2:50103");
        connect(&mut a, &b, "10.18.0.2/32");
        connect(&mut b, &a, "10.18.0.1/32");
        let packet = ipv4([10, 18, 0, 1], [10, 18, 0, 2], b"hello grove");
        let peer_b = a.table.route("10.18.0.2".parse().expect("ip")).expect("route").clone();
        let mut buf = vec![0u8; 2048];
        let Encapsulated::Send { len, .. } = peer_b.encapsulate(&packet, &mut buf) else {
            panic!("first packet must trigger a handshake initiation");
        };
        let init = buf[..len].to_vec();
        let (none, response) = deliver(&b, &a, &init);
        assert!(none.is_none());
        assert_eq!(response.len(), 1, "B answers the initiation");
        let (none, queued) = deliver(&a, &b, &response[0]);
        assert!(none.is_none());
        // A confirms the session with a keepalive, then releases the packet
        // it queued while the handshake ran.
        assert_eq!(queued.len(), 2, "keepalive + queued packet");
        let (none, _) = deliver(&b, &a, &queued[0]);
        assert!(none.is_none(), "a keepalive carries nothing for the TUN");
        (a, b, init, packet, queued[1].clone())
    }

    #[test]
    fn handshake_then_data_reaches_the_tun() {
        let (a, b, packet, data) = established();
        let (delivered, _) = deliver(&b, &a, &data);
        assert_eq!(delivered.as_deref(), Some(&packet[..]));
        assert!(!data.windows(11).any(|w| w == b"hello grove"), "ciphertext must not carry the plaintext");
    }

    #[test]
    fn replayed_datagram_is_dropped_and_counted() {
        let (a, b, _, data) = established();
        assert!(deliver(&b, &a, &data).0.is_some());
        assert!(deliver(&b, &a, &data).0.is_none());
        let peer_a = b.table.by_key(&a.key.public_key()).expect("peer");
        assert_eq!(peer_a.counters.drops.get(DropReason::Replay), 1);
    }

    #[test]
    fn inner_source_outside_allowed_prefixes_is_dropped() {
        let (a, b, _, _) = established();
        let spoofed = ipv4([10, 18, 0, 99], [10, 18, 0, 2], b"spoof");
        let peer_b = a.table.by_key(&b.key.public_key()).expect("peer");
        let mut buf = vec![0u8; 2048];
        let Encapsulated::Send { len, .. } = peer_b.encapsulate(&spoofed, &mut buf) else {
            panic!("session is established");
        };
        assert!(deliver(&b, &a, &buf[..len]).0.is_none());
        let peer_a = b.table.by_key(&a.key.public_key()).expect("peer");
        assert_eq!(peer_a.counters.drops.get(DropReason::SourceNotAllowed), 1);
    }

    #[test]
    fn handshake_from_unknown_key_is_dropped_and_counted() {
        let (_, b, _, _) = established();
        let mut stranger = node("198.18.9.2:50103");
        connect(&mut stranger, &b, "10.18.0.2/32");
        let peer_b = stranger.table.by_key(&b.key.public_key()).expect("peer").clone();
        let mut buf = vec![0u8; 2048];
        let Encapsulated::Send { len, .. } = peer_b.encapsulate(&ipv4([10, 18, 0, 9], [10, 18, 0, 2], b"x"), &mut buf)
        else {
            panic!("initiation expected");
        };
        let (packet, replies) = deliver(&b, &stranger, &buf[..len]);
        assert!(packet.is_none() && replies.is_empty(), "no answer to strangers");
        assert_eq!(b.receiver.drops.get(DropReason::UnknownKey), 1);
    }

    #[test]
    fn garbage_truncated_and_tampered_datagrams_are_dropped() {
        let (a, b, _, data) = established();
        for junk in [&[][..], &[4u8][..], &[1u8; 3][..], &[9u8; 200][..], &data[..data.len() - 1]] {
            assert!(deliver(&b, &a, junk).0.is_none());
        }
        let mut tampered = data.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(deliver(&b, &a, &tampered).0.is_none());
        let peer_a = b.table.by_key(&a.key.public_key()).expect("peer");
        // The truncated data message and the tampered one both fail the tag.
        assert_eq!(peer_a.counters.drops.get(DropReason::AuthFailed), 2);
        assert!(b.receiver.drops.get(DropReason::Malformed) >= 4);
        // The session still works after all that.
        assert!(deliver(&b, &a, &data).0.is_some());
    }

    #[test]
    fn authenticated_packet_from_new_address_moves_the_endpoint() {
        let (mut a, b, _, data) = established();
        a.addr = "198.18.7.7:40000".parse().expect("addr");
        assert!(deliver(&b, &a, &data).0.is_some());
        let peer_a = b.table.by_key(&a.key.public_key()).expect("peer");
        assert_eq!(peer_a.endpoint(), Some(a.addr));
    }

    #[test]
    fn simultaneous_open_delivers_the_first_packet_intact() {
        let mut a = node("198.18.1.2:50103");
        let mut b = node("198.18.2.2:50103");
        connect(&mut a, &b, "10.18.0.2/32");
        connect(&mut b, &a, "10.18.0.1/32");
        let (pa, pb) = (
            ipv4([10, 18, 0, 1], [10, 18, 0, 2], b"from a"),
            ipv4([10, 18, 0, 2], [10, 18, 0, 1], b"from b"),
        );
        let a_to_b = a.table.by_key(&b.key.public_key()).expect("peer").clone();
        let b_to_a = b.table.by_key(&a.key.public_key()).expect("peer").clone();
        let mut buf = vec![0u8; 2048];
        // Both sides have something to send before any session exists.
        let Encapsulated::Send { len, .. } = a_to_b.encapsulate(&pa, &mut buf) else { panic!("init") };
        let init_a = buf[..len].to_vec();
        assert!(matches!(b_to_a.encapsulate(&pb, &mut buf), Encapsulated::Send { .. }));
        let (_, response) = deliver(&b, &a, &init_a);
        let (_, from_a) = deliver(&a, &b, &response[0]);
        // A's queued packet (after its keepalive) reaches B's TUN unharmed,
        // even though B has its own packet queued.
        let mut delivered = None;
        let mut from_b = Vec::new();
        for d in &from_a {
            let (packet, replies) = deliver(&b, &a, d);
            delivered = delivered.or(packet);
            from_b.extend(replies);
        }
        assert_eq!(delivered.as_deref(), Some(&pa[..]), "first packet intact");
        // B's queued packet leaves with the keepalive's flush or on the next
        // timer tick, whichever comes first.
        b_to_a.update_timers(&mut buf, Instant::now(), |p, _| from_b.push(p.to_vec()));
        let got: Vec<Vec<u8>> = from_b.iter().filter_map(|d| deliver(&a, &b, d).0).collect();
        assert!(got.contains(&pb), "B's queued packet arrives");
    }

    /// A handshake initiation from a bare boringtun session (an attacker's
    /// or a peer's own implementation); with a cookie it carries a MAC2.
    fn initiation(tunn: &mut Tunn, force: bool) -> Vec<u8> {
        let mut buf = [0u8; 256];
        match tunn.format_handshake_initiation(&mut buf, force) {
            TunnResult::WriteToNetwork(p) => p.to_vec(),
            _ => panic!("initiation expected"),
        }
    }

    #[test]
    fn a_cookie_holder_gets_its_per_source_budget_of_diffie_hellmans_and_no_more() {
        let mut b = node("198.18.2.2:50103");
        // B knows `friend`, which comes from a second source during the flood.
        let friend = PrivateKey::generate().expect("key");
        let friend_addr: SocketAddr = "198.18.3.3:50103".parse().expect("addr");
        let config = PeerConfig {
            public_key: friend.public_key(),
            endpoints: vec![friend_addr],
            allowed_ips: vec!["10.18.0.3/32".parse().expect("net")],
        };
        b.table = PeerTable::build(&b.key, &[config], 0, &PeerTable::default(), &mut 0, Instant::now());
        let b_public = b.key.public_key().to_x25519();
        let now = Instant::now();
        let mut out = vec![0u8; 2048];
        let mut replies = Vec::new();
        let mut receive = |from: SocketAddr, d: &[u8], replies: &mut Vec<Vec<u8>>| {
            b.receiver.receive(&b.table, from, d, &mut out, now, |p, _| replies.push(p.to_vec()));
        };

        // An attacker at one real address, with a key B does not know.
        let attacker: SocketAddr = "198.51.100.9:40000".parse().expect("addr");
        let stranger = PrivateKey::generate().expect("key");
        let mut flooder = Tunn::new(stranger.secret().clone(), b_public, None, None, 7, None);
        let init = initiation(&mut flooder, false);
        for _ in 0..=HANDSHAKE_RATE_LIMIT {
            receive(attacker, &init, &mut replies);
        }
        let drops = &b.receiver.drops;
        assert_eq!(drops.get(DropReason::UnknownKey), HANDSHAKE_RATE_LIMIT, "100 Diffie-Hellmans, then load");
        assert_eq!(replies.len(), 1, "a cookie for the 101st");
        let mut buf = [0u8; 256];
        assert!(matches!(flooder.decapsulate(Some(attacker.ip()), &replies[0], &mut buf), TunnResult::Done));
        let with_cookie = initiation(&mut flooder, true);
        assert!(carries_mac2(&with_cookie));

        replies.clear();
        for _ in 0..10_000 {
            receive(attacker, &with_cookie, &mut replies);
        }
        let dh = drops.get(DropReason::UnknownKey) - HANDSHAKE_RATE_LIMIT;
        assert!(dh <= PER_SOURCE.burst, "{dh} Diffie-Hellmans for one source");
        assert_eq!(drops.get(DropReason::HandshakeRateLimited), 10_000 - dh);
        assert!(replies.is_empty());

        // Meanwhile a peer from another address gets a cookie, then its
        // handshake answered.
        let mut friend_tunn = Tunn::new(friend.secret().clone(), b_public, None, None, 9, None);
        receive(friend_addr, &initiation(&mut friend_tunn, false), &mut replies);
        assert_eq!(replies.len(), 1);
        assert!(matches!(friend_tunn.decapsulate(Some(friend_addr.ip()), &replies[0], &mut buf), TunnResult::Done));
        replies.clear();
        receive(friend_addr, &initiation(&mut friend_tunn, true), &mut replies);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].first(), Some(&2), "a handshake response");
    }

    #[test]
    fn replayed_initiation_after_the_peer_is_removed_and_readded_is_refused() {
        let (a, mut b, init, _, data) = established_recording();
        let config_a = PeerConfig {
            public_key: a.key.public_key(),
            endpoints: vec![a.addr],
            allowed_ips: vec!["10.18.0.1/32".parse().expect("net")],
        };
        // A is declared dead, then revived.
        let (mut id, now) = (1, Instant::now());
        let removed = PeerTable::build(&b.key, &[], 0, &b.table, &mut id, now);
        b.table = PeerTable::build(&b.key, &[config_a], 0, &removed, &mut id, now + Duration::from_secs(60));

        let replayer: SocketAddr = "203.0.113.66:50103".parse().expect("addr");
        let mut replies = Vec::new();
        b.receiver.receive(&b.table, replayer, &init, &mut [0; 2048], now, |p, to| replies.push((p.to_vec(), to)));
        assert!(replies.is_empty(), "no response to a replayed initiation: {replies:?}");
        let peer_a = b.table.by_key(&a.key.public_key()).expect("peer");
        assert_eq!(peer_a.counters.drops.get(DropReason::HandshakeRejected), 1, "a stale timestamp");
        assert_eq!(peer_a.endpoint(), Some(a.addr), "the endpoint stays");
        assert!(deliver(&b, &a, &data).0.is_some(), "and so does the session");
    }

    #[test]
    fn forged_data_for_guessed_indices_offers_a_bounded_number_of_handshakes() {
        let mut b = node("198.18.2.2:50103");
        let configs: Vec<PeerConfig> = (0..64u8)
            .map(|i| PeerConfig {
                public_key: PrivateKey::generate().expect("key").public_key(),
                endpoints: vec![SocketAddr::from(([198, 18, 3, i], 50103))],
                allowed_ips: vec![format!("10.18.1.{i}/32").parse().expect("net")],
            })
            .collect();
        b.table = PeerTable::build(&b.key, &configs, 0, &PeerTable::default(), &mut 0, Instant::now());
        let forger: SocketAddr = "203.0.113.7:4444".parse().expect("addr");
        let (t0, secs) = (Instant::now(), 5);
        let mut out = vec![0u8; 2048];
        let mut inits = 0;
        // Every 100 ms, a data message for two session slots of every peer
        // id (they are sequential): as if B had lost all its sessions.
        for tick in 0..secs * 10 {
            let now = t0 + Duration::from_millis(100 * tick);
            for peer in b.table.peers() {
                for slot in 0..2 {
                    let mut forged = vec![0u8; DATA_HEADER + 16 + 20];
                    forged[0] = 4;
                    forged[4..8].copy_from_slice(&(peer.id << 8 | slot).to_le_bytes());
                    b.receiver.receive(&b.table, forger, &forged, &mut out, now, |p, to| {
                        assert_ne!(to, forger, "never to the forger");
                        inits += usize::from(p.first() == Some(&1));
                    });
                }
            }
        }
        let bound = OFFER_BUDGET.burst + OFFER_BUDGET.per_second * secs;
        assert!(inits as u64 <= bound, "{inits} initiations, more than {bound}");
        assert!(inits > 0, "offers are limited, not gone");
    }

    #[test]
    fn data_for_a_session_lost_in_a_restart_brings_a_fresh_handshake() {
        let (a, b, _, data) = established();
        // B restarts: same key and address, no sessions.
        let mut b = Node {
            receiver: Receiver::new(b.key.clone()),
            key: b.key,
            table: PeerTable::default(),
            addr: b.addr,
        };
        connect(&mut b, &a, "10.18.0.1/32");
        let (none, offer) = deliver(&b, &a, &data);
        assert!(none.is_none());
        assert_eq!(offer.len(), 1, "B offers a handshake at once");
        let (_, response) = deliver(&a, &b, &offer[0]);
        assert_eq!(response.first().and_then(|r| r.first()), Some(&2));
        let (_, keepalive) = deliver(&b, &a, &response[0]);
        assert_eq!(keepalive.len(), 1);
        assert!(deliver(&a, &b, &keepalive[0]).0.is_none());
        let packet = ipv4([10, 18, 0, 1], [10, 18, 0, 2], b"after the restart");
        let mut buf = vec![0u8; 2048];
        let peer_b = a.table.by_key(&b.key.public_key()).expect("peer");
        let Encapsulated::Send { len, .. } = peer_b.encapsulate(&packet, &mut buf) else {
            panic!("session is up again");
        };
        assert_eq!(deliver(&b, &a, &buf[..len]).0.as_deref(), Some(&packet[..]));
    }
}
