//! The local API's request and response bodies: one public module, so the
//! orchestrator, the CLI and the tests use these types instead of writing
//! their own mirrors. Everything is JSON.
//!
//! | route | body in | body out |
//! |---|---|---|
//! | `GET /v1/status` | | [`overlay::DeviceStatus`] |
//! | `GET /v1/instances` | | `[Instance]` |
//! | `POST /v1/instances` | an [`InstanceSpec`] (plus `node`, `healthy` in static mode) or an array of them | `[Instance]` (201) |
//! | `DELETE /v1/instances/<service>/<app>/<namespace>/<number>` | | [`Instance`] |
//! | `GET /v1/members` | | [`Members`] |
//! | `GET /v1/events` | | a stream of [`Event`] lines (see [`super`]) |
//! | `GET /v1/workloads` | | `[Workload]` |
//! | `POST /v1/workloads` | [`WorkloadSpec`] | [`Created`] (201) |
//! | `DELETE /v1/workloads/<service>/<app>/<namespace>/<number>` | | `Workload` |
//! | `GET /v1/tokens` | | `[TokenEntry]` (authority) |
//! | `POST /v1/tokens` | [`TokenSpec`] | [`TokenCreated`] (201) |
//! | `DELETE /v1/tokens/<id>` | | `TokenEntry` |
//! | `GET /v1/grants` | | `[GrantEntry]` (authority) |
//! | `DELETE /v1/members/<name or peer id>` | | [`MemberRemoved`] (authority) |
//! | `POST /v1/delegations` | [`DelegationRequest`] | [`DelegationIssued`] (201, authority) |
//! | `GET /v1/delegations` | | `[DelegationEntry]` (authority) |
//! | `PUT /v1/delegation` | [`DelegationInstall`] | [`DelegationState`] (a member) |
//! | `GET /v1/delegation` | | [`DelegationState`] (404 when not a delegate) |
//!
//! Errors are `{"error": "…"}` with the status of [`super::error`].

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

pub use crate::control::admission::{DelegationEntry, GrantEntry, TokenEntry, TokenId, TokenSpec, TokenState};
pub use crate::control::events::{Event, EventKind, MemberEntry};
pub use crate::control::membership::{DownReason, RemovedReason};
pub use crate::control::projection::Conflict;
pub use crate::control::view::{ControlView, LocalView, MemberState, MemberView};
pub use crate::workload::Workload;
pub use dns::{Instance, InstanceKey, InstanceSpec, NamedPort, Protocol};
pub use overlay::DeviceStatus;

/// `GET /v1/members`: the membership as this node sees it, plus what its
/// resolver answers `closest.<service>` with right now.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Members {
    #[serde(flatten)]
    pub view: ControlView,
    pub closest: Vec<ClosestAnswer>,
}

/// What `closest.<service>.<app>.<namespace>` resolves to from this node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosestAnswer {
    pub service: String,
    pub app: String,
    pub namespace: String,
    pub number: u32,
    /// The serving node's name.
    pub node: String,
    pub address: Option<Ipv4Addr>,
    /// No healthy instance was left; an unhealthy one is served.
    #[serde(default)]
    pub degraded: bool,
}

/// `POST /v1/workloads`: a namespace for one instance, on this node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub service: String,
    #[serde(default = "default_scope")]
    pub app: String,
    #[serde(default = "default_scope")]
    pub namespace: String,
    pub number: u32,
    #[serde(default)]
    pub ports: Vec<NamedPort>,
}

fn default_scope() -> String {
    dns::DEFAULT_SCOPE.to_owned()
}

/// The namespace made and the instance announced for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Created {
    pub workload: Workload,
    pub instance: InstanceSpec,
}

/// `POST /v1/tokens`: the token (shown once) and how to use it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenCreated {
    pub token: String,
    #[serde(flatten)]
    pub entry: TokenEntry,
    /// The `[control]` lines a joining node needs, authority pinned.
    pub join: String,
}

/// `DELETE /v1/members/<who>`: the grant removed; members drop the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberRemoved {
    pub removed: GrantEntry,
}

/// Every error body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /v1/delegations` on the authority: set a block aside for a
/// cluster (a member, by name or peer id) so it admits its site's nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationRequest {
    pub cluster: String,
    /// The block's prefix length: /22 (16 node subnets) unless told.
    #[serde(default = "default_block_len")]
    pub block_len: u8,
}

fn default_block_len() -> u8 {
    22
}

/// The signed delegation, to hand to the cluster's netmanager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DelegationIssued {
    #[serde(flatten)]
    pub entry: DelegationEntry,
    /// Base64 of the signed record, for `PUT /v1/delegation` on the cluster.
    pub delegation: String,
}

/// `PUT /v1/delegation` on the cluster's node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationInstall {
    pub delegation: String,
}

/// The delegation this node admits under.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DelegationState {
    pub block: ipnet::Ipv4Net,
    pub serial: u64,
    /// The authority that delegated.
    pub authority: String,
}
