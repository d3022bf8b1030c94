//! Per-peer and per-device statistics, and the serializable status built from them.
//!
//! Counters are relaxed atomics: the outbound thread writes `tx`, the inbound
//! thread writes `rx`, each on its own cache line so the two cores do not
//! bounce a shared line on every packet.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Why a packet was discarded. Not errors: hostile or stale input is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(usize)]
pub enum DropReason {
    /// Not a well-formed WireGuard message (wrong type, length).
    Malformed,
    /// A handshake from a key that is not one of our peers.
    UnknownKey,
    /// A message for a session index we never handed out.
    UnknownSession,
    /// MAC or AEAD verification failed: forged or corrupted.
    AuthFailed,
    /// A counter already seen or too old: a replay.
    Replay,
    /// A handshake with a stale timestamp, or a message out of protocol order.
    HandshakeRejected,
    /// Handshake refused because we are under load (cookie sent instead).
    RateLimited,
    /// Handshake with a valid cookie from a source over its own budget
    /// (20/s, burst 5), refused before any Diffie-Hellman.
    HandshakeRateLimited,
    /// A packet larger than the buffers sized from the MTU can carry.
    TooLarge,
    /// Decrypted packet whose inner source is outside the peer's allowed prefixes.
    SourceNotAllowed,
    /// Decrypted payload that is not an IPv4/IPv6 packet.
    InvalidInner,
    /// Outbound packet with no peer owning its destination.
    NoRoute,
    /// Outbound packet for a peer whose endpoint is not known yet.
    NoEndpoint,
    /// The operating system refused to send the datagram.
    SendFailed,
    /// The TUN refused to accept a decrypted packet.
    TunWriteFailed,
    /// Session expired or any other protocol-level refusal.
    Other,
}

impl DropReason {
    pub const ALL: [DropReason; 16] = [
        DropReason::Malformed,
        DropReason::UnknownKey,
        DropReason::UnknownSession,
        DropReason::AuthFailed,
        DropReason::Replay,
        DropReason::HandshakeRejected,
        DropReason::RateLimited,
        DropReason::HandshakeRateLimited,
        DropReason::TooLarge,
        DropReason::SourceNotAllowed,
        DropReason::InvalidInner,
        DropReason::NoRoute,
        DropReason::NoEndpoint,
        DropReason::SendFailed,
        DropReason::TunWriteFailed,
        DropReason::Other,
    ];

    /// Stable snake_case name used in status output and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownKey => "unknown_key",
            DropReason::UnknownSession => "unknown_session",
            DropReason::AuthFailed => "auth_failed",
            DropReason::Replay => "replay",
            DropReason::HandshakeRejected => "handshake_rejected",
            DropReason::RateLimited => "rate_limited",
            DropReason::HandshakeRateLimited => "handshake_rate_limited",
            DropReason::TooLarge => "too_large",
            DropReason::SourceNotAllowed => "source_not_allowed",
            DropReason::InvalidInner => "invalid_inner",
            DropReason::NoRoute => "no_route",
            DropReason::NoEndpoint => "no_endpoint",
            DropReason::SendFailed => "send_failed",
            DropReason::TunWriteFailed => "tun_write_failed",
            DropReason::Other => "other",
        }
    }

    /// Classifies a boringtun refusal.
    pub fn from_wireguard(err: &boringtun::noise::errors::WireGuardError) -> Self {
        use boringtun::noise::errors::WireGuardError as E;
        match err {
            E::IncorrectPacketLength | E::WrongPacketType | E::InvalidPacket => {
                DropReason::Malformed
            }
            E::WrongIndex => DropReason::UnknownSession,
            E::WrongKey | E::InvalidMac | E::InvalidAeadTag => DropReason::AuthFailed,
            E::InvalidCounter | E::DuplicateCounter => DropReason::Replay,
            E::InvalidTai64nTimestamp | E::WrongTai64nTimestamp | E::UnexpectedPacket => {
                DropReason::HandshakeRejected
            }
            E::UnderLoad => DropReason::RateLimited,
            E::DestinationBufferTooSmall => DropReason::TooLarge,
            _ => DropReason::Other,
        }
    }
}

/// Drop counts indexed by [`DropReason`].
#[derive(Debug, Default)]
pub struct DropCounters([AtomicU64; DropReason::ALL.len()]);

impl DropCounters {
    #[inline]
    pub fn add(&self, reason: DropReason) {
        self.0[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize].load(Relaxed)
    }

    /// Non-zero counts by reason name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .filter_map(|r| {
                let n = self.get(*r);
                (n > 0).then(|| (r.name().to_owned(), n))
            })
            .collect()
    }
}

/// Bytes and packets in one direction, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Traffic {
    pub bytes: AtomicU64,
    pub packets: AtomicU64,
}

impl Traffic {
    #[inline]
    pub fn add(&self, packets: u64, bytes: u64) {
        self.packets.fetch_add(packets, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

/// Counters of one peer. `rx`/`tx` count inner (plaintext) packets.
#[derive(Debug, Default)]
pub struct PeerCounters {
    pub rx: Traffic,
    pub tx: Traffic,
    pub drops: DropCounters,
}

/// What `netmanager status` shows for one peer, like a `wg show` stanza.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerStatus {
    pub public_key: String,
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<IpNet>,
    /// Seconds since the last completed handshake, if any.
    pub last_handshake_secs: Option<f64>,
    /// Round trip of the last handshake we initiated (initiation → response),
    /// in milliseconds: a free RTT sample, refreshed at every rekey.
    #[serde(default)]
    pub handshake_rtt_ms: Option<u32>,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub keepalive_secs: Option<u16>,
    pub drops: BTreeMap<String, u64>,
}

/// The whole device: identity, socket, TUN and every peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub interface: String,
    pub public_key: String,
    pub listen_port: u16,
    pub mtu: u16,
    pub addresses: Vec<IpNet>,
    pub offload: bool,
    pub peers: Vec<PeerStatus>,
    /// Drops not attributable to a known peer (unknown keys, garbage).
    pub drops: BTreeMap<String, u64>,
}
