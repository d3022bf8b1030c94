//! Tests of the `closest` ranking.

use super::*;
use crate::directory::Instances;
use crate::test_support::{numbered, Fake};

fn config() -> PolicyConfig {
    PolicyConfig::default()
}

fn all(_: &Instance) -> bool {
    true
}

/// Numbers of the candidates in rank order.
fn order(list: &Instances, oracle: &Fake) -> Vec<u32> {
    rank_closest(list, all, oracle, &config())
        .iter()
        .map(|r| list[r.index].number)
        .collect()
}

fn pick(list: &Instances, oracle: &Fake) -> Option<u32> {
    pick_closest(list, all, oracle, &config()).map(|i| list[i].number)
}

#[test]
fn lowest_rtt_wins_outside_the_margin() {
    let list = numbered(3);
    let oracle = Fake::default()
        .at("n0", Some(30.0), Some(100.0))
        .at("n1", Some(10.0), Some(900.0))
        .at("n2", Some(20.0), Some(50.0));
    assert_eq!(pick(&list, &oracle), Some(1));
    assert_eq!(order(&list, &oracle), [1, 2, 0]);
    let ranking = rank_closest(&list, all, &oracle, &config());
    assert_eq!(closest_reason(&ranking, &config()), Some(ClosestReason::LowestRtt));
}

#[test]
fn near_tie_is_decided_by_geography() {
    let list = numbered(3);
    // 2 ms floor: 10 and 11.9 tie; 12.5 does not.
    let oracle = Fake::default()
        .at("n0", Some(10.0), Some(800.0))
        .at("n1", Some(11.9), Some(40.0))
        .at("n2", Some(12.5), Some(1.0));
    assert_eq!(pick(&list, &oracle), Some(1));
    assert_eq!(order(&list, &oracle), [1, 0, 2]);
    let ranking = rank_closest(&list, all, &oracle, &config());
    assert_eq!(
        closest_reason(&ranking, &config()),
        Some(ClosestReason::NearTie {
            tied: 2,
            margin_ms: 2.0
        })
    );
    // 10 % above the floor: 100 and 109 tie, 111 does not.
    let oracle = Fake::default()
        .at("n0", Some(100.0), Some(3000.0))
        .at("n1", Some(109.0), Some(2000.0))
        .at("n2", Some(111.0), Some(10.0));
    assert_eq!(order(&list, &oracle), [1, 0, 2]);
    // A located candidate ranks before an unlocated one in a tie.
    let oracle = Fake::default()
        .at("n0", Some(10.0), None)
        .at("n1", Some(11.0), Some(5000.0))
        .at("n2", Some(50.0), None);
    assert_eq!(order(&list, &oracle), [1, 0, 2]);
    // Same place: the lower RTT, then the lower number.
    let oracle = Fake::default()
        .at("n0", Some(10.5), Some(5.0))
        .at("n1", Some(10.0), Some(5.0))
        .at("n2", Some(10.0), Some(5.0));
    assert_eq!(order(&list, &oracle), [1, 2, 0]);
}

#[test]
fn the_local_node_wins_its_ties() {
    let list = numbered(2);
    let mut oracle = Fake::default().at("n1", Some(0.4), Some(2.0));
    oracle.distances.insert("n0".into(), Distance::LOCAL);
    assert_eq!(pick(&list, &oracle), Some(0));
}

#[test]
fn geography_stands_in_where_no_rtt_is_known() {
    let list = numbered(3);
    let oracle = Fake::default()
        .at("n0", None, Some(2000.0))
        .at("n1", None, Some(300.0))
        .at("n2", None, Some(700.0));
    assert_eq!(order(&list, &oracle), [1, 2, 0]);
    let ranking = rank_closest(&list, all, &oracle, &config());
    assert_eq!(ranking[0].basis, Basis::StandIn);
    assert!((ranking[0].rank_ms - 19.0).abs() < 1e-9);
    assert_eq!(
        closest_reason(&ranking, &config()),
        Some(ClosestReason::StandIn { beat_rtt: false })
    );
}

#[test]
fn a_known_rtt_beats_a_stand_in_unless_absurdly_worse() {
    let list = numbered(2);
    // n1: unmeasured, 300 km: stand-in 19 ms, ties up to 21 ms.
    for (measured_ms, winner) in [(15.0, 0), (19.0, 0), (20.5, 0), (21.5, 1), (60.0, 1), (300.0, 1)] {
        let oracle = Fake::default()
            .at("n0", Some(measured_ms), Some(3000.0))
            .at("n1", None, Some(300.0));
        assert_eq!(pick(&list, &oracle), Some(winner), "measured {measured_ms} ms");
        let ranking = rank_closest(&list, all, &oracle, &config());
        assert_eq!(list[ranking[0].index].number, winner);
        if winner == 1 {
            assert_eq!(
                closest_reason(&ranking, &config()),
                Some(ClosestReason::StandIn { beat_rtt: true })
            );
        }
    }
    // Any RTT or distance beats knowing nothing.
    let oracle = Fake::default().at("n0", Some(900.0), None);
    assert_eq!(order(&list, &oracle), [0, 1]);
    let oracle = Fake::default().at("n1", None, Some(19_000.0));
    assert_eq!(order(&list, &oracle), [1, 0]);
}

#[test]
fn confidence_decides_whether_an_estimate_counts() {
    let list = numbered(2);
    // A confident estimate of 30 ms loses to a stand-in of 19 ms…
    let oracle = Fake::default()
        .estimated("n0", 30.0, 0.9, Some(10.0))
        .at("n1", None, Some(300.0));
    assert_eq!(pick(&list, &oracle), Some(1));
    // …an unconfident 5 ms estimate is ignored: n0's own distance stands in.
    let oracle = Fake::default()
        .estimated("n0", 5.0, 0.1, Some(1000.0))
        .at("n1", None, Some(300.0));
    assert_eq!(pick(&list, &oracle), Some(1));
    let ranking = rank_closest(&list, all, &oracle, &config());
    assert_eq!(ranking[1].basis, Basis::StandIn);
    // NaN confidence counts as none.
    let oracle = Fake::default()
        .estimated("n0", 5.0, f64::NAN, None)
        .at("n1", None, Some(300.0));
    assert_eq!(pick(&list, &oracle), Some(1));
}

#[test]
fn nothing_known_falls_back_to_weak_estimates_then_numbers() {
    let list = numbered(4);
    let oracle = Fake::default()
        .estimated("n2", 40.0, 0.05, None)
        .estimated("n3", 20.0, 0.05, None);
    assert_eq!(order(&list, &oracle), [3, 2, 0, 1]);
    assert_eq!(pick(&list, &oracle), Some(3));
    let ranking = rank_closest(&list, all, &oracle, &config());
    assert_eq!(closest_reason(&ranking, &config()), Some(ClosestReason::NothingKnown));
    assert_eq!(pick(&list, &Fake::default()), Some(0));
}

#[test]
fn admission_is_respected_and_empty_is_none() {
    let list = numbered(3);
    let oracle = Fake::default().at("n0", Some(1.0), None).at("n1", Some(2.0), None);
    let not_zero = |i: &Instance| i.number != 0;
    assert_eq!(
        pick_closest(&list, not_zero, &oracle, &config()).map(|i| list[i].number),
        Some(1)
    );
    assert_eq!(pick_closest(&list, |_| false, &oracle, &config()), None);
    assert!(rank_closest(&list, |_| false, &oracle, &config()).is_empty());
    assert_eq!(closest_reason(&[], &config()), None);
    let one = rank_closest(&list, |i| i.number == 2, &oracle, &config());
    assert_eq!(closest_reason(&one, &config()), Some(ClosestReason::Only));
}

#[test]
fn bad_oracle_figures_are_sanitised() {
    let list = numbered(3);
    let oracle = Fake::default()
        .at("n0", None, Some(f64::NAN))
        .at("n1", None, Some(-5.0))
        .at("n2", None, Some(f64::INFINITY));
    let ranking = rank_closest(&list, all, &oracle, &config());
    assert!(ranking
        .iter()
        .all(|r| r.basis == Basis::Unknown && r.distance.km.is_none()));
    assert_eq!(pick(&list, &oracle), Some(0));
}

#[test]
fn many_candidates_spill_to_the_heap() {
    let list = numbered(100);
    let mut oracle = Fake::default();
    for i in 0..100 {
        oracle = oracle.at(&format!("n{i}"), Some(200.0 - f64::from(i)), Some(10.0));
    }
    assert_eq!(pick(&list, &oracle), Some(99));
}

/// Property: the allocation-free pick always equals the head of the full
/// ranking, and the ranking is a permutation of the admitted candidates,
/// over many pseudo-random mixes of RTTs, estimates and distances.
#[test]
fn pick_agrees_with_ranking() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    for round in 0..3000 {
        let n = 1 + next(12) as u32;
        let list = numbered(n);
        let mut oracle = Fake::default();
        for i in 0..n {
            let node = format!("n{i}");
            // Coarse values so that ties and equal figures happen often.
            let rtt = (next(3) > 0).then(|| (next(20) * 2) as f64);
            let km = (next(3) > 0).then(|| (next(10) * 100) as f64);
            oracle = match next(4) {
                0 => oracle.estimated(&node, rtt.unwrap_or(5.0), next(10) as f64 / 10.0, km),
                _ => oracle.at(&node, rtt, km),
            };
        }
        let admit = |i: &Instance| round % 5 != 0 || i.number % 2 == 0;
        let ranking = rank_closest(&list, admit, &oracle, &config());
        let picked = pick_closest(&list, admit, &oracle, &config());
        assert_eq!(picked, ranking.first().map(|r| r.index), "round {round}");
        let mut seen: Vec<usize> = ranking.iter().map(|r| r.index).collect();
        seen.sort_unstable();
        let expected: Vec<usize> = (0..list.len()).filter(|&i| admit(&list[i])).collect();
        assert_eq!(seen, expected);
        // Bands never put a worse-by-more-than-the-margin RTT first.
        if let (Some(first), Some(best)) = (ranking.first(), lead_ms(&ranking)) {
            if first.basis != Basis::Unknown {
                assert!(first.rank_ms <= config().tie_limit_ms(best));
            }
        }
    }
}
