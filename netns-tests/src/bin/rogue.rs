//! `rogue`: a hostile libp2p peer for grove's control-plane tests.
//!
//! It speaks the members' own protocols (an identically configured swarm
//! from `netmanager::control::swarm::build`: `/grove/control/1`,
//! `/grove/probe/1`, gossipsub under `/grove/gossip`) but holds no grant.
//! `sync` asks a member for every signed record it holds; `attack` then
//! publishes forged, stolen, tampered and replayed records, instance sets
//! and suspicions it has no right to, and garbage, on the records topic,
//! and answers the member's own sync requests with the same poison.
//! Members must ignore all of it (tests/netns/control_security.rs).
//!
//! Run it inside a testbed namespace: `ip netns exec <ns> rogue sync
//! --dial 198.18.1.2:50103 --out captured.bin`. Results are JSON on stdout.

#[path = "rogue/forge.rs"]
mod forge;
#[path = "rogue/peer.rs"]
mod peer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netmanager::control::protocol::State;
use netmanager::control::records::{decode, encode};
use serde_json::json;

use peer::Rogue;

/// Everything the rogue does must be over by then.
const OVERALL: Duration = Duration::from_secs(30);

/// A hostile control-plane peer (tests only).
#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask a member for every record it holds (ControlRequest::Sync) and
    /// print a summary; `--out` keeps the raw answer for `attack`.
    Sync {
        #[arg(long)]
        dial: SocketAddr,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Publish forged, stolen, replayed and garbage records to a member
    /// and serve them to its syncs.
    Attack {
        #[arg(long)]
        dial: SocketAddr,
        /// A `sync --out` file taken earlier: stolen grants, old records.
        #[arg(long)]
        captured: PathBuf,
        /// Member whose name, grant and subnet the rogue claims.
        #[arg(long)]
        hijack: String,
        /// Member whose captured (older) record is replayed.
        #[arg(long)]
        replay: String,
        /// Overlay address the rogue's instances claim (not its own).
        #[arg(long)]
        claim_ip: Ipv4Addr,
        /// Underlay address written into the forged records.
        #[arg(long)]
        advertise: IpAddr,
        /// How long to stay connected after publishing, in ms.
        #[arg(long, default_value_t = 3000)]
        linger_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rogue: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::time::timeout(OVERALL, run(cli.command))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("gave up after {OVERALL:?}")))
    });
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rogue: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<serde_json::Value> {
    match command {
        Command::Sync { dial, out } => {
            let mut rogue = Rogue::new(State::default())?;
            let member = rogue.connect(dial).await?;
            let state = rogue.sync(member).await?;
            if let Some(out) = out {
                let bytes = encode(&state).context("encoding the state")?;
                std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            }
            Ok(
                json!({ "rogue": rogue.peer_id.to_string(), "member": member.to_string(), "state": forge::summary(&state) }),
            )
        }
        Command::Attack { dial, captured, hijack, replay, claim_ip, advertise, linger_ms } => {
            let bytes = std::fs::read(&captured).with_context(|| format!("reading {}", captured.display()))?;
            let captured: State = decode(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", captured.display()))?;
            let keypair = libp2p_identity::Keypair::generate_ed25519();
            let plan = forge::Plan { captured: &captured, hijack: &hijack, replay: &replay, claim_ip, advertise };
            let attack = forge::attack(&keypair, &plan)?;
            let mut rogue = Rogue::with_keypair(keypair, attack.poison.clone())?;
            rogue.subscribe()?;
            let member = rogue.connect(dial).await?;
            rogue.wait_subscribed(member).await?;
            // Let gossipsub graft us into the member's mesh (heartbeat 700 ms).
            rogue.pump(Duration::from_millis(1500)).await;
            let mut published = Vec::new();
            let mut failed = Vec::new();
            for (label, payload) in &attack.gossip {
                match rogue.publish(payload.clone()) {
                    Ok(()) => published.push(label.clone()),
                    Err(e) => failed.push(json!({ "label": label, "error": e })),
                }
                rogue.pump(Duration::from_millis(50)).await;
            }
            rogue.pump(Duration::from_millis(linger_ms)).await;
            Ok(json!({
                "rogue": rogue.peer_id.to_string(),
                "member": member.to_string(),
                "published": published,
                "failed": failed,
                "syncs_served": rogue.served,
            }))
        }
    }
}
