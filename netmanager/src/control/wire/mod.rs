//! The control plane's wire schema: what nodes sign ([`records`]), how a
//! signature is carried ([`signed`]), the request/response protocols and
//! their framing ([`protocol`]), and bounded sequences ([`bounded`]).
//!
//! Everything here is shared by the daemon, the `rogue` test peer and, later,
//! the orchestrator. Decoding is strict: a version tag, postcard, no
//! trailing bytes, every sequence bounded before it is allocated, so one
//! message has exactly one encoding and a hostile peer cannot make us
//! allocate more than the frame it sent.

pub mod bounded;
pub mod protocol;
pub mod records;
pub mod signed;

pub use bounded::Bounded;
pub use records::{Gossip, InstanceSet, Leave, NodeRecord, Revocation, SubnetGrant, Suspicion};
pub use signed::{RecordKind, Signed, SignedError, Verified};

use serde::{Deserialize, Serialize};

/// Wire format version of gossip payloads and request/response frames; a
/// frame with another tag is refused, never guessed at. 2: grants bind the
/// name and tunnel key, leaves and revocations, paged sync.
pub const WIRE_VERSION: u8 = 2;

/// Encodes with the version tag in front.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    let mut out = vec![WIRE_VERSION];
    out.extend(postcard::to_stdvec(value)?);
    Ok(out)
}

/// Decodes a tagged payload; trailing bytes are refused, so the same value
/// cannot travel as many different byte strings (gossip deduplicates by
/// content).
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        Some((&WIRE_VERSION, rest)) => {
            let (value, rest) = postcard::take_from_bytes(rest).map_err(DecodeError::Malformed)?;
            if !rest.is_empty() {
                return Err(DecodeError::Trailing(rest.len()));
            }
            Ok(value)
        }
        Some((&other, _)) => Err(DecodeError::Version(other)),
        None => Err(DecodeError::Empty),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("wire version {0} (this node speaks {WIRE_VERSION}); run the same netmanager version on every node")]
    Version(u8),
    #[error("malformed message: {0}")]
    Malformed(postcard::Error),
    #[error("{0} bytes after the message")]
    Trailing(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_strict() {
        let bytes = encode(&(7u32, String::from("x"))).expect("encode");
        assert_eq!(decode::<(u32, String)>(&bytes).expect("decode"), (7, "x".into()));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(decode::<(u32, String)>(&trailing), Err(DecodeError::Trailing(1))));
        let mut old = bytes;
        old[0] = 1;
        assert!(matches!(decode::<(u32, String)>(&old), Err(DecodeError::Version(1))));
        assert!(matches!(decode::<(u32, String)>(&[]), Err(DecodeError::Empty)));
    }
}
