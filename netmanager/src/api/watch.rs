//! The reader of `GET /v1/events` (async: a stream stays open for as long
//! as netmanager runs, and a blocking read would pin a thread and hold up
//! the reader's runtime at shutdown). One connection per stream; events
//! come one JSON object per line in a chunked body.
//!
//! The reader does not reconnect: when netmanager stops, [`EventStream::next`]
//! returns `Ok(None)`; the caller reconnects and starts from the snapshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::chunked::Dechunker;
use super::client::{dechunk, error_message, head_end, parse_head};
use crate::control::events::Event;
use crate::NetmanagerError;

/// Largest line (a snapshot of a full mesh is about a megabyte).
const MAX_LINE: usize = 16 << 20;
/// Largest response head, and error body, read.
const MAX_HEAD: usize = 64 << 10;
/// How long netmanager has to answer the request itself.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// An open event stream.
pub struct EventStream {
    socket: PathBuf,
    stream: UnixStream,
    chunks: Dechunker,
    body: Vec<u8>,
}

/// Opens `GET /v1/events` on the API socket; the first event is the snapshot.
pub async fn watch(socket: &Path) -> Result<EventStream, NetmanagerError> {
    let io_err = |source| NetmanagerError::ControlSocket { path: socket.to_owned(), source };
    let protocol_err = |message: String| NetmanagerError::ControlProtocol { path: socket.to_owned(), message };
    let mut stream = UnixStream::connect(socket).await.map_err(io_err)?;
    stream.write_all(b"GET /v1/events HTTP/1.1\r\nHost: netmanager\r\nConnection: close\r\n\r\n").await.map_err(io_err)?;
    let mut raw = Vec::new();
    let split = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut raw))
        .await
        .map_err(|_| protocol_err("no answer to GET /v1/events".into()))?
        .map_err(io_err)?
        .ok_or_else(|| protocol_err("no HTTP header in the answer".into()))?;
    let (status, chunked) = parse_head(&raw[..split]).map_err(protocol_err)?;
    if !(200..300).contains(&status) {
        let mut body = raw.split_off(split);
        // Errors are small and end with the connection; read what comes.
        let _ = tokio::time::timeout(HEAD_TIMEOUT, (&mut stream).take(MAX_HEAD as u64).read_to_end(&mut body)).await;
        let body = if chunked { dechunk(&body).unwrap_or(body) } else { body };
        return Err(protocol_err(format!("HTTP {status}: {}", error_message(&body))));
    }
    if !chunked {
        return Err(protocol_err("the event stream is not chunked".into()));
    }
    let mut events = EventStream { socket: socket.to_owned(), stream, chunks: Dechunker::new(MAX_LINE), body: Vec::new() };
    events.push(&raw[split..])?;
    Ok(events)
}

/// Reads until the head is complete; where the body starts.
async fn read_head(stream: &mut UnixStream, raw: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = head_end(raw) {
            return Ok(Some(end));
        }
        if raw.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

impl EventStream {
    /// The next event; `Ok(None)` once the stream ended (netmanager
    /// stopped or closed it).
    pub async fn next(&mut self) -> Result<Option<Event>, NetmanagerError> {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            if let Some(at) = self.body.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=at).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line).map(Some).map_err(|e| self.protocol(format!("event: {e}")));
            }
            if self.body.len() > MAX_LINE {
                return Err(self.protocol(format!("an event line longer than {MAX_LINE} bytes")));
            }
            if self.chunks.done() {
                return Ok(None);
            }
            let n = self.stream.read(&mut buf).await.map_err(|source| NetmanagerError::ControlSocket { path: self.socket.clone(), source })?;
            if n == 0 {
                return Ok(None);
            }
            self.push(&buf[..n])?;
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), NetmanagerError> {
        self.chunks.push(bytes, &mut self.body).map_err(|e| self.protocol(e.to_string()))
    }

    fn protocol(&self, message: String) -> NetmanagerError {
        NetmanagerError::ControlProtocol { path: self.socket.clone(), message }
    }
}
