//! Semantic DNS served by the node: the directory it answers from and the
//! server. In static mode the directory is filled from the config (node and
//! peer locations), from handshake RTTs the data plane measures anyway, and
//! from instances registered through the local API; in dynamic mode the
//! control plane ([`crate::control::projection`]) fills it from signed
//! records and probes.
//!
//! The server runs on a thread and runtime of its own: a query flood costs
//! that thread, never the control plane's probe answers or the local API.
//! It answers loopback, the node's workloads and the mesh only
//! (`allow_from`), never the LAN.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dns::server::DnsServer;
use dns::store::MemoryDirectory;
use dns::{DistanceOracle, NodeId, RttEstimate};
use ipnet::IpNet;
use overlay::Device;
use tokio::sync::oneshot;

use crate::{NetmanagerError, NodeConfig};

/// How often handshake RTTs are copied from the data plane into the directory.
const RTT_REFRESH: Duration = Duration::from_secs(1);

/// The node's DNS: directory plus running server.
pub struct Naming {
    pub directory: Arc<MemoryDirectory>,
    /// This node, as the directory names it.
    pub local: NodeId,
    stats: Arc<dns::QueryStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Naming {
    /// Fills the directory from the config and starts the DNS server on the
    /// configured addresses (plus the overlay address, unless turned off),
    /// answering the prefixes in `allow` besides loopback.
    pub async fn start(config: &NodeConfig, local: NodeId, overlay: IpAddr, allow: Vec<IpNet>) -> Result<Naming, NetmanagerError> {
        let directory = Arc::new(MemoryDirectory::new(local.clone()));
        directory.update(|u| -> Result<(), NetmanagerError> {
            if let Some(location) = config.location {
                u.set_location(&local, location).map_err(NetmanagerError::Dns)?;
            }
            for peer in &config.peers {
                if let Some(location) = peer.location {
                    u.set_location(&NodeId::new(&peer.node_name()), location).map_err(NetmanagerError::Dns)?;
                }
            }
            Ok(())
        })?;
        let mut dns = config.dns.clone().with_allow_from(allow);
        if config.dns_on_overlay {
            let overlay = SocketAddr::new(overlay, 53);
            if !dns.listen.contains(&overlay) {
                dns.listen.push(overlay);
            }
        }
        let (started_tx, started) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = directory.clone();
        let thread = std::thread::Builder::new()
            .name("grove-dns".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(NetmanagerError::Startup(format!("DNS runtime: {e}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let server = match DnsServer::start(dns, served).await {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = started_tx.send(Err(NetmanagerError::Dns(e)));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok((server.local_addrs(), server.stats())));
                    let _ = stopped.await;
                    server.shutdown().await;
                });
            })
            .map_err(|e| NetmanagerError::Startup(format!("DNS thread: {e}")))?;
        let (addrs, stats) = started.await.map_err(|_| NetmanagerError::Startup("the DNS thread ended at start".into()))??;
        tracing::info!(listen = ?addrs, node = %local, "DNS serving");
        Ok(Naming { directory, local, stats, stop: Some(stop), thread: Some(thread) })
    }

    /// Copies the data plane's handshake RTTs into the directory, forever
    /// (static mode; `names`: peer public key → node name).
    pub async fn follow_rtts(directory: Arc<MemoryDirectory>, device: Arc<Device>, names: HashMap<String, String>) {
        let mut tick = tokio::time::interval(RTT_REFRESH);
        loop {
            tick.tick().await;
            let status = device.status();
            // Only write when something moved: a write copies the directory.
            let current = directory.snapshot();
            let changed: Vec<(NodeId, Duration)> = status
                .peers
                .iter()
                .filter_map(|peer| {
                    let node = NodeId::new(names.get(&peer.public_key)?);
                    let rtt = Duration::from_millis(u64::from(peer.handshake_rtt_ms?));
                    (current.distance(&node).rtt.map(|r| r.rtt) != Some(rtt)).then_some((node, rtt))
                })
                .collect();
            if !changed.is_empty() {
                directory.update(|u| {
                    for (node, rtt) in &changed {
                        u.set_rtt(node, Some(RttEstimate::measured(*rtt)));
                    }
                });
            }
        }
    }

    /// Query counters of the running server (for metrics).
    pub fn stats(&self) -> Arc<dns::QueryStats> {
        self.stats.clone()
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
