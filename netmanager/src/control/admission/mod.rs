//! Admission: who may join the mesh and what each member owns.
//!
//! * [`authority`]: the authority's decisions (tokens, subnets, names,
//!   keys, grants, revocations), pure; [`verify_grant`] is what every
//!   member checks.
//! * [`delegation`]: a cluster admitting its site's nodes on the
//!   authority's behalf, and the chain members check.
//! * [`pool`]: the subnet pool, [`tokens`]: join tokens, pure.
//! * [`store`]: the authority's state on disk (atomic, fsynced).
//! * [`actor`]: the authority on a thread of its own, so fsyncs never run
//!   on the async runtime; the control plane and the local API share it.
//! * [`join`]: the joining node's side, talking only to the pinned
//!   authority.

pub mod actor;
pub mod authority;
pub mod delegate;
pub mod delegation;
pub mod join;
pub mod pool;
pub mod store;
pub mod token_file;
pub mod tokens;

pub use actor::AdmissionHandle;
pub use authority::{verify_grant, Authority, GrantEntry, GrantInfo, GrantRules, Granted};
pub use delegation::{verify_delegation, DelegationEntry, DelegationInfo};
pub use pool::SubnetPool;
pub use tokens::{generate_token, TokenEntry, TokenId, TokenSpec, TokenState};

use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::identity::PrivateFileError;
use super::wire::SignedError;

/// Why the authority refused a join. Sent to the joining node as this enum,
/// never as text: the joiner prints its own words for it, so nobody on the
/// network can make an admin read a message of their choosing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("no join token presented: put it in a file (`join_token_file`, mode 0600) or GROVE_JOIN_TOKEN")]
    NoToken,
    #[error("join token not accepted (unknown, expired, used up or revoked); ask the cluster admin for a fresh one (`netmanager token create`)")]
    Token,
    #[error("the name {name:?} belongs to another member; give this node another `name`, or remove the old member on the authority (`netmanager members remove {name}`)")]
    NameTaken { name: String },
    #[error("this node's tunnel key belongs to another member (a cloned SD card?); make a new key with `netmanager keygen`")]
    KeyTaken,
    #[error("node name is not valid: one DNS label, letters, digits and inner hyphens, at most 63")]
    BadName,
    #[error("the authority has no subnet left; remove departed members or configure a larger pool")]
    PoolExhausted,
    #[error("this node is not the admission authority")]
    NotAuthority,
    #[error("too many join attempts from this address; wait a minute")]
    RateLimited,
    #[error("the authority cannot record the join right now (its disk?); try again")]
    Unavailable,
}

/// Failures of setting admission up, or of the authority's store.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("{origin}, line {line}: {reason}")]
    TokenSyntax { origin: String, line: usize, reason: String },
    #[error("join token file: {0}")]
    TokenFile(#[from] PrivateFileError),
    #[error("a token is 16 to 128 of A-Z a-z 0-9 . _ -")]
    TokenShape,
    #[error("{0:?} is not a token id (8 hex digits, as `netmanager token list` shows)")]
    BadTokenId(String),
    #[error("no token with id {0}")]
    NoSuchToken(TokenId),
    #[error("a token with the same id exists already; make another")]
    TokenCollision,
    #[error("the authority holds {0} tokens; revoke unused ones first")]
    TooManyTokens(usize),
    #[error("token lifetime too large")]
    TtlTooLarge,
    #[error("no member {0:?} (give its name or peer id, as `netmanager status` shows)")]
    NoSuchMember(String),
    #[error("the authority cannot remove itself")]
    RevokeSelf,
    #[error("cannot cut {pool} into /{prefix_len} subnets; the subnet prefix must lie between the pool's and /30")]
    PoolShape { pool: Ipv4Net, prefix_len: u8 },
    #[error("all /{prefix_len} subnets of {pool} are granted; remove departed members or configure a larger pool")]
    PoolExhausted { pool: Ipv4Net, prefix_len: u8 },
    #[error("cannot grant {subnet} to {node}: {reason}")]
    Reserve { node: String, subnet: Ipv4Net, reason: String },
    #[error("authority state names {0:?} twice")]
    StateConflict(String),
    #[error(
        "authority state {}: {reason}; fix the file or restore it from a backup (without it every \
         grant is forgotten and subnets and names would be handed out twice)",
        path.display()
    )]
    StateCorrupt { path: PathBuf, reason: String },
    #[error(
        "authority state {} is missing, but {} says this node was the authority: restore the file from \
         a backup, or start over with `--reset-authority` (every member must then join again)",
        path.display(),
        marker.display()
    )]
    StateMissing { path: PathBuf, marker: PathBuf },
    #[error("authority state {}: {source}", path.display())]
    StateIo { path: PathBuf, source: std::io::Error },
    #[error("grant: {0}")]
    Signed(#[from] SignedError),
    #[error("grant names an invalid peer id: {0}")]
    BadPeerId(libp2p_identity::ParseError),
    #[error("grant signed by {signer}, which is not the pinned authority {authority} (and no delegation from it came with the grant)")]
    NotAuthority { signer: String, authority: String },
    #[error("grant signed by {signer}, but the delegation beside it is for {delegate}")]
    DelegationMismatch { signer: String, delegate: String },
    #[error("delegated grant for {subnet} lies outside the delegate's block {block}")]
    OutsideBlock { subnet: Ipv4Net, block: Ipv4Net },
    #[error("delegation of {block}: not an aligned block of the pool {pool} holding whole /{prefix_len} subnets")]
    DelegationShape { block: Ipv4Net, pool: Ipv4Net, prefix_len: u8 },
    #[error("the delegation is for {delegate}, not for this node {node}")]
    NotOurDelegation { delegate: String, node: String },
    #[error("{0} is not a member the authority granted itself; a cluster must join the authority before it can be delegated a block")]
    NotDelegable(String),
    #[error("grant is for node {grant_for}, not for {node}")]
    WrongNode { grant_for: String, node: String },
    #[error("grant for {subnet} is not a /{prefix_len} inside {pool}")]
    GrantShape { subnet: Ipv4Net, pool: Ipv4Net, prefix_len: u8 },
    #[error("grant names the node {0:?}, which is not a valid name")]
    GrantName(String),
    #[error("the authority has stopped")]
    Stopped,
    #[error("the operating system's random generator failed: {0}")]
    Random(getrandom::Error),
}
