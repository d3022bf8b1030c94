//! The running data plane: owns the UDP socket and the TUN, and runs the
//! outbound, inbound and timer threads over a shared peer table.

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::counters::DeviceStatus;
use crate::receive::Receiver;
use crate::peer_table::{PeerTable, SkippedPeer};
use crate::tun::TunDevice;
use crate::udp::UdpTransport;
use crate::wake::Shutdown;
use crate::{inbound, mtu, outbound, timers, DeviceConfig, OverlayError, PeerConfig, PublicKey};

/// State the three threads share.
pub(crate) struct Shared {
    table: RwLock<Arc<PeerTable>>,
    pub(crate) udp: UdpTransport,
    pub(crate) tun: TunDevice,
    /// Inbound decisions, the handshake rate limiter, and the drops that
    /// belong to no known peer.
    pub(crate) receiver: Receiver,
    pub(crate) shutdown: Shutdown,
}

impl Shared {
    /// The current peer table; threads take it once per batch.
    #[inline]
    pub(crate) fn peers(&self) -> Arc<PeerTable> {
        self.table.read().clone()
    }
}

/// A running mesh node. Dropping it stops the threads and removes the TUN.
pub struct Device {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    config: DeviceConfig,
    next_peer_id: Mutex<u32>,
}

impl Device {
    /// Binds the socket, creates the TUN and starts the data plane.
    pub fn start(config: DeviceConfig) -> Result<Device, OverlayError> {
        let mtu = config
            .mtu
            .unwrap_or_else(|| mtu::for_endpoints(config.peers.iter().flat_map(|p| &p.endpoints)));
        let udp = UdpTransport::bind(config.listen_address, config.listen_port)?;
        let tun = TunDevice::create(&config.interface, &config.addresses, mtu, config.tun_offload)?;
        let mut next_id = 0;
        let table = PeerTable::build(
            &config.private_key,
            &config.peers,
            config.keepalive_secs,
            &PeerTable::default(),
            &mut next_id,
            Instant::now(),
        );
        // A static configuration is the operator's own file: better to say
        // what is wrong in it now than to run without some of its peers.
        if let Some(skipped) = table.skipped().first() {
            return Err(skipped.clone().into());
        }
        for peer in &config.peers {
            for net in &peer.allowed_ips {
                tun.ensure_route(*net, &config.addresses)?;
            }
        }
        let shared = Arc::new(Shared {
            table: RwLock::new(Arc::new(table)),
            udp,
            tun,
            receiver: Receiver::new(config.private_key.clone()),
            shutdown: Shutdown::new().map_err(OverlayError::io("creating the shutdown eventfd"))?,
        });
        tracing::info!(
            interface = %shared.tun.name(),
            mtu,
            offload = shared.tun.offload(),
            gso_segments = shared.udp.max_gso_segments(),
            gro_segments = shared.udp.gro_segments(),
            listen = ?shared.udp.local_addr().ok(),
            public_key = %config.private_key.public_key(),
            peers = config.peers.len(),
            "data plane up"
        );
        let mut device = Device {
            shared,
            threads: Vec::new(),
            config,
            next_peer_id: Mutex::new(next_id),
        };
        device.spawn("grove-tx", outbound::run)?;
        device.spawn("grove-rx", inbound::run)?;
        device.spawn("grove-timers", timers::run)?;
        Ok(device)
    }

    fn spawn(&mut self, name: &str, body: fn(&Shared)) -> Result<(), OverlayError> {
        let shared = self.shared.clone();
        let thread = name.to_owned();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // A data-plane thread that dies leaves the node half-working
                // and silent (no timers: no keepalives, rekeys or rate-limit
                // resets). Better to stop the whole process, loudly, so its
                // supervisor restarts it.
                if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| body(&shared))) {
                    let what = panic
                        .downcast_ref::<&str>()
                        .copied()
                        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                        .unwrap_or("(no message)");
                    tracing::error!(%thread, panic = what, "data-plane thread panicked; aborting");
                    eprintln!("grove: data-plane thread {thread} panicked ({what}); aborting");
                    std::process::abort();
                }
            })
            .map_err(OverlayError::io("spawning a data-plane thread"))?;
        self.threads.push(handle);
        Ok(())
    }

    pub fn public_key(&self) -> PublicKey {
        self.config.private_key.public_key()
    }

    /// The address the mesh socket is bound to (useful with port 0 in tests).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.udp.local_addr().ok()
    }

    /// Replaces the peer set. Peers whose key stays keep their sessions;
    /// new prefixes get routes. An entry that cannot be added (its key or a
    /// prefix is already taken by an earlier one) is skipped and logged, not
    /// fatal to the others; [`Self::skipped_peers`] lists them.
    pub fn set_peers(&self, peers: &[PeerConfig]) -> Result<(), OverlayError> {
        let mut next_id = self.next_peer_id.lock();
        let current = self.shared.peers();
        let table = PeerTable::build(
            &self.config.private_key,
            peers,
            self.config.keepalive_secs,
            &current,
            &mut next_id,
            Instant::now(),
        );
        for skipped in table.skipped() {
            tracing::warn!("{skipped}");
        }
        let kept = peers
            .iter()
            .enumerate()
            .filter(|(i, _)| !table.skipped().iter().any(|s| s.index == *i));
        for (_, peer) in kept {
            for net in &peer.allowed_ips {
                self.shared.tun.ensure_route(*net, &self.config.addresses)?;
            }
        }
        *self.shared.table.write() = Arc::new(table);
        Ok(())
    }

    /// The entries the last [`Self::set_peers`] left out, and why.
    pub fn skipped_peers(&self) -> Vec<SkippedPeer> {
        self.shared.peers().skipped().to_vec()
    }

    /// A `wg show`-like snapshot of the device and every peer.
    pub fn status(&self) -> DeviceStatus {
        let table = self.shared.peers();
        DeviceStatus {
            interface: self.shared.tun.name().to_owned(),
            public_key: self.public_key().to_string(),
            listen_port: self.local_addr().map_or(self.config.listen_port, |a| a.port()),
            mtu: self.shared.tun.mtu(),
            addresses: self.config.addresses.clone(),
            offload: self.shared.tun.offload(),
            peers: table.peers().iter().map(|p| p.status()).collect(),
            drops: self.shared.receiver.drops.snapshot(),
        }
    }

    /// Stops the threads and closes the TUN (the kernel removes the interface).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.trigger();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop();
    }
}
