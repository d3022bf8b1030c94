//! `netmanager`: grove's node daemon. Parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netmanager::api::client;
use netmanager::{config::DEFAULT_CONTROL_SOCKET, keygen, status, NodeConfig};

/// grove's node daemon: joins this machine to the encrypted mesh (UDP 50103,
/// control plane on TCP 50103), serves DNS and gives workloads namespaces.
///
/// A dynamic mesh (peers learnt from signed records):
///   netmanager keygen --out /etc/grove/node.key       # tunnel key
///   netmanager token --file /etc/grove/tokens         # on the authority: a join token
///   netmanager run --config authority.toml --admit /etc/grove/tokens
///   netmanager run --config node.toml --join-token <token>   # on every other node
///   netmanager status                                  # members, RTTs, closest answers
///
/// Or static mode: `address` and [[peer]] entries in node.toml, no [control].
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
        /// Join token for a first join (overrides [control] join_token).
        #[arg(long, env = "GROVE_JOIN_TOKEN", hide_env_values = true)]
        join_token: Option<String>,
        /// Be the admission authority, admitting nodes with tokens from this
        /// file (one per line: `<token> [<expiry>]`, mode 0600).
        #[arg(long, value_name = "TOKENS_FILE")]
        admit: Option<PathBuf>,
    },
    /// Make a join token; with --file, also append it to the authority's
    /// token file (created 0600).
    Token {
        /// The authority's token file to append to.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Expiry, e.g. `24h`, `7d`, `30m` (default: never).
        #[arg(long)]
        ttl: Option<String>,
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
                // gossipsub warns once per dropped message when a peer's
                // queue is full: under overload that is thousands of lines
                // a second, which deepens the overload.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn,libp2p_gossipsub=error")),
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

/// `24h`, `7d`, `30m`, `90s` → unix seconds from now.
fn expiry_from_ttl(ttl: &str) -> anyhow::Result<u64> {
    let (number, unit) = ttl.split_at(ttl.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: u64 = number.parse().with_context(|| format!("--ttl {ttl:?}: expected e.g. 24h, 7d, 30m"))?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86400,
        other => anyhow::bail!("--ttl {ttl:?}: unknown unit {other:?} (use s, m, h or d)"),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    n.checked_mul(unit_secs)
        .and_then(|secs| now.checked_add(secs))
        .with_context(|| format!("--ttl {ttl:?} is too large; use e.g. 24h or 30d"))
}

/// Appends `<token> [<expiry>]` to the token file, creating it 0600.
fn append_token(file: &std::path::Path, token: &str, expiry: Option<u64>) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("opening token file {}", file.display()))?;
    let line = match expiry {
        Some(at) => format!("{token} {at}\n"),
        None => format!("{token}\n"),
    };
    f.write_all(line.as_bytes()).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keygen { out } => {
            let public = keygen::keygen(&out)?;
            println!("{public}");
        }
        Command::Pubkey { key } => println!("{}", keygen::pubkey(&key)?),
        Command::Run { config, join_token, admit } => {
            let mut config = NodeConfig::load(&config)?;
            if let Some(tokens_file) = admit {
                let control = config.control.as_mut().ok_or_else(|| {
                    anyhow::anyhow!("--admit needs a [control] section in the config (the authority runs a dynamic mesh)")
                })?;
                let pool = control.admit.as_ref().map(|a| a.pool).unwrap_or_else(netmanager::control::config::default_pool);
                control.admit = Some(netmanager::control::config::AdmitConfig { tokens_file, pool });
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .thread_name("netmanager")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(netmanager::run::run(config, join_token))?;
        }
        Command::Token { file, ttl } => {
            let token = netmanager::control::admission::generate_token()?;
            let expiry = match ttl {
                Some(ttl) => Some(expiry_from_ttl(&ttl)?),
                None => None,
            };
            if let Some(file) = file {
                append_token(&file, &token, expiry)?;
                eprintln!("added to {}", file.display());
            }
            println!("{token}");
        }
        Command::Status { socket, json } => {
            let status: overlay::DeviceStatus = client::get(&socket, "/v1/status")
                .with_context(|| "is netmanager running? (`netmanager run --config …`; status needs root)")?;
            // Static nodes answer 404 here; that is not an error.
            let members: Option<netmanager::api::Members> = client::get(&socket, "/v1/members").ok();
            if json {
                // The device status stays at the top level (scripts read
                // it); the membership, if any, rides along.
                let mut doc = serde_json::to_value(&status)?;
                if let (Some(object), Some(members)) = (doc.as_object_mut(), members) {
                    object.insert("members".into(), serde_json::to_value(members)?);
                }
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                if let Some(members) = &members {
                    println!("{}", status::render_members(members));
                }
                print!("{}", status::render(&status));
            }
        }
    }
    Ok(())
}
