//! `rogue`: a hostile peer for grove's control-plane tests.
//!
//! It speaks the members' own protocols (the swarm of
//! `netmanager::control::swarm::build` and the schema of
//! `netmanager::control::wire`), or bytes no member would send, and runs
//! one attack per subcommand: as a stranger (`stranger`, `conn-flood`,
//! `join-flood`, `handshake-flood`), as a fake authority or bootstrap peer
//! (`listen`, `bomb`), or as a member that joined with a real token
//! (`member --mode …`). Each prints one JSON report on stdout, exits
//! non-zero with a message when it cannot carry its attack out, and never
//! runs longer than its bound. Run it inside a testbed namespace, e.g.
//! `ip netns exec <ns> rogue stranger --dial 198.18.1.2:50103`
//! (tests/netns/attacks_*.rs).

#[path = "rogue/bomb.rs"]
mod bomb;
#[path = "rogue/conn_flood.rs"]
mod conn_flood;
#[path = "rogue/forge.rs"]
mod forge;
#[path = "rogue/handshake.rs"]
mod handshake;
#[path = "rogue/join_flood.rs"]
mod join_flood;
#[path = "rogue/listen.rs"]
mod listen;
#[path = "rogue/member.rs"]
mod member;
#[path = "rogue/misbehave.rs"]
mod misbehave;
#[path = "rogue/peer.rs"]
mod peer;
#[path = "rogue/raw.rs"]
mod raw;
#[path = "rogue/stranger.rs"]
mod stranger;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use libp2p::PeerId;
use serde_json::Value;

/// Longest any attack may be asked to run.
const MAX_SECONDS: u64 = 120;
/// Set-up and report time on top of an attack's own duration.
const SLACK: Duration = Duration::from_secs(30);

/// A hostile control-plane peer (tests only).
#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// No grant: forged sync, probes and gossip; how long until closed.
    Stranger {
        #[arg(long)]
        dial: SocketAddr,
        /// Byte variants of one forged record to publish.
        #[arg(long, default_value_t = 1000)]
        variants: usize,
        #[arg(long, default_value_t = 20)]
        wait_close_secs: u64,
    },
    /// A fake authority/bootstrap: self-signed `Joined`, poisoned syncs.
    Listen {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        seconds: u64,
        /// Also dial this address (a joiner) again and again.
        #[arg(long)]
        dial: Option<SocketAddr>,
        #[arg(long, default_value_t = 100)]
        dial_every_ms: u64,
    },
    /// Answers every control request with a response bomb.
    Bomb {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        seconds: u64,
    },
    /// Raw TCP connections held open, then libp2p ones with fresh identities.
    ConnFlood {
        #[arg(long)]
        dial: SocketAddr,
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 12)]
        libp2p: usize,
        #[arg(long)]
        hold_secs: u64,
    },
    /// Oversized, over-long and wrong join tokens, in a burst.
    JoinFlood {
        #[arg(long)]
        dial: SocketAddr,
        #[arg(long)]
        authority: PeerId,
        #[arg(long, default_value_t = 20)]
        n: usize,
        #[arg(long, default_value_t = 4)]
        oversized: usize,
    },
    /// WireGuard initiations with a valid MAC1, as fast as possible.
    HandshakeFlood {
        #[arg(long)]
        target: SocketAddr,
        /// The victim's tunnel public key (base64).
        #[arg(long)]
        key: String,
        #[arg(long)]
        seconds: u64,
    },
    /// Joins with a real token, then misbehaves by `--mode`.
    Member {
        #[arg(long)]
        dial: SocketAddr,
        #[arg(long)]
        authority: PeerId,
        #[arg(long)]
        token_file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "quiet")]
        mode: misbehave::Mode,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Present this tunnel key (base64) instead of a fresh one.
        #[arg(long)]
        wg_key: Option<String>,
        #[arg(long, default_value = "ms2")]
        service: String,
        #[arg(long, default_value_t = 1)]
        number: u32,
        #[arg(long, default_value_t = 5)]
        replay_after: u64,
        #[arg(long, default_value_t = 300)]
        variants: usize,
        #[arg(long, default_value_t = 2000)]
        keys: usize,
        #[arg(long, default_value_t = 200)]
        rate: u32,
    },
}

impl Command {
    /// How long the whole command may take.
    fn bound(&self) -> Duration {
        let secs = match self {
            Command::Stranger { wait_close_secs, .. } => *wait_close_secs,
            Command::Listen { seconds, .. } | Command::Bomb { seconds, .. } | Command::HandshakeFlood { seconds, .. } => *seconds,
            Command::Member { seconds, .. } => *seconds,
            Command::ConnFlood { hold_secs, .. } => *hold_secs,
            Command::JoinFlood { .. } => 30,
        };
        Duration::from_secs(secs.min(MAX_SECONDS)) + SLACK
    }

    fn check(&self) -> anyhow::Result<()> {
        let secs = match self {
            Command::Listen { seconds, .. }
            | Command::Bomb { seconds, .. }
            | Command::HandshakeFlood { seconds, .. }
            | Command::Member { seconds, .. } => *seconds,
            Command::ConnFlood { hold_secs, .. } => *hold_secs,
            Command::Stranger { wait_close_secs, .. } => *wait_close_secs,
            Command::JoinFlood { .. } => 0,
        };
        if secs > MAX_SECONDS {
            anyhow::bail!("at most {MAX_SECONDS} seconds");
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = cli.command.check() {
        eprintln!("rogue: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rogue: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bound = cli.command.bound();
    let outcome = runtime.block_on(async {
        tokio::time::timeout(bound, run(cli.command))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("gave up after {bound:?}")))
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

async fn run(command: Command) -> anyhow::Result<Value> {
    match command {
        Command::Stranger {
            dial,
            variants,
            wait_close_secs,
        } => {
            stranger::run(stranger::StrangerArgs {
                dial,
                variants,
                wait_close: Duration::from_secs(wait_close_secs),
            })
            .await
        }
        Command::Listen {
            listen,
            seconds,
            dial,
            dial_every_ms,
        } => {
            listen::run(listen::ListenArgs {
                listen,
                seconds,
                dial,
                dial_every: Duration::from_millis(dial_every_ms),
            })
            .await
        }
        Command::Bomb { listen, seconds } => bomb::run(bomb::BombArgs { listen, seconds }).await,
        Command::ConnFlood {
            dial,
            n,
            libp2p,
            hold_secs,
        } => {
            conn_flood::run(conn_flood::ConnFloodArgs {
                dial,
                n,
                libp2p,
                hold: Duration::from_secs(hold_secs),
            })
            .await
        }
        Command::JoinFlood {
            dial,
            authority,
            n,
            oversized,
        } => {
            join_flood::run(join_flood::JoinFloodArgs {
                dial,
                authority,
                n,
                oversized,
            })
            .await
        }
        Command::HandshakeFlood { target, key, seconds } => {
            tokio::task::spawn_blocking(move || handshake::run(handshake::HandshakeArgs { target, key, seconds })).await?
        }
        Command::Member {
            dial,
            authority,
            token_file,
            name,
            mode,
            seconds,
            wg_key,
            service,
            number,
            replay_after,
            variants,
            keys,
            rate,
        } => {
            let args = member::MemberArgs {
                dial,
                authority,
                token_file,
                name,
                wg_key,
            };
            match member::join(&args).await? {
                member::Joined::Refused(refusal) => Ok(serde_json::json!({ "joined": false, "refusal": refusal })),
                member::Joined::Yes(session) => {
                    let plan = misbehave::Misbehave {
                        mode,
                        seconds,
                        service,
                        number,
                        replay_after,
                        variants,
                        keys,
                        rate,
                    };
                    misbehave::run(*session, plan).await
                }
            }
        }
    }
}
