//! Token buckets for handshake work, without I/O: the caller passes `now`.
//!
//! [`SourceLimit`] is WireGuard's per-source ratelimiter (kernel
//! `drivers/net/wireguard/ratelimiter.c`, `wg_ratelimiter_allow`): each
//! source (an IPv4 address, an IPv6 /64) may start 20 handshakes a second
//! with a burst of 5. It lives in a fixed table allocated once, so a flood
//! from spoofed sources costs no memory: a source whose bucket has refilled
//! is indistinguishable from one never seen, so its slot is free again, and
//! when every slot a source may use is busy the least recently seen one is
//! taken over. [`TokenBucket`] is a single bucket for a node-wide budget.
//!
//! Credit is counted in nanoseconds, as the kernel does: time adds credit,
//! an event costs `1 s / per_second`, and credit never exceeds `burst` events.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Instant;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Handshakes a source may start per second, and its burst (kernel values).
pub(crate) const PER_SOURCE: Rate = Rate {
    per_second: 20,
    burst: 5,
};
/// Slots of the per-source table: 4096 × 32 bytes, 128 KiB.
pub(crate) const SOURCE_SLOTS: usize = 4096;
/// Slots one source may land in; the table is split in groups this large.
const WAYS: usize = 8;

/// Events per second and how many may come at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    pub per_second: u64,
    pub burst: u64,
}

impl Rate {
    const fn cost(self) -> u64 {
        NANOS_PER_SEC / self.per_second
    }

    const fn full(self) -> u64 {
        self.cost() * self.burst
    }
}

/// Nanoseconds since the first instant seen, so that buckets store a `u64`
/// rather than a 16-byte `Instant`.
#[derive(Debug, Default)]
struct Clock(Option<Instant>);

impl Clock {
    fn nanos(&mut self, now: Instant) -> u64 {
        let epoch = *self.0.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    credit: u64,
    seen: u64,
}

impl Bucket {
    fn full(rate: Rate) -> Self {
        Bucket {
            credit: rate.full(),
            seen: 0,
        }
    }

    fn credit_at(&self, now: u64, rate: Rate) -> u64 {
        self.credit
            .saturating_add(now.saturating_sub(self.seen))
            .min(rate.full())
    }

    fn take(&mut self, now: u64, rate: Rate) -> bool {
        self.credit = self.credit_at(now, rate);
        self.seen = self.seen.max(now);
        if self.credit < rate.cost() {
            return false;
        }
        self.credit -= rate.cost();
        true
    }
}

/// One bucket: a node-wide budget.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    clock: Clock,
    bucket: Bucket,
    rate: Rate,
}

impl TokenBucket {
    /// A bucket that starts full.
    pub(crate) fn new(rate: Rate) -> Self {
        TokenBucket {
            clock: Clock::default(),
            bucket: Bucket::full(rate),
            rate,
        }
    }

    /// Whether one more event fits at `now` (and if so, it is counted).
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let now = self.clock.nanos(now);
        self.bucket.take(now, self.rate)
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// [`source_key`] of the source the bucket belongs to.
    key: u128,
    bucket: Bucket,
}

/// Per-source buckets in a fixed-size table (see the module docs).
pub(crate) struct SourceLimit {
    clock: Clock,
    slots: Box<[Slot]>,
    /// Keyed with random keys, so nobody can aim sources at one group.
    hasher: RandomState,
    rate: Rate,
}

impl SourceLimit {
    pub(crate) fn new(slots: usize, rate: Rate) -> Self {
        let slots = slots.max(WAYS).next_multiple_of(WAYS);
        // Every slot starts as a full bucket, which is what a new source gets.
        let empty = Slot {
            key: 0,
            bucket: Bucket::full(rate),
        };
        SourceLimit {
            clock: Clock::default(),
            slots: vec![empty; slots].into_boxed_slice(),
            hasher: RandomState::new(),
            rate,
        }
    }

    /// Whether `source` may start one more handshake at `now` (and if so,
    /// it is counted). Never allocates.
    pub(crate) fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        let now = self.clock.nanos(now);
        let key = source_key(source);
        let groups = self.slots.len() / WAYS;
        let start = (self.hasher.hash_one(key) % groups as u64) as usize * WAYS;
        let rate = self.rate;
        let group = &mut self.slots[start..start + WAYS];
        let mut found = None;
        let mut free = None;
        let mut oldest = 0;
        for (i, slot) in group.iter().enumerate() {
            if slot.key == key {
                found = Some(i);
                break;
            }
            if free.is_none() && slot.bucket.credit_at(now, rate) == rate.full() {
                free = Some(i);
            }
            if slot.bucket.seen < group[oldest].bucket.seen {
                oldest = i;
            }
        }
        let i = match found {
            Some(i) => i,
            None => {
                // A busy slot taken over gives its source a full bucket when
                // it returns: at most one burst more, and only once every
                // slot of its group is busier than it.
                let i = free.unwrap_or(oldest);
                group[i] = Slot {
                    key,
                    bucket: Bucket::full(rate),
                };
                i
            }
        };
        group[i].bucket.take(now, rate)
    }

    /// Sources whose bucket has not refilled yet: the ones the table
    /// remembers. Never more than [`Self::capacity`].
    #[cfg(test)]
    pub(crate) fn tracked(&mut self, now: Instant) -> usize {
        let now = self.clock.nanos(now);
        let rate = self.rate;
        self.slots
            .iter()
            .filter(|s| s.bucket.credit_at(now, rate) < rate.full())
            .count()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }
}

/// What a source is limited by: its IPv4 address, or the /64 of its IPv6
/// address (one host usually owns a whole /64). IPv4-mapped IPv6 addresses,
/// as a dual-stack socket reports IPv4 senders, count as IPv4; the tag in
/// bit 64 keeps IPv4 keys apart from every /64.
fn source_key(source: IpAddr) -> u128 {
    match source.to_canonical() {
        IpAddr::V4(a) => 1 << 64 | u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a) >> 64,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    use super::*;

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    fn allowed(limit: &mut SourceLimit, source: IpAddr, now: Instant, tries: usize) -> usize {
        (0..tries).filter(|_| limit.allow(source, now)).count()
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let mut limit = SourceLimit::new(64, PER_SOURCE);
        let t0 = Instant::now();
        let a = v4(0xc633_6409);
        assert_eq!(allowed(&mut limit, a, t0, 100), 5, "burst of 5");
        assert_eq!(
            allowed(&mut limit, a, t0 + Duration::from_millis(100), 100),
            2,
            "20/s refills 2 in 100 ms"
        );
        assert_eq!(
            allowed(&mut limit, a, t0 + Duration::from_secs(10), 100),
            5,
            "credit caps at the burst"
        );
        // Another source has its own bucket.
        assert_eq!(allowed(&mut limit, v4(0xc633_640a), t0, 100), 5);
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let mut limit = SourceLimit::new(64, PER_SOURCE);
        let now = Instant::now();
        let host = |n: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, n));
        let spent: usize = (1..=50).map(|n| allowed(&mut limit, host(n), now, 1)).sum();
        assert_eq!(spent, 5, "50 addresses of one /64 share one bucket");
        assert_eq!(
            allowed(
                &mut limit,
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)),
                now,
                10
            ),
            5
        );
        let a = Ipv4Addr::new(198, 51, 100, 9);
        assert_eq!(allowed(&mut limit, IpAddr::V4(a), now, 3), 3);
        assert_eq!(
            allowed(&mut limit, IpAddr::V6(a.to_ipv6_mapped()), now, 10),
            2,
            "same source as 198.51.100.9"
        );
        assert_eq!(
            allowed(&mut limit, v4(0x0a00_0001), now, 10),
            5,
            "other IPv4 sources do not share it"
        );
    }

    #[test]
    fn table_stays_bounded_under_inits_from_100000_spoofed_sources() {
        let mut limit = SourceLimit::new(SOURCE_SLOTS, PER_SOURCE);
        let t0 = Instant::now();
        let heavy = v4(0xc633_6409);
        let mut heavy_allowed = 0;
        for n in 0..100_000u32 {
            let now = t0 + Duration::from_micros(u64::from(n));
            assert!(
                limit.allow(v4(0x0a00_0000 + n), now),
                "a newcomer is never refused for lack of room"
            );
            // The real flooder keeps sending in between: spoofed sources
            // must not wipe its bucket (it is never the least recent).
            if n % 10 == 0 {
                heavy_allowed += usize::from(limit.allow(heavy, now));
            }
        }
        let end = t0 + Duration::from_micros(100_000);
        assert_eq!(limit.capacity(), SOURCE_SLOTS, "the table never grows");
        assert!(limit.tracked(end) <= SOURCE_SLOTS);
        // 100 ms of flood: a burst of 5 plus 20/s.
        assert!(heavy_allowed <= 5 + 2, "the flooder got {heavy_allowed}");
        // Once the flood stops, every spoofed entry is free again.
        assert_eq!(limit.tracked(end + Duration::from_secs(1)), 0);
    }

    #[test]
    fn token_bucket_is_a_node_wide_budget() {
        let mut budget = TokenBucket::new(Rate {
            per_second: 2,
            burst: 3,
        });
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| budget.allow(t0)).count(), 3);
        assert!(!budget.allow(t0 + Duration::from_millis(400)));
        assert!(budget.allow(t0 + Duration::from_millis(500)));
        // An instant older than one already seen adds no credit.
        assert!(!budget.allow(t0));
    }
}
