//! grove's network-namespace testbed.
//!
//! Everything the scenario tests, the benchmarks and the demo need to build a
//! small network on one Linux machine and tear it down again:
//!
//! - [`Netns`]: a named network namespace, deleted on drop, in which commands
//!   run ([`Netns::exec`]) and daemons are started ([`Netns::spawn`] →
//!   [`ChildGuard`]).
//! - [`Testbed`]: N node namespaces hanging off one router namespace whose
//!   forwarding goes through a userspace WAN emulator (`wanem`, see [`wan`]),
//!   controlled at runtime through [`WanControl`].
//! - [`VethLink`]: two namespaces joined by one veth pair, for benchmarks.
//! - [`geo`]: the latency-from-geography model.
//! - [`grove`]: real `netmanager` daemons on testbed namespaces (static
//!   mode); [`dynamic`]: token-joined meshes; [`dnsq`]: a tiny DNS client.
//! - [`inns`]: run a closure (sockets) inside a namespace.
//! - [`interrupt`]: Ctrl-C as a flag, so tools unwind through their guards.
//! - helpers: [`unique_name`], [`bin_path`], [`wait_until`], [`ping`].
//!
//! All of it needs root (CAP_NET_ADMIN); [`require_root`] says so clearly.

pub mod bins;
pub mod child;
pub mod cmd;
pub mod dnsq;
pub mod dynamic;
pub mod error;
pub mod geo;
pub mod grove;
pub mod inns;
pub mod interrupt;
pub mod names;
pub mod netns;
pub mod orchestra;
pub mod pipeline;
pub mod ping;
pub mod root;
pub mod scratch;
pub mod testbed;
pub mod tools;
pub mod veth_link;
pub mod wait;
pub mod wan;

pub use bins::bin_path;
pub use child::{ChildGuard, Signal};
pub use error::{Error, Result};
pub use geo::{geo_one_way_delay, great_circle_km, Site};
pub use names::unique_name;
pub use netns::Netns;
pub use ping::{ping, ping_with, PingOptions, PingStats, RttStats};
pub use root::require_root;
pub use scratch::ScratchDir;
pub use testbed::{Node, Testbed, TestbedBuilder};
pub use veth_link::VethLink;
pub use wait::{wait_until, wait_until_named};
pub use wan::{WanControl, WanStats};
