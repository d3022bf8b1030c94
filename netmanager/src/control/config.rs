//! `[control]`: the dynamic mesh. Present → the node joins with a token
//! and learns its peers from signed records; absent → static `[[peer]]`s.
//!
//! ```toml
//! [control]
//! listen = "198.18.1.2:50103"             # libp2p, TCP
//! # The authority, pinned by its peer id (`netmanager id` on it prints it):
//! bootstrap = ["12D3KooW…@198.18.1.1:50103"]
//! join_token_file = "/etc/grove/join-token"   # 0600; or GROVE_JOIN_TOKEN
//!
//! [control.admit]                          # only on the admission authority
//! tokens_file = "/etc/grove/tokens"        # optional; `netmanager token create` otherwise
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::Ipv4Net;
use libp2p_identity::PeerId;
use serde::Deserialize;

use super::admission::pool::default_pool;
use super::ControlError;

/// TCP and UDP port numbers are separate spaces: the control plane takes
/// TCP 50103 beside the tunnel's UDP 50103, so one firewall rule names both.
pub const DEFAULT_CONTROL_PORT: u16 = 50103;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Control-plane listen address (TCP).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Underlay addresses other nodes reach this one at (tunnel on UDP
    /// `listen_port`, control on TCP `listen`'s port). Default: `listen`'s
    /// address when specific, else the source address towards the first
    /// bootstrap node.
    #[serde(default)]
    pub advertise: Vec<IpAddr>,
    /// Where to join (the authority, `<peer-id>@<ip>:<port>`) or, once
    /// joined, whom to re-sync from after a restart (any member; the peer
    /// id may then be left out).
    #[serde(default)]
    pub bootstrap: Vec<Bootstrap>,
    /// The authority's peer id, if not given in `bootstrap`.
    #[serde(default)]
    pub authority: Option<PeerIdText>,
    /// Join token in the config itself: only if the config file is 0600.
    #[serde(default)]
    pub join_token: Option<String>,
    /// Or the token in a file (0600).
    #[serde(default)]
    pub join_token_file: Option<PathBuf>,
    /// The node's ed25519 identity (created 0600 on first run).
    #[serde(default = "default_identity")]
    pub identity_file: PathBuf,
    /// Where the grant, the incarnation count and (on the authority) its
    /// state are kept across restarts.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The pool node subnets are /26 blocks of (members refuse grants
    /// outside it).
    #[serde(default = "default_pool")]
    pub pool: Ipv4Net,
    /// Makes this node the admission authority.
    #[serde(default)]
    pub admit: Option<AdmitConfig>,
    /// Prometheus metrics (`GET /metrics`); loopback by default.
    #[serde(default = "default_metrics")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmitConfig {
    /// Join tokens, one per line: `<token> [<expiry>] [uses=<n>]` (0600),
    /// re-read when it changes. Tokens can also be made through the API.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
}

/// A bootstrap address, with the peer id expected there if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bootstrap {
    pub peer: Option<PeerId>,
    pub addr: SocketAddr,
}

impl FromStr for Bootstrap {
    type Err = String;
    fn from_str(text: &str) -> Result<Bootstrap, String> {
        let (peer, addr) = match text.split_once('@') {
            Some((peer, addr)) => (Some(peer.parse::<PeerId>().map_err(|e| format!("peer id {peer:?}: {e}"))?), addr),
            None => (None, text),
        };
        let addr = addr.parse().map_err(|e| format!("address {addr:?}: {e} (expected <peer-id>@<ip>:<port>)"))?;
        Ok(Bootstrap { peer, addr })
    }
}

impl fmt::Display for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(peer) => write!(f, "{peer}@{}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl<'de> Deserialize<'de> for Bootstrap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bootstrap, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A peer id in a config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerIdText(pub PeerId);

impl<'de> Deserialize<'de> for PeerIdText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PeerIdText, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map(PeerIdText).map_err(|e| serde::de::Error::custom(format!("peer id {text:?}: {e}")))
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_CONTROL_PORT)
}
fn default_identity() -> PathBuf {
    PathBuf::from("identity.key")
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/grove")
}
fn default_metrics() -> Option<SocketAddr> {
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9103))
}

impl ControlConfig {
    /// The authority this node trusts: `authority`, else the one peer id
    /// the bootstrap entries name. `None` when nothing is pinned.
    pub fn pinned_authority(&self) -> Result<Option<PeerId>, ControlError> {
        if let Some(PeerIdText(peer)) = self.authority {
            return Ok(Some(peer));
        }
        let mut named: Vec<PeerId> = self.bootstrap.iter().filter_map(|b| b.peer).collect();
        named.sort();
        named.dedup();
        match named.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(ControlError::Config(
                "the bootstrap entries name several peer ids: set `authority = \"<peer-id>\"` to say which is the admission authority".into(),
            )),
        }
    }

    pub fn bootstrap_addrs(&self) -> Vec<SocketAddr> {
        self.bootstrap.iter().map(|b| b.addr).collect()
    }

    /// Whom a joining node presents its token to: the one peer the
    /// bootstrap entries name when that is not the pinned authority (a
    /// cluster the authority delegated its site to), else the authority.
    pub fn admitter(&self) -> Result<Option<PeerId>, ControlError> {
        let authority = self.pinned_authority()?;
        let mut named: Vec<PeerId> = self.bootstrap.iter().filter_map(|b| b.peer).filter(|p| Some(*p) != authority).collect();
        named.sort();
        named.dedup();
        if self.bootstrap.iter().any(|b| b.peer.is_some() && b.peer == authority) || named.len() != 1 {
            return Ok(authority);
        }
        Ok(named.pop())
    }

    /// A node that joins must know its authority; say so at start.
    pub fn validate(&self) -> Result<(), String> {
        if self.admit.is_none() && !self.bootstrap.is_empty() {
            self.pinned_authority().map_err(|e| e.to_string())?;
        }
        if self.pool.prefix_len() > super::admission::pool::SUBNET_PREFIX {
            return Err(format!("pool {} is smaller than one /26 node subnet", self.pool));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_entries_pin_the_authority() {
        let peer = PeerId::random();
        let pinned: Bootstrap = format!("{peer}@198.18.1.1:50103").parse().expect("parse");
        assert_eq!(pinned, Bootstrap { peer: Some(peer), addr: "198.18.1.1:50103".parse().expect("addr") });
        assert_eq!(pinned.to_string(), format!("{peer}@198.18.1.1:50103"));
        let plain: Bootstrap = "198.18.1.1:50103".parse().expect("parse");
        assert_eq!(plain.peer, None);
        assert!("nonsense@198.18.1.1:50103".parse::<Bootstrap>().is_err());
        assert!(format!("{peer}@198.18.1.1").parse::<Bootstrap>().is_err());
        let config: ControlConfig = toml::from_str(&format!("bootstrap = [\"{peer}@198.18.1.1:50103\", \"198.18.1.9:50103\"]\n")).expect("toml");
        assert_eq!(config.pinned_authority().expect("pinned"), Some(peer));
        let two: ControlConfig = toml::from_str(&format!("bootstrap = [\"{peer}@198.18.1.1:50103\", \"{}@198.18.1.9:50103\"]\n", PeerId::random())).expect("toml");
        assert!(two.pinned_authority().is_err());
        assert!(two.validate().is_err());
    }
}
