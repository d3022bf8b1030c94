//! The one error type of the `orchestrator` crate.
//!
//! Outcomes that are not failures are enums elsewhere (`cli::validate::Outcome`).
//! The mapping to HTTP status codes will live in one place with the API:
//! [`OrchestratorError::InvalidSla`] is a 400, [`OrchestratorError::UnsupportedSla`] a 422.

use crate::sla::violation::{ViolationKind, Violations};

/// What can go wrong in the orchestrator.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The SLA is not JSON, not Oakestra's SLA v2.0, or has values grove
    /// cannot read: the client must fix the file (HTTP 400).
    #[error("invalid SLA: {0}")]
    InvalidSla(Violations),
    /// The SLA is well formed but asks for what this grove does not run,
    /// e.g. containers (HTTP 422).
    #[error("SLA not supported by grove: {0}")]
    UnsupportedSla(Violations),
}

impl OrchestratorError {
    /// The SLA error that fits `violations`: invalid if any is, else unsupported.
    pub fn from_violations(violations: Violations) -> OrchestratorError {
        match violations.kind() {
            ViolationKind::Invalid => OrchestratorError::InvalidSla(violations),
            ViolationKind::Unsupported => OrchestratorError::UnsupportedSla(violations),
        }
    }

    /// The violations behind an SLA error.
    pub fn violations(&self) -> &Violations {
        match self {
            OrchestratorError::InvalidSla(v) | OrchestratorError::UnsupportedSla(v) => v,
        }
    }
}
