#![warn(missing_docs)]
//! grove's orchestration: the root, cluster and worker tiers and the user
//! CLI (`grove`).
//!
//! What exists today is the way in and the pure cores the tiers will be
//! built on: [`sla`] reads Oakestra SLA v2.0 descriptors, checks them as
//! Oakestra does and then against what grove runs (processes), producing an
//! [`sla::SlaSpec`]; [`model`] holds ids, capacity arithmetic and the
//! instance state machine (Oakestra's states); [`schedule`] picks a cluster
//! (root) or a worker (cluster) by filtering and scoring, and moves
//! instances off a lost one, all without I/O; [`store`] is the root's
//! crash-safe state (redb, and an in-memory store for tests); [`cli`] holds
//! the `grove` commands (`grove validate`). The daemons (root, cluster,
//! worker) and their protocol over the mesh come next.
//! [`OrchestratorError`] is the crate's one error type.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod error;
pub mod mesh;
pub mod model;
pub mod proto;
pub mod root;
pub mod runtime;
pub mod schedule;
pub mod sla;
pub mod store;
pub mod worker;

pub use error::OrchestratorError;
