//! A minimal DNS client (A queries over UDP) for tests and benchmarks that
//! ask many resolvers many times: hand-built bytes, no dependency on the
//! code under test, and sockets made inside a namespace work from any
//! thread ([`resolver_socket`]).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::inns::in_netns;
use crate::{Error, Result};

/// netmanager's loopback resolver address.
pub const GROVE_RESOLVER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 153)), 53);

static NEXT_ID: AtomicU16 = AtomicU16::new(1);

/// The answer to one A query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AAnswer {
    pub rcode: u8,
    pub addresses: Vec<Ipv4Addr>,
}

/// A UDP socket inside `netns`, connected to `server`.
pub fn resolver_socket(netns: &str, server: SocketAddr) -> Result<UdpSocket> {
    in_netns(netns, move || -> std::io::Result<UdpSocket> {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        socket.connect(server)?;
        Ok(socket)
    })?
    .map_err(|e| Error::io(format!("resolver socket in {netns}"), e))
}

/// Asks `name` (A) on a connected socket; one try, `timeout` long.
pub fn query_a(socket: &UdpSocket, name: &str, timeout: Duration) -> Result<AAnswer> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let query = build_query(id, name);
    socket.set_read_timeout(Some(timeout)).map_err(|e| Error::io("set timeout", e))?;
    socket.send(&query).map_err(|e| Error::io(format!("send query {name}"), e))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).map_err(|e| Error::io(format!("answer to {name}"), e))?;
        let packet = &buf[..n];
        if packet.len() >= 2 && u16::from_be_bytes([packet[0], packet[1]]) != id {
            continue; // a late answer to an earlier query
        }
        return parse_answer(packet).ok_or_else(|| Error::Parse { tool: "dns".into(), reason: format!("bad answer to {name}") });
    }
}

fn build_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, QDCOUNT 1
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root, A, IN
    q
}

/// Skips a (possibly compressed) name; returns the offset after it.
fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *p.get(at)?;
        if len & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        if len == 0 {
            return Some(at + 1);
        }
        at += 1 + len as usize;
    }
}

fn parse_answer(p: &[u8]) -> Option<AAnswer> {
    if p.len() < 12 {
        return None;
    }
    let rcode = p[3] & 0x0f;
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(p, at)? + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..an {
        at = skip_name(p, at)?;
        let header = p.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let len = u16::from_be_bytes([header[8], header[9]]) as usize;
        let data = p.get(at + 10..at + 10 + len)?;
        if rtype == 1 && len == 4 {
            addresses.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + len;
    }
    Some(AAnswer { rcode, addresses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_compressed_answer() {
        let mut p = build_query(7, "closest.ms2.grove");
        p[2] = 0x81;
        p[3] = 0x80;
        p[7] = 1;
        p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 2, 0, 4, 10, 18, 0, 66]);
        let a = parse_answer(&p).expect("parse");
        assert_eq!(a, AAnswer { rcode: 0, addresses: vec![Ipv4Addr::new(10, 18, 0, 66)] });
        assert!(parse_answer(&p[..p.len() - 3]).is_none());
    }
}
