//! `bench overlay`: raw veth, grove, wireguard-go and nebula between two
//! namespaces joined by a veth — TCP (1 and 4 streams), 64-byte UDP packet
//! rate, RTT added over the veth, and the daemon's resident memory.

use std::time::{Duration, Instant};

use anyhow::Result;
use netns_tests::{ping_with, PingOptions, ScratchDir, VethLink};

use crate::iperf::{self, IperfServer};
use crate::peers::{self, SetupError, Tunnel};
use crate::report::{self, Measurement, Outcome, Row};

/// Options of `bench overlay`.
#[derive(Debug, clap::Args)]
pub struct OverlayArgs {
    /// Seconds per TCP run.
    #[arg(long, default_value_t = 5)]
    tcp_secs: u32,
    /// Seconds of the UDP packet-rate run.
    #[arg(long, default_value_t = 3)]
    udp_secs: u32,
    /// Pings for the RTT figure (sent 20 ms apart).
    #[arg(long, default_value_t = 50)]
    pings: u32,
    /// Only these data planes (veth, grove, wireguard-go, nebula); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

const PLANES: [&str; 4] = ["veth", "grove", "wireguard-go", "nebula"];

/// Runs the benchmark and prints table, ratios and the JSON line.
pub fn run(args: &OverlayArgs) -> Result<()> {
    let started = Instant::now();
    let mut rows = Vec::new();
    for name in PLANES {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("[{:>5.1}s] {name}: setting up", started.elapsed().as_secs_f64());
        let outcome = Outcome::decide(name, bench_plane(name, args, started));
        rows.push(Row { name, outcome });
    }
    eprintln!("[{:>5.1}s] done", started.elapsed().as_secs_f64());
    println!("{}", report::markdown(&rows));
    println!("{}", report::ratios(&rows));
    println!("{}", report::json(&rows));
    Ok(())
}

fn bench_plane(name: &str, args: &OverlayArgs, started: Instant) -> Result<Measurement, SetupError> {
    let link = VethLink::new()?;
    let dir = ScratchDir::new("bench")?;
    let tunnel: Tunnel = match name {
        "veth" => peers::veth::setup(&link)?,
        "grove" => peers::grove::setup(&link, &dir)?,
        "wireguard-go" => peers::wireguard_go::setup(&link, &dir)?,
        "nebula" => peers::nebula::setup(&link, &dir)?,
        other => return Err(SetupError::Failed(anyhow::anyhow!("unknown data plane {other}"))),
    };
    let progress = |what: &str| eprintln!("[{:>5.1}s] {name}: {what}", started.elapsed().as_secs_f64());
    let _server = IperfServer::start(link.b(), &dir.join("iperf3-server.log"))?;
    let (client, ip) = (link.a(), tunnel.server_ip);

    progress(&format!("TCP, 1 stream, {} s", args.tcp_secs));
    let tcp1 = iperf::tcp_gbps(client, ip, args.tcp_secs, 1)?;
    progress(&format!("  {tcp1:.2} Gbit/s; TCP, 4 streams, {} s", args.tcp_secs));
    let tcp4 = iperf::tcp_gbps(client, ip, args.tcp_secs, 4)?;
    progress(&format!("  {tcp4:.2} Gbit/s; UDP 64 B, {} s", args.udp_secs));
    let udp = iperf::udp64_pps(client, ip, args.udp_secs)?;
    progress(&format!("  {:.0} kpps; {} pings", udp / 1000.0, args.pings));
    let rss_mb = tunnel.daemon_pid.map(vm_rss_mb).transpose()?;
    let rtt = ping_with(
        client,
        ip,
        &PingOptions {
            count: args.pings,
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(1),
        },
    )?;
    let rtt_ms = rtt.avg().map(|d| d.as_secs_f64() * 1000.0);
    progress(&format!(
        "  RTT {}, RSS {}",
        rtt_ms.map_or("none".into(), |r| format!("{r:.3} ms")),
        rss_mb.map_or("n/a".into(), |r| format!("{r:.1} MB"))
    ));
    drop(tunnel);
    Ok(Measurement {
        tcp1_gbps: Some(tcp1),
        tcp4_gbps: Some(tcp4),
        udp64_pps: Some(udp),
        rtt_ms,
        rss_mb,
    })
}

/// Resident memory of `pid` in MB (VmRSS from /proc/<pid>/status).
fn vm_rss_mb(pid: u32) -> Result<f64, SetupError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("read {path}: {e}"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in {path}"))?;
    Ok(kb / 1024.0)
}
