//! Tests of the policies and the health rule.

use std::net::Ipv4Addr;

use super::*;
use crate::label::Label;
use crate::name::Protocol;
use crate::test_support::{numbered, Fake};

fn asker(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a12_0000 + n))
}

/// Three instances: n0 far, n1 nearest, n2 middle.
fn oracle() -> Fake {
    Fake::default()
        .at("n0", Some(50.0), Some(3000.0))
        .at("n1", Some(5.0), Some(100.0))
        .at("n2", Some(20.0), Some(800.0))
}

fn with_health(healthy: [bool; 3]) -> Instances {
    let mut list = numbered(3).to_vec();
    for (i, h) in list.iter_mut().zip(healthy) {
        i.healthy = h;
    }
    Instances::new(list)
}

struct Setup {
    oracle: Fake,
    rr: RrTable,
    config: PolicyConfig,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            oracle: oracle(),
            rr: RrTable::new(4096, 1),
            config: PolicyConfig::default(),
        }
    }

    fn run(
        &self,
        policy: Policy,
        list: &Instances,
        port: Option<PortSelector>,
        explain: bool,
        from: u32,
    ) -> Result<Selection, Miss> {
        let cx = PolicyContext {
            oracle: &self.oracle,
            rr: &self.rr,
            asker: asker(from),
            config: &self.config,
        };
        apply(policy, list.clone(), port, explain, &cx)
    }

    fn numbers(&self, policy: Policy, list: &Instances) -> Result<Vec<u32>, Miss> {
        self.run(policy, list, None, false, 1)
            .map(|s| s.chosen().map(|i| i.number).collect())
    }
}

fn http() -> Option<PortSelector> {
    Some(PortSelector {
        name: Label::parse("http").expect("label"),
        protocol: Protocol::Tcp,
    })
}

#[test]
fn closest_picks_the_nearest_healthy() {
    let s = Setup::new();
    assert_eq!(s.numbers(Policy::Closest, &with_health([true; 3])), Ok(vec![1]));
    // The nearest is down: the next nearest, never the unhealthy one.
    assert_eq!(
        s.numbers(Policy::Closest, &with_health([true, false, true])),
        Ok(vec![2])
    );
    assert_eq!(
        s.numbers(Policy::Closest, &with_health([true, false, false])),
        Ok(vec![0])
    );
    let sel = s
        .run(Policy::Closest, &with_health([true, false, true]), None, false, 1)
        .expect("ok");
    assert!(!sel.degraded);
    assert!(sel.explanation.is_none());
}

#[test]
fn all_unhealthy_serves_them_flagged_or_nothing() {
    let mut s = Setup::new();
    let down = with_health([false; 3]);
    for policy in [Policy::Closest, Policy::RoundRobin, Policy::All] {
        let sel = s.run(policy, &down, None, false, 1).expect("served");
        assert!(sel.degraded, "{policy}");
        assert!(sel.first().is_some());
    }
    assert_eq!(s.numbers(Policy::Closest, &down), Ok(vec![1]), "still the closest");
    assert_eq!(s.numbers(Policy::All, &down), Ok(vec![0, 1, 2]));
    s.config.serve_unhealthy = false;
    for policy in [Policy::Closest, Policy::RoundRobin, Policy::All, Policy::Instance(1)] {
        assert_eq!(
            s.run(policy, &down, None, false, 1).err(),
            Some(Miss::NoHealthyInstance),
            "{policy}"
        );
    }
}

#[test]
fn all_returns_every_healthy_instance() {
    let s = Setup::new();
    assert_eq!(s.numbers(Policy::All, &with_health([true; 3])), Ok(vec![0, 1, 2]));
    assert_eq!(
        s.numbers(Policy::All, &with_health([true, false, true])),
        Ok(vec![0, 2])
    );
    let sel = s
        .run(Policy::All, &with_health([true, false, true]), None, true, 1)
        .expect("ok");
    let explanation = sel.explanation.expect("explain");
    assert_eq!(explanation.reason, Reason::Every { count: 2 });
    assert_eq!(explanation.excluded, 1);
}

#[test]
fn instance_n_is_that_instance() {
    let s = Setup::new();
    let list = with_health([true, false, true]);
    assert_eq!(s.numbers(Policy::Instance(2), &list), Ok(vec![2]));
    assert_eq!(s.numbers(Policy::Instance(7), &list), Err(Miss::NoSuchInstance(7)));
    // Asked for by number: served even though healthy others exist, flagged.
    let sel = s.run(Policy::Instance(1), &list, None, true, 1).expect("ok");
    assert!(sel.degraded);
    assert_eq!(sel.first().map(|i| i.number), Some(1));
    let explanation = sel.explanation.expect("explain");
    assert_eq!((explanation.reason, explanation.ranking.len()), (Reason::Numbered, 1));
}

#[test]
fn rr_rotates_among_healthy_instances() {
    let s = Setup::new();
    let list = with_health([true, false, true]);
    let picks: Vec<u32> = (0..10)
        .map(|_| s.numbers(Policy::RoundRobin, &list).expect("ok")[0])
        .collect();
    assert!(!picks.contains(&1), "{picks:?}");
    for w in picks.windows(2) {
        assert_ne!(w[0], w[1], "{picks:?}");
    }
}

#[test]
fn rr_is_fair_over_many_queries_and_askers() {
    let s = Setup::new();
    let list = numbered(7);
    let mut total = [0u32; 7];
    for round in 0..70 {
        for from in 0..100 {
            let sel = s.run(Policy::RoundRobin, &list, None, round == 0, from).expect("ok");
            total[sel.first().expect("one").number as usize] += 1;
        }
    }
    assert_eq!(total, [1000; 7]);
}

#[test]
fn srv_form_filters_by_port() {
    let s = Setup::new();
    let mut list = numbered(3).to_vec();
    list[1].spec.ports.clear(); // the nearest has no http port
    let list = Instances::new(list);
    let sel = s.run(Policy::Closest, &list, http(), false, 1).expect("ok");
    assert_eq!(sel.first().map(|i| i.number), Some(2));
    assert_eq!(
        s.run(Policy::Instance(1), &list, http(), false, 1).err(),
        Some(Miss::NoSuchPort)
    );
    let grpc = Some(PortSelector {
        name: Label::parse("grpc").expect("label"),
        protocol: Protocol::Tcp,
    });
    assert_eq!(s.run(Policy::All, &list, grpc, false, 1).err(), Some(Miss::NoSuchPort));
    let udp = Some(PortSelector {
        name: Label::parse("http").expect("label"),
        protocol: Protocol::Udp,
    });
    assert_eq!(
        s.run(Policy::Closest, &list, udp, false, 1).err(),
        Some(Miss::NoSuchPort)
    );
    // The health rule is applied among instances with the port.
    let mut list = list.to_vec();
    list[0].healthy = false;
    list[2].healthy = false;
    let sel = s
        .run(Policy::Closest, &Instances::new(list), http(), false, 1)
        .expect("ok");
    assert!(sel.degraded, "the only healthy instance lacks the port");
}

#[test]
fn explain_ranks_winner_and_runners_up() {
    let s = Setup::new();
    let sel = s
        .run(Policy::Closest, &with_health([true, true, false]), None, true, 1)
        .expect("ok");
    assert_eq!(sel.first().map(|i| i.number), Some(1));
    let explanation = sel.explanation.expect("explain");
    let order: Vec<u32> = explanation
        .ranking
        .iter()
        .map(|r| sel.candidates[r.index].number)
        .collect();
    assert_eq!(order, [1, 0]);
    assert_eq!(explanation.excluded, 1);
    assert_eq!(explanation.reason, Reason::Closest(ClosestReason::LowestRtt));
    // rr: rotation order from the chosen one.
    let sel = s.run(Policy::RoundRobin, &numbered(3), None, true, 9).expect("ok");
    let explanation = sel.explanation.expect("explain");
    assert_eq!(
        explanation.ranking[0].index,
        match sel.picked {
            Picked::One(k) => k,
            Picked::All => panic!("one"),
        }
    );
    assert!(matches!(explanation.reason, Reason::Turn { eligible: 3, .. }));
}

#[test]
fn nothing_to_choose_from() {
    let s = Setup::new();
    for policy in [Policy::Closest, Policy::RoundRobin, Policy::All] {
        assert_eq!(
            s.run(policy, &Instances::empty(), None, false, 1).err(),
            Some(Miss::NoSuchService)
        );
    }
    assert_eq!(
        s.run(Policy::Instance(0), &Instances::empty(), None, false, 1).err(),
        Some(Miss::NoSuchInstance(0))
    );
}
