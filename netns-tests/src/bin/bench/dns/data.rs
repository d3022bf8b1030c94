//! The benchmark's data set: 1,000 services × 10 instances spread over 11
//! pretend nodes around the serving node, the `closest` answer each
//! service must get, the query file and Knot's equivalent static zone.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use netns_tests::{great_circle_km, Site};

/// App of every service (`closest.svcN.<APP>.<NAMESPACE>.grove`).
pub const APP: &str = "bench";
/// Namespace of every service.
pub const NAMESPACE: &str = "default";
/// Instances per service.
pub const INSTANCES: usize = 10;

/// Where the serving node stands.
pub fn local_site() -> Site {
    Site::new("munich", 48.14, 11.58)
}

/// The pretend nodes the instances run on (never started: they exist for
/// the directory as `[[peer]]` names with locations). Eleven of them, so
/// each service (on ten) misses a different one and the nearest host varies.
pub fn remote_sites() -> Vec<Site> {
    [
        ("zurich", 47.37, 8.54),
        ("vienna", 48.21, 16.37),
        ("frankfurt", 50.11, 8.68),
        ("milan", 45.46, 9.19),
        ("berlin", 52.52, 13.40),
        ("paris", 48.86, 2.35),
        ("amsterdam", 52.37, 4.90),
        ("warsaw", 52.23, 21.01),
        ("london", 51.51, -0.13),
        ("stockholm", 59.33, 18.07),
        ("madrid", 40.42, -3.70),
    ]
    .into_iter()
    .map(|(name, lat, lon)| Site::new(name, lat, lon))
    .collect()
}

/// One registered instance.
#[derive(Debug, Clone)]
pub struct Placement {
    pub number: u32,
    /// Index into [`remote_sites`].
    pub node: usize,
    pub ipv4: Ipv4Addr,
    pub healthy: bool,
}

/// One service with its instances and the answer `closest` must give.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub instances: Vec<Placement>,
    /// The nearest healthy instance's address.
    pub expected: Ipv4Addr,
}

impl Service {
    /// `closest.<name>.<app>.<namespace>.grove` (no trailing dot).
    pub fn qname(&self) -> String {
        format!("closest.{}.{APP}.{NAMESPACE}.grove", self.name)
    }
}

/// `services` services `svc0…`, each with [`INSTANCES`] instances: instance
/// `k` (1-based) of `svcN` runs on node `(N + k − 1) mod 11` at
/// `10.(100+node).(N/256).(N%256)`. In every fourth service the instance on
/// the nearest hosting node is unhealthy, so `closest` must skip it.
pub fn services(count: usize) -> Vec<Service> {
    let here = local_site();
    let sites = remote_sites();
    let km: Vec<f64> = sites.iter().map(|s| great_circle_km(&here, s)).collect();
    (0..count)
        .map(|n| {
            let mut instances: Vec<Placement> = (0..INSTANCES)
                .map(|k| {
                    let node = (n + k) % sites.len();
                    Placement {
                        number: k as u32 + 1,
                        node,
                        ipv4: Ipv4Addr::new(10, 100 + node as u8, (n / 256) as u8, (n % 256) as u8),
                        healthy: true,
                    }
                })
                .collect();
            let by_km = |a: &&Placement, b: &&Placement| km[a.node].total_cmp(&km[b.node]);
            if n % 4 == 0 {
                let nearest = instances.iter().min_by(by_km).map(|p| p.number);
                for p in &mut instances {
                    p.healthy = Some(p.number) != nearest;
                }
            }
            let expected = instances
                .iter()
                .filter(|p| p.healthy)
                .min_by(by_km)
                .map_or(Ipv4Addr::UNSPECIFIED, |p| p.ipv4);
            Service {
                name: format!("svc{n}"),
                instances,
                expected,
            }
        })
        .collect()
}

/// The instances as JSON arrays for `POST /v1/instances`, each under
/// `max_bytes` (netmanager refuses bodies above 8 MiB).
pub fn registration_batches(services: &[Service], max_bytes: usize) -> Vec<String> {
    let sites = remote_sites();
    let mut batches = Vec::new();
    let mut current = String::from("[");
    for service in services {
        for p in &service.instances {
            let item = format!(
                r#"{{"service":"{}","app":"{APP}","number":{},"node":"{}","ipv4":"{}","healthy":{}}}"#,
                service.name, p.number, sites[p.node].name, p.ipv4, p.healthy
            );
            if current.len() + item.len() + 2 > max_bytes && current.len() > 1 {
                current.push(']');
                batches.push(std::mem::replace(&mut current, String::from("[")));
            }
            if current.len() > 1 {
                current.push(',');
            }
            current.push_str(&item);
        }
    }
    if current.len() > 1 {
        current.push(']');
        batches.push(current);
    }
    batches
}

/// dnsperf's input: `<qname> A` for every service, shuffled with a fixed
/// seed (the same order for both servers and every run).
pub fn query_file(services: &[Service]) -> String {
    let mut order: Vec<usize> = (0..services.len()).collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..order.len()).rev() {
        // xorshift64*: plenty for a shuffle.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        order.swap(i, (r % (i as u64 + 1)) as usize);
    }
    let mut out = String::new();
    for i in order {
        let _ = writeln!(out, "{} A", services[i].qname());
    }
    out
}

/// Knot's zone `grove.`: SOA, NS and one A record per service holding the
/// answer grove computes (`ttl`: grove's TTL for `closest`).
pub fn knot_zone(services: &[Service], ttl: u32) -> String {
    let mut out = format!(
        "$ORIGIN grove.\n$TTL {ttl}\n@ 3600 IN SOA ns.grove. hostmaster.grove. 1 3600 600 86400 5\n@ 3600 IN NS ns.grove.\nns 3600 IN A 127.0.0.153\n"
    );
    for s in services {
        let _ = writeln!(out, "closest.{}.{APP}.{NAMESPACE} IN A {}", s.name, s.expected);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_ten_instances_on_ten_nodes_and_a_healthy_answer() {
        let all = services(1000);
        assert_eq!(all.len(), 1000);
        for s in &all {
            let mut nodes: Vec<usize> = s.instances.iter().map(|p| p.node).collect();
            nodes.sort_unstable();
            nodes.dedup();
            assert_eq!(nodes.len(), INSTANCES);
            let winner = s
                .instances
                .iter()
                .find(|p| p.ipv4 == s.expected)
                .expect("expected is an instance");
            assert!(winner.healthy);
        }
        let answers: std::collections::HashSet<Ipv4Addr> = all.iter().map(|s| s.expected).collect();
        assert_eq!(answers.len(), 1000, "answers are distinct per service");
    }

    #[test]
    fn batches_hold_every_instance_under_the_limit() {
        let all = services(1000);
        let batches = registration_batches(&all, 60_000);
        let mut count = 0;
        for b in &batches {
            assert!(b.len() <= 60_000);
            let v: serde_json::Value = serde_json::from_str(b).expect("json");
            count += v.as_array().expect("array").len();
        }
        assert_eq!(count, 10_000);
    }

    #[test]
    fn query_file_has_every_name_once() {
        let all = services(1000);
        let text = query_file(&all);
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_ne!(lines[0], "closest.svc0.bench.default.grove A", "shuffled");
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), 1000);
    }
}
