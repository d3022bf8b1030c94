//! The root API's JSON bodies: one module shared by the server
//! ([`super::server::ApiServer`]), the `grove` CLI's client and the tests, so that no
//! side keeps its own mirror.
//!
//! | route | body in | body out |
//! |---|---|---|
//! | `GET /v1/health` (no token) | | `{"ok":true}` |
//! | `POST /v1/apps` | an Oakestra SLA v2.0 document | `[AppView]` (201): deploys new apps, updates existing ones |
//! | `GET /v1/apps` | | `[AppView]` |
//! | `GET /v1/apps/<app>[.<namespace>]` | | [`AppView`] |
//! | `DELETE /v1/apps/<app>[.<namespace>]` | | [`AppView`] (every instance UNDEPLOYED) |
//! | `GET /v1/services` | | `[ServiceView]` |
//! | `GET /v1/services/<service>[.<app>[.<namespace>]]` | | [`ServiceView`] |
//! | `POST /v1/services/<ref>/scale` | [`ScaleRequest`] | [`ServiceView`] |
//! | `GET /v1/services/<ref>/logs?tail=<bytes>` | | [`LogsView`] |
//! | `DELETE /v1/services/<ref>` | | [`ServiceView`] |
//! | `GET /v1/clusters` | | `[ClusterView]` |
//! | `GET /v1/nodes` | | `[NodeView]` |
//!
//! Every route but `/v1/health` needs `Authorization: Bearer <token>`
//! (401 otherwise). Errors are `{"error": "…"}`; SLA errors add
//! `"violations": ["<path>: <rule>", …]` (400 invalid, 422 unsupported).

use std::net::Ipv4Addr;

use dns::Location;
use serde::{Deserialize, Serialize};

use crate::model::{Capacity, InstanceState};

/// One application and its services.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    /// `application_name`.
    pub name: String,
    /// `application_namespace`.
    pub namespace: String,
    /// `customerID` of the SLA that created it.
    pub customer: String,
    /// `application_desc`.
    #[serde(default)]
    pub description: Option<String>,
    /// Its services.
    pub services: Vec<ServiceView>,
}

/// One service: what was asked and where its instances are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    /// `<service>.<app>.<namespace>`: the name `grove status` takes.
    pub name: String,
    /// `microservice_name`.
    pub service: String,
    /// The application.
    pub app: String,
    /// The application's namespace.
    pub namespace: String,
    /// The DNS name that answers with the nearest instance
    /// (`closest.<service>.<app>.<namespace>.<zone>`).
    pub closest: String,
    /// Instances wanted.
    pub wanted: u32,
    /// Executable and arguments, for display.
    pub command: Vec<String>,
    /// What one instance reserves.
    pub memory_mib: u32,
    /// What one instance reserves.
    pub vcpus: u32,
    /// The constraints, rendered (`geo: within 50 km of 48.137,11.575`).
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Every instance not UNDEPLOYED, by number.
    pub instances: Vec<InstanceView>,
}

impl ServiceView {
    /// Instances that are RUNNING.
    pub fn running(&self) -> usize {
        self.instances.iter().filter(|i| i.state == InstanceState::Running).count()
    }
}

/// One instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    /// Instance number (the `instance-N` DNS name).
    pub number: u32,
    /// Oakestra's state.
    pub state: InstanceState,
    /// Why it FAILED or DIED, or why it is still waiting for a place
    /// ("no worker with 2 GiB free within 50 km of …").
    #[serde(default)]
    pub reason: Option<String>,
    /// Milliseconds in the current state.
    pub for_ms: u64,
    /// Cluster it was placed on.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Node (worker) it runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// Its overlay address.
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    /// Restarts by its worker after a crash.
    #[serde(default)]
    pub restarts: u32,
}

/// `POST /v1/services/<ref>/scale`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// Instances wanted (0 stops them all but keeps the service).
    pub instances: u32,
}

/// A cluster registered with the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Its mesh member name.
    pub name: String,
    /// Its overlay address.
    pub address: Option<Ipv4Addr>,
    /// `alive`, or `lost` (silent; its instances were moved).
    pub state: String,
    /// Its node's location.
    #[serde(default)]
    pub location: Option<Location>,
    /// Workers reporting to it.
    pub workers: u32,
    /// Sum over its workers.
    pub total: Capacity,
    /// Sum of what is free.
    pub free: Capacity,
    /// Instances placed on it.
    pub instances: u32,
    /// Milliseconds since its last report.
    pub last_report_ms: u64,
}

/// A worker, as its cluster reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Its mesh member name.
    pub name: String,
    /// Its cluster.
    pub cluster: String,
    /// `std::env::consts::ARCH` of the worker (`x86_64`, `aarch64`).
    pub arch: String,
    /// CPUs × 1000 and MiB of memory.
    pub capacity: Capacity,
    /// Reserved by instances placed there.
    pub reserved: Capacity,
    /// 1-minute load average.
    pub load: f64,
    /// Its location.
    #[serde(default)]
    pub location: Option<Location>,
    /// `alive` or `dead` (the mesh's failure detector says so).
    pub state: String,
    /// Instances on it.
    pub instances: u32,
}

/// `GET /v1/services/<ref>/logs`: the tail of each instance's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogsView {
    /// `<service>.<app>.<namespace>`.
    pub service: String,
    /// One entry per instance that could be asked.
    pub instances: Vec<InstanceLogs>,
}

/// The tail of one instance's stdout and stderr, interleaved as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceLogs {
    /// Instance number.
    pub number: u32,
    /// Node it runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// The text (lossy UTF-8).
    pub text: String,
    /// Bytes written in total so far: `grove logs --follow` asks again
    /// and prints what lies beyond what it has seen.
    pub total_bytes: u64,
    /// Why no text could be fetched (worker unreachable, ...).
    #[serde(default)]
    pub error: Option<String>,
}

/// Every error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line for people.
    pub error: String,
    /// SLA violations, one `<path>: <rule>` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}
