//! Round-robin state: a fixed table of counters, one turn per query.
//!
//! Rotation is per asker *and* per service: keyed by asker alone, a client
//! alternating between two services with two instances each would always
//! land on the same instance of each. The key (asker address, service, app,
//! namespace) is hashed with a per-table seed into one of a fixed number of
//! counters, so memory does not grow with the number of askers, however
//! many a spoofer invents. Two keys sharing a counter advance it for each
//! other, so each sees a less regular rotation (in the worst case, k keys
//! asking in lockstep with k a multiple of the instance count, a stuck one),
//! while the spread over all queries stays even. The askers of a node's
//! resolver are that node's workloads, tens to hundreds: with the default
//! 4096 counters collisions are rare. Each key also starts its rotation at a
//! hash-derived offset, so that a crowd of new askers asking once each
//! spreads over the instances instead of all getting the first one.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest table [`RrTable::new`] builds (8 MiB of counters).
pub const MAX_BUCKETS: usize = 1 << 20;

/// The counters. `Send + Sync`; one per resolver, shared by its threads.
pub struct RrTable {
    seed: u64,
    counters: Box<[AtomicU64]>,
}

/// What a round-robin turn is keyed on.
#[derive(Clone, Copy, Debug, Hash)]
pub struct RrKey<'a> {
    /// The querier's address.
    pub asker: IpAddr,
    /// The service asked for, with its app and namespace (after scoping, so
    /// that `rr.ms2` and `rr.ms2.web.prod` share one rotation).
    pub service: &'a str,
    /// See `service`.
    pub app: &'a str,
    /// See `service`.
    pub namespace: &'a str,
}

impl RrTable {
    /// A table of `buckets` counters (rounded up to a power of two, clamped
    /// to 1..=[`MAX_BUCKETS`]). Pick `seed` at random in production so that
    /// outsiders cannot aim keys at one counter.
    pub fn new(buckets: usize, seed: u64) -> RrTable {
        let buckets = buckets.clamp(1, MAX_BUCKETS).next_power_of_two();
        RrTable {
            seed,
            counters: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// How many counters the table holds.
    pub fn buckets(&self) -> usize {
        self.counters.len()
    }

    /// The next turn for `key`: a number that grows by one per call for the
    /// key (while no other key shares its counter), starting at an offset
    /// derived from the key. Take it modulo the number of eligible instances.
    pub fn next_turn(&self, key: &RrKey<'_>) -> u64 {
        let hash = self.hash(key);
        let bucket = (hash as usize) & (self.counters.len() - 1);
        let count = self.counters[bucket].fetch_add(1, Ordering::Relaxed);
        // The high half picks the start; the low half picked the bucket.
        (hash >> 32).wrapping_add(count)
    }

    fn hash(&self, key: &RrKey<'_>) -> u64 {
        // std's SipHash with fixed keys, seeded by hashing the seed first.
        let mut hasher = std::hash::DefaultHasher::new();
        self.seed.hash(&mut hasher);
        key.hash(&mut hasher);
        hasher.finish()
    }
}

impl std::fmt::Debug for RrTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RrTable")
            .field("buckets", &self.counters.len())
            .finish()
    }
}

/// The index of the `turn`-th admitted candidate, cyclically; `None` if
/// none is admitted.
pub fn pick_turn<T>(candidates: &[T], admit: impl Fn(&T) -> bool, turn: u64) -> Option<usize> {
    let eligible = candidates.iter().filter(|c| admit(c)).count();
    if eligible == 0 {
        return None;
    }
    let k = (turn % eligible as u64) as usize;
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| admit(c))
        .nth(k)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(asker: u32, service: &str) -> RrKey<'_> {
        RrKey {
            asker: IpAddr::V4(Ipv4Addr::from(asker)),
            service,
            app: "web",
            namespace: "prod",
        }
    }

    #[test]
    fn sizes_are_bounded_powers_of_two() {
        assert_eq!(RrTable::new(0, 1).buckets(), 1);
        assert_eq!(RrTable::new(1000, 1).buckets(), 1024);
        assert_eq!(RrTable::new(usize::MAX, 1).buckets(), MAX_BUCKETS);
    }

    #[test]
    fn one_asker_rotates_exactly() {
        let table = RrTable::new(4096, 7);
        let list = [0, 1, 2];
        let picks: Vec<usize> = (0..9)
            .filter_map(|_| pick_turn(&list, |_| true, table.next_turn(&key(1, "ms2"))))
            .collect();
        for window in picks.windows(2) {
            assert_eq!(window[1], (window[0] + 1) % 3, "{picks:?}");
        }
    }

    #[test]
    fn interleaved_services_each_rotate() {
        let table = RrTable::new(4096, 7);
        let list = [0, 1];
        let mut seen = [[0u32; 2]; 2];
        for _ in 0..10 {
            for (s, service) in ["ms1", "ms2"].iter().enumerate() {
                let i = pick_turn(&list, |_| true, table.next_turn(&key(1, service))).expect("some");
                seen[s][i] += 1;
            }
        }
        assert_eq!(seen, [[5, 5], [5, 5]]);
    }

    #[test]
    fn fair_per_asker_with_interleaved_askers() {
        let table = RrTable::new(4096, 42);
        let list = [0, 1, 2, 3, 4];
        let mut counts = vec![[0u32; 5]; 200];
        for _round in 0..50 {
            for (asker, mine) in counts.iter_mut().enumerate() {
                let turn = table.next_turn(&key(asker as u32, "ms2"));
                mine[pick_turn(&list, |_| true, turn).expect("some")] += 1;
            }
        }
        for (asker, mine) in counts.iter().enumerate() {
            assert_eq!(*mine, [10; 5], "asker {asker}");
        }
    }

    #[test]
    fn fair_overall_when_many_askers_share_counters() {
        // 2000 askers on 64 counters, asking in lockstep: per-asker rotation
        // degrades, the overall spread must not.
        let table = RrTable::new(64, 42);
        let list = [0, 1, 2, 3, 4];
        let mut total = [0u64; 5];
        for _round in 0..50 {
            for asker in 0..2000u32 {
                let turn = table.next_turn(&key(asker, "ms2"));
                total[pick_turn(&list, |_| true, turn).expect("some")] += 1;
            }
        }
        let (min, max) = (total.iter().min().expect("five"), total.iter().max().expect("five"));
        assert!(max - min <= 1000, "imbalance over 5 % of 20000: {total:?}");
    }

    #[test]
    fn new_askers_asking_once_spread_out() {
        let table = RrTable::new(4096, 3);
        let list = [0, 1, 2, 3];
        let mut first = [0u32; 4];
        for asker in 0..4000u32 {
            first[pick_turn(&list, |_| true, table.next_turn(&key(asker, "ms2"))).expect("some")] += 1;
        }
        assert!(first.iter().all(|&c| c > 800), "{first:?}");
    }

    #[test]
    fn pick_turn_skips_ineligible() {
        let list = [0, 1, 2, 3];
        let even = |x: &i32| x % 2 == 0;
        assert_eq!(pick_turn(&list, even, 0), Some(0));
        assert_eq!(pick_turn(&list, even, 1), Some(2));
        assert_eq!(pick_turn(&list, even, 2), Some(0));
        assert_eq!(pick_turn(&list, |_| false, 5), None);
        assert_eq!(pick_turn::<i32>(&[], |_| true, u64::MAX), None);
    }
}
