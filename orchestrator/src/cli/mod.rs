//! The `grove` command line: [`Cli`] and one [`Command`] variant per
//! subcommand, each in its own file. `main.rs` parses and dispatches;
//! nothing else happens there.
//!
//! The daemons (`grove root`, `grove cluster`, `grove worker`) and the
//! user commands that talk to the root's API (`grove deploy`, `ls`,
//! `status`, `logs`, `scale`, `rm`, `nodes`, `clusters`) live side by side;
//! `grove validate` works offline.

use clap::{Parser, Subcommand};

pub mod client;
pub mod cluster;
pub mod clusters;
pub mod daemon;
pub mod deploy;
pub mod http;
pub mod interpolate;
pub mod logs;
pub mod ls;
pub mod nodes;
pub mod rm;
pub mod root;
pub mod root_tls;
pub mod scale;
pub mod status;
pub mod tls;
pub mod validate;
pub mod worker;

/// grove: a lightweight edge-computing platform (encrypted mesh, semantic
/// DNS, hierarchical scheduling). This binary holds the orchestrator tiers
/// (root, cluster, worker) and the user commands that deploy and inspect
/// applications through the root's API.
#[derive(Debug, Parser)]
#[command(name = "grove", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the root orchestrator: the user API and the cluster registry.
    #[command(long_about = root::LONG_ABOUT)]
    Root(root::RootArgs),
    /// Run a cluster orchestrator beside a node's netmanager.
    #[command(long_about = cluster::LONG_ABOUT)]
    Cluster(cluster::ClusterArgs),
    /// Run a worker beside a node's netmanager: it runs the instances.
    #[command(long_about = worker::LONG_ABOUT)]
    Worker(worker::WorkerArgs),
    /// Deploy (or update) the applications of an SLA file; follows them until RUNNING.
    Deploy(deploy::DeployArgs),
    /// List applications and services.
    Ls(ls::LsArgs),
    /// Show one service: instances, nodes, states, addresses, its `closest` name.
    Status(status::StatusArgs),
    /// Print a service's instance output.
    Logs(logs::LogsArgs),
    /// Set how many instances a service runs.
    Scale(scale::ScaleArgs),
    /// Undeploy an application or a service.
    Rm(rm::RmArgs),
    /// List the workers of every cluster.
    Nodes(nodes::NodesArgs),
    /// List the clusters registered with the root.
    Clusters(clusters::ClustersArgs),
    /// Check Oakestra SLA v2.0 files, and whether grove can run them.
    #[command(long_about = validate::LONG_ABOUT)]
    Validate(validate::ValidateArgs),
}
