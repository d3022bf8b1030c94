//! Vivaldi network coordinates with height, following HashiCorp Serf's
//! `coordinate` package (Dabek 2004; Ledlie 2007; Lee 2010).
//!
//! A node is a point in 8-D Euclidean space plus a non-negative height (its
//! access-link delay, paid on every path) and an adjustment (a per-node
//! correction for what the embedding cannot represent). Estimated RTT =
//! `|a.vec - b.vec| + heights + adjustments`. Units are **seconds**, as in
//! Serf. Pure and I/O-free; deterministic: where Serf draws a random
//! direction (coincident coordinates) we derive one from seed, peer key and a
//! counter.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

pub const DIMENSIONS: usize = 8;
/// Samples above this are measurement garbage (Serf's `maxRTT`).
pub const MAX_RTT: Duration = Duration::from_secs(10);
/// Distances below this count as "coincident" (Serf's `zeroThreshold`).
const ZERO_THRESHOLD: f64 = 1.0e-6;
/// Gravity keeps honest vectors near the mesh's RTT scale and heights and
/// adjustments are bounded by `MAX_RTT`, so a finite but huge component
/// (seconds) is garbage that would fling us away; reject it.
const MAX_COMPONENT: f64 = 1.0e3;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coordinate {
    pub vec: [f64; DIMENSIONS],
    pub height: f64,
    pub error: f64,
    pub adjustment: f64,
}

impl Coordinate {
    /// Serf's `NewCoordinate` with default config: zero vector, minimal
    /// height, maximal error.
    pub fn origin() -> Coordinate {
        Coordinate::origin_for(&VivaldiConfig::default())
    }

    fn origin_for(config: &VivaldiConfig) -> Coordinate {
        let (height, error) = (config.height_min, config.vivaldi_error_max);
        Coordinate {
            vec: [0.0; DIMENSIONS],
            height,
            error,
            adjustment: 0.0,
        }
    }

    /// Embedding distance without adjustments (Serf's `rawDistanceTo`).
    fn raw_distance_secs(&self, other: &Coordinate) -> f64 {
        magnitude(&diff(&self.vec, &other.vec)) + self.height + other.height
    }

    /// Serf's `DistanceTo`. Adjustments may be negative; if they would make
    /// the estimate non-positive, fall back to the raw distance.
    pub fn estimate_rtt_secs(&self, other: &Coordinate) -> f64 {
        let raw = self.raw_distance_secs(other);
        let adjusted = raw + self.adjustment + other.adjustment;
        if adjusted > 0.0 {
            adjusted
        } else {
            raw
        }
    }

    /// Never negative, never panics: garbage (NaN) sorts as infinitely far,
    /// never as closest.
    pub fn estimate_rtt(&self, other: &Coordinate) -> Duration {
        let secs = self.estimate_rtt_secs(other);
        if secs.is_nan() {
            return Duration::MAX;
        }
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
    }

    /// All finite and within sane bounds; height and error non-negative.
    pub fn is_valid(&self) -> bool {
        let sane = |x: f64| x.is_finite() && x.abs() <= MAX_COMPONENT;
        let scalars = [self.height, self.error, self.adjustment];
        self.vec.iter().chain(&scalars).all(|&x| sane(x)) && self.height >= 0.0 && self.error >= 0.0
    }
}

/// Defaults are Serf's `DefaultConfig`; dimensionality is fixed at 8.
#[derive(Clone, Debug)]
pub struct VivaldiConfig {
    /// Initial error, and its cap.
    pub vivaldi_error_max: f64,
    /// Max impact of one sample on our error estimate.
    pub vivaldi_ce: f64,
    /// Max impact of one sample on our position.
    pub vivaldi_cc: f64,
    /// Samples averaged into the adjustment term; 0 disables it.
    pub adjustment_window_size: usize,
    /// Height floor, seconds.
    pub height_min: f64,
    /// Per-peer moving-median window; absorbs one-off delay spikes.
    pub latency_filter_size: usize,
    /// Gravity toward the origin, `(distance / rho)^2`: stops the whole mesh
    /// drifting off over time while barely distorting it.
    pub gravity_rho: f64,
    /// Set per node (e.g. hash of the node id) so nodes starting together
    /// break ties in different directions.
    pub seed: u64,
}

impl Default for VivaldiConfig {
    fn default() -> Self {
        VivaldiConfig {
            vivaldi_error_max: 1.5,
            vivaldi_ce: 0.25,
            vivaldi_cc: 0.25,
            adjustment_window_size: 20,
            height_min: 10.0e-6,
            latency_filter_size: 3,
            gravity_rho: 150.0,
            seed: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VivaldiError {
    /// The peer's coordinate is non-finite, out of range or negative.
    InvalidCoordinate,
    /// The RTT is zero or above [`MAX_RTT`].
    InvalidRtt,
}

impl std::fmt::Display for VivaldiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VivaldiError::InvalidCoordinate => "invalid peer coordinate",
            VivaldiError::InvalidRtt => "RTT sample zero or above 10 s",
        })
    }
}

impl std::error::Error for VivaldiError {}

/// The local node's coordinate client (Serf's `Client`); `K` names peers.
#[derive(Clone, Debug)]
pub struct Vivaldi<K = String> {
    config: VivaldiConfig,
    coord: Coordinate,
    origin: Coordinate,
    adjustment_samples: Vec<f64>,
    adjustment_index: usize,
    /// Last `latency_filter_size` raw RTTs (seconds) per peer, oldest first.
    filters: HashMap<K, Vec<f64>>,
    /// Bumped on every tie-break so repeated ties pick fresh directions.
    tie_breaks: u64,
    resets: u64,
}

impl<K: Hash + Eq + Clone> Vivaldi<K> {
    pub fn new(config: VivaldiConfig) -> Vivaldi<K> {
        let origin = Coordinate::origin_for(&config);
        Vivaldi {
            adjustment_samples: vec![0.0; config.adjustment_window_size],
            adjustment_index: 0,
            coord: origin,
            origin,
            config,
            filters: HashMap::new(),
            tie_breaks: 0,
            resets: 0,
        }
    }

    pub fn coordinate(&self) -> Coordinate {
        self.coord
    }

    /// Restore a persisted coordinate so a restart need not re-learn.
    pub fn set_coordinate(&mut self, coord: Coordinate) -> Result<(), VivaldiError> {
        if !coord.is_valid() {
            return Err(VivaldiError::InvalidCoordinate);
        }
        self.coord = coord;
        Ok(())
    }

    /// How often the coordinate blew up and was reset to the origin.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// One RTT sample to `peer`, whose advertised coordinate is `theirs`.
    /// Returns our updated coordinate; on error nothing changes.
    pub fn observe(
        &mut self,
        peer: &K,
        theirs: &Coordinate,
        rtt: Duration,
    ) -> Result<Coordinate, VivaldiError> {
        if !theirs.is_valid() {
            return Err(VivaldiError::InvalidCoordinate);
        }
        if rtt.is_zero() || rtt > MAX_RTT {
            return Err(VivaldiError::InvalidRtt);
        }
        let rtt_secs = self.filter(peer, rtt.as_secs_f64()).max(ZERO_THRESHOLD);
        // DefaultHasher::new() is unkeyed, hence stable within a build.
        let mut hasher = DefaultHasher::new();
        peer.hash(&mut hasher);
        self.update_vivaldi(theirs, rtt_secs, hasher.finish());
        self.update_adjustment(theirs, rtt_secs);
        self.update_gravity();
        if !self.coord.is_valid() {
            // Serf's escape hatch: a numerical blow-up must not stick.
            self.resets += 1;
            self.coord = self.origin;
        }
        Ok(self.coord)
    }

    /// Drop the peer's latency filter (the peer left).
    pub fn forget(&mut self, peer: &K) {
        self.filters.remove(peer);
    }

    /// `1 - error / error_max` in `[0, 1]`: 0 before any sample, near 1 once
    /// predictions match measurements.
    pub fn confidence(&self) -> f64 {
        let c = 1.0 - self.coord.error / self.config.vivaldi_error_max;
        if c.is_nan() {
            0.0
        } else {
            c.clamp(0.0, 1.0)
        }
    }

    /// Moving median of the peer's last few samples (Serf's latencyFilter).
    fn filter(&mut self, peer: &K, rtt_secs: f64) -> f64 {
        let size = self.config.latency_filter_size.max(1);
        let window = self.filters.entry(peer.clone()).or_default();
        window.push(rtt_secs);
        if window.len() > size {
            window.remove(0);
        }
        let mut sorted = window.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    /// Spring relaxation: move along the line to the peer by a fraction of
    /// the prediction error, weighted by how unsure we are relative to it.
    fn update_vivaldi(&mut self, other: &Coordinate, rtt_secs: f64, salt: u64) {
        let cfg = &self.config;
        let dist = self.coord.estimate_rtt_secs(other);
        let wrongness = (dist - rtt_secs).abs() / rtt_secs;
        let weight = self.coord.error / (self.coord.error + other.error).max(ZERO_THRESHOLD);
        let error = cfg.vivaldi_ce * weight * wrongness
            + self.coord.error * (1.0 - cfg.vivaldi_ce * weight);
        self.coord.error = error.min(cfg.vivaldi_error_max);
        let force = cfg.vivaldi_cc * weight * (rtt_secs - dist);
        self.apply_force(force, other, salt);
    }

    /// Half the mean residual the embedding leaves over the window (Lee et
    /// al.); half, because the peer's adjustment covers the other half.
    fn update_adjustment(&mut self, other: &Coordinate, rtt_secs: f64) {
        let window = self.adjustment_samples.len();
        if window == 0 {
            return;
        }
        let residual = rtt_secs - self.coord.raw_distance_secs(other);
        self.adjustment_samples[self.adjustment_index] = residual;
        self.adjustment_index = (self.adjustment_index + 1) % window;
        self.coord.adjustment = self.adjustment_samples.iter().sum::<f64>() / (2 * window) as f64;
    }

    fn update_gravity(&mut self) {
        let dist = self.origin.estimate_rtt_secs(&self.coord);
        let force = -(dist / self.config.gravity_rho).powi(2);
        let origin = self.origin;
        self.apply_force(force, &origin, 0);
    }

    /// Positive `force` pushes away from `other`, negative pulls toward it.
    /// The height takes the share of the force that heights make up of the
    /// distance (Serf's `ApplyForce`).
    fn apply_force(&mut self, force: f64, other: &Coordinate, salt: u64) {
        let delta = diff(&self.coord.vec, &other.vec);
        let mag = magnitude(&delta);
        let unit = if mag > ZERO_THRESHOLD {
            delta.map(|x| x / mag)
        } else {
            self.tie_break_direction(salt)
        };
        for (v, u) in self.coord.vec.iter_mut().zip(unit) {
            *v += u * force;
        }
        if mag > ZERO_THRESHOLD {
            let h = self.coord.height;
            self.coord.height = ((h + other.height) * force / mag + h).max(self.config.height_min);
        }
    }

    /// Deterministic stand-in for Serf's random unit vector. The peer key is
    /// mixed in so two fresh nodes probing each other (same seed, both at the
    /// origin) still move apart instead of in lockstep.
    fn tie_break_direction(&mut self, salt: u64) -> [f64; DIMENSIONS] {
        self.tie_breaks = self.tie_breaks.wrapping_add(1);
        let mut state = self.config.seed.wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ salt
            ^ self.tie_breaks.wrapping_mul(0xA24B_AED4_963E_E407);
        let v: [f64; DIMENSIONS] = std::array::from_fn(|_| unit_f64(splitmix64(&mut state)) - 0.5);
        let mag = magnitude(&v);
        if mag > ZERO_THRESHOLD {
            v.map(|x| x / mag)
        } else {
            std::array::from_fn(|i| if i == 0 { 1.0 } else { 0.0 })
        }
    }
}

fn diff(a: &[f64; DIMENSIONS], b: &[f64; DIMENSIONS]) -> [f64; DIMENSIONS] {
    std::array::from_fn(|i| a[i] - b[i])
}

fn magnitude(v: &[f64; DIMENSIONS]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from the top 53 bits.
fn unit_f64(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: f64) -> Duration {
        Duration::from_secs_f64(x / 1000.0)
    }

    /// Deterministic test PRNG (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * unit_f64(splitmix64(&mut self.0))
        }
        fn below(&mut self, n: usize) -> usize {
            self.range(0.0, n as f64) as usize
        }
    }

    #[test]
    fn estimate_is_symmetric_and_non_negative() {
        let mut rng = Rng(1);
        for _ in 0..1000 {
            let mut c = || Coordinate {
                vec: std::array::from_fn(|_| rng.range(-0.1, 0.1)),
                height: rng.range(0.0, 0.01),
                error: 1.0,
                adjustment: rng.range(-0.5, 0.05), // often hugely negative
            };
            let (a, b) = (c(), c());
            assert_eq!(a.estimate_rtt(&b), b.estimate_rtt(&a));
            assert!(a.estimate_rtt_secs(&b) >= 0.0);
        }
        let o = Coordinate::origin();
        assert_eq!(o.estimate_rtt(&o), Duration::from_micros(20));
    }

    #[test]
    fn rejects_garbage_and_stays_put() {
        let mut v: Vivaldi<u32> = Vivaldi::new(VivaldiConfig::default());
        let good = Coordinate::origin();
        v.observe(&1, &good, ms(20.0)).expect("valid sample");
        let before = v.coordinate();
        let mut bad = vec![
            Coordinate {
                height: -1e-3,
                ..good
            },
            Coordinate {
                error: -1.0,
                ..good
            },
        ];
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e12] {
            bad.push(Coordinate { height: x, ..good });
            bad.push(Coordinate { error: x, ..good });
            bad.push(Coordinate {
                adjustment: x,
                ..good
            });
            bad.push(Coordinate {
                vec: [x; DIMENSIONS],
                ..good
            });
        }
        for c in &bad {
            assert!(!c.is_valid());
            assert_eq!(
                v.observe(&2, c, ms(20.0)),
                Err(VivaldiError::InvalidCoordinate)
            );
            assert_eq!(v.set_coordinate(*c), Err(VivaldiError::InvalidCoordinate));
        }
        for rtt in [Duration::ZERO, Duration::from_secs(11), Duration::MAX] {
            assert_eq!(v.observe(&2, &good, rtt), Err(VivaldiError::InvalidRtt));
        }
        assert_eq!(v.coordinate(), before);
        assert_eq!(bad[2].estimate_rtt(&good), Duration::MAX); // NaN height
    }

    #[test]
    fn latency_filter_is_moving_median_of_three() {
        let mut v: Vivaldi<&str> = Vivaldi::new(VivaldiConfig::default());
        let out: Vec<f64> = [10.0, 100.0, 20.0, 30.0, 1.0, 1.0]
            .map(|x| v.filter(&"a", x))
            .to_vec();
        assert_eq!(out, [10.0, 100.0, 20.0, 30.0, 20.0, 1.0]);
        assert_eq!(v.filter(&"b", 7.0), 7.0); // per peer
        v.forget(&"a");
        assert_eq!(v.filter(&"a", 5.0), 5.0);
    }

    #[test]
    fn converges_to_single_peer_rtt() {
        let mut v: Vivaldi<&str> = Vivaldi::new(VivaldiConfig::default());
        assert_eq!(v.confidence(), 0.0);
        let peer = Coordinate::origin();
        // Final approach is slow by design: once we are sure and the (fresh)
        // peer is not, the error weighting shrinks our steps.
        for _ in 0..500 {
            v.observe(&"p", &peer, ms(50.0)).expect("valid sample");
        }
        let est = v.coordinate().estimate_rtt_secs(&peer) * 1000.0;
        assert!((est - 50.0).abs() < 1.0, "estimate {est} ms");
        assert!(v.confidence() > 0.95, "confidence {}", v.confidence());
    }

    #[test]
    fn deterministic_and_coincident_nodes_separate() {
        let run = || {
            let mut a: Vivaldi<u8> = Vivaldi::new(VivaldiConfig::default());
            let mut b: Vivaldi<u8> = Vivaldi::new(VivaldiConfig::default());
            for _ in 0..50 {
                let (ca, cb) = (a.coordinate(), b.coordinate());
                a.observe(&b'b', &cb, ms(10.0)).expect("valid");
                b.observe(&b'a', &ca, ms(10.0)).expect("valid");
            }
            (a.coordinate(), b.coordinate())
        };
        let (a, b) = run();
        assert_eq!((a, b), run());
        assert!(magnitude(&diff(&a.vec, &b.vec)) > 1e-3, "moved in lockstep");
        let est = a.estimate_rtt_secs(&b) * 1000.0;
        assert!((est - 10.0).abs() < 1.0, "estimate {est} ms");
    }

    /// 40 nodes at 10 real sites; each probes only 6 fixed peers (one-way,
    /// as in Serf: only the prober learns), yet all 780 pairs are scored.
    #[test]
    fn simulation_world_mesh() {
        // London, Paris, Frankfurt, Amsterdam, Madrid, Stockholm, Warsaw,
        // Milan, New York, Singapore: (lat, lon) pairs.
        const SITES: [f64; 20] = [
            51.51, -0.13, 48.86, 2.35, 50.11, 8.68, 52.37, 4.90, 40.42, -3.70, 59.33, 18.07, 52.23,
            21.01, 45.46, 9.19, 40.71, -74.01, 1.35, 103.82,
        ];
        const N: usize = 40;
        const NEIGHBOURS: usize = 6;
        // Serf's defaults still move a lot at 60 samples/node under this
        // sparse probing (median ~0.12); 300 is well into the settled regime.
        const ROUNDS: usize = 300;
        let mut rng = Rng(0x5eed);
        let access: Vec<f64> = (0..N).map(|_| rng.range(0.5, 3.0)).collect();
        let great_circle_km = |a: usize, b: usize| {
            let (sa, sb) = (2 * (a % 10), 2 * (b % 10));
            let (p1, p2) = (SITES[sa].to_radians(), SITES[sb].to_radians());
            let dl = (SITES[sb + 1] - SITES[sa + 1]).to_radians();
            let h =
                ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
            2.0 * 6371.0 * h.sqrt().asin()
        };
        // Fibre at 200 km/ms with 30 % path stretch, plus both access links.
        let true_ms =
            |a: usize, b: usize| 2.6 * great_circle_km(a, b) / 200.0 + access[a] + access[b];
        let neighbours: Vec<Vec<usize>> = (0..N)
            .map(|i| {
                let mut others: Vec<usize> = (0..N).filter(|&j| j != i).collect();
                for k in 0..NEIGHBOURS {
                    let pick = k + rng.below(others.len() - k);
                    others.swap(k, pick);
                }
                others[..NEIGHBOURS].to_vec()
            })
            .collect();
        let mut nodes: Vec<Vivaldi<usize>> = (0..N)
            .map(|i| {
                Vivaldi::new(VivaldiConfig {
                    seed: i as u64,
                    ..Default::default()
                })
            })
            .collect();
        for _ in 0..ROUNDS {
            // Coordinates as gossiped at the start of the round.
            let advertised: Vec<Coordinate> = nodes.iter().map(Vivaldi::coordinate).collect();
            for (i, node) in nodes.iter_mut().enumerate() {
                let j = neighbours[i][rng.below(NEIGHBOURS)];
                let rtt = ms(true_ms(i, j) * rng.range(0.95, 1.05));
                node.observe(&j, &advertised[j], rtt).expect("valid sample");
            }
        }
        let coords: Vec<Coordinate> = nodes.iter().map(Vivaldi::coordinate).collect();
        let est = |a: usize, b: usize| coords[a].estimate_rtt_secs(&coords[b]) * 1000.0;
        let mut rel: Vec<f64> = (0..N)
            .flat_map(|a| (a + 1..N).map(move |b| (a, b)))
            .map(|(a, b)| (est(a, b) - true_ms(a, b)).abs() / true_ms(a, b))
            .collect();
        rel.sort_by(f64::total_cmp);
        let (median, p90) = (rel[rel.len() / 2], rel[rel.len() * 9 / 10]);
        let (mut judged, mut correct) = (0u32, 0u32);
        for a in 0..N {
            for b in (0..N).filter(|&b| b != a) {
                for c in (b + 1..N).filter(|&c| c != a) {
                    let (tb, tc) = (true_ms(a, b), true_ms(a, c));
                    if tb.max(tc) > 1.1 * tb.min(tc) {
                        judged += 1;
                        correct += u32::from((tb < tc) == (est(a, b) < est(a, c)));
                    }
                }
            }
        }
        let ordering = f64::from(correct) / f64::from(judged);
        println!(
            "vivaldi sim: median rel err {median:.4}, p90 {p90:.4}, ordering {ordering:.4} \
             of {judged} triples, resets {}",
            nodes.iter().map(Vivaldi::resets).sum::<u64>()
        );
        assert!(median <= 0.10, "median relative error {median}");
        // Misorderings are mostly same-site pairs that never probe each
        // other; with rotating probe targets this reaches ~0.99.
        assert!(ordering >= 0.85, "ordering accuracy {ordering}");
    }
}
