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
use crate::{PeerConfig, PrivateKey, PublicKey};

/// WireGuard message types (whitepaper section 5.4).
const MSG_HANDSHAKE_INIT: u8 = 1;
const MSG_HANDSHAKE_RESPONSE: u8 = 2;
const MSG_DATA: u8 = 4;
/// WireGuard's REKEY_TIMEOUT (whitepaper section 6.1).
const REKEY_TIMEOUT: Duration = Duration::from_secs(5);

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
}

struct PeerState {
    tunn: Tunn,
    /// Where packets go: a configured endpoint or the last address an
    /// authenticated packet came from (roaming).
    endpoint: EndpointSelector,
    /// When we last offered a handshake in answer to an unknown session.
    last_offered: Option<Instant>,
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

    /// Encrypts one IP packet into `out` (which must hold `packet.len() + 32`
    /// and at least 148 bytes).
    #[inline]
    pub fn encapsulate(&self, packet: &[u8], out: &mut [u8]) -> Encapsulated {
        let mut s = self.state.lock();
        let Some(endpoint) = s.endpoint.current() else {
            return Encapsulated::Dropped(DropReason::NoEndpoint);
        };
        match s.tunn.encapsulate(packet, out) {
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
                if msg_type == MSG_DATA
                    && matches!(e, WireGuardError::WrongIndex | WireGuardError::NoCurrentSession)
                {
                    self.offer_fresh_handshake(&mut s, out, now, &mut send);
                }
                return Decapsulated::Dropped(DropReason::from_wireguard(&e));
            }
        };
        if authenticated {
            if let Some(old) = s.endpoint.authenticated_from(from, now) {
                tracing::info!(peer = %self.public_key.short(), ?old, new = %from, "peer endpoint changed (roaming)");
            }
            // Packets queued while the handshake ran go out now, unless
            // `out` holds a decrypted packet that flushing would overwrite;
            // then the timer thread flushes them on its next tick.
            if result == Decapsulated::Consumed {
                flush_queued(&mut s, out, &mut send);
            }
        }
        result
    }

    /// A data message for a session we do not have: the peer most likely
    /// still uses keys from before we restarted. Offer a new handshake now
    /// instead of waiting ~15 s for its rekey timeout. The message is not
    /// authenticated, so this is bounded: never while the peer has been heard
    /// from recently (an idle forger gains nothing against a live session),
    /// at most once per REKEY_TIMEOUT, and only to the peer's known
    /// endpoint, never to the datagram's source.
    fn offer_fresh_handshake(
        &self,
        s: &mut PeerState,
        out: &mut [u8],
        now: Instant,
        send: &mut impl FnMut(&[u8], SocketAddr),
    ) {
        if s.endpoint.heard_within(now, REKEY_TIMEOUT)
            || s.last_offered.is_some_and(|t| now.duration_since(t) < REKEY_TIMEOUT)
        {
            return;
        }
        if let (Some(endpoint), TunnResult::WriteToNetwork(init)) =
            (s.endpoint.current(), s.tunn.format_handshake_initiation(out, false))
        {
            s.last_offered = Some(now);
            send(init, endpoint);
        }
    }

    /// Drives the session's timers (handshake retries, rekeying, keepalives);
    /// call every ~100 ms. Whatever must go out is handed to `send`.
    pub fn update_timers(&self, out: &mut [u8], now: Instant, mut send: impl FnMut(&[u8], SocketAddr)) {
        let mut s = self.state.lock();
        flush_queued(&mut s, out, &mut send);
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

/// Sends the packets boringtun queued while no session existed.
fn flush_queued(s: &mut PeerState, out: &mut [u8], send: &mut impl FnMut(&[u8], SocketAddr)) {
    while let Some(endpoint) = s.endpoint.current() {
        match s.tunn.decapsulate(None, &[], out) {
            TunnResult::WriteToNetwork(p) => send(p, endpoint),
            _ => break,
        }
    }
}
