//! The node's TOML configuration (static mode).
//!
//! ```toml
//! private_key_file = "/etc/grove/node.key"
//! listen_port = 50103
//! interface = "grove0"
//! address = "10.18.0.1/16"
//! control_socket = "/run/grove/netmanager.sock"
//!
//! [[peer]]
//! public_key = "base64…"
//! endpoints = ["198.18.1.2:50103"]
//! allowed_ips = ["10.18.0.2/32"]
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use dns::{DnsConfig, Location};
use overlay::{DeviceConfig, PeerConfig, PrivateKey};
use serde::Deserialize;

use crate::control::ControlConfig;
use crate::NetmanagerError;

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/grove/netmanager.sock";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's x25519 private key, written by `netmanager keygen` (mode 0600).
    pub private_key_file: PathBuf,
    #[serde(default = "default_port")]
    pub listen_port: u16,
    /// Bind the mesh socket to one address instead of all.
    #[serde(default)]
    pub listen_address: Option<IpAddr>,
    #[serde(default = "default_interface")]
    pub interface: String,
    /// The node's overlay IPv4 address with the prefix routed into the mesh
    /// (static mode; in dynamic mode the authority assigns it).
    #[serde(default)]
    pub address: Option<IpNet>,
    /// Optional overlay IPv6 address (ULA) with its prefix.
    #[serde(default)]
    pub address6: Option<IpNet>,
    /// TUN MTU; default: underlay route MTU minus 80 (1420 on Ethernet).
    #[serde(default)]
    pub mtu: Option<u16>,
    /// Persistent keepalive towards every peer; 0 disables it.
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u16,
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    /// Turn virtio offload (GSO/GRO) on the TUN off, for kernels without it.
    #[serde(default = "default_true")]
    pub tun_offload: bool,
    /// This node's name in DNS answers and `explain` output; default: its
    /// overlay address.
    #[serde(default)]
    pub name: Option<String>,
    /// Where this node stands (`{ lat = …, lon = … }`); `closest` uses it
    /// where no RTT is known.
    #[serde(default)]
    pub location: Option<Location>,
    /// Semantic DNS (`[dns]`): zone, listen addresses, TTLs, policy,
    /// forwarding. Served on loopback by default.
    #[serde(default)]
    pub dns: DnsConfig,
    /// Also serve DNS on the overlay address (port 53), so workloads on
    /// other nodes' meshes can ask this node. Default on.
    #[serde(default = "default_true")]
    pub dns_on_overlay: bool,
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerEntry>,
    /// Dynamic mode: join with a token, peers from signed records.
    #[serde(default)]
    pub control: Option<ControlConfig>,
}

/// One `[[peer]]`: the data-plane part (key, endpoints, prefixes) plus what
/// DNS needs to know about the node behind it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// The peer's public key (base64).
    pub public_key: overlay::PublicKey,
    /// Underlay addresses, tried in order until one answers.
    #[serde(default)]
    pub endpoints: Vec<std::net::SocketAddr>,
    /// Overlay prefixes routed to the peer (and accepted from it).
    pub allowed_ips: Vec<IpNet>,
    /// The peer node's name (instances registered with `node = <name>` are
    /// placed there); default: its first allowed address.
    #[serde(default)]
    pub name: Option<String>,
    /// The peer node's location.
    #[serde(default)]
    pub location: Option<Location>,
}

impl PeerEntry {
    /// The peer as the data plane sees it.
    pub fn data_plane(&self) -> PeerConfig {
        PeerConfig {
            public_key: self.public_key,
            endpoints: self.endpoints.clone(),
            allowed_ips: self.allowed_ips.clone(),
        }
    }

    /// The peer's node name.
    pub fn node_name(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.allowed_ips.first().map(|n| n.addr().to_string()))
            .unwrap_or_else(|| self.public_key.short())
    }
}

fn default_port() -> u16 {
    overlay::DEFAULT_LISTEN_PORT
}
fn default_interface() -> String {
    overlay::config::DEFAULT_INTERFACE.to_owned()
}
fn default_keepalive() -> u16 {
    overlay::DEFAULT_KEEPALIVE_SECS
}
fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}
fn default_true() -> bool {
    true
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, NetmanagerError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetmanagerError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| NetmanagerError::InvalidConfig {
            path: path.to_owned(),
            message,
        })?;
        // A relative path means "next to the config file".
        if let Some(dir) = path.parent() {
            let anchor = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            anchor(&mut config.private_key_file);
            if let Some(control) = config.control.as_mut() {
                anchor(&mut control.identity_file);
                anchor(&mut control.state_dir);
                if let Some(file) = control.join_token_file.as_mut() {
                    anchor(file);
                }
                if let Some(file) = control.admit.as_mut().and_then(|a| a.tokens_file.as_mut()) {
                    anchor(file);
                }
            }
        }
        // F18: a token in the config is a secret in the config.
        if config.control.as_ref().is_some_and(|c| c.join_token.is_some()) {
            crate::files::check_private(path).map_err(|e| NetmanagerError::InvalidConfig {
                path: path.to_owned(),
                message: format!("it holds `join_token`, so it must be private: {e}; or move the token to `join_token_file`"),
            })?;
        }
        Ok(config)
    }

    /// Parses and checks a config; the message says what to fix.
    pub fn parse(text: &str) -> Result<NodeConfig, String> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        match (&config.address, &config.control) {
            (None, None) => {
                return Err("`address` is missing: give the node its overlay address (static mode), \
                    or add a [control] section to join a dynamic mesh"
                    .into())
            }
            (Some(address), None) if !address.addr().is_ipv4() => {
                return Err(format!(
                    "`address = \"{address}\"` must be IPv4; put an IPv6 overlay address in `address6`"
                ))
            }
            (Some(_), Some(_)) => {
                return Err("`address` is assigned by the admission authority in dynamic mode ([control]); remove it".into())
            }
            (None, Some(_)) if !config.peers.is_empty() => {
                return Err("[[peer]] entries are not used in dynamic mode ([control]): peers come from signed records; remove them".into())
            }
            (None, Some(control)) => control.validate().map_err(|e| format!("[control]: {e}"))?,
            _ => {}
        }
        if let Some(a6) = config.address6 {
            if !a6.addr().is_ipv6() {
                return Err(format!("`address6 = \"{a6}\"` must be IPv6"));
            }
        }
        for (i, peer) in config.peers.iter().enumerate() {
            if peer.allowed_ips.is_empty() {
                return Err(format!(
                    "[[peer]] #{} ({}) has no allowed_ips: nothing would be routed to it",
                    i + 1,
                    peer.public_key
                ));
            }
        }
        config.dns.validate().map_err(|e| format!("[dns]: {e}"))?;
        if config.interface.is_empty() || config.interface.len() > 15 {
            return Err(format!(
                "interface name {:?} must be 1 to 15 characters",
                config.interface
            ));
        }
        Ok(config)
    }

    /// The data-plane configuration, with the key loaded from disk;
    /// `address` is the static one or the one derived from the grant.
    pub fn device_config(&self, address: IpNet) -> Result<DeviceConfig, NetmanagerError> {
        let key = PrivateKey::load(&self.private_key_file)?;
        let mut addresses = vec![address];
        addresses.extend(self.address6);
        let mut device = DeviceConfig::new(key, addresses);
        device.listen_port = self.listen_port;
        device.listen_address = self.listen_address;
        device.interface = self.interface.clone();
        device.mtu = self.mtu;
        device.keepalive_secs = self.keepalive_secs;
        device.tun_offload = self.tun_offload;
        device.peers = self.peers.iter().map(PeerEntry::data_plane).collect();
        Ok(device)
    }

    /// This node's name in static mode (DNS `node`); default: its overlay
    /// address. (In dynamic mode the default comes from the node's
    /// identity, so fleets of identical host names never collide.)
    pub fn node_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match self.address {
            Some(address) => address.addr().to_string(),
            None => "node".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = NodeConfig::parse("private_key_file = \"k\"\naddress = \"10.18.0.1/16\"\n").expect("parse");
        assert_eq!(c.listen_port, 50103);
        assert_eq!(c.interface, "grove0");
        assert_eq!(c.keepalive_secs, 25);
        assert!(c.peers.is_empty());
    }

    #[test]
    fn peers_parse() {
        let text = format!(
            "private_key_file = \"k\"\naddress = \"10.18.0.1/16\"\n[[peer]]\npublic_key = \"{KEY}\"\nendpoints = [\"198.18.1.2:50103\", \"[fd18:1::2]:50103\"]\nallowed_ips = [\"10.18.0.2/32\"]\n"
        );
        let c = NodeConfig::parse(&text).expect("parse");
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].endpoints.len(), 2);
    }

    #[test]
    fn dns_names_and_locations_parse() {
        let text = format!(
            "private_key_file = \"k\"\naddress = \"10.18.0.1/16\"\nname = \"munich\"\nlocation = {{ lat = 48.14, lon = 11.58 }}\n[dns]\nzone = \"edge\"\n[[peer]]\npublic_key = \"{KEY}\"\nallowed_ips = [\"10.18.0.2/32\"]\nname = \"frankfurt\"\nlocation = {{ lat = 50.11, lon = 8.68 }}\n"
        );
        let c = NodeConfig::parse(&text).expect("parse");
        assert_eq!(c.node_name(), "munich");
        assert_eq!(c.peers[0].node_name(), "frankfurt");
        assert!(c.location.is_some() && c.peers[0].location.is_some());
        assert_eq!(c.dns.zone.as_str(), "edge");
        let unnamed = NodeConfig::parse("private_key_file = \"k\"\naddress = \"10.18.0.7/16\"\n").expect("parse");
        assert_eq!(unnamed.node_name(), "10.18.0.7");
    }

    #[test]
    fn mistakes_are_explained() {
        let typo = NodeConfig::parse("private_key_file = \"k\"\naddress = \"10.18.0.1/16\"\nlisten_prot = 1\n");
        assert!(typo.is_err_and(|e| e.contains("listen_prot")));
        let none = NodeConfig::parse("private_key_file = \"k\"\n");
        assert!(none.is_err_and(|e| e.contains("[control]")));
        let both = NodeConfig::parse("private_key_file = \"k\"\naddress = \"10.18.0.1/16\"\n[control]\n");
        assert!(both.is_err_and(|e| e.contains("remove it")));
        let v6 = NodeConfig::parse("private_key_file = \"k\"\naddress = \"fd18::1/64\"\n");
        assert!(v6.is_err_and(|e| e.contains("address6")));
        let bad_key = NodeConfig::parse(
            "private_key_file = \"k\"\naddress = \"10.18.0.1/16\"\n[[peer]]\npublic_key = \"nope\"\nallowed_ips = [\"10.18.0.2/32\"]\n",
        );
        assert!(bad_key.is_err_and(|e| e.contains("invalid key")));
        let no_ips = format!("private_key_file = \"k\"\naddress = \"10.18.0.1/16\"\n[[peer]]\npublic_key = \"{KEY}\"\nallowed_ips = []\n");
        assert!(NodeConfig::parse(&no_ips).is_err_and(|e| e.contains("allowed_ips")));
    }
}
