//! What the tiers say to each other.

use std::net::Ipv4Addr;

use dns::{InstanceKey, Location};
use serde::{Deserialize, Serialize};

use crate::model::{Capacity, InstanceState};
use crate::sla::ServiceSpec;

/// Bumped when a message changes shape; a peer speaking another version
/// is refused by name instead of misread (postcard is not self-describing).
pub const PROTOCOL_VERSION: u32 = 1;

/// Which tier says hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    /// A cluster orchestrator, to the root.
    Cluster,
    /// A worker, to its cluster.
    Worker,
}

/// One message on a tier link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// First message of the lower tier. The name is informational: the
    /// upper tier names a peer by the mesh member its address belongs to.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
        /// What the sender is.
        tier: Tier,
        /// Where it is, if configured.
        location: Option<Location>,
    },
    /// Accepted, under this (mesh member) name.
    Welcome {
        /// The name the upper tier knows the sender by.
        name: String,
        /// root → cluster: the mesh authority's delegation of a block to
        /// this cluster (base64, as netmanager's `/v1/delegations` gives
        /// it), so the cluster admits its site's workers; `None` when the
        /// root's node is not the authority or for workers.
        delegation: Option<String>,
    },
    /// Not accepted, and why; the connection closes after it.
    Refused {
        /// For the log of the refused side.
        reason: String,
    },
    /// cluster → root: the cluster's workers and instances.
    Report {
        /// Every live worker, with what it offers and what is reserved.
        workers: Vec<WorkerReport>,
        /// Every instance the cluster knows of, with its state.
        instances: Vec<InstanceReport>,
    },
    /// worker → cluster: what the worker has and runs.
    WorkerStatus {
        /// This worker.
        worker: WorkerReport,
        /// Its instances.
        instances: Vec<InstanceReport>,
    },
    /// root → cluster: place this instance on one of your workers.
    Place {
        /// Which instance.
        key: InstanceKey,
        /// What it runs.
        spec: Box<ServiceSpec>,
    },
    /// cluster → worker: run this instance.
    Start {
        /// Which instance.
        key: InstanceKey,
        /// What it runs.
        spec: Box<ServiceSpec>,
    },
    /// Downwards: stop and forget this instance.
    Stop {
        /// Which instance.
        key: InstanceKey,
    },
    /// Downwards: the tail of this instance's output.
    Logs {
        /// Echoed in the reply.
        request: u64,
        /// Which instance.
        key: InstanceKey,
        /// At most this many bytes.
        tail_bytes: u64,
    },
    /// Upwards: the answer to [`Message::Logs`].
    LogsReply {
        /// The request's id.
        request: u64,
        /// The text and the total bytes written so far, or why not.
        result: Result<(String, u64), String>,
    },
}

/// A worker, as reported upwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Its mesh member name (filled in by the cluster; a worker sends its own idea).
    pub name: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// What it offers instances.
    pub capacity: Capacity,
    /// Reserved by instances placed there.
    pub reserved: Capacity,
    /// 1-minute load average.
    pub load: f64,
    /// Where it is.
    pub location: Option<Location>,
}

/// One instance's state, as reported upwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// Which instance.
    pub key: InstanceKey,
    /// Oakestra's state.
    pub state: InstanceState,
    /// Why it FAILED or DIED, or (REQUESTED) why its cluster could not place it.
    pub reason: Option<String>,
    /// The worker it is on.
    pub node: Option<String>,
    /// Its overlay address.
    pub address: Option<Ipv4Addr>,
    /// Restarts after crashes.
    pub restarts: u32,
}
