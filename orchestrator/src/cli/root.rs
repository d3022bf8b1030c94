//! `grove root`: the root orchestrator daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::daemon::{init_tracing, parse_millis, NodeArgs};
use super::root_tls::TlsArgs;

/// Long help.
pub const LONG_ABOUT: &str = "\
Runs the root orchestrator: the user API (deploy, list, scale, remove) and
the registry of cluster orchestrators.

It runs beside a netmanager in dynamic mode. Clusters connect to it over
the mesh (TCP <node overlay address>:<cluster-port>) and are accepted only
if their address lies in a live mesh member's subnet; the member's name is
the cluster's name. The user API is the one thing that faces the underlay
(bearer token; the token file is created 0600 if it is absent). It serves
plain HTTP unless given --tls-cert and --tls-key, or --tls-self-signed
(a certificate made on first start in the state directory and reused);
over plain HTTP the token travels in clear, so do that on loopback only.

State (applications, services, instances, placements) lives in a crash-safe
store under --state-dir: a killed root restarts with nothing lost.

Example:
  grove root --state-dir /var/lib/grove/root
  grove deploy app.json --root http://<this machine>:10000 \\
        --token-file /var/lib/grove/root/api-token

With TLS:
  grove root --state-dir /var/lib/grove/root --tls-self-signed --tls-san root.example
  grove ls --root https://root.example:10000 --ca /var/lib/grove/root/api-cert.pem \\
        --token-file /var/lib/grove/root/api-token";

/// `grove root` arguments.
#[derive(Debug, clap::Args)]
pub struct RootArgs {
    /// Where the user API listens (HTTP/JSON or HTTPS with the TLS flags, bearer token).
    #[arg(long, default_value = "0.0.0.0:10000", env = "GROVE_API")]
    pub api: SocketAddr,
    /// TCP port on the node's overlay address that clusters connect to.
    #[arg(long, default_value_t = crate::root::CLUSTER_PORT)]
    pub cluster_port: u16,
    /// State directory: the store (`root.redb`) and the API token (`api-token`).
    #[arg(long, default_value = "/var/lib/grove/root", env = "GROVE_ROOT_STATE")]
    pub state_dir: PathBuf,
    /// The API token file (default: <state-dir>/api-token; created 0600 if absent).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// A cluster that has not reported for this long is marked lost and its
    /// instances are placed elsewhere (milliseconds).
    #[arg(long, default_value = "3000", value_parser = parse_millis)]
    pub cluster_timeout: Duration,
    /// The local netmanager.
    #[command(flatten)]
    pub node: NodeArgs,
    /// HTTPS for the user API.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Runs `grove root` until SIGINT or SIGTERM.
pub fn run(args: RootArgs) -> anyhow::Result<ExitCode> {
    // Told like clap's own usage errors (exit 2), before anything starts.
    if let Err(e) = args.tls.mode() {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(2));
    }
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::root::run(args))?;
    Ok(ExitCode::SUCCESS)
}
