//! A minimal blocking HTTP/1.1 client for the local API, enough for the CLI:
//! one request per connection (`Connection: close`), JSON back. The event
//! stream's reader ([`watch`], async) lives in [`super::watch`].

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::chunked::Dechunker;
use crate::NetmanagerError;

pub use super::watch::{watch, EventStream};

/// Largest response the CLI reads.
const MAX_RESPONSE: u64 = 16 << 20;

/// `GET path` on the API socket, decoding a 2xx JSON body into `T`; other
/// statuses become an error carrying the API's message.
pub fn get<T: DeserializeOwned>(socket: &Path, path: &str) -> Result<T, NetmanagerError> {
    call(socket, "GET", path, None)
}

/// `POST path` with a JSON body.
pub fn post<T: DeserializeOwned>(socket: &Path, path: &str, body: &impl serde::Serialize) -> Result<T, NetmanagerError> {
    let body = serde_json::to_vec(body).map_err(|e| NetmanagerError::ControlProtocol { path: socket.to_owned(), message: e.to_string() })?;
    call(socket, "POST", path, Some(&body))
}

/// `PUT path` with a JSON body.
pub fn put<T: DeserializeOwned>(socket: &Path, path: &str, body: &impl serde::Serialize) -> Result<T, NetmanagerError> {
    let body = serde_json::to_vec(body).map_err(|e| NetmanagerError::ControlProtocol { path: socket.to_owned(), message: e.to_string() })?;
    call(socket, "PUT", path, Some(&body))
}

/// `DELETE path`.
pub fn delete<T: DeserializeOwned>(socket: &Path, path: &str) -> Result<T, NetmanagerError> {
    call(socket, "DELETE", path, None)
}

/// One request; `Connection: close`, JSON back.
pub fn call<T: DeserializeOwned>(socket: &Path, method: &str, path: &str, body: Option<&[u8]>) -> Result<T, NetmanagerError> {
    let io_err = |source| NetmanagerError::ControlSocket {
        path: socket.to_owned(),
        source,
    };
    let protocol_err = |message: String| NetmanagerError::ControlProtocol {
        path: socket.to_owned(),
        message,
    };
    let mut stream = UnixStream::connect(socket).map_err(io_err)?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(io_err)?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: netmanager\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .map_err(io_err)?;
    stream.write_all(body).map_err(io_err)?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut raw).map_err(io_err)?;
    let split = head_end(&raw).ok_or_else(|| protocol_err("no HTTP header in the answer".into()))?;
    let (status, chunked) = parse_head(&raw[..split]).map_err(protocol_err)?;
    let body = &raw[split..];
    let body = if chunked { dechunk(body).ok_or_else(|| protocol_err("bad chunked body".into()))? } else { body.to_vec() };
    if !(200..300).contains(&status) {
        return Err(protocol_err(format!("HTTP {status}: {}", error_message(&body))));
    }
    serde_json::from_slice(&body).map_err(|e| protocol_err(e.to_string()))
}

/// Where the body starts: just after the blank line ending the head.
pub(super) fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

/// A response head's status and whether its body is chunked.
pub(super) fn parse_head(head: &[u8]) -> Result<(u16, bool), String> {
    let head = String::from_utf8_lossy(head);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    Ok((status, head.to_ascii_lowercase().contains("transfer-encoding: chunked")))
}

/// The API's `{"error": …}` message, else the body as text.
pub(super) fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// Decodes a whole `Transfer-Encoding: chunked` body.
pub(super) fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = Dechunker::new(MAX_RESPONSE as usize);
    let mut out = Vec::new();
    decoder.push(body, &mut out).ok()?;
    decoder.done().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_and_rejects_garbage() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(), Some(&b"abcde"[..]));
        assert_eq!(dechunk(b"zz\r\n"), None);
        assert_eq!(dechunk(b"5\r\nab"), None);
    }

    #[test]
    fn reads_status_chunking_and_error_messages() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\nrest";
        let end = head_end(raw).expect("head");
        assert_eq!(&raw[end..], b"rest");
        assert_eq!(parse_head(&raw[..end]), Ok((503, true)));
        assert!(parse_head(b"garbage").is_err());
        assert_eq!(error_message(br#"{"error":"too many"}"#), "too many");
        assert_eq!(error_message(b"plain"), "plain");
    }
}
