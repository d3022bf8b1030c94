//! [`VethLink`]: two namespaces joined by one veth pair, no router — the
//! underlay for benchmarks.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Netns, Result};

/// Name of the veth end inside each namespace.
pub const VETH_NAME: &str = "veth0";

static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

/// Two namespaces `a` and `b` joined by a veth pair (`veth0` on both sides)
/// with addresses `198.19.<k>.1/24` (a) and `198.19.<k>.2/24` (b), plus
/// `fd19:<k>::1/64` and `::2/64`, where `k` differs per instance within a
/// process. Torn down on drop.
#[derive(Debug)]
pub struct VethLink {
    // Field order is drop order: namespaces go, and the veth with them.
    a: Netns,
    b: Netns,
    a_ip: Ipv4Addr,
    b_ip: Ipv4Addr,
    a_ip6: Ipv6Addr,
    b_ip6: Ipv6Addr,
}

impl VethLink {
    /// Creates both namespaces and the link, up and addressed.
    pub fn new() -> Result<Self> {
        let k = NEXT_SUBNET.fetch_add(1, Ordering::Relaxed) % 256;
        for tag in ["vla", "vlb"] {
            let _ = crate::netns::sweep_stale(tag);
        }
        let a = Netns::new("vla")?;
        let b = Netns::new("vlb")?;
        crate::cmd::ip(&[
            "link", "add", VETH_NAME, "netns", a.name(), "type", "veth", "peer", "name", VETH_NAME,
            "netns", b.name(),
        ])?;
        let link = VethLink {
            a,
            b,
            a_ip: Ipv4Addr::new(198, 19, k as u8, 1),
            b_ip: Ipv4Addr::new(198, 19, k as u8, 2),
            a_ip6: Ipv6Addr::new(0xfd19, k as u16, 0, 0, 0, 0, 0, 1),
            b_ip6: Ipv6Addr::new(0xfd19, k as u16, 0, 0, 0, 0, 0, 2),
        };
        for (ns, v4, v6) in [
            (&link.a, link.a_ip, link.a_ip6),
            (&link.b, link.b_ip, link.b_ip6),
        ] {
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", VETH_NAME])?;
            ns.ip(&["-6", "addr", "add", &format!("{v6}/64"), "dev", VETH_NAME, "nodad"])?;
            ns.ip(&["link", "set", VETH_NAME, "up"])?;
        }
        Ok(link)
    }

    /// Namespace of side a.
    pub fn a(&self) -> &Netns {
        &self.a
    }

    /// Namespace of side b.
    pub fn b(&self) -> &Netns {
        &self.b
    }

    /// IPv4 address of side a.
    pub fn a_ip(&self) -> Ipv4Addr {
        self.a_ip
    }

    /// IPv4 address of side b.
    pub fn b_ip(&self) -> Ipv4Addr {
        self.b_ip
    }

    /// IPv6 address of side a.
    pub fn a_ip6(&self) -> Ipv6Addr {
        self.a_ip6
    }

    /// IPv6 address of side b.
    pub fn b_ip6(&self) -> Ipv6Addr {
        self.b_ip6
    }
}
