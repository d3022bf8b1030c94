//! `netmanager`: grove's node daemon. Parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netmanager::config::DEFAULT_CONTROL_SOCKET;
use netmanager::run::RunOptions;
use netmanager::{cli, keygen, NodeConfig};

/// grove's node daemon: joins this machine to the encrypted mesh (UDP 50103,
/// control plane on TCP 50103), serves DNS and gives workloads namespaces.
///
/// A dynamic mesh (peers learnt from signed records):
///   netmanager keygen --out /etc/grove/node.key          # tunnel key
///   netmanager run --config authority.toml --admit       # the admission authority
///   netmanager id --identity /etc/grove/identity.key     # on it: its peer id
///   netmanager token create --ttl 24h --uses 1           # on it: a join token
///   # every other node: bootstrap = ["<peer id>@<authority ip>:50103"] in [control]
///   GROVE_JOIN_TOKEN=<token> netmanager run --config node.toml
///   netmanager status                                     # members, RTTs, closest answers
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
    /// Print the control-plane peer id of an identity file (created 0600 if
    /// missing): what joining nodes pin the authority by.
    Id {
        /// The `[control] identity_file` of the node.
        #[arg(long, short)]
        identity: PathBuf,
    },
    /// Run the node: TUN device, mesh socket, control socket. Stops on
    /// SIGTERM, SIGINT or SIGHUP, leaving the mesh cleanly.
    Run {
        /// Node configuration (TOML); see README.md for the format.
        #[arg(long, short, env = "GROVE_CONFIG")]
        config: PathBuf,
        /// Be the admission authority; optionally also accept the tokens
        /// listed in this file (`<token> [<expiry>] [uses=<n>]`, mode 0600).
        #[arg(long, value_name = "TOKENS_FILE", num_args = 0..=1)]
        admit: Option<Option<PathBuf>>,
        /// Start a lost authority state over (every member must join again).
        #[arg(long)]
        reset_authority: bool,
    },
    /// Join tokens, on the admission authority.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Members, on the admission authority.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Show the running node's peers, like `wg show`.
    Status {
        #[command(flatten)]
        socket: Socket,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct Socket {
    /// Control socket of the running netmanager.
    #[arg(long, short, default_value = DEFAULT_CONTROL_SOCKET, env = "GROVE_CONTROL_SOCKET")]
    socket: PathBuf,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token on the running authority; prints it and the config line
    /// a joining node needs.
    Create {
        #[command(flatten)]
        socket: Socket,
        /// Lifetime, e.g. `24h`, `7d`, `30m` (default: until revoked).
        #[arg(long)]
        ttl: Option<String>,
        /// Joins it may admit (default: unlimited).
        #[arg(long)]
        uses: Option<u32>,
        /// A note for the listing (which device it is for).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// List the authority's tokens (ids, not the tokens themselves).
    List {
        #[command(flatten)]
        socket: Socket,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (from `token list`).
    Revoke {
        #[command(flatten)]
        socket: Socket,
        id: String,
    },
    /// Make a token without a running daemon; with --file, append it to a
    /// token file (created 0600) that `run --admit <file>` reads.
    Generate {
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        uses: Option<u32>,
    },
}

#[derive(Subcommand)]
enum MembersCommand {
    /// Remove a member (by name or peer id): its grant is revoked, its name
    /// and subnet are free again, and every member drops it.
    Remove {
        #[command(flatten)]
        socket: Socket,
        who: String,
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

/// Many connections are normal for a mesh node; the soft default of 1024
/// is not (F8). Raise it to the hard limit.
fn raise_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keygen { out } => println!("{}", keygen::keygen(&out)?),
        Command::Pubkey { key } => println!("{}", keygen::pubkey(&key)?),
        Command::Id { identity } => println!("{}", cli::id(&identity)?),
        Command::Run { config, admit, reset_authority } => {
            let mut config = NodeConfig::load(&config)?;
            if let Some(tokens_file) = admit {
                let control = config.control.as_mut().ok_or_else(|| {
                    anyhow::anyhow!("--admit needs a [control] section in the config (the authority runs a dynamic mesh)")
                })?;
                let admit = control.admit.get_or_insert_with(Default::default);
                if tokens_file.is_some() {
                    admit.tokens_file = tokens_file;
                }
            }
            let join_token = std::env::var("GROVE_JOIN_TOKEN").ok().filter(|t| !t.is_empty());
            raise_file_limit();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("netmanager")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(netmanager::run::run(config, RunOptions { join_token, reset_authority }))?;
        }
        Command::Token(TokenCommand::Create { socket, ttl, uses, note }) => {
            let created = cli::token_create(&socket.socket, ttl.as_deref(), uses, note).context("is this the authority, and is it running?")?;
            eprintln!("token {} made; a joining node needs in [control]:\n  {}\nand the token in join_token_file (0600) or GROVE_JOIN_TOKEN", created.entry.id, created.join);
            println!("{}", created.token);
        }
        Command::Token(TokenCommand::List { socket, json }) => {
            let tokens = cli::token_list(&socket.socket)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                print!("{}", cli::render_tokens(&tokens));
            }
        }
        Command::Token(TokenCommand::Revoke { socket, id }) => {
            let entry = cli::token_revoke(&socket.socket, &id)?;
            println!("revoked token {}", entry.id);
        }
        Command::Token(TokenCommand::Generate { file, ttl, uses }) => {
            let token = cli::token_generate(file.as_deref(), ttl.as_deref(), uses)?;
            if let Some(file) = file {
                eprintln!("added to {}", file.display());
            }
            println!("{token}");
        }
        Command::Members(MembersCommand::Remove { socket, who }) => {
            let removed = cli::members_remove(&socket.socket, &who)?;
            println!("removed {} ({}, {})", removed.removed.name, removed.removed.node, removed.removed.subnet);
        }
        Command::Status { socket, json } => {
            let text = cli::status(&socket.socket, json).with_context(|| "is netmanager running? (`netmanager run --config …`; status needs root)")?;
            println!("{text}");
        }
    }
    Ok(())
}
