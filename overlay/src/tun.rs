//! The TUN device carrying the node's overlay addresses, with virtio-net
//! offload so the kernel hands us (and takes from us) 64 KiB TCP segments.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;

use ipnet::IpNet;
use tun_rs::{DeviceBuilder, GROTable, SyncDevice};

use crate::OverlayError;

pub use tun_rs::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

pub struct TunDevice {
    dev: SyncDevice,
    name: String,
    mtu: u16,
    offload: bool,
}

impl TunDevice {
    /// Creates and brings up `name` with `addresses`. If the kernel refuses
    /// offload, falls back to one packet per read.
    pub fn create(name: &str, addresses: &[IpNet], mtu: u16, offload: bool) -> Result<Self, OverlayError> {
        let build = |offload: bool| {
            let mut builder = DeviceBuilder::new().name(name).mtu(mtu).offload(offload);
            let mut v4_done = false;
            for net in addresses {
                match net.addr() {
                    IpAddr::V4(a) if !v4_done => {
                        builder = builder.ipv4(a, net.prefix_len(), None);
                        v4_done = true;
                    }
                    IpAddr::V4(a) => tracing::warn!(%a, "only one IPv4 overlay address per TUN; ignoring"),
                    IpAddr::V6(a) => builder = builder.ipv6(a, net.prefix_len()),
                }
            }
            builder.build_sync()
        };
        let tun_err = |source| OverlayError::Tun {
            name: name.to_owned(),
            source,
        };
        let (dev, offload) = match build(offload) {
            Ok(dev) => (dev, offload),
            Err(e) if offload => {
                tracing::warn!(error = %e, "TUN offload unavailable, continuing without it");
                (build(false).map_err(tun_err)?, false)
            }
            Err(e) => return Err(tun_err(e)),
        };
        dev.set_nonblocking(true).map_err(tun_err)?;
        let offload = offload && dev.tcp_gso();
        Ok(Self {
            dev,
            name: name.to_owned(),
            mtu,
            offload,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Whether reads and writes carry virtio headers (GSO/GRO active).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Reads one (possibly 64 KiB GSO) packet and splits it into `bufs`;
    /// returns how many packets, `WouldBlock` when none is waiting.
    pub fn recv_batch(&self, scratch: &mut [u8], bufs: &mut [Vec<u8>], sizes: &mut [usize]) -> io::Result<usize> {
        self.dev.recv_multiple(scratch, bufs, sizes, 0)
    }

    /// Writes packets stored at offset [`VIRTIO_NET_HDR_LEN`] of each buffer,
    /// coalescing TCP/UDP flows (GRO) when offload is on.
    pub fn send_batch(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> io::Result<usize> {
        self.dev.send_multiple(gro, bufs, VIRTIO_NET_HDR_LEN)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }

    /// Routes `net` into this TUN unless an address prefix already covers it
    /// (the kernel adds those itself).
    pub fn ensure_route(&self, net: IpNet, own: &[IpNet]) -> Result<(), OverlayError> {
        if own.iter().any(|o| o.trunc().contains(&net.trunc())) {
            return Ok(());
        }
        let family = if net.addr().is_ipv4() { "-4" } else { "-6" };
        let status = Command::new("ip")
            .args([family, "route", "replace", &net.trunc().to_string(), "dev", &self.name])
            .status()
            .map_err(OverlayError::io("running `ip route` (is iproute2 installed?)"))?;
        if !status.success() {
            return Err(OverlayError::Io {
                context: "adding a route for a peer prefix",
                source: io::Error::other(format!("`ip route replace {net} dev {}` failed", self.name)),
            });
        }
        Ok(())
    }
}
