//! Who is asking: the front door's checks on a query's source address.
//!
//! * [`ClientAcl`]: the prefixes allowed to query at all (`allow_from` in
//!   [`crate::DnsConfig`]). The resolver listens on loopback and on the
//!   workload gateway address, and Linux accepts packets for the gateway on
//!   any interface (weak host model), so without this check the gateway
//!   would be an open resolver for the node's LAN (review finding F11).
//! * [`ClientKey`]: what per-client limits count by: an IPv4 address, or the
//!   /64 of an IPv6 address, since one IPv6 host routinely holds a whole /64
//!   and could otherwise dodge a per-address limit by changing address.
//!
//! Both are pure and cheap: a check is a scan of a handful of prefixes, a
//! key is arithmetic on the address; neither allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The allow-list of client prefixes, split by family for the check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAcl {
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
}

impl ClientAcl {
    /// An allow-list of `prefixes` (host bits are ignored: `10.18.0.7/16`
    /// allows `10.18.0.0/16`).
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a IpNet>) -> ClientAcl {
        let mut acl = ClientAcl::default();
        for prefix in prefixes {
            match prefix.trunc() {
                IpNet::V4(net) if !acl.v4.contains(&net) => acl.v4.push(net),
                IpNet::V6(net) if !acl.v6.contains(&net) => acl.v6.push(net),
                _ => {}
            }
        }
        acl
    }

    /// True when `ip` lies in an allowed prefix. An IPv4-mapped IPv6 source
    /// (`::ffff:10.18.0.5`, as a dual-stack socket reports IPv4 clients) is
    /// checked as the IPv4 address it is.
    #[inline]
    pub fn allows(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => self.v4.iter().any(|net| net.contains(&ip)),
            IpAddr::V6(ip) => self.v6.iter().any(|net| net.contains(&ip)),
        }
    }
}

/// The default allow-list: the host's own loopback (127.0.0.0/8 and ::1).
/// The embedding daemon adds its workload subnet and the mesh.
pub fn loopback_prefixes() -> Vec<IpNet> {
    vec![
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
        IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
    ]
}

/// What per-client limits count by: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(u128);

impl ClientKey {
    /// The key of a source address. IPv4 (also IPv4-mapped IPv6) keeps its
    /// whole address, in the IPv4-mapped form, so it never equals the key
    /// of an IPv6 /64 (whose low 64 bits are zero).
    #[inline]
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(ip) => ClientKey(0xffff_0000_0000 | u128::from(u32::from(ip))),
            IpAddr::V6(ip) => ClientKey(u128::from(ip) & !u128::from(u64::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    #[test]
    fn the_default_allows_loopback_only() {
        let acl = ClientAcl::new(&loopback_prefixes());
        for allowed in ["127.0.0.1", "127.0.0.153", "127.255.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(acl.allows(ip(allowed)), "{allowed}");
        }
        for refused in [
            "10.18.0.5",
            "192.168.1.20",
            "::2",
            "fd00::1",
            "::ffff:10.18.0.5",
            "0.0.0.0",
        ] {
            assert!(!acl.allows(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn added_prefixes_allow_their_addresses_and_host_bits_are_ignored() {
        let mut prefixes = loopback_prefixes();
        prefixes.push(net("10.18.0.7/16"));
        prefixes.push(net("fd18::/48"));
        prefixes.push(net("10.18.0.0/16"));
        let acl = ClientAcl::new(&prefixes);
        assert_eq!(acl.v4.len(), 2, "duplicates after truncation are folded");
        assert!(acl.allows(ip("10.18.255.254")));
        assert!(acl.allows(ip("::ffff:10.18.3.4")));
        assert!(acl.allows(ip("fd18:0:0:5::1")));
        assert!(!acl.allows(ip("10.19.0.1")));
        assert!(!acl.allows(ip("fd18:1::1")));
        assert!(
            !ClientAcl::new(&[]).allows(ip("127.0.0.1")),
            "an empty list allows nobody"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            ClientKey::of(ip("fd00:1:2:3::1")),
            ClientKey::of(ip("fd00:1:2:3:ffff::9"))
        );
        assert_ne!(ClientKey::of(ip("fd00:1:2:3::1")), ClientKey::of(ip("fd00:1:2:4::1")));
        assert_eq!(ClientKey::of(ip("10.18.0.5")), ClientKey::of(ip("::ffff:10.18.0.5")));
        assert_ne!(ClientKey::of(ip("10.18.0.5")), ClientKey::of(ip("10.18.0.6")));
        assert_ne!(ClientKey::of(ip("0.0.0.0")), ClientKey::of(ip("::")));
    }
}
