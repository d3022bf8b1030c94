//! Token buckets, the one rate limit the control plane uses: per member
//! for records and suspicions, per address for join attempts. Pure: the
//! caller passes `now`.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// `burst` events at once, then one per `every`.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: f64,
    at: Option<Instant>,
    burst: f64,
    per_sec: f64,
}

impl TokenBucket {
    pub fn new(burst: u32, every: Duration) -> TokenBucket {
        let per_sec = if every.is_zero() { f64::INFINITY } else { 1.0 / every.as_secs_f64() };
        TokenBucket { tokens: f64::from(burst), at: None, burst: f64::from(burst), per_sec }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A bucket per key, for at most `capacity` keys: when full, buckets that
/// have refilled completely (idle keys) are dropped first, and if none
/// has, the new key is refused (a flood from many addresses cannot grow
/// the table).
pub struct BucketMap<K> {
    buckets: HashMap<K, TokenBucket>,
    capacity: usize,
    burst: u32,
    every: Duration,
}

impl<K: Hash + Eq + Clone> BucketMap<K> {
    pub fn new(capacity: usize, burst: u32, every: Duration) -> BucketMap<K> {
        BucketMap { buckets: HashMap::new(), capacity, burst, every }
    }

    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        if let Some(bucket) = self.buckets.get_mut(key) {
            return bucket.allow(now);
        }
        if self.buckets.len() >= self.capacity {
            let idle = self.every * self.burst;
            self.buckets.retain(|_, b| b.at.is_some_and(|at| now.saturating_duration_since(at) < idle));
            if self.buckets.len() >= self.capacity {
                return false;
            }
        }
        let mut bucket = TokenBucket::new(self.burst, self.every);
        let allowed = bucket.allow(now);
        self.buckets.insert(key.clone(), bucket);
        allowed
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_a_rate() {
        let now = Instant::now();
        let mut b = TokenBucket::new(3, Duration::from_secs(1));
        assert!((0..3).all(|_| b.allow(now)));
        assert!(!b.allow(now));
        assert!(!b.allow(now + Duration::from_millis(500)));
        assert!(b.allow(now + Duration::from_millis(1600)));
        assert!(!b.allow(now + Duration::from_millis(1700)));
    }

    #[test]
    fn bucket_maps_stay_bounded() {
        let now = Instant::now();
        let mut m: BucketMap<u32> = BucketMap::new(100, 2, Duration::from_secs(10));
        for k in 0..10_000 {
            m.allow(&k, now);
        }
        assert!(m.len() <= 100);
        assert!(!m.allow(&20_000, now), "a full table of busy keys refuses newcomers");
        assert!(m.allow(&20_000, now + Duration::from_secs(60)), "idle keys make room");
    }
}
