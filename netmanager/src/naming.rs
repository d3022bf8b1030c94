//! Semantic DNS served by the node: the directory it answers from and the
//! server. In static mode the directory is filled from the config (node and
//! peer locations), from handshake RTTs the data plane measures anyway, and
//! from instances registered through the local API; in dynamic mode the
//! control plane ([`crate::control::project`]) fills it from signed records
//! and probes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dns::server::DnsServer;
use dns::store::MemoryDirectory;
use dns::{DistanceOracle, NodeId, RttEstimate};
use overlay::Device;

use crate::{NetmanagerError, NodeConfig};

/// How often handshake RTTs are copied from the data plane into the directory.
const RTT_REFRESH: Duration = Duration::from_secs(1);

/// The node's DNS: directory plus running server.
pub struct Naming {
    pub directory: Arc<MemoryDirectory>,
    /// This node's name, the default `node` of registered instances.
    pub local: String,
    server: DnsServer,
}

impl Naming {
    /// Fills the directory from the config and starts the DNS server on the
    /// configured addresses (plus the overlay address, unless turned off).
    pub async fn start(config: &NodeConfig, overlay: std::net::IpAddr) -> Result<Naming, NetmanagerError> {
        let local = config.node_name();
        let directory = Arc::new(MemoryDirectory::new(NodeId::new(&local)));
        directory.update(|u| -> Result<(), NetmanagerError> {
            if let Some(location) = config.location {
                u.set_location(&NodeId::new(&local), location).map_err(NetmanagerError::Dns)?;
            }
            for peer in &config.peers {
                if let Some(location) = peer.location {
                    u.set_location(&NodeId::new(&peer.node_name()), location)
                        .map_err(NetmanagerError::Dns)?;
                }
            }
            Ok(())
        })?;
        let mut dns = config.dns.clone();
        if config.dns_on_overlay {
            let overlay = SocketAddr::new(overlay, 53);
            if !dns.listen.contains(&overlay) {
                dns.listen.push(overlay);
            }
        }
        let server = DnsServer::start(dns, directory.clone()).await.map_err(NetmanagerError::Dns)?;
        tracing::info!(listen = ?server.local_addrs(), node = %local, "DNS serving");
        Ok(Naming {
            directory,
            local,
            server,
        })
    }

    /// Copies the data plane's handshake RTTs into the directory, forever.
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
        self.server.stats()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
