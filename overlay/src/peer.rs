//! One peer: its boringtun session, where it is reachable, and its counters.
//!
//! `Tunn` needs `&mut self` for both directions, so the session sits behind a
//! mutex taken once per packet (uncontended in the common case: the outbound
//! thread encrypts, the inbound thread decrypts, rarely for the same peer at
//! the same instant). The endpoint lives under the same lock, so roaming and
//! sending never see a torn state.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::{Tunn, TunnResult};
use ipnet::IpNet;
use parking_lot::Mutex;

use crate::counters::{DropReason, PeerCounters, PeerStatus};
use crate::endpoint::EndpointSelector;
use crate::mtu::DATA_OVERHEAD;
use crate::{PeerConfig, PrivateKey, PublicKey};

/// WireGuard message types (whitepaper section 5.4).
const MSG_HANDSHAKE_INIT: u8 = 1;
const MSG_HANDSHAKE_RESPONSE: u8 = 2;
const MSG_DATA: u8 = 4;
/// WireGuard's REKEY_TIMEOUT (whitepaper section 6.1).
const REKEY_TIMEOUT: Duration = Duration::from_secs(5);
/// Type, reserved, receiver index and counter of a data message.
const DATA_HEADER: usize = 16;
/// Every output buffer must hold a handshake initiation (148 bytes), the
/// largest message boringtun may write whatever the input.
pub(crate) const MIN_OUT: usize = 148;

/// Result of encrypting one outbound packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Encapsulated {
    /// `len` bytes of the output buffer go to `endpoint`.
    Send { endpoint: SocketAddr, len: usize },
    /// Held until the handshake completes.
    Queued,
    Dropped(DropReason),
}

/// Result of decrypting one inbound datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Decapsulated {
    /// `len` bytes of the output buffer are an IP packet for the TUN.
    ToTun { len: usize },
    /// Handled (handshake, keepalive, cookie); nothing for the TUN.
    Consumed,
    Dropped(DropReason),
    /// A data message for a session this peer does not have, dropped for
    /// `reason`. Either forged or the peer still uses keys we lost (we
    /// restarted): the caller may answer with [`Peer::offer_fresh_handshake`].
    NoSession(DropReason),
}

struct PeerState {
    tunn: Tunn,
    /// Where packets go: a configured endpoint or the last address an
    /// authenticated packet came from (roaming).
    endpoint: EndpointSelector,
    /// When we last offered a handshake in answer to an unknown session.
    last_offered: Option<Instant>,
    /// The largest packet handed to boringtun while it had no session (it
    /// queues those), so that flushing never gets a buffer too small for
    /// one: boringtun would panic. Zero once the queue is known empty.
    queued_max: usize,
}

/// A peer of this node.
pub struct Peer {
    /// Session index base handed to boringtun (`id << 8`); identifies the peer
    /// in the receiver index of inbound messages.
    pub id: u32,
    pub public_key: PublicKey,
    pub counters: PeerCounters,
    allowed_ips: Mutex<Vec<IpNet>>,
    keepalive: Option<u16>,
    state: Mutex<PeerState>,
}

impl Peer {
    pub fn new(id: u32, own_key: &PrivateKey, config: &PeerConfig, keepalive_secs: u16) -> Self {
        let keepalive = (keepalive_secs > 0).then_some(keepalive_secs);
        let tunn = Tunn::new(
            own_key.secret().clone(),
            config.public_key.to_x25519(),
            None,
            keepalive,
            id,
            None,
        );
        Peer {
            id,
            public_key: config.public_key,
            counters: PeerCounters::default(),
            allowed_ips: Mutex::new(config.allowed_ips.clone()),
            keepalive,
            state: Mutex::new(PeerState {
                tunn,
                endpoint: EndpointSelector::new(config.endpoints.clone(), Instant::now()),
                last_offered: None,
                queued_max: 0,
            }),
        }
    }

    /// Applies a changed configuration without touching the session.
    pub fn reconfigure(&self, config: &PeerConfig) {
        *self.allowed_ips.lock() = config.allowed_ips.clone();
        self.state
            .lock()
            .endpoint
            .reconfigure(config.endpoints.clone(), Instant::now());
    }

    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.state.lock().endpoint.current()
    }

    /// Encrypts one IP packet into `out`; refused (`TooLarge`) unless `out`
    /// holds `packet.len() + 32` and at least 148 bytes.
    #[inline]
    pub fn encapsulate(&self, packet: &[u8], out: &mut [u8]) -> Encapsulated {
        if out.len() < (packet.len() + DATA_OVERHEAD).max(MIN_OUT) {
            return Encapsulated::Dropped(DropReason::TooLarge);
        }
        let mut s = self.state.lock();
        let Some(endpoint) = s.endpoint.current() else {
            return Encapsulated::Dropped(DropReason::NoEndpoint);
        };
        let result = s.tunn.encapsulate(packet, out);
        // Anything but a data message means boringtun had no session and
        // queued the packet (the initiation it sends instead, or nothing).
        if !matches!(&result, TunnResult::WriteToNetwork(p) if p.first() == Some(&MSG_DATA)) {
            s.queued_max = s.queued_max.max(packet.len());
        }
        match result {
            TunnResult::WriteToNetwork(p) => Encapsulated::Send {
                endpoint,
                len: p.len(),
            },
            TunnResult::Done => Encapsulated::Queued,
            TunnResult::Err(e) => Encapsulated::Dropped(DropReason::from_wireguard(&e)),
            TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) => {
                Encapsulated::Dropped(DropReason::Other)
            }
        }
    }

    /// Decrypts one datagram from `from` into `out`. Handshake replies and
    /// packets that were waiting for the handshake are handed to `send` as
    /// they come out of the session, each with its destination.
    pub fn decapsulate(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        now: Instant,
        mut send: impl FnMut(&[u8], SocketAddr),
    ) -> Decapsulated {
        let msg_type = datagram.first().copied().unwrap_or(0);
        // boringtun panics rather than fail on a short `out`: a data message
        // decrypts to its length less the header, and any reply is at most
        // an initiation.
        if out.len() < MIN_OUT || (msg_type == MSG_DATA && datagram.len().saturating_sub(DATA_HEADER) > out.len()) {
            return Decapsulated::Dropped(DropReason::TooLarge);
        }
        let mut s = self.state.lock();
        let (result, authenticated) = match s.tunn.decapsulate(Some(from.ip()), datagram, out) {
            TunnResult::WriteToTunnelV4(p, _) | TunnResult::WriteToTunnelV6(p, _) => {
                (Decapsulated::ToTun { len: p.len() }, true)
            }
            TunnResult::Done => (
                Decapsulated::Consumed,
                msg_type == MSG_DATA || msg_type == MSG_HANDSHAKE_RESPONSE,
            ),
            TunnResult::WriteToNetwork(p) => {
                // A handshake response to our initiation, or our response to
                // theirs, proves the sender holds the peer's key; a cookie
                // reply (sent when under load) does not. Replies go back to
                // where the message came from, as WireGuard does.
                let authenticated = msg_type == MSG_HANDSHAKE_RESPONSE
                    || (msg_type == MSG_HANDSHAKE_INIT
                        && p.first() == Some(&MSG_HANDSHAKE_RESPONSE));
                send(p, from);
                (Decapsulated::Consumed, authenticated)
            }
            TunnResult::Err(e) => {
                let reason = DropReason::from_wireguard(&e);
                if msg_type == MSG_DATA
                    && matches!(e, WireGuardError::WrongIndex | WireGuardError::NoCurrentSession)
                {
                    return Decapsulated::NoSession(reason);
                }
                return Decapsulated::Dropped(reason);
            }
        };
        if authenticated {
            if let Some(old) = s.endpoint.authenticated_from(from, now) {
                tracing::info!(peer = %self.public_key.short(), ?old, new = %from, "peer endpoint changed (roaming)");
            }
            // Packets queued while the handshake ran go out now, unless
            // `out` holds a decrypted packet that flushing would overwrite,
            // or is too small for one of them; then the timer thread, whose
            // buffer is sized from the MTU, flushes them on its next tick.
            if result == Decapsulated::Consumed {
                flush_queued(&mut s, out, &mut send);
            }
        }
        result
    }

    /// Answers [`Decapsulated::NoSession`]: the peer most likely still uses
    /// keys from before we restarted, so offer a new handshake now instead of
    /// waiting ~15 s for its rekey timeout. The message was not
    /// authenticated and receiver indices are guessable, so this is bounded:
    /// never while we hold a session with the peer (it completed the same
    /// handshake, so keys we lost cannot be what it uses) or have heard from
    /// it recently, at most once per REKEY_TIMEOUT, only when `budget` (the
    /// node-wide one) allows, and only to the peer's known endpoint, never to
    /// the datagram's source.
    pub fn offer_fresh_handshake(
        &self,
        out: &mut [u8],
        now: Instant,
        budget: impl FnOnce() -> bool,
        mut send: impl FnMut(&[u8], SocketAddr),
    ) {
        if out.len() < MIN_OUT {
            return;
        }
        let mut s = self.state.lock();
        let Some(endpoint) = s.endpoint.current() else { return };
        if s.tunn.time_since_last_handshake().is_some()
            || s.endpoint.heard_within(now, REKEY_TIMEOUT)
            || s.last_offered.is_some_and(|t| now.saturating_duration_since(t) < REKEY_TIMEOUT)
            || !budget()
        {
            return;
        }
        // Counted even if a handshake is already under way (boringtun then
        // sends nothing), so forgeries cannot drain the budget on one peer.
        s.last_offered = Some(now);
        if let TunnResult::WriteToNetwork(init) = s.tunn.format_handshake_initiation(out, false) {
            send(init, endpoint);
        }
    }

    /// Drives the session's timers (handshake retries, rekeying, keepalives);
    /// call every ~100 ms with a buffer of `mtu::session_buffer_len` bytes.
    /// Whatever must go out is handed to `send`.
    pub fn update_timers(&self, out: &mut [u8], now: Instant, mut send: impl FnMut(&[u8], SocketAddr)) {
        if out.len() < MIN_OUT {
            self.counters.drops.add(DropReason::TooLarge);
            return;
        }
        let mut s = self.state.lock();
        if !flush_queued(&mut s, out, &mut send) {
            // Only a buffer smaller than the device sizes from its MTU gets
            // here; the packets stay queued until one that fits comes.
            self.counters.drops.add(DropReason::TooLarge);
        }
        let result = s.tunn.update_timers(out);
        if let TunnResult::WriteToNetwork(p) = result {
            let is_init = p.first() == Some(&MSG_HANDSHAKE_INIT);
            if is_init {
                if let Some(next) = s.endpoint.handshake_retry(now) {
                    tracing::info!(peer = %self.public_key.short(), %next, "no handshake answer, trying the next endpoint");
                }
            }
            if let Some(endpoint) = s.endpoint.current() {
                send(p, endpoint);
            }
        }
    }

    pub fn status(&self) -> PeerStatus {
        let s = self.state.lock();
        let (since_handshake, _, _, _, handshake_rtt_ms) = s.tunn.stats();
        let c = &self.counters;
        use std::sync::atomic::Ordering::Relaxed;
        PeerStatus {
            public_key: self.public_key.to_string(),
            endpoint: s.endpoint.current(),
            allowed_ips: self.allowed_ips.lock().clone(),
            last_handshake_secs: since_handshake.map(|d| d.as_secs_f64()),
            handshake_rtt_ms,
            rx_bytes: c.rx.bytes.load(Relaxed),
            rx_packets: c.rx.packets.load(Relaxed),
            tx_bytes: c.tx.bytes.load(Relaxed),
            tx_packets: c.tx.packets.load(Relaxed),
            keepalive_secs: self.keepalive,
            drops: c.drops.snapshot(),
        }
    }
}

/// Sends the packets boringtun queued while no session existed. Refuses,
/// leaving them queued and returning `false`, when `out` could not hold the
/// largest of them once encrypted: boringtun would panic.
fn flush_queued(s: &mut PeerState, out: &mut [u8], send: &mut impl FnMut(&[u8], SocketAddr)) -> bool {
    if out.len() < s.queued_max + DATA_OVERHEAD {
        return false;
    }
    let mut sent_data = false;
    while let Some(endpoint) = s.endpoint.current() {
        match s.tunn.decapsulate(None, &[], out) {
            TunnResult::WriteToNetwork(p) => {
                sent_data |= p.first() == Some(&MSG_DATA);
                send(p, endpoint);
            }
            _ => {
                // With a session, boringtun only stops once its queue is
                // empty; without one it re-queues and sends no data.
                if sent_data {
                    s.queued_max = 0;
                }
                break;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz_harness::ipv4;
    use crate::mtu;

    fn peer_of(own: &PrivateKey, other: &PrivateKey, endpoint: &str, allowed: &str) -> Peer {
        let config = PeerConfig {
            public_key: other.public_key(),
            endpoints: vec![endpoint.parse().expect("addr")],
            allowed_ips: vec![allowed.parse().expect("net")],
        };
        Peer::new(1, own, &config, 0)
    }

    /// Runs `f` and returns what it sent.
    fn sent(f: impl FnOnce(&mut dyn FnMut(&[u8], SocketAddr))) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        f(&mut |p, _| out.push(p.to_vec()));
        out
    }

    #[test]
    fn a_queued_4000_byte_packet_with_mtu_9000_leaves_by_the_timer_path_without_a_panic() {
        let (a, b) = (PrivateKey::generate().expect("key"), PrivateKey::generate().expect("key"));
        let (a_addr, b_addr): (SocketAddr, SocketAddr) =
            ("198.18.1.2:50103".parse().expect("addr"), "198.18.2.2:50103".parse().expect("addr"));
        let to_b = peer_of(&a, &b, "198.18.2.2:50103", "10.18.0.2/32");
        let to_a = peer_of(&b, &a, "198.18.1.2:50103", "10.18.0.1/32");
        let now = Instant::now();
        let big = ipv4([10, 18, 0, 1], [10, 18, 0, 2], &[7; 3980]);
        assert_eq!(big.len(), 4000);
        assert_eq!(to_b.encapsulate(&big, &mut [0; 1000]), Encapsulated::Dropped(DropReason::TooLarge));

        // No session yet: the packet is queued and an initiation goes out.
        let mut buf = vec![0u8; big.len() + 48];
        let Encapsulated::Send { len, .. } = to_b.encapsulate(&big, &mut buf) else {
            panic!("initiation expected");
        };
        let init = buf[..len].to_vec();
        let response = sent(|send| {
            to_a.decapsulate(a_addr, &init, &mut [0; 2048], now, send);
        });
        assert_eq!(response.len(), 1);
        // The response arrives in a buffer too small for the queued packet
        // (the inbound thread's, for a smaller MTU): only the keepalive
        // leaves; the packet waits for the timer thread.
        let keepalive = sent(|send| {
            to_b.decapsulate(b_addr, &response[0], &mut vec![0; mtu::max_packet(1420)], now, send);
        });
        assert_eq!(keepalive.len(), 1, "keepalive only");
        // The old 2048-byte timer buffer: refused and counted, no panic.
        let nothing = sent(|send| to_b.update_timers(&mut [0; 2048], now, send));
        assert!(nothing.iter().all(|d| d.len() < 2048));
        assert_eq!(to_b.counters.drops.get(DropReason::TooLarge), 1);
        // The timer thread's buffer for MTU 9000 carries it.
        let data = sent(|send| to_b.update_timers(&mut vec![0; mtu::session_buffer_len(9000)], now, send));
        let data: Vec<_> = data.into_iter().filter(|d| d.len() > 4000).collect();
        assert_eq!(data.len(), 1, "the queued packet leaves");

        let mut out = vec![0u8; mtu::max_packet(9000)];
        assert_eq!(to_a.decapsulate(a_addr, &keepalive[0], &mut out, now, |_, _| {}), Decapsulated::Consumed);
        assert_eq!(to_a.decapsulate(a_addr, &data[0], &mut out, now, |_, _| {}), Decapsulated::ToTun { len: 4000 });
        assert_eq!(&out[..4000], &big[..]);
        // A short buffer for a data message is refused, not a panic.
        assert_eq!(
            to_a.decapsulate(a_addr, &data[0], &mut [0; 2048], now, |_, _| {}),
            Decapsulated::Dropped(DropReason::TooLarge)
        );
    }
}
