//! Driving iperf3 between two namespaces and reading its JSON report.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use netns_tests::{wait_until_named, ChildGuard, Netns};
use serde_json::Value;

/// iperf3's default port.
const PORT: &str = "5201";

/// An `iperf3 -s` running in the server namespace; stopped on drop.
pub struct IperfServer {
    _child: ChildGuard,
}

impl IperfServer {
    /// Starts the server in `ns` and waits until it listens.
    pub fn start(ns: &Netns, log: &std::path::Path) -> Result<Self> {
        let child = ns.spawn_logged("iperf3", &["-s", "-p", PORT], log)?;
        wait_until_named("iperf3 server to listen", Duration::from_secs(5), || {
            ns.exec("ss", &["-Hltn", &format!("sport = :{PORT}")])
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false)
        })?;
        Ok(IperfServer { _child: child })
    }
}

/// TCP goodput in Gbit/s with `streams` parallel streams for `secs` seconds.
pub fn tcp_gbps(client: &Netns, server: IpAddr, secs: u32, streams: u32) -> Result<f64> {
    let report = run(
        client,
        &["-c", &server.to_string(), "-p", PORT, "-t", &secs.to_string(), "-P", &streams.to_string(), "-J"],
    )?;
    let bps = report
        .pointer("/end/sum_received/bits_per_second")
        .and_then(Value::as_f64)
        .ok_or_else(|| anyhow!("iperf3 report without end.sum_received.bits_per_second"))?;
    Ok(bps / 1e9)
}

/// Received packets per second of 64-byte UDP datagrams sent as fast as
/// the client can for `secs` seconds.
pub fn udp64_pps(client: &Netns, server: IpAddr, secs: u32) -> Result<f64> {
    let report = run(
        client,
        &["-c", &server.to_string(), "-p", PORT, "-u", "-l", "64", "-b", "0", "-t", &secs.to_string(), "-J"],
    )?;
    let sum = report
        .pointer("/end/sum_received")
        .ok_or_else(|| anyhow!("iperf3 report without end.sum_received"))?;
    let field = |name: &str| {
        sum.get(name)
            .and_then(Value::as_f64)
            .ok_or_else(|| anyhow!("iperf3 UDP report without {name}"))
    };
    let received = field("packets")? - field("lost_packets")?;
    let seconds = field("seconds")?;
    anyhow::ensure!(seconds > 0.0, "iperf3 UDP report with zero duration");
    Ok(received / seconds)
}

fn run(client: &Netns, args: &[&str]) -> Result<Value> {
    let output = client.exec("iperf3", args)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&text)
        .with_context(|| format!("iperf3 {} printed no JSON: {}", args.join(" "), text.trim()))?;
    if let Some(error) = report.get("error").and_then(Value::as_str) {
        anyhow::bail!("iperf3 {}: {error}", args.join(" "));
    }
    Ok(report)
}
