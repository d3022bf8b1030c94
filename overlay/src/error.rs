//! The one error type of the `overlay` crate.

use std::path::PathBuf;

/// Everything that can go wrong while setting up or running the data plane.
///
/// Per-packet problems are not errors: they are counted as drops
/// ([`crate::DropReason`]) and the packet is discarded.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("invalid key: {0} (expected 32 bytes in base64, as `wg genkey` or `netmanager keygen` write)")]
    InvalidKey(String),
    #[error("peer {0} is listed twice")]
    DuplicatePeer(String),
    #[error("peer {peer}: allowed prefix {prefix} is already routed to peer {other}")]
    OverlappingPrefix {
        peer: String,
        prefix: ipnet::IpNet,
        other: String,
    },
    #[error("cannot bind UDP {addr}: {source} (is another netmanager or WireGuard running on that port?)")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create TUN device {name}: {source} (needs root or CAP_NET_ADMIN and /dev/net/tun)")]
    Tun {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl OverlayError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> OverlayError {
        move |source| OverlayError::Io { context, source }
    }
}
