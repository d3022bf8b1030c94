//! `bench`: grove's benchmarks against its peers, on network namespaces.
//!
//! `cargo run --release -p netns-tests --bin bench -- overlay`
//! `cargo run --release -p netns-tests --bin bench -- dns`
//! `cargo run --release -p netns-tests --bin bench -- closest [--nodes N]`
//! `cargo run --release -p netns-tests --bin bench -- deploy [--runs N]`
//! `cargo run --release -p netns-tests --bin bench -- pipeline [--trials N]`
//!
//! Progress goes to stderr; results go to stdout as a Markdown table, and
//! the very last stdout line is one JSON object for machines.

mod closest;
mod cpu;
mod deploy;
mod dns;
mod iperf;
mod overlay;
mod peers;
mod pipeline;
mod report;

use clap::{Parser, Subcommand};

/// grove's benchmarks (need root: they build network namespaces).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Data-plane throughput, packet rate, added latency and memory of grove
    /// vs wireguard-go vs nebula vs the raw veth, between two namespaces.
    Overlay(overlay::OverlayArgs),
    /// Semantic DNS: grove's `closest.<service>` answers (1,000 services ×
    /// 10 instances) vs Knot DNS serving the same names from a static zone,
    /// loaded by dnsperf: qps, latency percentiles, CPU per query, memory.
    Dns(dns::DnsArgs),
    /// The dynamic control plane on the emulated WAN (30 nodes in 13
    /// cities by default): `closest` accuracy, RTT estimate error, new
    /// instance and failover times, idle bytes/s and memory per node.
    Closest(closest::ClosestArgs),
    /// The orchestration tiers: deploy → first answer through `closest`,
    /// worker killed → answering from elsewhere, scheduler decisions/s.
    Deploy(deploy::DeployArgs),
    /// The camera pipeline (examples/): end-to-end latency camera →
    /// anonymise → detect against RTTs + processing, frames/s per
    /// anonymiser instance, camera failover when its worker dies.
    Pipeline(pipeline::PipelineArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    netns_tests::require_root()?;
    match cli.command {
        Command::Overlay(args) => overlay::run(&args),
        Command::Dns(args) => dns::run(&args),
        Command::Closest(args) => closest::run(&args),
        Command::Deploy(args) => deploy::run(&args),
        Command::Pipeline(args) => pipeline::run(&args),
    }
}
