//! Cutting the node-subnet pool into equal subnets (/26 blocks of
//! 10.18.0.0/16 by default, Oakestra's plan) and remembering who owns which.
//! Pure.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use libp2p_identity::PeerId;

use super::AdmissionError;

/// Oakestra's node-subnet pool.
pub fn default_pool() -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(10, 18, 0, 0), 16)
}

/// Oakestra's node-subnet size.
pub const SUBNET_PREFIX: u8 = 26;

/// Cuts a pool into equal subnets and remembers who owns which.
#[derive(Clone, Debug)]
pub struct SubnetPool {
    pool: Ipv4Net,
    prefix_len: u8,
    by_node: BTreeMap<PeerId, Ipv4Net>,
    by_start: BTreeMap<u32, PeerId>,
    /// Blocks delegated to clusters, which grant their subnets themselves.
    blocks: BTreeMap<PeerId, Ipv4Net>,
}

impl Default for SubnetPool {
    /// Oakestra's plan: /26 node subnets out of 10.18.0.0/16 (1024 of them).
    fn default() -> Self {
        SubnetPool {
            pool: default_pool(),
            prefix_len: SUBNET_PREFIX,
            by_node: BTreeMap::new(),
            by_start: BTreeMap::new(),
            blocks: BTreeMap::new(),
        }
    }
}

impl SubnetPool {
    /// `prefix_len` at most 30: a subnet needs its bridge (.1) and workloads.
    pub fn new(pool: Ipv4Net, prefix_len: u8) -> Result<SubnetPool, AdmissionError> {
        let pool = pool.trunc();
        if prefix_len < pool.prefix_len() || prefix_len > 30 {
            return Err(AdmissionError::PoolShape { pool, prefix_len });
        }
        Ok(SubnetPool {
            pool,
            prefix_len,
            ..SubnetPool::default()
        })
    }

    /// The subnet of `node`: the one it already has, else the lowest free one.
    pub fn grant(&mut self, node: &PeerId) -> Result<Ipv4Net, AdmissionError> {
        if let Some(subnet) = self.by_node.get(node) {
            return Ok(*subnet);
        }
        let step = 1u64 << (32 - self.prefix_len);
        let count = 1u64 << (self.prefix_len - self.pool.prefix_len());
        let base = u64::from(u32::from(self.pool.network()));
        // Lowest free subnet outside every delegated block: at most 2^(prefix
        // − pool prefix) candidates (1024 for a /16 pool), so a scan is fine.
        let free = (0..count).filter_map(|i| u32::try_from(base + i * step).ok()).find(|start| {
            !self.by_start.contains_key(start) && !self.blocks.values().any(|b| b.contains(&std::net::Ipv4Addr::from(*start)))
        });
        let Some(subnet) = free.and_then(|s| Ipv4Net::new(Ipv4Addr::from(s), self.prefix_len).ok()) else {
            return Err(AdmissionError::PoolExhausted { pool: self.pool, prefix_len: self.prefix_len });
        };
        self.insert(*node, subnet);
        Ok(subnet)
    }

    /// Sets the lowest free, aligned `/block_len` of the pool aside for the
    /// delegate `node` (the same block again if it holds one): no subnet of
    /// it is granted here any more.
    pub fn grant_block(&mut self, node: &PeerId, block_len: u8) -> Result<Ipv4Net, AdmissionError> {
        if let Some(block) = self.blocks.get(node) {
            return Ok(*block);
        }
        if block_len < self.pool.prefix_len() || block_len > self.prefix_len {
            return Err(AdmissionError::PoolShape { pool: self.pool, prefix_len: block_len });
        }
        let step = 1u64 << (32 - block_len);
        let count = 1u64 << (block_len - self.pool.prefix_len());
        let base = u64::from(u32::from(self.pool.network()));
        let free = (0..count)
            .filter_map(|i| u32::try_from(base + i * step).ok())
            .filter_map(|start| Ipv4Net::new(Ipv4Addr::from(start), block_len).ok())
            .find(|block| self.block_is_free(block));
        let block = free.ok_or(AdmissionError::PoolExhausted { pool: self.pool, prefix_len: block_len })?;
        self.blocks.insert(*node, block);
        Ok(block)
    }

    /// Restores a block set aside earlier (from the authority's state).
    pub fn reserve_block(&mut self, node: &PeerId, block: Ipv4Net) -> Result<(), AdmissionError> {
        let refuse = |reason: &str| AdmissionError::Reserve { node: node.to_string(), subnet: block, reason: reason.to_owned() };
        if block.trunc() != block || !self.pool.contains(&block) || block.prefix_len() > self.prefix_len {
            return Err(refuse("not an aligned block of the pool"));
        }
        if self.blocks.get(node).is_some_and(|held| *held == block) {
            return Ok(());
        }
        if !self.block_is_free(&block) {
            return Err(refuse("overlaps a granted subnet or another block"));
        }
        self.blocks.insert(*node, block);
        Ok(())
    }

    pub fn release_block(&mut self, node: &PeerId) -> Option<Ipv4Net> {
        self.blocks.remove(node)
    }

    pub fn block_of(&self, node: &PeerId) -> Option<Ipv4Net> {
        self.blocks.get(node).copied()
    }

    fn block_is_free(&self, block: &Ipv4Net) -> bool {
        let overlaps = |a: &Ipv4Net, b: &Ipv4Net| a.contains(b) || b.contains(a);
        !self.by_node.values().any(|s| overlaps(s, block)) && !self.blocks.values().any(|b| overlaps(b, block))
    }

    pub fn release(&mut self, node: &PeerId) {
        if let Some(subnet) = self.by_node.remove(node) {
            self.by_start.remove(&u32::from(subnet.network()));
        }
    }

    /// Records an existing grant (restoring state). Refuses subnets of the
    /// wrong size or alignment, outside the pool, owned by another node, or
    /// a second subnet for the same node.
    pub fn reserve(&mut self, node: &PeerId, subnet: Ipv4Net) -> Result<(), AdmissionError> {
        let refuse = |reason: String| AdmissionError::Reserve {
            node: node.to_string(),
            subnet,
            reason,
        };
        if subnet.prefix_len() != self.prefix_len || subnet.trunc() != subnet {
            return Err(refuse(format!(
                "not a /{} subnet of the pool",
                self.prefix_len
            )));
        }
        if !self.pool.contains(&subnet) {
            return Err(refuse(format!("outside the pool {}", self.pool)));
        }
        if let Some((owner, block)) = self.blocks.iter().find(|(_, b)| b.contains(&subnet)) {
            return Err(refuse(format!("inside {block}, delegated to {owner}")));
        }
        let owner = self.by_start.get(&u32::from(subnet.network()));
        match (self.by_node.get(node), owner) {
            (Some(have), _) if *have != subnet => {
                Err(refuse(format!("the node already holds {have}")))
            }
            (_, Some(owner)) if owner != node => Err(refuse(format!("already granted to {owner}"))),
            _ => {
                self.insert(*node, subnet);
                Ok(())
            }
        }
    }

    pub fn subnet_of(&self, node: &PeerId) -> Option<Ipv4Net> {
        self.by_node.get(node).copied()
    }

    pub fn granted(&self) -> impl Iterator<Item = (&PeerId, &Ipv4Net)> {
        self.by_node.iter()
    }

    pub fn network(&self) -> Ipv4Net {
        self.pool
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    fn insert(&mut self, node: PeerId, subnet: Ipv4Net) {
        self.by_node.insert(node, subnet);
        self.by_start.insert(u32::from(subnet.network()), node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("net")
    }

    #[test]
    fn pool_allocates_upward_and_is_idempotent() {
        let mut pool = SubnetPool::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert_eq!(pool.grant(&a).expect("a"), net("10.18.0.0/26"));
        assert_eq!(pool.grant(&b).expect("b"), net("10.18.0.64/26"));
        assert_eq!(pool.grant(&a).expect("a again"), net("10.18.0.0/26"));
        pool.release(&a);
        assert_eq!(pool.grant(&c).expect("c"), net("10.18.0.0/26"));
        assert!(pool.reserve(&a, net("10.18.0.64/26")).is_err(), "taken");
        assert!(pool.reserve(&a, net("10.19.0.0/26")).is_err(), "outside");
        assert!(
            pool.reserve(&a, net("10.18.0.32/27")).is_err(),
            "wrong size"
        );
        let mut small = SubnetPool::new(net("10.18.0.0/25"), 26).expect("pool");
        small.grant(&a).expect("1");
        small.grant(&b).expect("2");
        assert!(matches!(
            small.grant(&c),
            Err(AdmissionError::PoolExhausted { .. })
        ));
        assert!(SubnetPool::new(net("10.18.0.0/16"), 15).is_err());
    }

}
