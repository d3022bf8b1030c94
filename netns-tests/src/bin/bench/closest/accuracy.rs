//! Step 3 and 4: do `closest` answers name the truly nearest instance, and
//! how far are the Vivaldi estimates from the true RTTs?

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use anyhow::{Context, Result};
use netns_tests::dynamic::DynamicNode;

use super::poll::{answer, pause};
use super::summary::percentile;
use super::world::World;

/// An `ms2` instance: host node index and address.
pub type Instance = (usize, Ipv4Addr);

/// Runner-up must be this much slower than the best for an asker to count.
const MARGIN: f64 = 1.10;

#[derive(Debug, Default)]
pub struct Accuracy {
    /// Askers whose runner-up is > 10% slower than their best instance.
    pub considered_askers: usize,
    pub askers: usize,
    /// Answers from considered askers, and how many named the truth.
    pub answers: usize,
    pub correct: usize,
    /// Queries of considered askers that got no answer at all.
    pub unanswered: usize,
    /// One line per considered asker that answered wrongly at least once.
    pub wrong: Vec<String>,
}

impl Accuracy {
    pub fn ratio(&self) -> Option<f64> {
        (self.answers + self.unanswered > 0)
            .then(|| self.correct as f64 / (self.answers + self.unanswered) as f64)
    }
}

/// Asks `closest.ms2.grove` on every node `rounds` times, `gap` apart.
pub fn accuracy(
    world: &World,
    sockets: &[UdpSocket],
    instances: &[Instance],
    rounds: usize,
    gap: Duration,
) -> Result<Accuracy> {
    let host_name = |addr: &Ipv4Addr| {
        instances
            .iter()
            .find(|(_, a)| a == addr)
            .map_or_else(|| addr.to_string(), |(h, _)| world.places[*h].name.clone())
    };
    // Per asker: the true best instance, if the margin makes it clear.
    let truth: Vec<Option<(Instance, f64, f64)>> = (0..world.places.len())
        .map(|i| {
            let mut ranked: Vec<(f64, Instance)> = instances
                .iter()
                .map(|&(h, a)| (world.rtt_ms(i, h), (h, a)))
                .collect();
            ranked.sort_by(|x, y| x.0.total_cmp(&y.0));
            match ranked[..] {
                [(best, inst), (second, _), ..] if second > best * MARGIN => {
                    Some((inst, best, second))
                }
                [(best, inst)] => Some((inst, best, f64::INFINITY)),
                _ => None,
            }
        })
        .collect();
    let mut acc = Accuracy {
        askers: world.places.len(),
        ..Accuracy::default()
    };
    acc.considered_askers = truth.iter().filter(|t| t.is_some()).count();
    let mut wrong_answers: Vec<Vec<Ipv4Addr>> = vec![Vec::new(); world.places.len()];
    for round in 0..rounds {
        if round > 0 {
            pause(gap)?;
        }
        for (i, t) in truth.iter().enumerate() {
            let Some(((_, want), _, _)) = t else { continue };
            match answer(&sockets[i], "closest.ms2.grove") {
                None => acc.unanswered += 1,
                Some(got) => {
                    acc.answers += 1;
                    match got.first() {
                        Some(a) if a == want => acc.correct += 1,
                        Some(a) => wrong_answers[i].push(*a),
                        None => wrong_answers[i].push(Ipv4Addr::UNSPECIFIED),
                    }
                }
            }
        }
    }
    for (i, wrong) in wrong_answers.iter().enumerate() {
        let (Some(((best_host, _), best, second)), false) = (truth[i], wrong.is_empty()) else {
            continue;
        };
        let mut named: Vec<String> = wrong
            .iter()
            .map(|a| {
                let rtt = instances
                    .iter()
                    .find(|(_, x)| x == a)
                    .map(|(h, _)| world.rtt_ms(i, *h));
                format!(
                    "{} ({})",
                    host_name(a),
                    rtt.map_or("?".into(), |r| format!("{r:.1} ms"))
                )
            })
            .collect();
        named.dedup();
        acc.wrong.push(format!(
            "{} asked {rounds}×, wrong {}×: answered {}; truth {} ({best:.1} ms, runner-up {second:.1} ms)",
            world.places[i].name,
            wrong.len(),
            named.join(", "),
            world.places[best_host].name
        ));
    }
    Ok(acc)
}

#[derive(Debug, Default)]
pub struct RttError {
    /// Relative errors |estimate − true| / true of every (node, member)
    /// pair with an estimate, and of the inter-city ones alone.
    pub estimated: Vec<f64>,
    pub estimated_intercity: Vec<f64>,
    /// The same for measured RTTs (what the probes saw vs the model).
    pub measured: Vec<f64>,
    /// Pairs listed in the nodes' status (n × (n − 1) when converged).
    pub pairs: usize,
    /// The pairs with the largest estimate errors, worst first.
    pub worst: Vec<String>,
}

impl RttError {
    pub fn median(&self) -> Option<f64> {
        percentile(&self.estimated, 50.0)
    }
}

/// Every node's `status --json`: estimated and measured RTT per member.
pub fn rtt_error(world: &World, nodes: &[DynamicNode]) -> Result<RttError> {
    let mut out = RttError::default();
    let mut ranked: Vec<(f64, String)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let status = node
            .status()
            .with_context(|| format!("status of {}", node.name))?;
        for m in status["members"]["members"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(j) = m["name"].as_str().and_then(|n| world.index(n)) else {
                continue;
            };
            out.pairs += 1;
            let truth = world.rtt_ms(i, j);
            let rel = |v: f64| (v - truth).abs() / truth;
            if let Some(est) = m["estimated_ms"].as_f64() {
                out.estimated.push(rel(est));
                let measured = m["measured_ms"]
                    .as_f64()
                    .map_or("–".into(), |v| format!("{v:.1}"));
                ranked.push((
                    rel(est),
                    format!(
                        "{} → {}: estimated {est:.1} ms, measured {measured} ms, true {truth:.1} ms",
                        node.name, world.places[j].name
                    ),
                ));
                if world.places[i].city != world.places[j].city {
                    out.estimated_intercity.push(rel(est));
                }
            }
            if let Some(meas) = m["measured_ms"].as_f64() {
                out.measured.push(rel(meas));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.worst = ranked.into_iter().take(5).map(|(_, line)| line).collect();
    Ok(out)
}

/// Each node's own Vivaldi error estimate (`members.local.coordinate_error`).
pub fn coordinate_errors(nodes: &[DynamicNode]) -> Vec<f64> {
    nodes
        .iter()
        .filter_map(|n| n.status().ok()?["members"]["local"]["coordinate_error"].as_f64())
        .collect()
}
