//! `wanem`: the testbed's userspace WAN emulator. Runs inside the router
//! namespace, serves the TUN every forwarded packet passes through, and
//! delays, drops or cuts packets per (source, destination) pair.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use netns_tests::wan::emulator::{self, EmulatorConfig};
use netns_tests::wan::protocol::PROTOCOL_HELP;

/// Userspace WAN emulator for grove's netns testbed.
///
/// Creates the TUN device, reads every packet the router forwards into it,
/// holds it for the one-way delay of its (source, destination) pair — FIFO
/// per pair — and writes it back, dropping lost packets and cut pairs.
#[derive(Debug, Parser)]
#[command(version, after_help = PROTOCOL_HELP)]
struct Args {
    /// Name of the TUN device to create.
    #[arg(long, default_value = "wan0")]
    tun: String,
    /// Path of the control socket.
    #[arg(long)]
    control: PathBuf,
    /// One-way delay for pairs without their own, in ms.
    #[arg(long, default_value_t = 0.0)]
    default_delay_ms: f64,
    /// MTU of the TUN device.
    #[arg(long, default_value_t = 1500)]
    mtu: u16,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.default_delay_ms.is_finite() && args.default_delay_ms >= 0.0,
        "--default-delay-ms must be a non-negative number"
    );
    let device = tun_rs::DeviceBuilder::new()
        .name(&args.tun)
        .mtu(args.mtu)
        .enable(true)
        .build_sync()
        .with_context(|| format!("create TUN {}", args.tun))?;
    let config = EmulatorConfig {
        control: args.control,
        default_delay: Duration::from_secs_f64(args.default_delay_ms / 1000.0),
    };
    emulator::run(config, Arc::new(device))?;
    Ok(())
}
