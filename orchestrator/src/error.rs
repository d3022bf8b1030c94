//! The one error type of the `orchestrator` crate.
//!
//! Outcomes that are not failures are enums elsewhere (`cli::validate::Outcome`).
//! The mapping to HTTP status codes will live in one place with the API:
//! [`OrchestratorError::InvalidSla`] is a 400, [`OrchestratorError::UnsupportedSla`] a 422.

use crate::sla::violation::{ViolationKind, Violations};

static NO_VIOLATIONS: Violations = Violations::NONE;

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
    /// No app, service or instance by that reference (HTTP 404).
    #[error("no {what} named {reference:?}")]
    NotFound {
        /// `app`, `service`, ...
        what: &'static str,
        /// What the user typed.
        reference: String,
    },
    /// A short reference matches several (HTTP 409); `candidates` are the
    /// full names to choose from.
    #[error("{reference:?} names more than one {what}: {}", candidates.join(", "))]
    Ambiguous {
        /// `app` or `service`.
        what: &'static str,
        /// What the user typed.
        reference: String,
        /// Full names that match.
        candidates: Vec<String>,
    },
    /// A request the API cannot read (HTTP 400), e.g. a bad scale body.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The root's store failed (HTTP 500): nothing was changed.
    #[error("the root's store failed")]
    Store(#[from] crate::store::StoreError),
    /// A cluster or worker needed for the answer did not reply (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
}

impl OrchestratorError {
    /// The SLA error that fits `violations`: invalid if any is, else unsupported.
    pub fn from_violations(violations: Violations) -> OrchestratorError {
        match violations.kind() {
            ViolationKind::Invalid => OrchestratorError::InvalidSla(violations),
            ViolationKind::Unsupported => OrchestratorError::UnsupportedSla(violations),
        }
    }

    /// The violations behind an SLA error (none for other errors).
    pub fn violations(&self) -> &Violations {
        match self {
            OrchestratorError::InvalidSla(v) | OrchestratorError::UnsupportedSla(v) => v,
            _ => &NO_VIOLATIONS,
        }
    }
}
