//! `netmanager`: grove's node daemon. Parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netmanager::api::client;
use netmanager::{config::DEFAULT_CONTROL_SOCKET, keygen, status, NodeConfig};

/// grove's node daemon: joins this machine to the encrypted mesh (UDP 50103).
///
/// Set up a node in static mode:
///   netmanager keygen --out /etc/grove/node.key     # prints the public key
///   $EDITOR /etc/grove/node.toml                     # address + [[peer]] entries
///   netmanager run --config /etc/grove/node.toml
///   netmanager status
#[derive(Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node key (0600, never overwrites) and print its public key.
    Keygen {
        /// Where to write the private key.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print the public key of an existing key file.
    Pubkey {
        /// The private key file (as written by `keygen`).
        #[arg(long, short)]
        key: PathBuf,
    },
    /// Run the node: TUN device, mesh socket, control socket. Stops on SIGTERM.
    Run {
        /// Node configuration (TOML); see README.md for the format.
        #[arg(long, short, env = "GROVE_CONFIG")]
        config: PathBuf,
    },
    /// Show the running node's peers, like `wg show`.
    Status {
        /// Control socket of the running netmanager.
        #[arg(long, short, default_value = DEFAULT_CONTROL_SOCKET, env = "GROVE_CONTROL_SOCKET")]
        socket: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // hickory-server logs every DNS request at info: at tens of
                // thousands of queries a second that is a third of the CPU
                // and an easy way for any asker to fill the disk.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match dispatch(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netmanager: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once (our error types
/// already quote their I/O cause, which the chain would repeat).
fn explain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keygen { out } => {
            let public = keygen::keygen(&out)?;
            println!("{public}");
        }
        Command::Pubkey { key } => println!("{}", keygen::pubkey(&key)?),
        Command::Run { config } => {
            let config = NodeConfig::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .thread_name("netmanager")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(netmanager::run::run(config))?;
        }
        Command::Status { socket, json } => {
            let status: overlay::DeviceStatus = client::get(&socket, "/v1/status")
                .with_context(|| "is netmanager running? (`netmanager run --config …`; status needs root)")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status::render(&status));
            }
        }
    }
    Ok(())
}
