//! Step 7 and 8: what an idle mesh costs (underlay bytes and CPU per node,
//! packets through the WAN emulator) and netmanager's memory.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::cpu::{clock_ticks_per_sec, cpu_ticks};
use netns_tests::dynamic::DynamicNode;
use netns_tests::testbed::NODE_IFACE;
use netns_tests::Testbed;

use super::poll::pause;

/// What one idle window measured.
#[derive(Debug, Clone, Default)]
pub struct Idle {
    /// Per node: (rx + tx) bytes per second on its underlay link.
    pub bytes_per_sec: Vec<f64>,
    /// Per running netmanager: CPU time over wall time (1.0 = one core).
    pub cpu: Vec<f64>,
    /// Packets per second wanem forwarded, all pairs together.
    pub wanem_pps: Option<f64>,
    /// wanem's CPU over wall time.
    pub wanem_cpu: Option<f64>,
}

/// rx + tx bytes of `eth0` in `netns`.
fn eth0_bytes(netns: &str) -> Result<u64> {
    let out = netns_tests::cmd::run("ip", &["-n", netns, "-j", "-s", "link", "show", NODE_IFACE])?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).with_context(|| format!("ip -j -s link in {netns}"))?;
    let stats = &v[0]["stats64"];
    match (stats["rx"]["bytes"].as_u64(), stats["tx"]["bytes"].as_u64()) {
        (Some(rx), Some(tx)) => Ok(rx + tx),
        _ => Err(anyhow!("no byte counters for {NODE_IFACE} in {netns}: {v}")),
    }
}

fn wanem_forwarded(tb: &Testbed) -> Option<u64> {
    tb.wan()
        .stats()
        .ok()
        .map(|s| s.pairs.values().map(|c| c.forwarded).sum())
}

/// Counters of every node before and after `secs` of nothing happening.
pub fn idle(tb: &Testbed, nodes: &[DynamicNode], secs: Duration) -> Result<Idle> {
    let pids: Vec<u32> = nodes
        .iter()
        .filter_map(|n| n.child.as_ref().map(|c| c.pid()))
        .collect();
    // wanem is the only process in the router namespace.
    let wanem = tb.router().pids()?.first().copied();
    let bytes = || {
        nodes
            .iter()
            .map(|n| eth0_bytes(&n.netns))
            .collect::<Result<Vec<u64>>>()
    };
    let ticks = || {
        pids.iter()
            .map(|&p| cpu_ticks(p))
            .collect::<Result<Vec<u64>>>()
    };

    let wanem_ticks = || wanem.and_then(|p| cpu_ticks(p).ok());
    let (b0, c0, w0, f0) = (bytes()?, ticks()?, wanem_ticks(), wanem_forwarded(tb));
    let t0 = Instant::now();
    pause(secs)?;
    let (b1, c1, w1, f1) = (bytes()?, ticks()?, wanem_ticks(), wanem_forwarded(tb));
    let wall = t0.elapsed().as_secs_f64();
    let hz = clock_ticks_per_sec();
    let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / wall;
    Ok(Idle {
        bytes_per_sec: b0.iter().zip(&b1).map(|(a, b)| rate(*a, *b)).collect(),
        cpu: c0.iter().zip(&c1).map(|(a, b)| rate(*a, *b) / hz).collect(),
        wanem_pps: f0.zip(f1).map(|(a, b)| rate(a, b)),
        wanem_cpu: w0.zip(w1).map(|(a, b)| rate(a, b) / hz),
    })
}

/// VmRSS of each running netmanager in MB, checking that the pid is
/// netmanager itself (nsenter execs it).
pub fn rss_mb(nodes: &[DynamicNode]) -> Result<Vec<f64>> {
    nodes
        .iter()
        .filter_map(|n| n.child.as_ref().map(|c| (n, c.pid())))
        .map(|(n, pid)| {
            let path = format!("/proc/{pid}/status");
            let status = std::fs::read_to_string(&path)
                .with_context(|| format!("read {path} ({})", n.name))?;
            let name = status
                .lines()
                .find_map(|l| l.strip_prefix("Name:"))
                .map(str::trim)
                .unwrap_or("");
            if name != "netmanager" {
                return Err(anyhow!(
                    "pid {pid} of {} is {name:?}, not netmanager",
                    n.name
                ));
            }
            let kb = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| anyhow!("no VmRSS in {path}"))?;
            Ok(kb / 1024.0)
        })
        .collect()
}
