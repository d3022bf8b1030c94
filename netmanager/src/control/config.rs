//! `[control]`: the dynamic mesh. Present → the node joins with a token
//! and learns its peers from signed records; absent → static `[[peer]]`s.
//!
//! ```toml
//! [control]
//! listen = "198.18.1.2:50103"          # libp2p, TCP
//! bootstrap = ["198.18.1.1:50103"]      # the authority (or any member, once joined)
//! join_token = "…"                      # from the authority's token file
//!
//! [control.admit]                       # only on the admission authority
//! tokens_file = "/etc/grove/tokens"
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::Deserialize;

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
    /// Control addresses of nodes to join through (the authority) or, once
    /// joined, to re-sync from after a restart.
    #[serde(default)]
    pub bootstrap: Vec<SocketAddr>,
    /// Join token issued by the authority (`netmanager token`).
    #[serde(default)]
    pub join_token: Option<String>,
    /// Or the token in a file (0600).
    #[serde(default)]
    pub join_token_file: Option<PathBuf>,
    /// The node's ed25519 identity (created 0600 on first run).
    #[serde(default = "default_identity")]
    pub identity_file: PathBuf,
    /// Where the subnet grant (and, on the authority, the grant table) is
    /// kept across restarts.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Makes this node an admission authority.
    #[serde(default)]
    pub admit: Option<AdmitConfig>,
    /// Prometheus metrics (`GET /metrics`); loopback by default.
    #[serde(default = "default_metrics")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmitConfig {
    /// Join tokens, one per line: `<token> [<expiry>]` (0600).
    pub tokens_file: PathBuf,
    /// Node subnets are /26 blocks of this pool, from its start upward.
    #[serde(default = "default_pool")]
    pub pool: Ipv4Net,
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
pub fn default_pool() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 18, 0, 0), 16).unwrap_or_default()
}

impl ControlConfig {
    /// The underlay addresses to advertise, worked out as documented above.
    pub fn advertised(&self) -> Result<Vec<IpAddr>, String> {
        if !self.advertise.is_empty() {
            return Ok(self.advertise.clone());
        }
        if !self.listen.ip().is_unspecified() {
            return Ok(vec![self.listen.ip()]);
        }
        let Some(first) = self.bootstrap.first() else {
            return Err("[control] listens on all addresses and has no bootstrap: set `advertise = [\"<underlay ip>\"]`".into());
        };
        // A connected UDP socket learns its source address without sending.
        let bind: SocketAddr = if first.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .map_err(|e| format!("{e}"))?;
        let socket = std::net::UdpSocket::bind(bind).map_err(|e| format!("finding our address: {e}"))?;
        socket
            .connect(first)
            .map_err(|e| format!("no route to bootstrap {first}: {e}; set `advertise`"))?;
        let local = socket.local_addr().map_err(|e| format!("finding our address: {e}"))?;
        Ok(vec![local.ip()])
    }
}
