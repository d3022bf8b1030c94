//! `demo`: grove's one-command local demo.
//!
//! `cargo run --release -p examples --bin demo [-- --hold]`, as root.
//! Parses arguments, installs the signal handler and calls [`run::run`].

// The binary's root is `src/bin/demo.rs`; its modules live beside it in `demo/`.
#[path = "demo/bed.rs"]
mod bed;
#[path = "demo/hold.rs"]
mod hold;
#[path = "demo/naming.rs"]
mod naming;
#[path = "demo/preflight.rs"]
mod preflight;
#[path = "demo/rtt.rs"]
mod rtt;
#[path = "demo/run.rs"]
mod run;
#[path = "demo/stop.rs"]
mod stop;
#[path = "demo/ui.rs"]
mod ui;

use std::process::ExitCode;

use clap::Parser;

/// grove's local demo: a dynamic encrypted mesh on this machine.
///
/// What it does, in about 10 seconds:
///   1. builds network namespaces for four nodes, Munich, Frankfurt,
///      Helsinki and Espoo, behind a router whose userspace WAN emulator
///      (`wanem`) delays packets by the distance between the sites;
///   2. makes a join token, starts `netmanager` on Munich as the admission
///      authority and lets the others join with the token: each gets a /26
///      and learns its peers from signed, gossiped records;
///   3. pings each pair over the underlay and over the overlay and prints
///      both RTTs next to the modelled one;
///   4. shows `netmanager status` (members, RTTs, closest answers);
///   5. starts ms2 workloads in Frankfurt and Helsinki, asks every node's
///      resolver for closest.ms2, kills Helsinki and shows the answers move,
///      restarts it and shows them come back;
///   6. tears everything down: daemons, namespaces, keys, logs. Ctrl-C at
///      any point tears down too.
///
/// Needs: root (namespaces, TUN), iproute2 and iputils-ping, and the
/// workspace built in release mode (`cargo build --release --workspace`),
/// since it runs the `netmanager` and `wanem` binaries next to itself.
/// It sends traffic only inside the namespaces it creates.
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
pub struct DemoArgs {
    /// Keep the mesh up after the tour until Ctrl-C, and print commands
    /// (ping, netmanager status, tcpdump) to run against it meanwhile.
    #[arg(long)]
    pub hold: bool,

    /// Pings per pair and path for the RTT table (100 ms apart).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pings: u32,
}

fn main() -> ExitCode {
    let args = DemoArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = stop::install() {
        eprintln!("demo: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = run::run(&args);
    let leftovers = leftover_namespaces();
    if !leftovers.is_empty() {
        eprintln!("demo: warning: namespaces left behind: {leftovers:?}; remove them with `ip netns delete NAME`");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<stop::Interrupted>().is_some() => {
            eprintln!("demo: {e}; everything the demo started has been stopped and deleted");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("demo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Namespaces named after this process that still exist.
fn leftover_namespaces() -> Vec<String> {
    let me = std::process::id();
    netns_tests::netns::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| netns_tests::names::owner_pid(n) == Some(me))
        .collect()
}
