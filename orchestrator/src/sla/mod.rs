//! Oakestra SLA v2.0 descriptors in, a validated [`SlaSpec`] out.
//!
//! Two checks, kept apart because they answer different questions:
//!
//! 1. **Would Oakestra accept it?** [`parse`] ([`validate`]) follows
//!    Oakestra's `parse_sla_json` and its JSON Schema ([`schema`]) exactly,
//!    answering with every violation where Oakestra raises one exception,
//!    and decodes the wire structs ([`v2`]). The fixture test holds this to
//!    Oakestra's verdict on 88 public SLA files.
//! 2. **Can grove run it?** `SlaSpec::try_from(&sla)` ([`spec`],
//!    [`constraint`], [`port`]) reads names as DNS labels, resources, the
//!    process to run, ports and constraints, and refuses what grove cannot
//!    honour (containers, GPUs, volumes, ServiceIPs, ...).
//!
//! Both name the place of each problem ([`path`]) and the rule it breaks
//! ([`violation`]): `applications[0].microservices[1].memory: must be > 0`.
//!
//! Fields read, from Oakestra's schema (`sla/schema.py`): `sla_version`,
//! `customerID`, `applications[].{application_name, application_namespace,
//! application_desc, microservices[]}`, and per microservice
//! `microservice_name`, `microservice_namespace`, `virtualization`, `code`,
//! `cmd`, `args`, `environment`, `memory`, `vcpus`, `vgpus`, `vtpus`,
//! `bandwidth_in`, `bandwidth_out`, `storage`, `port`, `one_shot`,
//! `privileged`, `state`, `sla_violation_strategy`, `target_node`,
//! `addresses`, `added_files`, `volumes`, `constraints[]`, `connectivity[]`.
//! `applicationID`, `microserviceID` and the top-level `args` are checked by
//! the schema and otherwise ignored.

pub mod constraint;
pub mod path;
pub mod port;
pub mod schema;
pub mod spec;
pub mod v2;
pub mod validate;
pub mod violation;

pub use constraint::{Constraint, LatencyFrom};
pub use path::SlaPath;
pub use port::PortMapping;
pub use spec::{AppSpec, Command, EnvVar, Resources, ServiceSpec, SlaSpec};
pub use violation::{Rule, Unsupported, Violation, ViolationKind, Violations};

use crate::OrchestratorError;

/// Check 1: the bytes as Oakestra's parser would take them (unknown keys
/// ignored; [`validate::check`] also lists them).
pub fn parse(bytes: &[u8]) -> Result<v2::Sla, OrchestratorError> {
    validate::check(bytes).sla.map_err(OrchestratorError::InvalidSla)
}

/// Both checks: what grove would deploy from these bytes.
pub fn read(bytes: &[u8]) -> Result<SlaSpec, OrchestratorError> {
    SlaSpec::try_from(&parse(bytes)?)
}

/// Check 2, on a document that passed check 1.
impl TryFrom<&v2::Sla> for SlaSpec {
    type Error = OrchestratorError;

    fn try_from(sla: &v2::Sla) -> Result<SlaSpec, OrchestratorError> {
        spec::read_sla(sla).map_err(OrchestratorError::from_violations)
    }
}
