//! The WAN emulator: delay, loss, cut/heal, geography, dual-stack.

use std::net::IpAddr;
use std::time::Duration;

use netns_tests::{ping_with, wait_until_named, PingOptions, Site, Testbed};

use super::support::{build, ms, testbed};

fn pings(count: u32, interval_ms: u64) -> PingOptions {
    PingOptions {
        count,
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_secs(1),
    }
}

#[test]
fn wan_rtt_within_ten_percent() {
    let tb = testbed(2);
    let (a, b) = (tb.node(0), tb.node(1));
    tb.wan().set_latency(a, b, Duration::from_millis(40)).expect("set latency");
    let stats = ping_with(a.netns(), b.ipv4().into(), &pings(20, 50)).expect("ping");
    assert_eq!(stats.received, 20, "{stats:?}");
    let rtt = stats.rtt.expect("rtt");
    let (min, avg) = (ms(rtt.min), ms(rtt.avg));
    eprintln!("RTT with 40 ms configured: min {min:.3} avg {avg:.3} ms ({stats:?})");
    // The minimum is the emulated delay; scheduling on a busy machine only adds.
    assert!((min - 40.0).abs() <= 4.0, "minimum RTT {min:.2} ms, want 40 ms ± 10%");
    assert!(avg <= 50.0, "average RTT {avg:.2} ms, want about 40 ms");
}

#[test]
fn asymmetric_one_way_delays_add_up() {
    let tb = testbed(2);
    let (a, b) = (tb.node(0), tb.node(1));
    let wan = tb.wan();
    wan.set_one_way(a, b, Duration::from_millis(5)).expect("a→b");
    wan.set_one_way(b, a, Duration::from_millis(25)).expect("b→a");
    let stats = ping_with(b.netns(), a.ipv4().into(), &pings(10, 50)).expect("ping");
    let rtt = stats.rtt.expect("rtt");
    let (min, avg) = (ms(rtt.min), ms(rtt.avg));
    assert!((min - 30.0).abs() <= 3.0, "minimum RTT {min:.2} ms, want 30 ms ± 10% ({stats:?})");
    assert!(avg <= 40.0, "average RTT {avg:.2} ms, want about 30 ms ({stats:?})");
}

#[test]
fn cut_blocks_and_heal_restores() {
    let tb = testbed(3);
    let (a, b, c) = (tb.node(0), tb.node(1), tb.node(2));
    let wan = tb.wan();
    let reach = |from: &netns_tests::Node, to: &netns_tests::Node| {
        ping_with(from.netns(), to.ipv4().into(), &pings(3, 20)).expect("ping").received
    };
    assert_eq!(reach(a, b), 3, "a reaches b before the cut");

    wan.cut(a, b).expect("cut");
    assert_eq!(reach(a, b), 0, "a must not reach b while cut");
    assert_eq!(reach(b, a), 0, "b must not reach a while cut");
    assert_eq!(reach(a, c), 3, "the cut is only between a and b");

    wan.heal(a, b).expect("heal");
    wait_until_named("a to reach b after heal", Duration::from_secs(5), || reach(a, b) > 0)
        .expect("healed");
    let stats = wan.stats().expect("stats");
    let key = format!("{}>{}", a.ipv4(), b.ipv4());
    assert!(stats.pairs[&key].cut >= 3, "wanem counted the cut packets: {stats:?}");
}

#[test]
fn loss_fifty_percent_loses_about_half() {
    let tb = testbed(2);
    let (a, b) = (tb.node(0), tb.node(1));
    tb.wan().set_loss_one_way(a, b, 50.0).expect("set loss");
    let stats = ping_with(a.netns(), b.ipv4().into(), &pings(100, 10)).expect("ping");
    eprintln!("50% one-way loss: {} of 100 pings returned", stats.received);
    assert_eq!(stats.transmitted, 100);
    assert!(
        (25..=75).contains(&stats.received),
        "with 50% loss one way, {} of 100 pings came back",
        stats.received
    );
}

#[test]
fn geography_sets_pair_delays() {
    let berlin = Site::new("berlin", 52.52, 13.405);
    let munich = Site::new("munich", 48.1351, 11.582);
    let expected = 2.0 * ms(netns_tests::geo_one_way_delay(&berlin, &munich));
    let tb = build(
        Testbed::builder()
            .with_node_at("berlin", berlin)
            .with_node_at("munich", munich)
            .with_node("overridden")
            .with_link_rtt("berlin", "overridden", Duration::from_millis(30)),
    );
    let (b, m, o) = (
        tb.node_named("berlin").expect("berlin"),
        tb.node_named("munich").expect("munich"),
        tb.node_named("overridden").expect("overridden"),
    );
    // The fastest of ten replies is the emulated delay: load only adds.
    let min_rtt = |stats: netns_tests::PingStats| ms(stats.rtt.expect("rtt").min);
    let min = min_rtt(ping_with(b.netns(), m.ipv4().into(), &pings(10, 30)).expect("ping"));
    assert!((min - expected).abs() <= expected * 0.15, "berlin–munich RTT {min:.2} ms, model {expected:.2} ms");
    let rtt = min_rtt(ping_with(b.netns(), o.ipv4().into(), &pings(10, 30)).expect("ping"));
    assert!((rtt - 30.0).abs() <= 3.0, "overridden RTT {rtt:.2} ms, want 30 ms");
}

#[test]
fn ipv6_is_delayed_too() {
    let tb = testbed(2);
    let (a, b) = (tb.node(0), tb.node(1));
    tb.wan().set_latency(a, b, Duration::from_millis(20)).expect("set latency");
    let stats = ping_with(a.netns(), IpAddr::V6(b.ipv6()), &pings(10, 50)).expect("ping6");
    assert_eq!(stats.received, 10, "{stats:?}");
    // The fastest reply shows the emulated delay; a loaded machine only
    // ever adds to it (the average once read 22.1 ms while CI compiled).
    let rtt = stats.rtt.expect("rtt");
    let (min, avg) = (ms(rtt.min), ms(rtt.avg));
    assert!((min - 20.0).abs() <= 2.0, "IPv6 RTT min {min:.2} ms, want 20 ms ± 10% ({stats:?})");
    assert!(avg <= 30.0, "IPv6 RTT avg {avg:.2} ms, want about 20 ms ({stats:?})");
}
