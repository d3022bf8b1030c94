//! The mesh's UDP socket: one per node, batched receive with GRO, segmented
//! send with GSO (through `quinn-udp`, which owns the cmsg details).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};

use crate::wake::Shutdown;
use crate::OverlayError;

/// Kernel socket buffers large enough to absorb a burst of 64 KiB GSO sends.
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

pub struct UdpTransport {
    socket: UdpSocket,
    state: UdpSocketState,
    /// An IPv6 socket that also carries IPv4 as mapped addresses.
    dual_stack: bool,
}

impl UdpTransport {
    /// Binds `address:port`; with no address, the dual-stack wildcard (falling
    /// back to IPv4 where IPv6 is disabled).
    pub fn bind(address: Option<IpAddr>, port: u16) -> Result<Self, OverlayError> {
        let (socket, dual_stack) = match address {
            Some(ip) => (bind_one(SocketAddr::new(ip, port), false)?, false),
            None => match bind_one(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port), true) {
                Ok(s) => (s, true),
                Err(_) => (
                    bind_one(SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port), false)?,
                    false,
                ),
            },
        };
        let state = UdpSocketState::new(UdpSockRef::from(&socket))
            .map_err(OverlayError::io("configuring the UDP socket"))?;
        // quinn-udp leaves the socket non-blocking; the loops poll when idle.
        Ok(Self {
            socket,
            state,
            dual_stack,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// How many segments one GSO send may carry (1 without GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// How many datagrams GRO may coalesce into one receive buffer.
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Sends `contents` to `to`; with `segment` set, as equal-sized datagrams
    /// of that size (the last may be shorter) in one syscall. Waits for room
    /// in the socket buffer rather than dropping.
    pub(crate) fn send(
        &self,
        to: SocketAddr,
        contents: &[u8],
        segment: Option<usize>,
        shutdown: &Shutdown,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination: self.to_socket_family(to),
            ecn: None,
            contents,
            segment_size: segment,
            src_ip: None,
        };
        loop {
            match self.state.try_send(UdpSockRef::from(&self.socket), &transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !shutdown.wait(self.fd(), libc::POLLOUT) {
                        return Ok(());
                    }
                }
                other => return other,
            }
        }
    }

    /// Receives a batch without blocking; `WouldBlock` when nothing is queued.
    /// Source addresses come back in their plain IPv4 form.
    pub(crate) fn recv(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        let n = self.state.recv(UdpSockRef::from(&self.socket), bufs, meta)?;
        for m in &mut meta[..n] {
            m.addr = normalize(m.addr);
        }
        Ok(n)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    fn to_socket_family(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V4(v4) if self.dual_stack => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        }
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`, so endpoints compare equal however they arrived.
pub fn normalize(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

fn bind_one(addr: SocketAddr, dual_stack: bool) -> Result<UdpSocket, OverlayError> {
    let bind_err = |source| OverlayError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(bind_err)?;
    if dual_stack {
        socket.set_only_v6(false).map_err(bind_err)?;
    }
    // Larger buffers matter at multi-Gbit/s; the *FORCE variants exceed
    // rmem_max when we are root, the plain ones are the fallback.
    if socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES).is_err() {
        tracing::debug!("could not raise UDP receive buffer");
    }
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    force_buffer(&socket, libc::SO_RCVBUFFORCE);
    force_buffer(&socket, libc::SO_SNDBUFFORCE);
    socket.bind(&addr.into()).map_err(bind_err)?;
    Ok(socket.into())
}

fn force_buffer(socket: &Socket, option: libc::c_int) {
    let size = SOCKET_BUFFER_BYTES as libc::c_int;
    // SAFETY: passes a pointer to a live c_int with its exact length.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_normalized() {
        let mapped: SocketAddr = "[::ffff:198.18.0.2]:50103".parse().expect("addr");
        assert_eq!(normalize(mapped), "198.18.0.2:50103".parse::<SocketAddr>().expect("addr"));
        let v6: SocketAddr = "[fd18::2]:50103".parse().expect("addr");
        assert_eq!(normalize(v6), v6);
    }

    #[test]
    fn gso_send_arrives_as_separate_datagrams() {
        let shutdown = Shutdown::new().expect("eventfd");
        let a = UdpTransport::bind(Some("127.0.0.1".parse().expect("ip")), 0).expect("bind a");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
        let to = b.local_addr().expect("addr");
        let payload: Vec<u8> = (0..250u32).map(|i| (i / 100) as u8).collect();
        a.send(to, &payload, Some(100), &shutdown).expect("send");
        let mut buf = [0u8; 512];
        let sizes: Vec<usize> = (0..3).map(|_| b.recv(&mut buf).expect("recv")).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }
}
