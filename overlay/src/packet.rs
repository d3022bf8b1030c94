//! Just enough IPv4/IPv6 header parsing to route an inner packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Destination address of an IP packet, or `None` if it is not a plausible
/// IPv4 or IPv6 packet.
#[inline]
pub fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let b: [u8; 4] = packet[16..20].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 if packet.len() >= 40 => {
            let b: [u8; 16] = packet[24..40].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Source address of an IP packet.
#[inline]
pub fn source(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let b: [u8; 4] = packet[12..16].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 if packet.len() >= 40 => {
            let b: [u8; 16] = packet[8..24].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6_headers() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[12..16].copy_from_slice(&[10, 18, 0, 1]);
        v4[16..20].copy_from_slice(&[10, 18, 0, 2]);
        assert_eq!(source(&v4), Some("10.18.0.1".parse().expect("ip")));
        assert_eq!(destination(&v4), Some("10.18.0.2".parse().expect("ip")));

        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[23] = 1;
        v6[39] = 2;
        assert_eq!(source(&v6), Some("::1".parse().expect("ip")));
        assert_eq!(destination(&v6), Some("::2".parse().expect("ip")));
    }

    #[test]
    fn rejects_short_and_non_ip() {
        assert_eq!(destination(&[]), None);
        assert_eq!(destination(&[0x45; 19]), None);
        assert_eq!(destination(&[0x60; 39]), None);
        assert_eq!(destination(&[0x10; 60]), None);
    }
}
