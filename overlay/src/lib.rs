//! grove's data plane: a WireGuard-style encrypted mesh on UDP 50103.
//!
//! The crate is split the way boringtun splits its `noise` core from its I/O:
//!
//! * pure parts, testable without sockets: [`key`] (x25519 node keys),
//!   [`routing`] (cryptokey routing table), [`packet`] (inner IP header
//!   parsing), [`batch`] (grouping encrypted datagrams into GSO sends),
//!   [`counters`] (per-peer and per-reason statistics), [`endpoint`]
//!   (endpoint failover and roaming);
//! * the session layer: [`receive`] decides what an inbound datagram is and
//!   whether it may enter (handshake work bounded per source and node-wide
//!   by `source_limit`); [`peer`] wraps one `boringtun::noise::Tunn` per peer
//!   with its endpoint and counters; [`peer_table`] maps keys, session indices
//!   and prefixes to peers;
//! * I/O: [`udp`] (the UDP socket with GSO/GRO and batched syscalls), [`tun`]
//!   (the TUN device with virtio offload), and [`device`], which owns both
//!   and runs the outbound, inbound and timer threads.

pub mod batch;
pub mod config;
pub mod counters;
pub mod device;
pub mod endpoint;
pub mod error;
pub mod key;
pub mod mtu;
pub mod packet;
pub mod peer;
pub mod peer_table;
pub mod receive;
pub mod routing;
pub mod tun;
pub mod udp;

#[doc(hidden)]
pub mod fuzz_harness;

mod inbound;
mod outbound;
mod source_limit;
mod timers;
mod wake;

pub use config::{DeviceConfig, PeerConfig, DEFAULT_KEEPALIVE_SECS, DEFAULT_LISTEN_PORT};
pub use counters::{DropReason, DeviceStatus, PeerStatus};
pub use device::Device;
pub use error::OverlayError;
pub use key::{PrivateKey, PublicKey};
pub use peer_table::{SkipReason, SkippedPeer};
