//! `bench`: grove's benchmarks against its peers, on network namespaces.
//!
//! `cargo run --release -p netns-tests --bin bench -- overlay`
//!
//! Progress goes to stderr; results go to stdout as a Markdown table, and
//! the very last stdout line is one JSON object for machines.

mod iperf;
mod overlay;
mod peers;
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    netns_tests::require_root()?;
    match cli.command {
        Command::Overlay(args) => overlay::run(&args),
    }
}
