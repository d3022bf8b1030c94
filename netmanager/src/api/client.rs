//! A minimal blocking HTTP/1.1 client for the local API, enough for the CLI:
//! one request per connection (`Connection: close`), JSON back.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::NetmanagerError;

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
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| protocol_err("no HTTP header in the answer".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_err(format!("bad status line: {head:?}")))?;
    let body = &raw[split + 4..];
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body).ok_or_else(|| protocol_err("bad chunked body".into()))?
    } else {
        body.to_vec()
    };
    if !(200..300).contains(&status) {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(protocol_err(format!("HTTP {status}: {message}")));
    }
    serde_json::from_slice(&body).map_err(|e| protocol_err(e.to_string()))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
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
}
