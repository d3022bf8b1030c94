//! `grove cluster`: a cluster orchestrator daemon.

use std::process::ExitCode;
use std::time::Duration;

use super::daemon::{init_tracing, parse_millis, NodeArgs};

/// Long help.
pub const LONG_ABOUT: &str = "\
Runs a cluster orchestrator for one site, beside the site's netmanager.

It connects to the root over the mesh (--root: the root's mesh member name
or overlay address) and reports its workers' capacity every second. Workers
connect to it over the mesh (TCP <overlay address>:<worker-port>) and are
accepted only if they are live mesh members. It places the instances the
root sends on a worker (resources, geography, latency from the mesh's
coordinates, `direct` node pins), and when the mesh's failure detector says
a worker died, it places that worker's instances elsewhere.

Example:
  grove cluster --root cloud-1";

/// `grove cluster` arguments.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The root: its mesh member name (`cloud-1`) or overlay address, with an optional `:port`.
    #[arg(long, env = "GROVE_ROOT_NODE")]
    pub root: String,
    /// TCP port on the node's overlay address that workers connect to.
    #[arg(long, default_value_t = crate::cluster::WORKER_PORT)]
    pub worker_port: u16,
    /// A worker whose connection closed is given this long to come back
    /// before its instances are moved (milliseconds); a worker the mesh
    /// declares dead is moved at once.
    #[arg(long, default_value = "1000", value_parser = parse_millis)]
    pub worker_grace: Duration,
    /// The local netmanager.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Runs `grove cluster` until SIGINT or SIGTERM.
pub fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::cluster::run(args))?;
    Ok(ExitCode::SUCCESS)
}
