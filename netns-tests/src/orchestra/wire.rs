//! HTTP and raw TCP from inside a namespace: the user API, services, and
//! bytes sent to the tiers' ports by a stranger.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use super::{HttpResult, Outcome};
use crate::inns::in_netns;

/// One HTTP/1.1 request (`Connection: close`, any headers, chunked or
/// sized answers) from inside `netns`.
pub fn http_in(
    netns: &str,
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> HttpResult {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\nUser-Agent: netns-tests\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.map(<[u8]>::to_vec).unwrap_or_default();
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    in_netns(netns, move || -> HttpResult {
        let mut stream = TcpStream::connect_timeout(&to, timeout.min(Duration::from_secs(3))).map_err(|e| format!("connect {to}: {e}"))?;
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.set_write_timeout(Some(timeout));
        stream.write_all(&request).map_err(|e| format!("send to {to}: {e}"))?;
        let mut raw = Vec::new();
        if let Err(e) = stream.read_to_end(&mut raw) {
            if raw.is_empty() {
                return Err(format!("answer from {to}: {e}"));
            }
        }
        parse_response(&raw).ok_or_else(|| format!("not an HTTP answer from {to}: {:?}", String::from_utf8_lossy(&raw)))
    })
    .map_err(|e| e.to_string())?
}

pub(super) fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[end + 4..];
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = rest[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[at..line_end]).split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                break;
            }
            body.extend_from_slice(rest.get(at..at + size)?);
            at += size + 2;
        }
        return Some((status, body));
    }
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => Some((status, rest.get(..len).unwrap_or(rest).to_vec())),
        None => Some((status, rest.to_vec())),
    }
}

pub(super) fn raw_exchange(source: Ipv4Addr, to: SocketAddr, payload: &[u8], wait: Duration) -> Outcome<(Vec<u8>, bool)> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(|e| format!("socket: {e}"))?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(source, 0))).map_err(|e| format!("bind {source}: {e}"))?;
    socket.connect_timeout(&SockAddr::from(to), Duration::from_secs(3)).map_err(|e| format!("connect {to} from {source}: {e}"))?;
    let mut stream: TcpStream = socket.into();
    if !payload.is_empty() {
        stream.write_all(payload).map_err(|e| format!("send: {e}"))?;
    }
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((got, false));
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => return Ok((got, true)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Ok((got, false)),
            // A reset is a close too.
            Err(_) => return Ok((got, true)),
        }
    }
}
