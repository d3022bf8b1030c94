//! Frames: a u32 big-endian length, then that many bytes of postcard. A
//! length above [`MAX_FRAME`] is refused before anything is allocated, so
//! a peer cannot make the other side hold more than one frame's worth.

use std::io;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Message;

/// Largest frame accepted or sent: a report of a few thousand instances.
pub const MAX_FRAME: usize = 1 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, Error)]
pub enum ProtoError {
    /// The connection failed.
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
    /// The peer announced a frame larger than [`MAX_FRAME`].
    #[error("frame of {0} bytes refused (at most {MAX_FRAME})")]
    TooLarge(usize),
    /// The bytes are not a message of this protocol version.
    #[error("malformed message: {0}")]
    Malformed(#[from] postcard::Error),
}

/// Writes one message.
pub async fn write_frame<W: AsyncWrite + Unpin>(out: &mut W, message: &Message) -> Result<(), ProtoError> {
    let body = postcard::to_allocvec(message)?;
    if body.len() > MAX_FRAME {
        return Err(ProtoError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| ProtoError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    out.write_all(&frame).await?;
    out.flush().await?;
    Ok(())
}

/// Reads one message; `Ok(None)` when the peer closed cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(input: &mut R) -> Result<Option<Message>, ProtoError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body).await?;
    Ok(Some(postcard::from_bytes(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceState;
    use crate::proto::{InstanceReport, Tier};
    use crate::schedule::fixtures::service;
    use dns::InstanceKey;

    fn key() -> InstanceKey {
        InstanceKey::new("web", "shop", "prod", 3).expect("key")
    }

    #[tokio::test]
    async fn every_kind_round_trips() {
        let messages = vec![
            Message::Hello { version: 1, tier: Tier::Worker, location: None },
            Message::Place { key: key(), spec: Box::new(service(1, 64, vec![])) },
            Message::Report {
                workers: vec![],
                instances: vec![InstanceReport {
                    key: key(),
                    state: InstanceState::Failed,
                    reason: Some("exited with code 3".into()),
                    node: Some("w1".into()),
                    address: Some("10.18.0.70".parse().expect("ip")),
                    restarts: 2,
                }],
            },
            Message::LogsReply { request: 7, result: Err("gone".into()) },
        ];
        let mut wire = Vec::new();
        for m in &messages {
            write_frame(&mut wire, m).await.expect("write");
        }
        let mut input = wire.as_slice();
        for m in &messages {
            assert_eq!(read_frame(&mut input).await.expect("read").as_ref(), Some(m));
        }
        assert!(read_frame(&mut input).await.expect("eof").is_none());
    }

    #[tokio::test]
    async fn oversized_and_garbage_frames_are_refused() {
        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut huge).await, Err(ProtoError::TooLarge(_))));
        let mut garbage: &[u8] = &[0, 0, 0, 3, 0xfe, 0xfe, 0xfe];
        assert!(matches!(read_frame(&mut garbage).await, Err(ProtoError::Malformed(_))));
        let mut cut: &[u8] = &[0, 0, 0, 9, 1];
        assert!(matches!(read_frame(&mut cut).await, Err(ProtoError::Io(_))));
    }
}
