//! Tests of the TXT rendering.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::PolicyConfig;
use crate::name::{parse_name, NameOutcome};
use crate::rr::RrTable;
use crate::select::{select, Asker};
use crate::test_support::{instance, Fake};
use crate::Zone;

fn query(name: &str) -> QueryName {
    match parse_name(name, &Zone::default()) {
        NameOutcome::Query(q) => q,
        other => panic!("{other:?}"),
    }
}

fn explain(name: &str, directory: &Fake) -> Vec<String> {
    let q = query(name);
    let asker = Asker::from_address(IpAddr::V4(Ipv4Addr::new(10, 18, 0, 9)));
    let outcome = select(&q, &asker, directory, &RrTable::new(16, 0), &PolicyConfig::default());
    let lines = explain_outcome(&q, &outcome);
    for line in &lines {
        assert!(line.len() <= MAX_TXT_STRING, "{} bytes: {line}", line.len());
    }
    lines
}

fn three() -> Fake {
    let mut down = instance("web", "prod", 2, "n-paris");
    down.healthy = false;
    Fake::default()
        .with(vec![
            instance("web", "prod", 0, "n-hamburg"),
            instance("web", "prod", 1, "n-berlin"),
            down,
        ])
        .at("n-berlin", Some(3.1), Some(12.0))
        .estimated("n-hamburg", 4.0, 0.8, Some(255.0))
        .at("n-paris", Some(1.0), Some(880.0))
}

#[test]
fn closest_near_tie() {
    let lines = explain("explain.closest.ms2.grove", &three());
    assert_eq!(
        lines[0],
        "closest ms2 (app web, namespace prod): instance-1 on node n-berlin"
    );
    assert!(
        lines[1].starts_with("near-tie: 2 candidates within 2.0 ms"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with("1 excluded (unhealthy or without the port)"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "#1 instance-1 node=n-berlin rtt=3.1ms measured confidence=1.00 km=12 healthy"
    );
    assert_eq!(
        lines[3],
        "#2 instance-0 node=n-hamburg rtt=4.0ms estimated confidence=0.80 km=255 healthy"
    );
    assert_eq!(lines.len(), 4);
}

#[test]
fn stand_in_and_unknown_rows() {
    let directory = Fake::default()
        .with(vec![
            instance("web", "prod", 0, "a"),
            instance("web", "prod", 1, "b"),
            instance("web", "prod", 2, "c"),
        ])
        .estimated("a", 5.0, 0.1, Some(300.0))
        .at("b", Some(90.0), None);
    let lines = explain("explain.closest.ms2.grove", &directory);
    assert!(lines[0].ends_with("instance-0 on node a"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("no usable RTT to it; its distance stood in and beat"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "#1 instance-0 node=a rtt=5.0ms estimated confidence=0.10 (too uncertain) guess=19.0ms km=300 healthy"
    );
    assert_eq!(
        lines[3],
        "#2 instance-1 node=b rtt=90.0ms measured confidence=1.00 km=? healthy"
    );
    assert_eq!(lines[4], "#3 instance-2 node=c rtt=? km=? healthy");
}

#[test]
fn other_policies() {
    let lines = explain("explain.all.ms2.grove", &three());
    assert_eq!(
        lines[0],
        "all ms2 (app web, namespace prod): instance-0 on node n-hamburg, instance-1 on node n-berlin"
    );
    assert!(lines[1].starts_with("every eligible instance (2)"));
    let lines = explain("explain.rr.ms2.grove", &three());
    assert!(lines[1].starts_with("round robin: turn "), "{}", lines[1]);
    assert!(lines[1].contains("among 2 eligible"));
    let lines = explain("explain.instance-2.ms2.grove", &three());
    assert!(
        lines[0].ends_with("[no healthy instance: serving unhealthy]"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "asked for by number");
    assert!(lines[2].ends_with(" unhealthy"));
}

#[test]
fn misses_and_ambiguity() {
    let d = three().with(vec![instance("shop", "prod", 0, "x")]);
    assert_eq!(explain("explain.closest.nope.web.grove", &d), ["no service nope.web"]);
    assert_eq!(
        explain("explain.instance-9.ms2.web.grove", &d),
        ["ms2 has no instance-9"]
    );
    assert_eq!(
        explain("_grpc._udp.explain.closest.ms2.web.grove", &d),
        ["no instance of ms2 exposes port grpc/udp"]
    );
    let lines = explain("explain.closest.ms2.grove", &d);
    assert_eq!(
        lines[0],
        "ms2 is ambiguous: 2 apps have it and the asker's app does not decide; name one"
    );
    assert_eq!(&lines[1..], ["closest.ms2.shop.prod", "closest.ms2.web.prod"]);
}

#[test]
fn long_lines_are_cut_and_rows_capped() {
    let long_node = "\u{1F332}".repeat(80); // 320 bytes of four-byte characters
    let mut list = Vec::new();
    for n in 0..15 {
        list.push(instance("web", "prod", n, &long_node));
    }
    let d = Fake::default().with(list);
    let lines = explain("explain.all.ms2.grove", &d);
    assert!(lines.iter().all(|l| l.len() <= MAX_TXT_STRING));
    assert!(lines[0].ends_with("..."));
    assert!(lines[2].ends_with("..."));
    assert_eq!(lines.last().map(String::as_str), Some("... and 5 more"));
    assert_eq!(lines.len(), 2 + MAX_ROWS + 1);
    assert_eq!(fit("x".repeat(255)).len(), 255);
    assert_eq!(fit("x".repeat(256)).len(), 255);
}
