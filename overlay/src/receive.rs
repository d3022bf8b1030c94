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

use crate::counters::{DropCounters, DropReason};
use crate::packet;
use crate::peer::Decapsulated;
use crate::peer_table::PeerTable;
use crate::{PrivateKey, PublicKey};

/// Handshakes per second across all peers before cookies are demanded.
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// Type, reserved, receiver index and counter of a data message.
const DATA_HEADER: usize = 16;

/// What became of a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// `len` bytes at the start of `out` are a packet for the TUN.
    ToTun { len: usize },
    /// Consumed (handshake, keepalive, cookie) or dropped and counted.
    Nothing,
}

/// Node-wide receive state: our key, the handshake rate limiter, and the
/// drops that belong to no known peer.
pub struct Receiver {
    own_key: PrivateKey,
    own_public: x25519::PublicKey,
    rate_limiter: RateLimiter,
    pub drops: DropCounters,
}

impl Receiver {
    pub fn new(own_key: PrivateKey) -> Self {
        let own_public = own_key.public_key().to_x25519();
        Self {
            rate_limiter: RateLimiter::new(&own_public, HANDSHAKE_RATE_LIMIT),
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
        }
    }

    fn drop(&self, reason: DropReason) -> Received {
        self.drops.add(reason);
        Received::Nothing
    }
}

#[cfg(test)]
mod tests {
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
        a.table = PeerTable::build(&a.key, &[config], 0, &PeerTable::default(), &mut id).expect("table");
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
        let (none, response) = deliver(&b, &a, &buf[..len]);
        assert!(none.is_none());
        assert_eq!(response.len(), 1, "B answers the initiation");
        let (none, queued) = deliver(&a, &b, &response[0]);
        assert!(none.is_none());
        // A confirms the session with a keepalive, then releases the packet
        // it queued while the handshake ran.
        assert_eq!(queued.len(), 2, "keepalive + queued packet");
        let (none, _) = deliver(&b, &a, &queued[0]);
        assert!(none.is_none(), "a keepalive carries nothing for the TUN");
        (a, b, packet, queued[1].clone())
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
}
