//! The pipeline's wire format, one message per frame over a kept TCP
//! connection (camera → anonymise → detect, answers back the same way):
//!
//! ```text
//! "GRV1" | header length: u32 BE | body length: u32 BE | header (JSON) | body
//! ```
//!
//! The header says what the frame is (sequence number, who sent it, what
//! was found); the body is a JPEG or empty. Both lengths are checked
//! against limits before anything is allocated, so a peer cannot make a
//! service reserve more than [`MAX_BODY`] for one message.

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"GRV1";
/// Largest header accepted.
pub const MAX_HEADER: u32 = 64 * 1024;
/// Largest body (a frame) accepted.
pub const MAX_BODY: u32 = 16 * 1024 * 1024;

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// Not this protocol.
    #[error("not a grove pipeline message (magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// A length over its limit.
    #[error("{what} of {len} bytes is over the limit of {max}")]
    TooLong {
        /// "header" or "body".
        what: &'static str,
        /// The announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The header is not the JSON expected.
    #[error("header: {0}")]
    Header(#[from] serde_json::Error),
}

/// Writes one message.
pub fn write_message<W: Write, H: Serialize>(to: &mut W, header: &H, body: &[u8]) -> Result<(), WireError> {
    let header = serde_json::to_vec(header)?;
    let too_long = |what, len: usize, max| WireError::TooLong { what, len: u32::try_from(len).unwrap_or(u32::MAX), max };
    let header_len = u32::try_from(header.len()).ok().filter(|&l| l <= MAX_HEADER).ok_or_else(|| too_long("header", header.len(), MAX_HEADER))?;
    let body_len = u32::try_from(body.len()).ok().filter(|&l| l <= MAX_BODY).ok_or_else(|| too_long("body", body.len(), MAX_BODY))?;
    let mut prefix = [0u8; 12];
    prefix[..4].copy_from_slice(&MAGIC);
    prefix[4..8].copy_from_slice(&header_len.to_be_bytes());
    prefix[8..].copy_from_slice(&body_len.to_be_bytes());
    to.write_all(&prefix)?;
    to.write_all(&header)?;
    to.write_all(body)?;
    to.flush()?;
    Ok(())
}

/// Reads one message: its header, decoded, and its body.
pub fn read_message<R: Read, H: DeserializeOwned>(from: &mut R) -> Result<(H, Vec<u8>), WireError> {
    let mut prefix = [0u8; 12];
    from.read_exact(&mut prefix)?;
    let magic: [u8; 4] = [prefix[0], prefix[1], prefix[2], prefix[3]];
    if magic != MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    let header_len = u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    let body_len = u32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
    if header_len > MAX_HEADER {
        return Err(WireError::TooLong { what: "header", len: header_len, max: MAX_HEADER });
    }
    if body_len > MAX_BODY {
        return Err(WireError::TooLong { what: "body", len: body_len, max: MAX_BODY });
    }
    let mut header = vec![0u8; header_len as usize];
    from.read_exact(&mut header)?;
    let mut body = vec![0u8; body_len as usize];
    from.read_exact(&mut body)?;
    Ok((serde_json::from_slice(&header)?, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Hello {
        seq: u64,
    }

    #[test]
    fn a_message_round_trips() {
        let mut buf = Vec::new();
        write_message(&mut buf, &Hello { seq: 7 }, b"jpeg").expect("write");
        let (h, body): (Hello, Vec<u8>) = read_message(&mut buf.as_slice()).expect("read");
        assert_eq!(h, Hello { seq: 7 });
        assert_eq!(body, b"jpeg");
    }

    #[test]
    fn lengths_over_the_limits_are_refused_before_allocating() {
        let mut msg = MAGIC.to_vec();
        msg.extend(1u32.to_be_bytes());
        msg.extend(u32::MAX.to_be_bytes());
        let r: Result<(Hello, _), _> = read_message(&mut msg.as_slice());
        assert!(matches!(r, Err(WireError::TooLong { what: "body", .. })), "{r:?}");
        let mut msg = MAGIC.to_vec();
        msg.extend((MAX_HEADER + 1).to_be_bytes());
        msg.extend(0u32.to_be_bytes());
        let r: Result<(Hello, _), _> = read_message(&mut msg.as_slice());
        assert!(matches!(r, Err(WireError::TooLong { what: "header", .. })), "{r:?}");
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let r: Result<(Hello, _), _> = read_message(&mut &b"GET / HTTP/1.1\r\n\r\n"[..]);
        assert!(matches!(r, Err(WireError::BadMagic(_))), "{r:?}");
        let mut buf = Vec::new();
        write_message(&mut buf, &Hello { seq: 1 }, b"0123456789").expect("write");
        buf.truncate(buf.len() - 3);
        let r: Result<(Hello, _), _> = read_message(&mut buf.as_slice());
        assert!(matches!(r, Err(WireError::Io(_))), "{r:?}");
        let mut buf = Vec::new();
        write_message(&mut buf, &serde_json::json!({"seq": "x"}), b"").expect("write");
        let r: Result<(Hello, _), _> = read_message(&mut buf.as_slice());
        assert!(matches!(r, Err(WireError::Header(_))), "{r:?}");
    }
}
