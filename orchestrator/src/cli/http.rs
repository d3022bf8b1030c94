//! A small blocking HTTP/1.1 client for the root's API: one request per
//! connection (`Connection: close`), Content-Length or read-to-close
//! bodies. http:// only.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A response: status and body.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request failed before a response came.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not `http://host:port`.
    #[error("{0}")]
    BadUrl(String),
    /// Connect, write or read failed.
    #[error("cannot reach the root at {url}: {source}")]
    Io {
        /// The root's URL.
        url: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not HTTP.
    #[error("the root at {0} did not answer with HTTP")]
    Malformed(String),
}

/// One request.
pub fn request(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> Result<HttpResponse, HttpError> {
    if base.starts_with("https://") {
        return Err(HttpError::BadUrl(
            "TLS is not supported by this client yet; reach the root over http on a trusted network or through the mesh".into(),
        ));
    }
    let authority = base.strip_prefix("http://").unwrap_or(base).trim_end_matches('/');
    let io = |source| HttpError::Io { url: base.to_owned(), source };
    let address = authority
        .to_socket_addrs()
        .map_err(|e| HttpError::BadUrl(format!("`{base}` is not http://host:port: {e}")))?
        .next()
        .ok_or_else(|| HttpError::BadUrl(format!("`{base}` names no address")))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(io)?;
    let body = body.unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse(&raw).ok_or_else(|| HttpError::Malformed(base.to_owned()))
}

fn parse(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[end + 4..];
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Some(HttpResponse { status, body })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}").expect("parse");
        assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").expect("parse");
        assert_eq!(r.body, b"abcde");
        assert!(parse(b"garbage").is_none());
        assert!(request("https://x:1", "GET", "/", None, None).is_err());
    }
}
