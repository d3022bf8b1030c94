//! The TUN MTU, derived from the underlay path MTU to the peers.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Bytes WireGuard adds in the worst case: IPv6 (40) + UDP (8) + message
/// header (16) + AEAD tag (16). wg-quick uses the same figure, so a 1500-byte
/// underlay gives the familiar 1420.
pub const WIREGUARD_OVERHEAD: u32 = 80;
/// The smallest MTU IPv6 allows; the tunnel never goes below it.
pub const MIN_MTU: u16 = 1280;
const DEFAULT_UNDERLAY_MTU: u32 = 1500;
/// What boringtun adds to an inner packet: message header (16) and AEAD
/// tag (16). It panics, rather than fail, when its output buffer lacks them.
pub(crate) const DATA_OVERHEAD: usize = 32;

/// The largest inner packet the data plane handles on a TUN of `mtu`: the
/// MTU (never less than Ethernet's) with headroom for what the TUN may hand
/// over beyond it. The outbound thread reads packets into buffers this large.
pub(crate) fn max_packet(mtu: u16) -> usize {
    usize::from(mtu).max(1500) + 64
}

/// An output buffer for boringtun that holds any packet up to
/// [`max_packet`] once encrypted (plus padding to 16), and never less than
/// 2048 bytes: what the timer thread flushes queued packets into.
pub(crate) fn session_buffer_len(mtu: u16) -> usize {
    (max_packet(mtu) + DATA_OVERHEAD + 16).max(2048)
}

/// Tunnel MTU for a given underlay MTU.
pub fn tunnel_mtu(underlay_mtu: u32) -> u16 {
    let mtu = underlay_mtu.saturating_sub(WIREGUARD_OVERHEAD);
    u16::try_from(mtu).unwrap_or(u16::MAX).max(MIN_MTU)
}

/// The tunnel MTU for reaching `endpoints`: the smallest route MTU towards
/// any of them (asked of the kernel, no packet is sent), minus the overhead.
/// Without endpoints, a 1500-byte underlay is assumed.
pub fn for_endpoints<'a>(endpoints: impl IntoIterator<Item = &'a SocketAddr>) -> u16 {
    let smallest = endpoints.into_iter().filter_map(|e| route_mtu(*e)).min();
    tunnel_mtu(smallest.unwrap_or(DEFAULT_UNDERLAY_MTU))
}

/// Route MTU towards `to`: connect a UDP socket (no traffic) and read IP_MTU.
fn route_mtu(to: SocketAddr) -> Option<u32> {
    let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().ok()?;
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(to).ok()?;
    let (level, name) = if to.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_MTU)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    };
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: mtu and len are live locals of the sizes passed.
    let rc = unsafe {
        libc::getsockopt(socket.as_raw_fd(), level, name, (&mut mtu as *mut libc::c_int).cast(), &mut len)
    };
    (rc == 0 && mtu > 0).then_some(mtu as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_gives_1420_and_small_links_clamp() {
        assert_eq!(tunnel_mtu(1500), 1420);
        assert_eq!(tunnel_mtu(9000), 8920);
        assert_eq!(tunnel_mtu(1000), MIN_MTU);
    }

    #[test]
    fn session_buffers_follow_the_mtu() {
        assert_eq!(session_buffer_len(1420), 2048);
        assert!(session_buffer_len(9000) >= max_packet(9000) + DATA_OVERHEAD);
        assert!(max_packet(9000) >= 9000);
        assert!(session_buffer_len(u16::MAX) >= usize::from(u16::MAX) + DATA_OVERHEAD);
    }

    #[test]
    fn loopback_route_mtu_is_read_from_the_kernel() {
        // Loopback's MTU is 65536 on Linux: far above Ethernet.
        let to: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        assert!(route_mtu(to).is_some_and(|m| m > 1500));
        assert_eq!(for_endpoints(&[]), 1420);
    }
}
