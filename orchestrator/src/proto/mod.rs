//! The tiers' wire protocol: root ⇄ cluster ⇄ worker, over TCP on overlay
//! addresses, so the mesh encrypts and authenticates every byte and a peer
//! is known by the member subnet its address lies in ([`crate::mesh`]).
//!
//! One [`Message`] enum for both links (each side ignores what is not for
//! it), framed by [`codec`]: a u32 big-endian length, then postcard. A
//! connection opens with a `Hello` from the lower tier; the upper tier
//! answers `Welcome` or closes with `Refused`.
//!
//! ```text
//! cluster → root   Hello, Report (every second and on change), LogsReply
//! root → cluster   Welcome, Place, Stop, Logs
//! worker → cluster Hello, WorkerReport (every second and on change), LogsReply
//! cluster → worker Welcome, Start, Stop, Logs
//! ```

pub mod codec;
pub mod link;
mod message;

pub use codec::{read_frame, write_frame, ProtoError, MAX_FRAME};
pub use message::{InstanceReport, Message, Tier, WorkerReport, PROTOCOL_VERSION};
