//! What nodes say about themselves, signed: the node record (keys,
//! endpoints, granted subnet, location, coordinate) and the instance set
//! (the service instances a node runs). Records travel by gossip and sync
//! and are verified ([`super::membership`]) before anything uses them.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::admission::SubnetGrant;
use super::signed::{RecordKind, Signed};
use super::vivaldi::Coordinate;

/// A node's self-description. `version` orders records from one node: a
/// record is accepted only if its version is higher than the one held, so a
/// replayed old record changes nothing. Nodes use wall-clock milliseconds
/// (bumped past the previous value), which keeps versions rising across
/// restarts without stored state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Human name (DNS `node`, status output); unique names are the
    /// operator's business, the identity is the signer.
    pub name: String,
    /// The WireGuard (x25519) public key of the node's tunnel.
    pub wg_public_key: [u8; 32],
    /// Underlay UDP endpoints of the tunnel, tried in order.
    pub endpoints: Vec<SocketAddr>,
    /// Underlay TCP addresses of the control plane (libp2p).
    pub control: Vec<SocketAddr>,
    /// The subnet grant signed by the admission authority.
    pub grant: Signed<SubnetGrant>,
    /// Configured geography, `(lat, lon)` in degrees.
    pub location: Option<(f64, f64)>,
    /// The node's network coordinate when the record was signed.
    pub coordinate: Coordinate,
    pub version: u64,
}

impl RecordKind for NodeRecord {
    const KIND: &'static str = "grove/node/1";
}

/// One service instance as its node announces it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceEntry {
    pub service: String,
    pub app: String,
    pub namespace: String,
    pub number: u32,
    /// Overlay address; must lie in the announcing node's granted subnet.
    pub ipv4: Option<Ipv4Addr>,
    /// Named ports: (name, "tcp"|"udp", port).
    pub ports: Vec<(String, String, u16)>,
}

/// Every instance a node runs, replaced as a whole on each change (a node
/// runs few instances; whole sets make deletion and replay trivial).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceSet {
    /// The node's PeerId bytes: binds the set to its signer.
    pub node: Vec<u8>,
    pub version: u64,
    pub instances: Vec<InstanceEntry>,
}

impl RecordKind for InstanceSet {
    const KIND: &'static str = "grove/instances/1";
}

/// "`target` at `version` did not answer my probes." Signed by the watcher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspicion {
    pub target: Vec<u8>,
    pub version: u64,
}

impl RecordKind for Suspicion {
    const KIND: &'static str = "grove/suspect/1";
}

/// Everything that travels on the gossip topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Gossip {
    Node(Signed<NodeRecord>),
    Instances(Signed<InstanceSet>),
    Suspect(Signed<Suspicion>),
}

/// Wire format version of gossip payloads and request/response frames; a
/// frame with another tag is refused, never guessed at.
pub const WIRE_VERSION: u8 = 1;

/// Encodes with the version tag in front.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    let mut out = vec![WIRE_VERSION];
    out.extend(postcard::to_stdvec(value)?);
    Ok(out)
}

/// Decodes a tagged payload.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        Some((&WIRE_VERSION, rest)) => postcard::from_bytes(rest).map_err(DecodeError::Malformed),
        Some((&other, _)) => Err(DecodeError::Version(other)),
        None => Err(DecodeError::Empty),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("wire version {0} (this node speaks {WIRE_VERSION}); upgrade the older node")]
    Version(u8),
    #[error("malformed message: {0}")]
    Malformed(postcard::Error),
}
