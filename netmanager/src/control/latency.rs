//! Measured RTTs and the choice of whom to probe. Pure.
//!
//! A node probes its watch set (failure detection) every round and one more
//! member per round to explore: alternately a candidate the resolver may
//! answer with (so `closest` decides on measurements, not estimates) and a
//! member in rotation (so the Vivaldi coordinate sees varied distances).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;

/// Samples kept per peer; the minimum of them is the path's RTT (queueing
/// only ever adds delay).
const SAMPLES: usize = 8;
/// Samples older than this no longer count as a measurement.
pub const MEASUREMENT_AGE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct RttTracker {
    samples: HashMap<PeerId, VecDeque<(Instant, Duration)>>,
}

impl RttTracker {
    pub fn record(&mut self, peer: PeerId, rtt: Duration, now: Instant) {
        let samples = self.samples.entry(peer).or_default();
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back((now, rtt));
    }

    /// The lowest recent sample, if any is fresh.
    pub fn measured(&self, peer: &PeerId, now: Instant) -> Option<Duration> {
        self.samples
            .get(peer)?
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= MEASUREMENT_AGE)
            .map(|(_, rtt)| *rtt)
            .min()
    }

    pub fn forget(&mut self, peer: &PeerId) {
        self.samples.remove(peer);
    }
}

/// Round-robin choice of the extra member to probe each round.
#[derive(Default)]
pub struct Explorer {
    round: u64,
    candidate_cursor: usize,
    member_cursor: usize,
}

impl Explorer {
    /// `members` in a stable order (sorted), `candidates` the members whose
    /// instances the resolver would pick between; `skip` those probed anyway.
    pub fn next(&mut self, members: &[PeerId], candidates: &[PeerId], skip: &[PeerId]) -> Option<PeerId> {
        self.round += 1;
        let from_candidates = self.round.is_multiple_of(2) && !candidates.is_empty();
        let (list, cursor) = if from_candidates {
            (candidates, &mut self.candidate_cursor)
        } else {
            (members, &mut self.member_cursor)
        };
        for _ in 0..list.len() {
            *cursor = (*cursor + 1) % list.len();
            let peer = list[*cursor];
            if !skip.contains(&peer) {
                return Some(peer);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_rtt_is_the_minimum_of_fresh_samples() {
        let mut t = RttTracker::default();
        let p = PeerId::random();
        let now = Instant::now();
        assert_eq!(t.measured(&p, now), None);
        t.record(p, Duration::from_millis(30), now);
        t.record(p, Duration::from_millis(20), now);
        t.record(p, Duration::from_millis(90), now);
        assert_eq!(t.measured(&p, now), Some(Duration::from_millis(20)));
        let later = now + MEASUREMENT_AGE + Duration::from_secs(1);
        assert_eq!(t.measured(&p, later), None, "stale samples are no measurement");
        for _ in 0..SAMPLES {
            t.record(p, Duration::from_millis(50), later);
        }
        assert_eq!(t.measured(&p, later), Some(Duration::from_millis(50)), "old samples roll out");
        t.forget(&p);
        assert_eq!(t.measured(&p, later), None);
    }

    #[test]
    fn explorer_alternates_and_covers_everyone_but_the_skipped() {
        let members: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        let candidates = vec![members[4]];
        let skip = vec![members[0]];
        let mut e = Explorer::default();
        let picks: Vec<PeerId> = (0..10).filter_map(|_| e.next(&members, &candidates, &skip)).collect();
        assert_eq!(picks.len(), 10);
        assert!(!picks.contains(&members[0]));
        assert!(picks.iter().filter(|p| **p == members[4]).count() >= 5);
        for m in &members[1..] {
            assert!(picks.contains(m), "every member is explored");
        }
        assert_eq!(e.next(&[], &[], &[]), None);
    }
}
