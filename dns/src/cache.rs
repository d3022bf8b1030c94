//! The forwarder's cache policy, without I/O: a map budgeted in bytes, not
//! entries, least recently used evicted first, lifetimes counted from a
//! `now` the caller passes in.
//!
//! An entry's size is what it really holds: the heap bytes of its key and
//! value ([`Weigh`]) plus the cache's bookkeeping for it (the map slot, the
//! LRU index entry, the key stored twice), rounded up. The sum of sizes
//! never exceeds the budget: inserting evicts from the cold end until the
//! new entry fits, and an entry larger than 1/[`MAX_ENTRY_FRACTION`] of
//! the budget is not cached at all, so that one answer cannot flush the
//! cache.
//!
//! Keys are chosen by askers (any name under a zone they control), so the
//! map uses std's keyed hasher, not the crate's unkeyed one.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::mem::size_of;
use std::sync::Arc;
use std::time::Instant;

/// Largest single entry, as a fraction of the budget (1/64: 128 KiB of
/// the default 8 MiB, more than any DNS message of 64 KiB).
pub const MAX_ENTRY_FRACTION: usize = 64;
/// What one heap allocation costs beyond its bytes (allocator header and
/// rounding), counted per allocation an entry owns.
pub const ALLOCATION_OVERHEAD: usize = 16;

/// Heap bytes a cached key or value owns (not its inline size).
pub trait Weigh {
    /// Bytes on the heap, allocator overhead included.
    fn heap_bytes(&self) -> usize;
}

impl Weigh for Arc<[u8]> {
    fn heap_bytes(&self) -> usize {
        // The two reference counts live in the allocation.
        self.len() + 2 * size_of::<usize>() + ALLOCATION_OVERHEAD
    }
}

impl Weigh for u32 {
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// What [`ByteCache::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Cached, after evicting this many entries to make room.
    Cached {
        /// Entries evicted.
        evicted: usize,
    },
    /// Not cached: larger than the per-entry limit (or the cache is off).
    TooLarge,
}

struct Slot<V> {
    value: V,
    size: usize,
    stored: Instant,
    ttl: u32,
    /// Position in `order`: larger is more recently used.
    tick: u64,
}

/// A TTL-aware LRU map with a byte budget.
pub struct ByteCache<K, V> {
    entries: HashMap<K, Slot<V>>,
    order: BTreeMap<u64, K>,
    next_tick: u64,
    bytes: usize,
    budget: usize,
    max_entry: usize,
}

impl<K: Hash + Eq + Clone + Weigh, V: Weigh> ByteCache<K, V> {
    /// An empty cache of at most `budget` bytes (0: caches nothing).
    pub fn new(budget: usize) -> ByteCache<K, V> {
        ByteCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
            bytes: 0,
            budget,
            max_entry: budget / MAX_ENTRY_FRACTION,
        }
    }

    /// The bookkeeping of one entry beyond the heap of its key and value:
    /// the map slot (key and slot inline, at a load factor of 7/8, plus a
    /// control byte) and the LRU index entry (tick and key inline, in
    /// B-tree nodes that are at least half full).
    pub fn entry_overhead() -> usize {
        (size_of::<K>() + size_of::<Slot<V>>()) * 8 / 7 + 1 + (size_of::<u64>() + size_of::<K>()) * 2
    }

    /// The size an entry of `key` and `value` is counted at.
    pub fn entry_size(key: &K, value: &V) -> usize {
        2 * key.heap_bytes() + value.heap_bytes() + Self::entry_overhead()
    }

    /// The live entry for `key` and its age in whole seconds; an expired
    /// entry is removed and not returned. A hit becomes the most recently
    /// used entry.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<(&V, u32)> {
        let slot = self.entries.get(key)?;
        let age = u32::try_from(now.saturating_duration_since(slot.stored).as_secs()).unwrap_or(u32::MAX);
        if age >= slot.ttl {
            self.remove(key);
            return None;
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        let slot = self.entries.get_mut(key)?;
        if let Some(k) = self.order.remove(&slot.tick) {
            self.order.insert(tick, k);
        }
        slot.tick = tick;
        Some((&slot.value, age))
    }

    /// Caches `value` for `ttl` seconds from `now`, replacing any entry of
    /// `key` and evicting the least recently used entries to stay within
    /// the budget.
    pub fn insert(&mut self, key: K, value: V, ttl: u32, now: Instant) -> Insert {
        let size = Self::entry_size(&key, &value);
        if size > self.max_entry || size > self.budget {
            // A fresher answer that cannot be cached must not leave a stale one behind.
            self.remove(&key);
            return Insert::TooLarge;
        }
        self.remove(&key);
        let mut evicted = 0;
        while self.bytes + size > self.budget {
            let Some((_, cold)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.entries.remove(&cold) {
                self.bytes -= slot.size;
                evicted += 1;
            }
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.order.insert(tick, key.clone());
        self.entries.insert(
            key,
            Slot {
                value,
                size,
                stored: now,
                ttl,
                tick,
            },
        );
        self.bytes += size;
        Insert::Cached { evicted }
    }

    fn remove(&mut self, key: &K) {
        if let Some(slot) = self.entries.remove(key) {
            self.order.remove(&slot.tick);
            self.bytes -= slot.size;
        }
    }

    /// Bytes the entries are counted at, at most the budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held (expired ones included until touched or evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn value(len: usize) -> Arc<[u8]> {
        vec![7u8; len].into()
    }

    #[test]
    fn ten_thousand_big_answers_stay_within_the_budget() {
        let budget = 8 << 20;
        let mut cache: ByteCache<u32, Arc<[u8]>> = ByteCache::new(budget);
        let t0 = Instant::now();
        let mut evicted = 0;
        for n in 0..10_000 {
            match cache.insert(n, value(60 * 1024), 3600, t0) {
                Insert::Cached { evicted: e } => evicted += e,
                Insert::TooLarge => panic!("60 KiB fits 1/64 of 8 MiB"),
            }
            assert!(cache.bytes() <= budget, "{} > {budget} after {n}", cache.bytes());
        }
        // 8 MiB of 60 KiB answers: about 136 of them, the newest.
        assert!((120..=137).contains(&cache.len()), "{}", cache.len());
        assert_eq!(evicted + cache.len(), 10_000);
        assert!(cache.get(&9_999, t0).is_some());
        assert!(cache.get(&0, t0).is_none());
        let counted = cache.len() * ByteCache::<u32, Arc<[u8]>>::entry_size(&0, &value(60 * 1024));
        assert_eq!(cache.bytes(), counted);
    }

    #[test]
    fn entries_over_the_fraction_are_not_cached() {
        let mut cache: ByteCache<u32, Arc<[u8]>> = ByteCache::new(64 * 1024);
        let t0 = Instant::now();
        assert_eq!(cache.insert(1, value(100), 60, t0), Insert::Cached { evicted: 0 });
        // 1/64 of 64 KiB is 1 KiB.
        assert_eq!(cache.insert(2, value(2000), 60, t0), Insert::TooLarge);
        assert!(cache.get(&2, t0).is_none());
        // A too-large replacement drops the old entry rather than keep it.
        assert_eq!(cache.insert(1, value(2000), 60, t0), Insert::TooLarge);
        assert!(cache.get(&1, t0).is_none());
        assert_eq!(cache.bytes(), 0);
        let mut off: ByteCache<u32, Arc<[u8]>> = ByteCache::new(0);
        assert_eq!(off.insert(1, value(1), 60, t0), Insert::TooLarge);
        assert!(off.is_empty());
    }

    #[test]
    fn the_least_recently_used_goes_first() {
        let one = ByteCache::<u32, Arc<[u8]>>::entry_size(&0, &value(100));
        let mut cache: ByteCache<u32, Arc<[u8]>> = ByteCache::new(3 * one);
        cache.max_entry = one; // the fraction rule is tested above
        let t0 = Instant::now();
        for n in 1..=3 {
            cache.insert(n, value(100), 60, t0);
        }
        assert!(cache.get(&1, t0).is_some(), "1 is now the most recent");
        assert_eq!(cache.insert(4, value(100), 60, t0), Insert::Cached { evicted: 1 });
        assert!(cache.get(&2, t0).is_none(), "2 was the coldest");
        for n in [1, 3, 4] {
            assert!(cache.get(&n, t0).is_some(), "{n}");
        }
        assert_eq!(cache.bytes(), 3 * one);
    }

    #[test]
    fn entries_expire_with_their_ttl_and_give_their_age() {
        let mut cache: ByteCache<u32, Arc<[u8]>> = ByteCache::new(1 << 20);
        let t0 = Instant::now();
        cache.insert(1, value(10), 10, t0);
        let (_, age) = cache.get(&1, t0 + Duration::from_secs(4)).expect("live");
        assert_eq!(age, 4);
        assert!(cache.get(&1, t0 + Duration::from_secs(10)).is_none());
        assert_eq!(
            (cache.len(), cache.bytes()),
            (0, 0),
            "expired entries are removed on touch"
        );
    }
}
