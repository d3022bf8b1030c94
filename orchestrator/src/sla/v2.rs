//! The Oakestra SLA v2.0 descriptor, as serde structs: wire shape only.
//!
//! Field names and types follow Oakestra's schema (oakestra/oakestra
//! `root_orchestrator/system-manager-python/sla/schema.py`; see
//! [`super::schema`]) and its field notes (`sla/sla_documentation.md`).
//! Every field the schema does not require is an `Option`, so a document
//! round-trips as written.
//!
//! These types are only ever decoded from a document that has passed
//! [`super::validate::check`]: serde alone would report one error at a time
//! and accept what the schema refuses (`null` for an optional field). They
//! do not deny unknown fields, because Oakestra's schema accepts them (it has
//! no `additionalProperties: false`); the check reports them as ignored.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A whole SLA file: one customer's applications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sla {
    /// `"v2.0"` (the parser dispatches on it before the schema is consulted).
    pub sla_version: String,
    /// Who deploys (Oakestra: the user name).
    #[serde(rename = "customerID")]
    pub customer_id: String,
    /// The applications; may be empty.
    pub applications: Vec<Application>,
    /// Top-level arguments; unused by Oakestra's services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

/// One application: a named group of microservices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Application {
    /// Set when adding services to an existing application (`POST /api/service/`).
    #[serde(rename = "applicationID", default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// `^[a-zA-Z0-9]{1,30}$`.
    pub application_name: String,
    /// `^[a-zA-Z0-9]{1,30}$`.
    pub application_namespace: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_desc: Option<String>,
    /// The services; may be empty (an application can be created first and filled later).
    pub microservices: Vec<Microservice>,
}

/// One microservice (Oakestra's `sla_microservice_schema`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Microservice {
    /// Must be `""` or absent: the system assigns ids (`maxLength: 0`).
    #[serde(rename = "microserviceID", default, skip_serializing_if = "Option::is_none")]
    pub microservice_id: Option<String>,
    /// `^[a-zA-Z0-9]{1,30}$`.
    pub microservice_name: String,
    /// `^[a-zA-Z0-9]{1,30}$`.
    pub microservice_namespace: String,
    /// `container`, `unikernel`, `runsc`, ... (the schema has no enum).
    pub virtualization: String,
    /// The image, kernel or, for grove, the executable.
    pub code: String,
    /// CSI volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// Memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Integer>,
    /// Whole virtual CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<Integer>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vgpus: Option<Integer>,
    /// TPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtpus: Option<Integer>,
    /// Inbound bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_in: Option<Integer>,
    /// Outbound bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_out: Option<Integer>,
    /// Disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Integer>,
    /// Where to fetch state from (stateful migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Port mappings, `host[:service][/tcp|/udp]` joined by `;` (e.g. `"6080:80/tcp"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Runs to completion instead of being restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_shot: Option<bool>,
    /// grove's addition: how many instances to run (Oakestra has no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Integer>,
    /// Runs with elevated rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Command line (containers: replaces the image's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<String>>,
    /// What to do when the SLA is violated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_violation_strategy: Option<String>,
    /// A node to place on (legacy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_node: Option<String>,
    /// Requested ServiceIPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Addresses>,
    /// Files to place into the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_files: Option<Vec<String>>,
    /// Further arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Placement constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<Constraint>>,
    /// Service-to-service constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<Vec<Connectivity>>,
}

/// A CSI volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Volume id.
    pub volume_id: String,
    /// CSI driver name.
    pub csi_driver: String,
    /// Where it appears in the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// Driver configuration, free form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Map<String, Value>>,
}

/// Requested ServiceIPs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Addresses {
    /// Round-robin ServiceIP (10.30.0.0/16 in Oakestra).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rr_ip: Option<String>,
    /// Round-robin ServiceIP, IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rr_ip_v6: Option<String>,
    /// Closest ServiceIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest_ip: Option<String>,
    /// Closest ServiceIP, IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest_ip_v6: Option<String>,
    /// Per-instance address ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<InstanceAddresses>>,
}

/// A per-instance address range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceAddresses {
    /// First address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// First instance number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// A placement constraint. Which fields matter depends on `type`
/// (`sla/sla_documentation.md`): `latency` (area or location, threshold ms),
/// `geo` (location, threshold km), `direct` (node, cluster), `clusters`
/// (allowed), `addons` (needs). The schema checks none of that.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    /// The constraint type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A named area users are in (latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// A cluster name (direct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// A node name, or several joined by `;` (direct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// A point, as one string (geo, latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// km (geo) or ms (latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Share of requests that must meet the constraint (0.99 = 99 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rigidness: Option<f64>,
    /// Seconds to converge (Oakestra's default: 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convergence_time: Option<Integer>,
    /// Addons the node must have (addons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Vec<String>>,
    /// Clusters allowed (clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

/// Constraints towards another microservice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connectivity {
    /// The other microservice.
    pub target_microservice_id: String,
    /// The constraints; all four fields of each are required.
    pub con_constraints: Vec<ConConstraint>,
}

/// One service-to-service constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConConstraint {
    /// The constraint type (`latency`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The bound.
    pub threshold: f64,
    /// Share of requests that must meet it.
    pub rigidness: f64,
    /// Seconds to converge.
    pub convergence_time: Integer,
}

/// A JSON Schema `integer`: any number without a fractional part, so
/// `100.0` counts (as it does for Python's jsonschema). Values beyond `i64`
/// saturate; grove's own range checks refuse them long before that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Integer(pub i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Integer;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Integer, E> {
                Ok(Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Integer, E> {
                Ok(Integer(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Integer, E> {
                if v.is_finite() && v.fract() == 0.0 {
                    // `as` saturates, which is the documented behaviour.
                    Ok(Integer(v as i64))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl fmt::Display for Integer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
