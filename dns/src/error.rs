//! The one error type of the `dns` crate.
//!
//! Per-query problems are not errors: a name that is not a grove query is a
//! [`crate::NameOutcome`], a service that cannot be answered a
//! [`crate::SelectOutcome`]. These are the failures of setting things up.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong configuring or filling the DNS service.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The configured zone is not a usable DNS name.
    #[error("invalid zone {zone:?}: {reason}")]
    InvalidZone {
        /// The zone as given.
        zone: String,
        /// What to fix.
        reason: &'static str,
    },
    /// A service, app, namespace or port name that no query could reach.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What to fix.
        reason: &'static str,
    },
    /// Coordinates out of range or not finite.
    #[error("invalid location ({lat}, {lon}): latitude must be within ±90 and longitude within ±180")]
    InvalidLocation {
        /// Latitude as given.
        lat: f64,
        /// Longitude as given.
        lon: f64,
    },
    /// A config value out of range.
    #[error("invalid DNS config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field, as written in the config (`policy.rr_buckets`).
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// resolv.conf could not be read.
    #[error("cannot read {path}: {source}")]
    ReadResolvConf {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Binding a privileged port without the right to.
    #[error("cannot bind {protocol} {address}: port {} needs root or CAP_NET_BIND_SERVICE", address.port())]
    BindPrivileged {
        /// The address.
        address: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
    },
    /// Something else already listens there.
    #[error("cannot bind {protocol} {address}: address in use (another DNS server, such as systemd-resolved or dnsmasq, or a second grove?)")]
    AddressInUse {
        /// The address.
        address: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
    },
    /// Any other bind failure (address not on this host, …).
    #[error("cannot bind {protocol} {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
