//! Cryptokey routing table: longest-prefix match from an IP address to a peer.
//!
//! One hash map per prefix length present, searched longest first, so a
//! lookup costs one hash probe per distinct prefix length (a mesh usually has
//! one or two), independent of the number of peers.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Maps overlay prefixes to values (peer slots); pure, no I/O.
#[derive(Clone, Debug)]
pub struct PrefixTable<T> {
    v4: Vec<(u8, HashMap<u32, T>)>,
    v6: Vec<(u8, HashMap<u128, T>)>,
}

impl<T> Default for PrefixTable<T> {
    fn default() -> Self {
        Self {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

impl<T: Copy> PrefixTable<T> {
    /// Inserts `net → value`, returning the value it replaces for exactly that prefix.
    pub fn insert(&mut self, net: IpNet, value: T) -> Option<T> {
        match net.trunc() {
            IpNet::V4(n) => {
                insert_at(&mut self.v4, n.prefix_len(), u32::from(n.network()), value)
            }
            IpNet::V6(n) => {
                insert_at(&mut self.v6, n.prefix_len(), u128::from(n.network()), value)
            }
        }
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<T> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, map)| map.get(&(a & mask32(*len))).copied())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, map)| map.get(&(a & mask128(*len))).copied())
            }
        }
    }

    /// The value stored for exactly this prefix.
    pub fn get_exact(&self, net: IpNet) -> Option<T> {
        match net.trunc() {
            IpNet::V4(n) => find_len(&self.v4, n.prefix_len())
                .and_then(|m| m.get(&u32::from(n.network())).copied()),
            IpNet::V6(n) => find_len(&self.v6, n.prefix_len())
                .and_then(|m| m.get(&u128::from(n.network())).copied()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

fn find_len<K, T>(levels: &[(u8, HashMap<K, T>)], len: u8) -> Option<&HashMap<K, T>> {
    levels.iter().find(|(l, _)| *l == len).map(|(_, m)| m)
}

fn insert_at<K: std::hash::Hash + Eq, T>(
    levels: &mut Vec<(u8, HashMap<K, T>)>,
    len: u8,
    key: K,
    value: T,
) -> Option<T> {
    let pos = match levels.iter().position(|(l, _)| *l <= len) {
        Some(p) if levels[p].0 == len => p,
        Some(p) => {
            levels.insert(p, (len, HashMap::new()));
            p
        }
        None => {
            levels.push((len, HashMap::new()));
            levels.len() - 1
        }
    };
    levels[pos].1.insert(key, value)
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = PrefixTable::default();
        t.insert(net("10.18.0.0/16"), 1);
        t.insert(net("10.18.0.64/26"), 2);
        t.insert(net("10.18.0.70/32"), 3);
        assert_eq!(t.lookup(ip("10.18.0.70")), Some(3));
        assert_eq!(t.lookup(ip("10.18.0.71")), Some(2));
        assert_eq!(t.lookup(ip("10.18.1.1")), Some(1));
        assert_eq!(t.lookup(ip("10.19.0.1")), None);
    }

    #[test]
    fn default_route_and_host_bits_are_ignored() {
        let mut t = PrefixTable::default();
        t.insert(net("0.0.0.0/0"), 9);
        t.insert(net("192.168.1.77/24"), 4);
        assert_eq!(t.lookup(ip("192.168.1.1")), Some(4));
        assert_eq!(t.lookup(ip("8.8.8.8")), Some(9));
        assert_eq!(t.get_exact(net("192.168.1.0/24")), Some(4));
    }

    #[test]
    fn ipv6_prefixes() {
        let mut t = PrefixTable::default();
        t.insert(net("fd18::/16"), 1);
        t.insert(net("fd18:0:0:40::/64"), 2);
        t.insert(net("::/0"), 3);
        assert_eq!(t.lookup(ip("fd18:0:0:40::5")), Some(2));
        assert_eq!(t.lookup(ip("fd18:1::5")), Some(1));
        assert_eq!(t.lookup(ip("2001:db8::1")), Some(3));
        assert_eq!(t.lookup(ip("10.0.0.1")), None, "families are separate");
    }

    #[test]
    fn insert_reports_replaced_value() {
        let mut t = PrefixTable::default();
        assert_eq!(t.insert(net("10.0.0.0/8"), 1), None);
        assert_eq!(t.insert(net("10.1.2.3/8"), 2), Some(1));
    }
}
