//! netmanager, grove's node daemon.
//!
//! Static mode: a TOML file names the node key, the overlay address and the
//! peers. Dynamic mode (`[control]`): the node joins with a token, gets a
//! subnet from the admission authority and learns its peers from signed
//! records gossiped over libp2p ([`control`]). Either way `run` brings up the
//! data plane from [`overlay`], serves DNS ([`naming`]) and a root-only local
//! API (HTTP/JSON on a unix socket) that `status` reads; in dynamic mode it
//! also gives workloads their own namespaces ([`workload`]) and serves
//! Prometheus metrics ([`metrics`]).

pub mod api;
pub mod cli;
pub mod config;
pub mod control;
pub mod error;
pub mod files;
pub mod keygen;
pub mod metrics;
pub mod naming;
pub mod run;
pub mod status;
pub mod workload;

pub use config::NodeConfig;
pub use error::NetmanagerError;
