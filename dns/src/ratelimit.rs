//! Query rate limiting per client: a token bucket per [`ClientKey`], in a
//! table of fixed size, with `now` passed in (no clock, no I/O).
//!
//! Every query a client sends takes a token; tokens come back at `qps` per
//! second up to `burst`. Without tokens the query is over the limit: the
//! handler drops it, except that every `slip`-th one is answered with an
//! empty TC=1 response, in the spirit of BIND's and Knot's response rate
//! limiting ("slip"): a real client whose address a flood shares gets told
//! to retry over TCP, while a spoofed victim gets no more bytes than the
//! query had.
//!
//! The table never grows: `clients` slots, and each client may sit in one
//! of two, chosen by a keyed hash (so an asker cannot aim at a victim's
//! slot). A slot whose bucket has refilled to `burst` is idle and may be
//! taken by another client: forgetting a full bucket loses nothing. A
//! client that finds both its slots held by active clients shares one
//! overflow bucket with every other such client, so a table full of active
//! clients cannot be used to reset anyone's bucket.
//!
//! Per-source limits do not stop a sender that forges many source
//! addresses (each forged address starts with a full bucket); the ACL
//! keeps that to addresses inside the allowed prefixes.

use std::hash::BuildHasher;
use std::time::Instant;

use crate::client::ClientKey;
use crate::config::RateLimitConfig;

/// What to do with one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: answer.
    Allow,
    /// Over the limit: no response.
    Drop,
    /// Over the limit, but this one gets an empty TC=1 response (UDP).
    Slip,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    /// Milliseconds since the table's epoch at the last refill.
    last_ms: u64,
}

impl Bucket {
    /// Tokens after refilling up to `at_ms`, without changing the bucket.
    fn refilled(&self, at_ms: u64, per_ms: f64, burst: f64) -> f64 {
        let elapsed = at_ms.saturating_sub(self.last_ms) as f64;
        (self.tokens + elapsed * per_ms).min(burst)
    }

    /// Refills and takes one token if there is one.
    fn take(&mut self, at_ms: u64, per_ms: f64, burst: f64) -> bool {
        self.tokens = self.refilled(at_ms, per_ms, burst);
        self.last_ms = self.last_ms.max(at_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// `None`: never used.
    key: Option<ClientKey>,
    bucket: Bucket,
}

/// The per-client token buckets. Not `Sync` by itself; the handler holds
/// it behind a mutex (one short critical section per query).
pub struct RateTable {
    slots: Box<[Slot]>,
    mask: usize,
    hasher: std::collections::hash_map::RandomState,
    overflow: Bucket,
    per_ms: f64,
    burst: f64,
    slip: u32,
    /// Over-limit queries so far, to pick every `slip`-th.
    over: u64,
    epoch: Instant,
}

impl RateTable {
    /// A table for `config`, its clock starting at `now`. `None` when the
    /// limit is off (`qps = 0`).
    pub fn new(config: &RateLimitConfig, now: Instant) -> Option<RateTable> {
        if config.qps == 0 {
            return None;
        }
        let size = config
            .clients
            .clamp(2, crate::config::MAX_RATE_CLIENTS)
            .next_power_of_two();
        let burst = f64::from(config.burst.max(1));
        let full = Bucket {
            tokens: burst,
            last_ms: 0,
        };
        Some(RateTable {
            slots: vec![
                Slot {
                    key: None,
                    bucket: full
                };
                size
            ]
            .into_boxed_slice(),
            mask: size - 1,
            hasher: std::collections::hash_map::RandomState::new(),
            overflow: full,
            per_ms: f64::from(config.qps) / 1000.0,
            burst,
            slip: config.slip,
            over: 0,
            epoch: now,
        })
    }

    /// Charges one query of `client` at `now`.
    pub fn check(&mut self, client: ClientKey, now: Instant) -> Verdict {
        let at_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        let hash = self.hasher.hash_one(client);
        let first = (hash as usize) & self.mask;
        let second = ((hash >> 32) as usize) & self.mask;
        let (per_ms, burst) = (self.per_ms, self.burst);
        let bucket = if self.slots[first].key == Some(client) {
            &mut self.slots[first].bucket
        } else if self.slots[second].key == Some(client) {
            &mut self.slots[second].bucket
        } else {
            let idle = |slot: &Slot| slot.key.is_none() || slot.bucket.refilled(at_ms, per_ms, burst) >= burst;
            let free = [first, second].into_iter().find(|&i| idle(&self.slots[i]));
            match free {
                Some(i) => {
                    self.slots[i] = Slot {
                        key: Some(client),
                        bucket: Bucket {
                            tokens: burst,
                            last_ms: at_ms,
                        },
                    };
                    &mut self.slots[i].bucket
                }
                None => &mut self.overflow,
            }
        };
        if bucket.take(at_ms, per_ms, burst) {
            return Verdict::Allow;
        }
        self.over += 1;
        if self.slip > 0 && self.over % u64::from(self.slip) == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Slots in the table (a power of two).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;

    fn config(qps: u32, burst: u32, clients: usize, slip: u32) -> RateLimitConfig {
        RateLimitConfig {
            qps,
            burst,
            clients,
            slip,
        }
    }

    fn client(n: u32) -> ClientKey {
        ClientKey::of(IpAddr::V4(Ipv4Addr::from(0x0a12_0000 + n)))
    }

    fn allowed(table: &mut RateTable, key: ClientKey, n: usize, now: Instant) -> usize {
        (0..n).filter(|_| table.check(key, now) == Verdict::Allow).count()
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut table = RateTable::new(&config(100, 50, 64, 0), t0).expect("on");
        let a = client(1);
        assert_eq!(allowed(&mut table, a, 80, t0), 50, "the burst, then nothing");
        // 100 qps: 10 tokens in 100 ms.
        assert_eq!(allowed(&mut table, a, 80, t0 + Duration::from_millis(100)), 10);
        // A long pause refills to the burst, not beyond.
        assert_eq!(allowed(&mut table, a, 80, t0 + Duration::from_secs(60)), 50);
    }

    #[test]
    fn one_flooding_client_does_not_limit_another() {
        let t0 = Instant::now();
        let mut table = RateTable::new(&config(100, 50, 64, 0), t0).expect("on");
        assert_eq!(allowed(&mut table, client(1), 10_000, t0), 50);
        assert_eq!(allowed(&mut table, client(2), 30, t0), 30);
    }

    #[test]
    fn every_slip_th_over_limit_query_slips() {
        let t0 = Instant::now();
        let mut table = RateTable::new(&config(10, 1, 16, 3), t0).expect("on");
        let a = client(1);
        assert_eq!(table.check(a, t0), Verdict::Allow);
        let verdicts: Vec<Verdict> = (0..6).map(|_| table.check(a, t0)).collect();
        use Verdict::{Drop, Slip};
        assert_eq!(verdicts, [Drop, Drop, Slip, Drop, Drop, Slip]);
        let mut never = RateTable::new(&config(10, 1, 16, 0), t0).expect("on");
        assert_eq!(never.check(a, t0), Verdict::Allow);
        assert!((0..10).all(|_| never.check(a, t0) == Verdict::Drop), "slip 0: never");
    }

    #[test]
    fn the_table_stays_fixed_and_a_full_table_shares_one_overflow_bucket() {
        let t0 = Instant::now();
        let mut table = RateTable::new(&config(1, 5, 8, 0), t0).expect("on");
        assert_eq!(table.capacity(), 8);
        // 1000 active clients (each keeps a drained bucket): at most 8 hold
        // slots; the rest share the overflow bucket's 5 tokens.
        let mut allowed_total = 0;
        for n in 0..1000 {
            allowed_total += allowed(&mut table, client(n), 5, t0);
        }
        assert!(allowed_total <= 8 * 5 + 5, "{allowed_total}");
        assert!(allowed_total >= 5, "{allowed_total}");
        assert_eq!(table.capacity(), 8);
        // Once idle (refilled to the burst), slots are taken by new clients.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(allowed(&mut table, client(5000), 5, later), 5);
    }

    #[test]
    fn qps_zero_is_off() {
        assert!(RateTable::new(&config(0, 10, 16, 2), Instant::now()).is_none());
    }
}
