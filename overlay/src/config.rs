//! What the data plane is told to do: its own key, port, addresses and peers.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{PrivateKey, PublicKey};

/// grove's mesh port.
pub const DEFAULT_LISTEN_PORT: u16 = 50103;
/// Keepalive interval that keeps common NAT mappings (30 s and up) alive.
pub const DEFAULT_KEEPALIVE_SECS: u16 = 25;
/// Default TUN name.
pub const DEFAULT_INTERFACE: &str = "grove0";

/// One peer of the mesh, as configured (static mode) or derived from records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's x25519 public key (base64).
    pub public_key: PublicKey,
    /// Underlay addresses the peer can be reached at, tried in order until one
    /// answers. May be empty for a peer that will contact us first.
    #[serde(default)]
    pub endpoints: Vec<SocketAddr>,
    /// Overlay prefixes routed to this peer, and the only inner source
    /// addresses accepted from it (cryptokey routing).
    pub allowed_ips: Vec<IpNet>,
}

/// Everything [`crate::Device::start`] needs.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    pub private_key: PrivateKey,
    /// UDP port of the mesh socket.
    pub listen_port: u16,
    /// Address to bind; `None` binds the wildcard (dual-stack where possible)
    /// because peers may reach us over any underlay interface.
    pub listen_address: Option<IpAddr>,
    /// TUN device name.
    pub interface: String,
    /// Overlay addresses of this node, each with the prefix routed into the tunnel.
    pub addresses: Vec<IpNet>,
    /// TUN MTU; `None` computes it from the underlay (see [`crate::mtu`]).
    pub mtu: Option<u16>,
    /// Persistent keepalive in seconds; 0 turns it off.
    pub keepalive_secs: u16,
    /// Use virtio-net offload on the TUN (GSO/GRO); on by default.
    pub tun_offload: bool,
    pub peers: Vec<PeerConfig>,
}

impl DeviceConfig {
    /// A configuration with grove's defaults and no peers.
    pub fn new(private_key: PrivateKey, addresses: Vec<IpNet>) -> Self {
        Self {
            private_key,
            listen_port: DEFAULT_LISTEN_PORT,
            listen_address: None,
            interface: DEFAULT_INTERFACE.to_owned(),
            addresses,
            mtu: None,
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
            tun_offload: true,
            peers: Vec::new(),
        }
    }
}
