//! Workload addresses inside the node subnet: a pure allocator.
//!
//! The subnet's first address is the network, the second the bridge (the
//! workloads' gateway, where the node's resolver listens too) and the last the
//! broadcast; none of them is ever handed out. The lowest free address goes
//! first so that addresses are predictable (the node's first workload is
//! always `.2` of its subnet), which the demo and the tests rely on.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::WorkloadError;

/// Prefix lengths a node subnet may have: a /26 today; admission grants up
/// to /30 (one workload) and nothing wider than its /16 pool.
pub const PREFIX_LENGTHS: std::ops::RangeInclusive<u8> = 16..=30;

#[derive(Clone, Debug)]
pub struct Addresses {
    subnet: Ipv4Net,
    /// Offsets from the network address that are handed out.
    used: BTreeSet<u32>,
}

impl Addresses {
    /// An allocator over `subnet`; host bits are ignored, so the gateway's
    /// own `10.18.0.65/26` means `10.18.0.64/26`.
    pub fn new(subnet: Ipv4Net) -> Result<Addresses, WorkloadError> {
        if !PREFIX_LENGTHS.contains(&subnet.prefix_len()) {
            return Err(WorkloadError::InvalidNet(format!(
                "subnet {subnet} is a /{}; the node's workload subnet must be a /16 to /30 (normally its /26)",
                subnet.prefix_len()
            )));
        }
        Ok(Addresses {
            subnet: subnet.trunc(),
            used: BTreeSet::new(),
        })
    }

    /// The subnet (network address, prefix length).
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// `.1`: the bridge's address and the workloads' default route.
    pub fn gateway(&self) -> Ipv4Addr {
        self.at(1)
    }

    /// `address` with the subnet's prefix length, as set on an interface.
    pub fn interface_net(&self, address: Ipv4Addr) -> Ipv4Net {
        // A valid Ipv4Net's prefix length is always valid for another address.
        Ipv4Net::new_assert(address, self.subnet.prefix_len())
    }

    /// How many workloads fit.
    pub fn capacity(&self) -> usize {
        self.offsets().count()
    }

    /// The lowest free workload address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, WorkloadError> {
        let offset = self.offsets().find(|o| !self.used.contains(o)).ok_or(
            WorkloadError::AddressesExhausted {
                subnet: self.subnet,
                capacity: self.capacity(),
            },
        )?;
        self.used.insert(offset);
        Ok(self.at(offset))
    }

    /// Makes `address` free again; false if it was not handed out.
    pub fn release(&mut self, address: Ipv4Addr) -> bool {
        let offset = u32::from(address).wrapping_sub(u32::from(self.subnet.network()));
        self.subnet.contains(&address) && self.used.remove(&offset)
    }

    /// Offsets a workload may get: past network and gateway, before broadcast.
    fn offsets(&self) -> std::ops::RangeInclusive<u32> {
        let size = 1u32 << (32 - u32::from(self.subnet.prefix_len()));
        2..=size - 2
    }

    fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("test subnet")
    }

    fn alloc(a: &mut Addresses) -> Ipv4Addr {
        a.allocate().expect("a free address")
    }

    #[test]
    fn lowest_free_first_and_gateway_is_dot_one() {
        let mut a = Addresses::new(net("10.18.0.64/26")).expect("valid");
        assert_eq!(a.gateway(), Ipv4Addr::new(10, 18, 0, 65));
        assert_eq!(alloc(&mut a), Ipv4Addr::new(10, 18, 0, 66));
        assert_eq!(alloc(&mut a), Ipv4Addr::new(10, 18, 0, 67));
        assert_eq!(alloc(&mut a), Ipv4Addr::new(10, 18, 0, 68));
        assert!(a.release(Ipv4Addr::new(10, 18, 0, 67)));
        assert_eq!(
            alloc(&mut a),
            Ipv4Addr::new(10, 18, 0, 67),
            "a released hole is reused first"
        );
        assert_eq!(alloc(&mut a), Ipv4Addr::new(10, 18, 0, 69));
    }

    #[test]
    fn exhaustion_then_release() {
        let mut a = Addresses::new(net("10.18.0.64/26")).expect("valid");
        assert_eq!(a.capacity(), 61);
        let all: Vec<Ipv4Addr> = (0..61).map(|_| alloc(&mut a)).collect();
        assert_eq!(all.first(), Some(&Ipv4Addr::new(10, 18, 0, 66)));
        assert_eq!(all.last(), Some(&Ipv4Addr::new(10, 18, 0, 126)));
        let err = a.allocate().expect_err("the subnet is full");
        assert!(
            matches!(err, WorkloadError::AddressesExhausted { capacity: 61, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("delete a workload"), "{err}");
        assert!(a.release(Ipv4Addr::new(10, 18, 0, 100)));
        assert_eq!(alloc(&mut a), Ipv4Addr::new(10, 18, 0, 100));
    }

    #[test]
    fn release_of_foreign_or_free_addresses_is_refused() {
        let mut a = Addresses::new(net("10.18.0.64/26")).expect("valid");
        assert!(!a.release(Ipv4Addr::new(10, 18, 0, 66)), "never handed out");
        assert!(!a.release(Ipv4Addr::new(10, 18, 0, 65)), "the gateway");
        assert!(
            !a.release(Ipv4Addr::new(10, 18, 0, 2)),
            "another node's subnet"
        );
        let x = alloc(&mut a);
        assert!(a.release(x));
        assert!(!a.release(x), "released twice");
    }

    #[test]
    fn never_network_gateway_or_broadcast_for_every_prefix() {
        for len in 24..=30 {
            let subnet = Ipv4Net::new(Ipv4Addr::new(10, 18, 1, 0), len).expect("valid prefix");
            let mut a = Addresses::new(subnet).expect("supported prefix");
            let expected = (1usize << (32 - len)) - 3;
            assert_eq!(a.capacity(), expected, "/{len}");
            let mut got = Vec::new();
            while let Ok(x) = a.allocate() {
                got.push(x);
            }
            assert_eq!(got.len(), expected, "/{len}");
            for x in got {
                assert!(subnet.contains(&x), "{x} outside {subnet}");
                assert_ne!(x, subnet.network(), "/{len}");
                assert_ne!(x, a.gateway(), "/{len}");
                assert_ne!(x, subnet.broadcast(), "/{len}");
            }
        }
    }

    #[test]
    fn host_bits_are_ignored_and_odd_prefixes_refused() {
        let a = Addresses::new(net("10.18.0.65/26")).expect("valid");
        assert_eq!(a.subnet(), net("10.18.0.64/26"));
        assert_eq!(a.gateway(), Ipv4Addr::new(10, 18, 0, 65));
        for bad in ["10.0.0.0/8", "10.18.0.0/15", "10.18.0.0/31", "10.18.0.1/32"] {
            let err = Addresses::new(net(bad)).expect_err(bad);
            assert!(err.to_string().contains("/16 to /30"), "{err}");
        }
        let mut wide = Addresses::new(net("10.18.0.0/16")).expect("valid");
        assert_eq!(wide.capacity(), 65_533);
        assert_eq!(alloc(&mut wide), Ipv4Addr::new(10, 18, 0, 2));
        let mut one = Addresses::new(net("10.18.0.4/30")).expect("valid");
        assert_eq!(alloc(&mut one), Ipv4Addr::new(10, 18, 0, 6));
        assert!(one.allocate().is_err(), "a /30 holds one workload");
    }
}
