//! netmanager, grove's node daemon.
//!
//! Static mode (this crate today): a TOML file names the node key, the
//! overlay address and the peers; `run` brings up the data plane from
//! [`overlay`] and serves a root-only local API (HTTP/JSON on a unix socket) that `status`
//! reads.
//! The dynamic control plane (join, signed records, DNS) arrives later and
//! replaces where the peer set comes from, not the data plane.

pub mod api;
pub mod config;
pub mod error;
pub mod keygen;
pub mod naming;
pub mod run;
pub mod status;

pub use config::NodeConfig;
pub use error::NetmanagerError;
