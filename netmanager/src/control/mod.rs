//! The dynamic control plane (libp2p): identity, admission, signed
//! records, membership and failure detection, RTTs and coordinates.
//!
//! Pure parts (records, membership, latency, vivaldi, admission, signed)
//! know nothing of sockets; `admit` and `driver` do the I/O; `project` turns
//! membership into the tunnel's peers and the resolver's directory.

pub mod admission;
pub mod admit;
pub mod config;
pub mod driver;
pub mod identity;
pub mod latency;
pub mod membership;
pub mod project;
pub mod protocol;
pub mod records;
pub mod signed;
pub mod swarm;
pub mod tokens;
pub mod view;
pub mod vivaldi;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dns::store::MemoryDirectory;
use ipnet::Ipv4Net;
use overlay::{Device, PublicKey};
use tokio::sync::{mpsc, oneshot};

use admission::SubnetGrant;
use admit::Admitted;
use driver::{Command, Driver};
use records::{InstanceEntry, NodeRecord};
use signed::Signed;
use view::{ControlView, LocalView, SharedView};
use vivaldi::Coordinate;

pub use config::ControlConfig;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("identity: {0}")]
    Identity(#[from] identity::IdentityError),
    #[error("admission: {0}")]
    Admission(#[from] admission::AdmissionError),
    #[error("{0}")]
    Swarm(#[from] swarm::SwarmError),
    #[error("cannot listen on {0} (TCP, control plane): {1}; change [control] listen")]
    Listen(SocketAddr, String),
    #[error("not joined yet and no bootstrap node: set [control] bootstrap = [\"<authority ip>:50103\"]")]
    NoBootstrap,
    #[error("join refused by {by}: {reason}")]
    JoinRefused { by: String, reason: String },
    #[error("no bootstrap node answered ({0:?}); are they running and reachable on TCP?")]
    Unreachable(Vec<SocketAddr>),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("state file {0}: {1}")]
    State(PathBuf, String),
    #[error("[control]: {0}")]
    Config(String),
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// (service, app, namespace, number): an instance's identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceKey(pub String, pub String, pub String, pub u32);

impl InstanceKey {
    pub fn of(entry: &InstanceEntry) -> InstanceKey {
        InstanceKey(entry.service.clone(), entry.app.clone(), entry.namespace.clone(), entry.number)
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{}", self.0, self.1, self.2, self.3)
    }
}

/// What this node says about itself.
pub struct LocalNode {
    pub name: String,
    pub wg_public_key: PublicKey,
    pub endpoints: Vec<SocketAddr>,
    pub control: Vec<SocketAddr>,
    pub grant: Signed<SubnetGrant>,
    pub subnet: Ipv4Net,
    pub location: Option<(f64, f64)>,
    pub version: u64,
    pub instances: BTreeMap<InstanceKey, InstanceEntry>,
    pub instances_version: u64,
}

impl LocalNode {
    fn record(&self, coordinate: Coordinate) -> NodeRecord {
        NodeRecord {
            name: self.name.clone(),
            wg_public_key: self.wg_public_key.0,
            endpoints: self.endpoints.clone(),
            control: self.control.clone(),
            grant: self.grant.clone(),
            location: self.location,
            coordinate,
            version: self.version,
        }
    }

    /// Instances announced by this node must live in its subnet; others
    /// would be ignored by every member, so refuse them here, loudly.
    fn check(&self, entries: &[InstanceEntry]) -> Result<(), String> {
        for entry in entries {
            if let Some(address) = entry.ipv4 {
                if !self.subnet.contains(&address) || address == self.subnet.network() || address == self.subnet.broadcast() {
                    return Err(format!(
                        "instance {} address {address} is outside this node's subnet {}; use an address from it (or create the instance with POST /v1/workloads)",
                        InstanceKey::of(entry),
                        self.subnet
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The API's way in: register/deregister local instances, read the view.
#[derive(Clone)]
pub struct ControlHandle {
    commands: mpsc::Sender<Command>,
    pub view: SharedView,
    pub subnet: Ipv4Net,
}

impl ControlHandle {
    pub async fn register(&self, entries: Vec<InstanceEntry>) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Register(entries, reply))
            .await
            .map_err(|_| "control plane stopped".to_owned())?;
        answer.await.map_err(|_| "control plane stopped".to_owned())?
    }

    pub async fn deregister(&self, key: InstanceKey) -> Result<InstanceEntry, String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Deregister(key, reply))
            .await
            .map_err(|_| "control plane stopped".to_owned())?;
        answer.await.map_err(|_| "control plane stopped".to_owned())?
    }

    pub fn view(&self) -> ControlView {
        self.view.read().clone()
    }
}

/// Everything the driver needs besides the admission.
pub struct LocalSettings {
    pub name: String,
    pub location: Option<(f64, f64)>,
    pub tunnel_port: u16,
}

/// Starts the driver task; dropping the handle's senders stops it.
pub fn spawn(
    admitted: Admitted,
    config: &ControlConfig,
    settings: LocalSettings,
    device: Arc<Device>,
    directory: Arc<MemoryDirectory>,
) -> Result<(ControlHandle, tokio::task::JoinHandle<()>), ControlError> {
    let advertised: Vec<IpAddr> = config.advertised().map_err(ControlError::Config)?;
    let local_peer = admitted.keypair.public().to_peer_id();
    let local = LocalNode {
        name: settings.name.clone(),
        wg_public_key: device.public_key(),
        endpoints: advertised.iter().map(|ip| SocketAddr::new(*ip, settings.tunnel_port)).collect(),
        control: advertised.iter().map(|ip| SocketAddr::new(*ip, config.listen.port())).collect(),
        grant: admitted.grant.clone(),
        subnet: admitted.subnet,
        location: settings.location,
        version: 0,
        instances: BTreeMap::new(),
        instances_version: 0,
    };
    let view: SharedView = Arc::new(parking_lot::RwLock::new(ControlView {
        local: LocalView {
            name: settings.name,
            peer_id: local_peer.to_string(),
            subnet: admitted.subnet.to_string(),
            authority: admitted.authority_peer.to_string(),
            is_authority: admitted.authority.is_some(),
            ..LocalView::default()
        },
        ..ControlView::default()
    }));
    let (commands, receiver) = mpsc::channel(64);
    let subnet = admitted.subnet;
    let driver = Driver::new(admitted, local, device, directory, view.clone(), receiver);
    let task = tokio::spawn(driver.run());
    Ok((ControlHandle { commands, view, subnet }, task))
}
