//! The transport: UDP and TCP sockets on every configured address, served
//! by hickory's [`Server`] with a [`GroveHandler`]. Who may ask, and how
//! fast, is the handler's front door (`allow_from`, `rate_limit`); hickory's
//! own access control is left empty so that there is one place to look.
//!
//! Each address gets a UDP socket and a TCP listener on the same port; with
//! port 0 (tests), UDP is bound first and TCP then takes the UDP socket's
//! port (retrying with a fresh UDP port when that TCP port is taken).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use crate::config::DnsConfig;
use crate::forward::Forwarder;
use crate::handler::GroveHandler;
use crate::resolv_conf::{read_resolv_conf, upstreams_from, RESOLV_CONF};
use crate::stats::QueryStats;
use crate::store::MemoryDirectory;
use crate::DnsError;

/// A TCP connection idle this long is closed (hickory's DoS guard).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// Tries at finding a port free for both UDP and TCP when asked for port 0.
const EPHEMERAL_TRIES: usize = 16;

/// grove's DNS server, serving on the tokio runtime it was started on.
pub struct DnsServer {
    server: Server<GroveHandler>,
    local_addrs: Vec<SocketAddr>,
    stats: Arc<QueryStats>,
    forwarder: Option<Arc<Forwarder>>,
}

impl DnsServer {
    /// Binds UDP and TCP on every `config.listen` address and serves on the current tokio runtime.
    pub async fn start(config: DnsConfig, directory: Arc<MemoryDirectory>) -> Result<DnsServer, DnsError> {
        config.validate()?;
        let mut sockets = Vec::with_capacity(config.listen.len());
        for &address in &config.listen {
            sockets.push(bind_pair(address).await?);
        }
        let local_addrs: Vec<SocketAddr> = sockets.iter().map(|(_, _, a)| *a).collect();

        let forwarder = config.forward.enabled.then(|| {
            let upstreams = upstreams(&config, &local_addrs);
            if upstreams.is_empty() {
                tracing::warn!(
                    "DNS forwarding is on but no upstream resolver is known: names outside the zone get SERVFAIL"
                );
            }
            Arc::new(Forwarder::with_config(upstreams, &config.forward))
        });
        let handler = GroveHandler::new(&config, directory, forwarder.clone());
        let stats = handler.stats();
        let mut server = Server::new(handler);
        for (udp, tcp, address) in sockets {
            tracing::info!(%address, zone = %config.zone, "DNS listening (udp, tcp)");
            server.register_socket(udp);
            server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        }
        Ok(DnsServer {
            server,
            local_addrs,
            stats,
            forwarder,
        })
    }

    /// The addresses actually bound (tests listen on port 0).
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.local_addrs.clone()
    }

    /// The live query counters (for metrics): read them any time, from any thread.
    pub fn stats(&self) -> Arc<QueryStats> {
        self.stats.clone()
    }

    /// The forwarder, `None` when forwarding is off: its cache size and
    /// in-flight gauges are for metrics.
    pub fn forwarder(&self) -> Option<Arc<Forwarder>> {
        self.forwarder.clone()
    }

    /// Stops serving.
    pub async fn shutdown(mut self) {
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::warn!(%error, "DNS server stopped with an error");
        }
    }
}

/// The upstreams to forward to: the configured ones, else the host's
/// resolv.conf; never one of our own listen addresses (no loops).
fn upstreams(config: &DnsConfig, own: &[SocketAddr]) -> Vec<SocketAddr> {
    let own: Vec<SocketAddr> = own.iter().chain(&config.listen).copied().collect();
    if !config.forward.upstreams.is_empty() {
        return config
            .forward
            .upstreams
            .iter()
            .filter(|u| !own.contains(u))
            .copied()
            .collect();
    }
    match read_resolv_conf(Path::new(RESOLV_CONF)) {
        Ok(nameservers) => upstreams_from(&nameservers, &own),
        Err(error) => {
            tracing::warn!(%error, "no upstream resolvers from resolv.conf");
            Vec::new()
        }
    }
}

/// UDP and TCP on `address` (one port for both), and the bound address.
async fn bind_pair(address: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), DnsError> {
    let tries = if address.port() == 0 { EPHEMERAL_TRIES } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = UdpSocket::bind(address)
            .await
            .map_err(|e| bind_error(address, "udp", e))?;
        let bound = udp.local_addr().map_err(|e| bind_error(address, "udp", e))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && address.port() == 0 => {
                last = Some(bind_error(bound, "tcp", e));
            }
            Err(e) => return Err(bind_error(bound, "tcp", e)),
        }
    }
    Err(last.unwrap_or_else(|| bind_error(address, "tcp", io::ErrorKind::AddrInUse.into())))
}

fn bind_error(address: SocketAddr, protocol: &'static str, source: io::Error) -> DnsError {
    match source.kind() {
        io::ErrorKind::PermissionDenied if address.port() < 1024 => DnsError::BindPrivileged { address, protocol },
        io::ErrorKind::AddrInUse => DnsError::AddressInUse { address, protocol },
        _ => DnsError::Bind {
            address,
            protocol,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_say_what_to_do() {
        let a: SocketAddr = "127.0.0.153:53".parse().expect("addr");
        let e = bind_error(a, "udp", io::ErrorKind::PermissionDenied.into());
        assert!(e.to_string().contains("CAP_NET_BIND_SERVICE"), "{e}");
        let e = bind_error(a, "tcp", io::ErrorKind::AddrInUse.into());
        assert!(e.to_string().contains("address in use"), "{e}");
    }

    #[test]
    fn configured_upstreams_skip_our_own_addresses() {
        let mut config = DnsConfig {
            listen: vec!["127.0.0.1:5300".parse().expect("addr")],
            ..DnsConfig::default()
        };
        config.forward.upstreams = vec![
            "127.0.0.1:5300".parse().expect("addr"),
            "192.0.2.53:53".parse().expect("addr"),
        ];
        let got = upstreams(&config, &config.listen.clone());
        assert_eq!(got, vec!["192.0.2.53:53".parse::<SocketAddr>().expect("addr")]);
    }

    #[tokio::test]
    async fn a_taken_port_is_reported_as_in_use() {
        let first = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let taken = first.local_addr().expect("addr");
        match bind_pair(taken).await {
            Err(DnsError::AddressInUse { address, protocol }) => {
                assert_eq!((address, protocol), (taken, "udp"));
            }
            other => panic!("{:?}", other.map(|(_, _, a)| a)),
        }
    }
}
