//! `grove worker`: the worker daemon that runs instances.

use std::path::PathBuf;
use std::process::ExitCode;

use super::daemon::{init_tracing, NodeArgs};

/// Long help.
pub const LONG_ABOUT: &str = "\
Runs a worker beside the node's netmanager: it runs the instances its
cluster places here, each as a process in its own network namespace on the
mesh (made by netmanager), with memory and CPU limits through cgroups (v2,
or v1 where that is what the host has). Crashed instances are restarted
with backoff; their stdout and stderr go to <state-dir>/logs.

It connects to its cluster over the mesh (--cluster: the cluster's mesh
member name or overlay address) and reports CPU, memory, architecture,
load and every instance's state.

Example:
  grove worker --cluster munich-1";

/// `grove worker` arguments.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The cluster orchestrator: its mesh member name or overlay address, with an optional `:port`.
    #[arg(long, env = "GROVE_CLUSTER_NODE")]
    pub cluster: String,
    /// State directory (instance logs).
    #[arg(long, default_value = "/var/lib/grove/worker", env = "GROVE_WORKER_STATE")]
    pub state_dir: PathBuf,
    /// CPU offered to instances, in thousandths of a core (default: all cores × 1000).
    #[arg(long)]
    pub cpu_millis: Option<u32>,
    /// Memory offered to instances, MiB (default: the machine's total).
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// The local netmanager.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Runs `grove worker` until SIGINT or SIGTERM.
pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::worker::run(args))?;
    Ok(ExitCode::SUCCESS)
}
