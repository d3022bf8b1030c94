//! What can go wrong with workload networking, phrased so the operator knows
//! what to do next.

use std::path::PathBuf;

use ipnet::Ipv4Net;

use super::WorkloadKey;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A service, app or namespace name that cannot be a DNS label; the
    /// message names the field, the value and the rule.
    #[error("{0}")]
    InvalidName(String),
    /// The node's workload network settings cannot work.
    #[error("workload network settings: {0}")]
    InvalidNet(String),
    #[error("workload {0} already has a network namespace; delete it first or use another instance number")]
    Exists(Box<WorkloadKey>),
    #[error("no workload {0} on this node (see the workload list)")]
    NotFound(Box<WorkloadKey>),
    #[error("all {capacity} workload addresses of {subnet} are in use; delete a workload first or give the node a larger subnet")]
    AddressesExhausted { subnet: Ipv4Net, capacity: usize },
    /// The bridge name is taken by something this node cannot adopt.
    #[error("bridge {bridge}: {problem}; remove it (`ip link del {bridge}`) if it is a leftover, or configure another bridge name")]
    BridgeConflict { bridge: String, problem: String },
    #[error("cannot run `{program}`: {source} (is iproute2 installed and are we root?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// An interface workload networking needs is not in the node's
    /// namespace (the mesh TUN must be up before workloads are set up).
    #[error("interface {0} does not exist in this network namespace; start the mesh device first or configure the interface it uses")]
    MissingInterface(String),
    #[error("cannot start the workload thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The workload thread has ended (netmanager is shutting down, or the
    /// thread failed); nothing more can be created or deleted.
    #[error("workload networking has stopped (netmanager is shutting down)")]
    Stopped,
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl WorkloadError {
    pub(super) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        WorkloadError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
