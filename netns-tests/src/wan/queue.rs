//! The deadline queue: packets wait in a min-heap keyed by
//! (deadline, sequence number) until their delay has passed.
//!
//! Each pair's deadlines never go backwards — when a pair's delay is
//! lowered, later packets wait for earlier ones — so per-pair FIFO order
//! holds, as on a real path. Pure: `now` is passed in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use super::policy::Pair;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    deadline: Instant,
    seq: u64,
    packet: Vec<u8>,
}

/// Packets waiting for their deadline.
#[derive(Debug, Default)]
pub struct DelayQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    last_deadline: HashMap<Pair, Instant>,
}

impl DelayQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `packet` of `pair`, due `delay` after `now` (or after the
    /// pair's previous packet, if that is later). Returns the deadline.
    pub fn push(&mut self, pair: Pair, now: Instant, delay: Duration, packet: Vec<u8>) -> Instant {
        let mut deadline = now + delay;
        if let Some(last) = self.last_deadline.get(&pair) {
            deadline = deadline.max(*last);
        }
        self.last_deadline.insert(pair, deadline);
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            deadline,
            seq: self.seq,
            packet,
        }));
        deadline
    }

    /// Takes the earliest packet if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.heap.peek()?.0.deadline <= now {
            self.heap.pop().map(|Reverse(e)| e.packet)
        } else {
            None
        }
    }

    /// When the earliest packet is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.deadline)
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Forgets per-pair deadlines that have passed (keeps the map small).
    pub fn prune(&mut self, now: Instant) {
        self.last_deadline.retain(|_, d| *d > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn pair(a: &str, b: &str) -> Pair {
        (a.parse::<IpAddr>().expect("ip"), b.parse::<IpAddr>().expect("ip"))
    }

    #[test]
    fn releases_in_deadline_order() {
        let now = Instant::now();
        let mut q = DelayQueue::new();
        q.push(pair("1.0.0.1", "1.0.0.2"), now, Duration::from_millis(30), vec![1]);
        q.push(pair("1.0.0.3", "1.0.0.4"), now, Duration::from_millis(10), vec![2]);
        assert_eq!(q.next_deadline(), Some(now + Duration::from_millis(10)));
        assert_eq!(q.pop_due(now), None);
        assert_eq!(q.pop_due(now + Duration::from_millis(10)), Some(vec![2]));
        assert_eq!(q.pop_due(now + Duration::from_millis(20)), None);
        assert_eq!(q.pop_due(now + Duration::from_millis(30)), Some(vec![1]));
        assert!(q.is_empty());
    }

    #[test]
    fn keeps_pair_fifo_when_delay_drops() {
        let now = Instant::now();
        let p = pair("1.0.0.1", "1.0.0.2");
        let mut q = DelayQueue::new();
        q.push(p, now, Duration::from_millis(50), vec![1]);
        let d2 = q.push(p, now + Duration::from_millis(1), Duration::from_millis(5), vec![2]);
        assert_eq!(d2, now + Duration::from_millis(50));
        let later = now + Duration::from_millis(60);
        assert_eq!(q.pop_due(later), Some(vec![1]));
        assert_eq!(q.pop_due(later), Some(vec![2]));
    }

    #[test]
    fn equal_deadlines_keep_arrival_order() {
        let now = Instant::now();
        let mut q = DelayQueue::new();
        for i in 0..10u8 {
            q.push(pair("1.0.0.1", &format!("1.0.0.{}", i + 2)), now, Duration::ZERO, vec![i]);
        }
        let out: Vec<u8> = std::iter::from_fn(|| q.pop_due(now)).map(|p| p[0]).collect();
        assert_eq!(out, (0..10).collect::<Vec<u8>>());
    }
}
