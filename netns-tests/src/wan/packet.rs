//! Reading source and destination addresses from raw IP packets
//! (RFC 791 §3.1 for IPv4, RFC 8200 §3 for IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The (source, destination) of an IPv4 or IPv6 packet, or `None` if the
/// buffer is not one.
pub fn addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let src: [u8; 4] = packet[12..16].try_into().ok()?;
            let dst: [u8; 4] = packet[16..20].try_into().ok()?;
            Some((Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()))
        }
        6 if packet.len() >= 40 => {
            let src: [u8; 16] = packet[8..24].try_into().ok()?;
            let dst: [u8; 16] = packet[24..40].try_into().ok()?;
            Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4() {
        let mut p = [0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&[198, 18, 1, 2]);
        p[16..20].copy_from_slice(&[198, 18, 2, 2]);
        let (s, d) = addresses(&p).expect("v4");
        assert_eq!(s, "198.18.1.2".parse::<IpAddr>().expect("ip"));
        assert_eq!(d, "198.18.2.2".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn ipv6() {
        let mut p = [0u8; 40];
        p[0] = 0x60;
        p[8..24].copy_from_slice(&"fd18:1::2".parse::<Ipv6Addr>().expect("ip").octets());
        p[24..40].copy_from_slice(&"fd18:2::2".parse::<Ipv6Addr>().expect("ip").octets());
        let (s, d) = addresses(&p).expect("v6");
        assert_eq!(s, "fd18:1::2".parse::<IpAddr>().expect("ip"));
        assert_eq!(d, "fd18:2::2".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn garbage() {
        assert_eq!(addresses(&[]), None);
        assert_eq!(addresses(&[0x45, 0, 0]), None);
        assert_eq!(addresses(&[0x10; 40]), None);
    }
}
