//! The dynamic control plane (libp2p): admission, signed records,
//! membership and failure detection, RTTs and coordinates.
//!
//! * [`wire`]: the schema (records, signatures, protocols), shared with the
//!   `rogue` test peer and the orchestrator;
//! * [`admission`]: the authority, its tokens and store, and the joining
//!   node's side;
//! * [`node`]: the pure state machine of one node; [`membership`],
//!   [`latency`], [`vivaldi`] and [`projection`] are its pure parts;
//! * [`driver`] (the I/O shell), [`swarm`] and [`gate`] (libp2p), [`view`]
//!   (what the API reads), [`events`] and [`feed`] (membership events, as
//!   the API streams them).
//!
//! [`start`] runs all of it on a thread of its own with its own runtime:
//! the control plane's timing (probe answers) never waits for DNS or the
//! local API.

pub mod admission;
pub mod config;
pub mod driver;
pub mod events;
pub mod feed;
pub mod gate;
pub mod identity;
pub mod latency;
pub mod membership;
pub mod node;
pub mod projection;
pub mod swarm;
pub mod view;
pub mod vivaldi;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use dns::store::MemoryDirectory;
use dns::{InstanceKey, InstanceSpec, Location};
use ipnet::Ipv4Net;
use libp2p_identity::PeerId;
use overlay::Device;
use tokio::sync::{mpsc, oneshot};

use admission::join::{enter, JoinAs};
use admission::delegate::{Delegate, SharedAdmission};
use admission::{AdmissionHandle, GrantInfo, Refusal};
use driver::{Driver, Request};
use feed::FeedHub;
use node::{Command, ControlNode, Done, NodeSettings};
use view::{ControlView, SharedView};
use wire::records::Gossip;

pub use config::ControlConfig;

/// Instance keys are boxed here: a key holds three inline labels, and
/// every `Result` carrying this error would otherwise be as large.
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
    #[error("not joined yet and no bootstrap node: set [control] bootstrap = [\"<authority peer id>@<authority ip>:50103\"]")]
    NoBootstrap,
    #[error(
        "the admission authority is not pinned: write its peer id into the bootstrap entry, \
         bootstrap = [\"<peer-id>@<ip>:50103\"] (run `netmanager id` on the authority to see it), \
         or set [control] authority = \"<peer-id>\""
    )]
    NotPinned,
    #[error("join refused by {by}: {refusal}")]
    JoinRefused { by: String, refusal: Refusal },
    #[error("the authority {authority} did not answer at {addrs:?} ({last}); is it running and reachable on TCP, and is the peer id right?")]
    Unreachable { authority: String, addrs: Vec<SocketAddr>, last: String },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("state file {0}: {1}")]
    State(PathBuf, String),
    #[error("[control]: {0}")]
    Config(String),
    #[error("the control plane has stopped")]
    Stopped,
    #[error("instance {instance}: address {address} is outside this node's subnet {subnet}; use an address from it (or create the instance with POST /v1/workloads)")]
    OutsideSubnet { instance: Box<InstanceKey>, address: Ipv4Addr, subnet: Ipv4Net },
    #[error("instance {instance}: IPv6 address {address} is not a unique-local (fc00::/7) address")]
    NotUniqueLocal { instance: Box<InstanceKey>, address: std::net::Ipv6Addr },
    #[error("instance {0} needs an ipv4 or ipv6 address")]
    NoAddress(Box<InstanceKey>),
    #[error("a node announces at most {limit} instances")]
    TooManyInstances { limit: usize },
    #[error("no instance {0} on this node")]
    UnknownInstance(Box<InstanceKey>),
    #[error("cannot sign: {0}")]
    Sign(wire::SignedError),
    #[error("{0}")]
    Rejected(String),
}

/// What the rest of the daemon learns once the node is admitted.
pub struct Joined {
    pub peer_id: PeerId,
    pub authority: PeerId,
    pub info: GrantInfo,
    /// When this node admits (the authority, or a delegate): token and
    /// member management for the local API.
    pub admission: SharedAdmission,
    /// On a member that is not the authority: how it becomes a delegate.
    pub delegate: Option<Arc<Delegate>>,
}

/// What the control plane needs to know beyond its config.
pub struct ControlStart {
    pub config: ControlConfig,
    pub join: JoinAs,
    pub location: Option<Location>,
    pub tunnel_port: u16,
}

/// The control plane between admission and running: hand it the tunnel
/// and the directory ([`Starting::run`]) once they exist.
pub struct Starting {
    joined: oneshot::Receiver<Result<Joined, ControlError>>,
    wiring: oneshot::Sender<(Arc<Device>, Arc<MemoryDirectory>)>,
    handle: ControlHandle,
    thread: std::thread::JoinHandle<()>,
}

/// The running control plane; [`ControlPlane::shutdown`] says goodbye.
pub struct ControlPlane {
    pub handle: ControlHandle,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the control thread: it admits the node (join, kept grant or
/// authority) and waits for [`Starting::run`].
pub fn start(start: ControlStart) -> Result<Starting, ControlError> {
    let (joined_tx, joined) = oneshot::channel();
    let (wiring, wiring_rx) = oneshot::channel();
    let (requests, requests_rx) = mpsc::channel(64);
    let view: SharedView = Arc::new(parking_lot::RwLock::new(None));
    let feed = FeedHub::default();
    let handle = ControlHandle { requests, view: view.clone(), feed: feed.clone() };
    let thread = std::thread::Builder::new()
        .name("grove-control".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = joined_tx.send(Err(ControlError::Config(format!("control runtime: {e}"))));
                    return;
                }
            };
            runtime.block_on(control_thread(start, joined_tx, wiring_rx, requests_rx, view, feed));
        })
        .map_err(|e| ControlError::Config(format!("control thread: {e}")))?;
    Ok(Starting { joined, wiring, handle, thread })
}

async fn control_thread(
    start: ControlStart,
    joined: oneshot::Sender<Result<Joined, ControlError>>,
    wiring: oneshot::Receiver<(Arc<Device>, Arc<MemoryDirectory>)>,
    requests: mpsc::Receiver<Request>,
    view: SharedView,
    feed: FeedHub,
) {
    let ControlStart { config, join, location, tunnel_port } = start;
    let admitted = match enter(&config, join).await {
        Ok(admitted) => admitted,
        Err(e) => {
            let _ = joined.send(Err(e));
            return;
        }
    };
    let advertised = match advertised(&config) {
        Ok(advertised) => advertised,
        Err(e) => {
            let _ = joined.send(Err(e));
            return;
        }
    };
    let peer_id = admitted.keypair.public().to_peer_id();
    let rules = admission::GrantRules { pool: config.pool, prefix_len: admission::pool::SUBNET_PREFIX };
    let tokens_file = config.admit.as_ref().and_then(|a| a.tokens_file.clone());
    let admission: SharedAdmission = Arc::new(parking_lot::RwLock::new(None));
    let (authority_thread, delegate) = match admitted.authority {
        Some((authority, store)) => match AdmissionHandle::spawn(authority, store, tokens_file) {
            Ok((handle, thread)) => {
                *admission.write() = Some(handle);
                (Some(thread), None)
            }
            Err(e) => {
                let _ = joined.send(Err(e.into()));
                return;
            }
        },
        None => {
            let delegate = Delegate::new(admitted.keypair.clone(), &config.state_dir, admitted.authority_peer, rules, tokens_file, admission.clone());
            if let Err(e) = delegate.resume() {
                let _ = joined.send(Err(e.into()));
                return;
            }
            (None, Some(Arc::new(delegate)))
        }
    };
    let summary = Joined { peer_id, authority: admitted.authority_peer, info: admitted.info.clone(), admission: admission.clone(), delegate };
    if joined.send(Ok(summary)).is_err() {
        return;
    }
    let Ok((device, directory)) = wiring.await else { return };
    let settings = NodeSettings {
        keypair: admitted.keypair,
        authority: admitted.authority_peer,
        is_authority: admission.read().is_some(),
        rules,
        grant: admitted.grant,
        delegation: admitted.delegation,
        info: admitted.info,
        endpoints: advertised.iter().map(|ip| SocketAddr::new(*ip, tunnel_port)).collect(),
        control: advertised.iter().map(|ip| SocketAddr::new(*ip, config.listen.port())).collect(),
        location,
        incarnation: admitted.incarnation,
        bootstrap: config.bootstrap_addrs(),
    };
    let (node, first) = ControlNode::new(settings, Instant::now());
    *view.write() = Some(node.view(Instant::now()));
    let driver = Driver::new(admitted.swarm, node, first, requests, admission, driver::Sinks { device, directory, view, feed });
    driver.run().await;
    if let Some(thread) = authority_thread {
        thread.join();
    }
}

impl Starting {
    /// Waits for the admission.
    pub async fn joined(&mut self) -> Result<Joined, ControlError> {
        (&mut self.joined).await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Hands over the tunnel and the directory: the control plane runs.
    pub fn run(self, device: Arc<Device>, directory: Arc<MemoryDirectory>) -> ControlPlane {
        let _ = self.wiring.send((device, directory));
        ControlPlane { handle: self.handle, thread: self.thread }
    }

    /// Gives up before running (start-up failed elsewhere).
    pub fn abandon(self) {
        drop(self.wiring);
        drop(self.handle);
        let _ = self.thread.join();
    }
}

impl ControlPlane {
    /// Gossips a signed leave, stops the control plane and waits for it.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.handle.requests.send(Request::Shutdown(done)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), wait).await;
        }
        drop(self.handle);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// The API's way in: announce instances, read the view. Cheap to clone.
#[derive(Clone)]
pub struct ControlHandle {
    requests: mpsc::Sender<Request>,
    view: Arc<parking_lot::RwLock<Option<ControlView>>>,
    feed: FeedHub,
}

impl ControlHandle {
    pub async fn register(&self, specs: Vec<InstanceSpec>) -> Result<Vec<InstanceSpec>, ControlError> {
        match self.command(Command::Register(specs)).await? {
            Done::Registered(specs) => Ok(specs),
            _ => Err(ControlError::Protocol("unexpected answer".into())),
        }
    }

    pub async fn deregister(&self, key: InstanceKey) -> Result<InstanceSpec, ControlError> {
        match self.command(Command::Deregister(key)).await? {
            Done::Deregistered(spec) => Ok(*spec),
            _ => Err(ControlError::Protocol("unexpected answer".into())),
        }
    }

    /// A delegation was installed: the node answers joins from now on.
    pub async fn delegated(&self) -> Result<(), ControlError> {
        self.requests.send(Request::Delegated).await.map_err(|_| ControlError::Stopped)
    }

    /// Gossips a record made elsewhere (the authority's revocations).
    pub async fn publish(&self, gossip: Gossip) -> Result<(), ControlError> {
        self.command(Command::Publish(gossip)).await.map(drop)
    }

    async fn command(&self, command: Command) -> Result<Done, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Command(command, reply)).await.map_err(|_| ControlError::Stopped)?;
        answer.await.map_err(|_| ControlError::Stopped)?
    }

    /// The latest view (none before the control plane runs).
    pub fn view(&self) -> Option<ControlView> {
        self.view.read().clone()
    }

    /// The membership events (the API's `/v1/events`).
    pub fn feed(&self) -> FeedHub {
        self.feed.clone()
    }
}

/// The underlay addresses to advertise: `advertise`, else `listen`'s when
/// specific, else the source address towards the first bootstrap node.
pub fn advertised(config: &ControlConfig) -> Result<Vec<IpAddr>, ControlError> {
    if !config.advertise.is_empty() {
        return Ok(config.advertise.clone());
    }
    if !config.listen.ip().is_unspecified() {
        return Ok(vec![config.listen.ip()]);
    }
    let Some(first) = config.bootstrap.first().map(|b| b.addr) else {
        return Err(ControlError::Config("listens on all addresses and has no bootstrap: set `advertise = [\"<underlay ip>\"]`".into()));
    };
    // A connected UDP socket learns its source address without sending.
    let bind = SocketAddr::new(if first.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) }, 0);
    let socket = std::net::UdpSocket::bind(bind).map_err(|e| ControlError::Config(format!("finding our address: {e}")))?;
    socket.connect(first).map_err(|e| ControlError::Config(format!("no route to bootstrap {first}: {e}; set `advertise`")))?;
    let local = socket.local_addr().map_err(|e| ControlError::Config(format!("finding our address: {e}")))?;
    Ok(vec![local.ip()])
}

#[cfg(test)]
pub(crate) mod testkit;
