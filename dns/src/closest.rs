//! The `closest` ranking: latency first, geography for near-ties and where
//! no latency is known.
//!
//! Each candidate gets a [`Basis`] and a figure in ms ([`Ranked::rank_ms`]):
//!
//! 1. **RTT**: a measured RTT, or one estimated from network coordinates with
//!    confidence ≥ `min_estimate_confidence`. The figure is that RTT.
//! 2. **Stand-in**: no usable RTT but a known distance. The figure is a
//!    deliberately pessimistic guess from great-circle km
//!    ([`PolicyConfig::stand_in_ms`]: 10 ms + 30 ms per 1000 km). An
//!    unmeasured node 300 km away is guessed at 19 ms: a measured node at
//!    15 ms beats it; one at 20 ms ties with it and still wins (a real RTT
//!    ranks first inside a tie band); one at 60 ms loses. So a known RTT
//!    beats an unknown one unless it is absurdly worse, and "absurdly" means
//!    worse than even a pessimistic guess from distance, plus the margin.
//! 3. **Unknown**: neither usable RTT nor distance. Ranked after everything
//!    else, by any low-confidence RTT estimate, then by instance number.
//!
//! RTT and stand-in candidates share one scale. Sorted by it, they form
//! near-tie bands: the leader and every candidate within
//! [`PolicyConfig::tie_margin_ms`] of it (10 % or 2 ms, whichever is larger).
//! Inside a band, a real RTT ranks before a stand-in (known beats guessed
//! when they are close), then geography decides (smaller km first; a
//! candidate with a location before one without), then RTT, instance number
//! and node, so that the order is total and stable. The next band starts at
//! the first candidate beyond the margin.
//!
//! [`pick_closest`] finds the winner without allocating (up to
//! [`INLINE_CANDIDATES`]); [`rank_closest`] orders everyone for `explain`.

use std::cmp::Ordering;

use crate::config::PolicyConfig;
use crate::directory::{Distance, DistanceOracle, Instance};

/// Candidates ranked on the stack by [`pick_closest`]; more spill to the heap.
pub const INLINE_CANDIDATES: usize = 32;

/// Where a candidate's rank figure comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Basis {
    /// A measured RTT or a confident estimate.
    Rtt,
    /// A pessimistic guess from great-circle distance.
    StandIn,
    /// Nothing usable.
    #[default]
    Unknown,
}

/// One candidate as the ranking saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ranked {
    /// Index into the candidate list ([`crate::Selection::candidates`]).
    pub index: usize,
    /// What the oracle said (km sanitised: non-finite or negative dropped).
    pub distance: Distance,
    /// Where `rank_ms` comes from.
    pub basis: Basis,
    /// The figure ranked on: RTT, stand-in, or for `Unknown` a
    /// low-confidence estimate (infinite if none).
    pub rank_ms: f64,
}

/// Asks the oracle about one candidate and classifies the answer.
pub fn assess<O: DistanceOracle + ?Sized>(
    index: usize,
    instance: &Instance,
    oracle: &O,
    config: &PolicyConfig,
) -> Ranked {
    let mut distance = oracle.distance(&instance.node);
    distance.km = distance.km.filter(|km| km.is_finite() && *km >= 0.0);
    let usable = distance
        .rtt
        .filter(|r| r.measured || r.confidence >= config.min_estimate_confidence);
    let (basis, rank_ms) = match (usable, distance.km) {
        (Some(r), _) => (Basis::Rtt, r.rtt.as_secs_f64() * 1000.0),
        (None, Some(km)) => (Basis::StandIn, config.stand_in_ms(km)),
        (None, None) => (
            Basis::Unknown,
            distance.rtt.map_or(f64::INFINITY, |r| r.rtt.as_secs_f64() * 1000.0),
        ),
    };
    Ranked {
        index,
        distance,
        basis,
        rank_ms,
    }
}

/// The closest admitted candidate, or `None` if none is admitted.
/// Allocation-free for up to [`INLINE_CANDIDATES`] candidates.
pub fn pick_closest<O, F>(candidates: &[Instance], admit: F, oracle: &O, config: &PolicyConfig) -> Option<usize>
where
    O: DistanceOracle + ?Sized,
    F: Fn(&Instance) -> bool,
{
    let mut inline = [Ranked::default(); INLINE_CANDIDATES];
    let mut heap = Vec::new();
    let buf: &mut [Ranked] = if candidates.len() <= INLINE_CANDIDATES {
        &mut inline
    } else {
        heap.resize(candidates.len(), Ranked::default());
        &mut heap
    };
    let mut n = 0;
    for (index, instance) in candidates.iter().enumerate().filter(|(_, i)| admit(i)) {
        buf[n] = assess(index, instance, oracle, config);
        n += 1;
    }
    let ranked = &buf[..n];
    let best = match lead_ms(ranked) {
        Some(lead) => {
            let limit = config.tie_limit_ms(lead);
            ranked
                .iter()
                .filter(|r| r.basis != Basis::Unknown && r.rank_ms <= limit)
                .min_by(|a, b| band_order(a, b, candidates))
        }
        None => ranked.iter().min_by(|a, b| unknown_order(a, b, candidates)),
    };
    best.map(|r| r.index)
}

/// Every admitted candidate in rank order (best first).
pub fn rank_closest<O, F>(candidates: &[Instance], admit: F, oracle: &O, config: &PolicyConfig) -> Vec<Ranked>
where
    O: DistanceOracle + ?Sized,
    F: Fn(&Instance) -> bool,
{
    let mut ranked: Vec<Ranked> = candidates
        .iter()
        .enumerate()
        .filter(|(_, i)| admit(i))
        .map(|(index, i)| assess(index, i, oracle, config))
        .collect();
    ranked.sort_by(|a, b| {
        (a.basis == Basis::Unknown)
            .cmp(&(b.basis == Basis::Unknown))
            .then(a.rank_ms.total_cmp(&b.rank_ms))
    });
    let known = ranked
        .iter()
        .position(|r| r.basis == Basis::Unknown)
        .unwrap_or(ranked.len());
    let mut start = 0;
    while start < known {
        let limit = config.tie_limit_ms(ranked[start].rank_ms);
        // At least the leader, even with a nonsensical (NaN) margin.
        let end = start + ranked[start..known].partition_point(|r| r.rank_ms <= limit).max(1);
        ranked[start..end].sort_by(|a, b| band_order(a, b, candidates));
        start = end;
    }
    ranked[known..].sort_by(|a, b| unknown_order(a, b, candidates));
    ranked
}

/// Why the first of a [`rank_closest`] ranking won.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClosestReason {
    /// It was the only candidate.
    Only,
    /// Lowest RTT, nobody within the tie margin.
    LowestRtt,
    /// `tied` candidates were within `margin_ms` of the best figure; a real
    /// RTT beat stand-ins, then the shortest distance decided.
    NearTie {
        /// How many candidates were within the margin of the best.
        tied: usize,
        /// The margin around the best figure, ms.
        margin_ms: f64,
    },
    /// It has no usable RTT; its distance stood in. `beat_rtt`: candidates
    /// with an RTT existed but were worse than even the pessimistic guess.
    StandIn {
        /// Candidates with a usable RTT existed (and lost).
        beat_rtt: bool,
    },
    /// Nothing was known about any candidate.
    NothingKnown,
}

/// Explains the winner of `ranking` (as [`rank_closest`] returns it).
pub fn closest_reason(ranking: &[Ranked], config: &PolicyConfig) -> Option<ClosestReason> {
    let first = ranking.first()?;
    if ranking.len() == 1 {
        return Some(ClosestReason::Only);
    }
    let Some(lead) = lead_ms(ranking) else {
        return Some(ClosestReason::NothingKnown);
    };
    let limit = config.tie_limit_ms(lead);
    let tied = ranking
        .iter()
        .filter(|r| r.basis != Basis::Unknown && r.rank_ms <= limit)
        .count();
    Some(if tied > 1 {
        ClosestReason::NearTie {
            tied,
            margin_ms: config.tie_margin_ms(lead),
        }
    } else if first.basis == Basis::Rtt {
        ClosestReason::LowestRtt
    } else {
        ClosestReason::StandIn {
            beat_rtt: ranking.iter().any(|r| r.basis == Basis::Rtt),
        }
    })
}

/// The best figure among candidates with an RTT or stand-in.
fn lead_ms(ranked: &[Ranked]) -> Option<f64> {
    ranked
        .iter()
        .filter(|r| r.basis != Basis::Unknown)
        .map(|r| r.rank_ms)
        .min_by(f64::total_cmp)
}

/// Order inside a near-tie band: RTT before stand-in, then located before
/// unlocated, nearer first, then lower figure, number, node.
fn band_order(a: &Ranked, b: &Ranked, candidates: &[Instance]) -> Ordering {
    let km = |r: &Ranked| r.distance.km.unwrap_or(f64::INFINITY);
    a.basis
        .cmp(&b.basis)
        .then(a.distance.km.is_none().cmp(&b.distance.km.is_none()))
        .then(km(a).total_cmp(&km(b)))
        .then(a.rank_ms.total_cmp(&b.rank_ms))
        .then_with(|| identity_order(a, b, candidates))
}

/// Order among unknowns: any weak estimate, then number, node.
fn unknown_order(a: &Ranked, b: &Ranked, candidates: &[Instance]) -> Ordering {
    a.rank_ms
        .total_cmp(&b.rank_ms)
        .then_with(|| identity_order(a, b, candidates))
}

fn identity_order(a: &Ranked, b: &Ranked, candidates: &[Instance]) -> Ordering {
    match (candidates.get(a.index), candidates.get(b.index)) {
        (Some(x), Some(y)) => (x.number, &x.node).cmp(&(y.number, &y.node)),
        _ => a.index.cmp(&b.index),
    }
}

#[cfg(test)]
#[path = "closest_tests.rs"]
mod tests;
