#![warn(missing_docs)]
//! grove's orchestration: the root, cluster and worker tiers and the user
//! CLI (`grove`).
//!
//! What exists today is the way in: [`sla`] reads Oakestra SLA v2.0
//! descriptors, checks them as Oakestra does and then against what grove
//! runs (processes), producing an [`sla::SlaSpec`]; [`cli`] holds the `grove`
//! commands (`grove validate`). The tiers (scheduling, the store, the
//! root ⇄ cluster ⇄ worker protocol) come next and take the spec from here.
//! [`OrchestratorError`] is the crate's one error type.

pub mod cli;
pub mod error;
pub mod sla;

pub use error::OrchestratorError;
