//! The tiers' view of the mesh, through the local netmanager's API (its
//! unix socket): who a connecting address belongs to, where a named member
//! is, which members the failure detector holds dead, and the workload
//! namespaces a worker asks for. No second membership, no second
//! heartbeat: the mesh already authenticates every overlay address.
//!
//! [`LocalNode::view`] reads `/v1/members` once (with RTTs);
//! [`LocalNode::watch_members`] follows `/v1/events` ([`watch`]), whose
//! lines [`events`] applies to a [`MeshView`].

pub mod events;
pub mod watch;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use netmanager::api::client;
use netmanager::api::types::{
    Created, DelegationInstall, DelegationIssued, DelegationRequest, DelegationState, MemberState, Members, Workload, WorkloadSpec,
};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::OrchestratorError;

/// The block a cluster is delegated: a /22 holds 16 worker subnets.
pub const DELEGATED_BLOCK: u8 = 22;

/// A member of the mesh as the tiers need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// Its member name.
    pub name: String,
    /// Its subnet.
    pub subnet: Ipv4Net,
    /// Alive or suspect (not dead, not left).
    pub up: bool,
    /// Its location.
    pub location: Option<dns::Location>,
    /// RTT from this node, measured or estimated (ms).
    pub rtt_ms: Option<f64>,
}

/// The node's own overlay address: the first host of its subnet.
pub fn overlay_address(subnet: Ipv4Net) -> Ipv4Addr {
    subnet.hosts().next().unwrap_or(subnet.network())
}

/// The local netmanager.
#[derive(Clone, Debug)]
pub struct LocalNode {
    socket: PathBuf,
}

/// What the tiers read of the membership at one moment.
#[derive(Clone, Debug)]
pub struct MeshView {
    /// This node's member name.
    pub local_name: String,
    /// This node's subnet.
    pub local_subnet: Ipv4Net,
    /// This node's configured location.
    pub local_location: Option<dns::Location>,
    /// Every other member.
    pub peers: Vec<Peer>,
}

impl MeshView {
    fn from_members(members: &Members) -> MeshView {
        let peers = members
            .view
            .members
            .iter()
            .map(|m| Peer {
                name: m.name.clone(),
                subnet: m.subnet,
                up: matches!(m.state, MemberState::Alive | MemberState::Suspect),
                location: m.location,
                rtt_ms: m.rtt_ms().map(|(ms, _)| ms),
            })
            .collect();
        MeshView {
            local_name: members.view.local.name.clone(),
            local_subnet: members.view.local.subnet,
            local_location: members.view.local.location,
            peers,
        }
    }

    /// This node's overlay address.
    pub fn local_address(&self) -> Ipv4Addr {
        overlay_address(self.local_subnet)
    }

    /// The member whose subnet holds `address`, if it is up (this node counts).
    pub fn identify(&self, address: Ipv4Addr) -> Option<String> {
        if self.local_subnet.contains(&address) {
            return Some(self.local_name.clone());
        }
        self.peers.iter().find(|p| p.up && p.subnet.contains(&address)).map(|p| p.name.clone())
    }

    /// Where a member (or this node) is.
    pub fn location_of(&self, name: &str) -> Option<dns::Location> {
        if name == self.local_name {
            return self.local_location;
        }
        self.peer(name).and_then(|p| p.location)
    }

    /// A member by name.
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// True when `name` is this node or an up member.
    pub fn is_up(&self, name: &str) -> bool {
        name == self.local_name || self.peer(name).is_some_and(|p| p.up)
    }
}

impl LocalNode {
    /// The netmanager whose API listens on `socket`.
    pub fn new(socket: &Path) -> LocalNode {
        LocalNode { socket: socket.to_path_buf() }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> Result<T, netmanager::NetmanagerError> + Send + 'static,
    ) -> Result<T, OrchestratorError> {
        let socket = self.socket.clone();
        let shown = socket.display().to_string();
        tokio::task::spawn_blocking(move || f(&socket))
            .await
            .map_err(|e| OrchestratorError::Unavailable(format!("netmanager call panicked: {e}")))?
            .map_err(|e| OrchestratorError::Unavailable(format!("netmanager at {shown}: {e}")))
    }

    /// The membership now.
    pub async fn view(&self) -> Result<MeshView, OrchestratorError> {
        let members: Members = self.blocking(|s| client::get(s, "/v1/members")).await?;
        Ok(MeshView::from_members(&members))
    }

    /// Follows the membership as it changes (netmanager's event stream,
    /// reconnected when it goes away).
    pub fn watch_members(&self) -> watch::MemberWatch {
        watch::MemberWatch::new(self.socket.clone())
    }

    /// Waits until netmanager answers (it is joined once it does), logging while it waits.
    pub async fn wait_ready(&self) -> MeshView {
        let mut warned = false;
        loop {
            match self.view().await {
                Ok(view) => return view,
                Err(e) => {
                    if !warned {
                        tracing::warn!("waiting for the local netmanager: {e} (is `netmanager run` up, in dynamic mode?)");
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// On the mesh authority's node: a block set aside for the member
    /// `cluster`, signed (base64).
    pub async fn delegate(&self, cluster: &str) -> Result<DelegationIssued, OrchestratorError> {
        let request = DelegationRequest { cluster: cluster.to_owned(), block_len: DELEGATED_BLOCK };
        self.blocking(move |s| client::post(s, "/v1/delegations", &request)).await
    }

    /// On a cluster's node: admit the site's nodes under `delegation`.
    pub async fn install_delegation(&self, delegation: String) -> Result<DelegationState, OrchestratorError> {
        self.blocking(move |s| client::put(s, "/v1/delegation", &DelegationInstall { delegation })).await
    }

    /// A namespace for one instance, announced in DNS.
    pub async fn create_workload(&self, spec: WorkloadSpec) -> Result<Created, OrchestratorError> {
        self.blocking(move |s| client::post(s, "/v1/workloads", &spec)).await
    }

    /// Removes an instance's namespace and announcement.
    pub async fn delete_workload(&self, key: dns::InstanceKey) -> Result<Workload, OrchestratorError> {
        self.blocking(move |s| client::delete(s, &format!("/v1/workloads/{key}"))).await
    }

    /// This node's workloads.
    pub async fn workloads(&self) -> Result<Vec<Workload>, OrchestratorError> {
        self.blocking(|s| client::get(s, "/v1/workloads")).await
    }
}

/// Where an upper tier listens: `target` is a member name or an address,
/// with an optional `:port` (else `default_port`).
pub fn resolve_target(view: &MeshView, target: &str, default_port: u16) -> Result<SocketAddrV4, OrchestratorError> {
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse().map_err(|_| OrchestratorError::BadRequest(format!("`{target}`: `{port}` is not a port")))?;
            (host, port)
        }
        None => (target, default_port),
    };
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(SocketAddrV4::new(ip, port));
    }
    if host == view.local_name {
        return Ok(SocketAddrV4::new(view.local_address(), port));
    }
    match view.peer(host) {
        Some(peer) => Ok(SocketAddrV4::new(overlay_address(peer.subnet), port)),
        None => Err(OrchestratorError::NotFound { what: "mesh member", reference: host.to_owned() }),
    }
}

/// Listens on this node's overlay address only: the tier links never face
/// the underlay.
pub async fn listen_on_overlay(view: &MeshView, port: u16) -> Result<TcpListener, OrchestratorError> {
    let address = SocketAddr::V4(SocketAddrV4::new(view.local_address(), port));
    TcpListener::bind(address)
        .await
        .map_err(|e| OrchestratorError::Unavailable(format!("cannot listen on the overlay address {address}: {e}")))
}

/// Connects from this node's overlay address, so the upper tier sees an
/// address in our subnet whatever route the kernel would pick.
pub async fn connect_from_overlay(view: &MeshView, to: SocketAddrV4) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(view.local_address(), 0)))?;
    let stream = tokio::time::timeout(Duration::from_secs(3), socket.connect(SocketAddr::V4(to)))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connecting to {to} timed out")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
