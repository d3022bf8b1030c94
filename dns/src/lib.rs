#![warn(missing_docs)]
//! grove semantic DNS: `closest.ms2` answers with the instance of `ms2`
//! nearest to the asker.
//!
//! The pure core has no sockets: bytes of names in, answers as values out.
//! On top of it, the wire layer: [`answer`] turns outcomes into records (one
//! rcode mapping, [`rcode`]), [`handler`] is hickory's `RequestHandler`,
//! [`forward`] relays other names upstream with a cache, and [`server`]
//! ([`DnsServer`]) binds UDP and TCP. netmanager's wiring sits on top.
//!
//! A query flows through:
//!
//! 1. [`name`]: [`parse_labels`] reads `[explain.]<policy>.<service>[.<app>[.<namespace>]]`
//!    under the [`Zone`], with the search-domain convention for short names,
//!    into a [`QueryName`] or a [`NameOutcome`] saying what else it is
//!    (outside the zone: forward; malformed: NXDOMAIN; invalid: FORMERR).
//! 2. [`select()`]: asks the [`Directory`] for the service, settles which app
//!    it means ([`scope`], never guessing between apps), and applies the
//!    policy ([`policy`]: [`closest`], round robin via [`rr`], all,
//!    instance-N) under the health rule. The result is a [`SelectOutcome`].
//! 3. [`ttl`] says how long the answer may be cached; [`explain`] renders
//!    the reasoning as TXT strings.
//!
//! [`instance`] is the one instance model ([`InstanceKey`], [`InstanceSpec`],
//! [`Instance`]) shared with netmanager and its signed records.
//! [`MemoryDirectory`] ([`store`]) is the directory netmanager fills;
//! [`geo`] computes great-circle distances for it.
//! [`DnsConfig`] ([`config`]) is the `[dns]` configuration; [`resolv_conf`]
//! finds the host's upstream resolvers. [`stats`] ([`QueryStats`]) counts
//! queries by kind and response code for metrics.

pub mod answer;
pub mod cache;
pub mod capture;
pub mod client;
pub mod closest;
pub mod config;
pub mod directory;
pub mod error;
pub mod explain;
mod fasthash;
pub mod forward;
#[doc(hidden)]
pub mod fuzz_support;
pub mod geo;
pub mod handler;
mod inflight;
pub mod instance;
pub mod label;
pub mod name;
pub mod policy;
pub mod query;
pub mod ratelimit;
pub mod resolv_conf;
pub mod rr;
pub mod scope;
pub mod select;
pub mod server;
pub mod shape;
pub mod stats;
pub mod store;
pub mod ttl;
mod upstream;
pub mod zone;

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod test_support;

pub use answer::{rcode, Answer, Disposition};
pub use client::{ClientAcl, ClientKey};
pub use config::{DnsConfig, ForwardConfig, PolicyConfig, RateLimitConfig, GROVE_LOOPBACK};
pub use directory::{Directory, Distance, DistanceOracle, Instances, NodeId, RttEstimate};
pub use instance::{Instance, InstanceKey, InstanceSpec, NamedPort, Protocol, DEFAULT_SCOPE};
pub use error::DnsError;
pub use explain::{explain_outcome, explain_selection};
pub use forward::{ForwardError, Forwarder};
pub use geo::{haversine_km, Location};
pub use handler::GroveHandler;
pub use label::Label;
pub use name::{
    parse_labels, parse_name, NameError, NameOutcome, Policy, PortSelector, QueryName, SearchContext, ServicePath,
};
pub use policy::{Picked, Reason, Selection};
pub use resolv_conf::{parse_resolv_conf, read_resolv_conf};
pub use rr::RrTable;
pub use scope::{AppScope, AskerContext};
pub use select::{select, Asker, SelectOutcome};
pub use server::DnsServer;
pub use stats::{QueryCount, QueryKind, QueryStats, RcodeClass};
pub use store::{DirectorySnapshot, MemoryDirectory};
pub use ttl::TtlConfig;
pub use zone::Zone;
