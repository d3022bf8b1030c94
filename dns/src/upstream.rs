//! One exchange with one upstream resolver: UDP from a fresh socket, then
//! TCP when the UDP answer is truncated.
//!
//! A fresh socket per query gives every query a random source port as well
//! as a random ID (RFC 5452 §9.2), and the response must match both and the
//! question. The forwarder bounds how many exchanges run at once, so the
//! sockets (file descriptors) held are bounded too; each lives at most
//! [`ATTEMPT_TIMEOUT`] per transport.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Longest time one upstream attempt (UDP, or TCP after truncation) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// EDNS payload we ask upstreams for (the DNS flag day 2020 figure).
pub const UPSTREAM_PAYLOAD: u16 = 1232;
/// Receive buffer for UDP answers. We advertise [`UPSTREAM_PAYLOAD`], so a
/// conforming upstream sends less (RFC 6891 §6.2.5); a larger datagram is
/// cut, does not parse, is ignored like any stray packet, and the attempt
/// times out. A 64 KiB buffer per waiting query would be 16 MiB at the
/// default in-flight bound.
const UDP_BUFFER: usize = 4096;

/// An upstream's response: parsed, and the bytes it came in (what the
/// cache keeps: wire bytes are what its budget counts).
pub struct Reply {
    /// The response.
    pub message: Message,
    /// Its wire form.
    pub bytes: Arc<[u8]>,
}

/// Asks `upstream` for `query`, UDP then TCP on truncation. The error says
/// what went wrong, for logs (it names no address: the caller knows it).
pub async fn ask(upstream: SocketAddr, query: &Query) -> Result<Reply, String> {
    let id = random_id();
    let mut request = Message::new(id, MessageType::Query, OpCode::Query);
    request.metadata.recursion_desired = true;
    request.add_query(query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD);
    request.set_edns(edns);
    let bytes = request.to_vec().map_err(|e| format!("encoding the query: {e}"))?;

    let udp = tokio::time::timeout(ATTEMPT_TIMEOUT, ask_udp(upstream, &bytes, id, query))
        .await
        .map_err(|_| "timed out (udp)".to_owned())??;
    if !udp.message.metadata.truncation {
        return Ok(udp);
    }
    tokio::time::timeout(ATTEMPT_TIMEOUT, ask_tcp(upstream, &bytes, id, query))
        .await
        .map_err(|_| "timed out (tcp)".to_owned())?
}

async fn ask_udp(upstream: SocketAddr, bytes: &[u8], id: u16, query: &Query) -> Result<Reply, String> {
    let local: IpAddr = match upstream {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0)).await.map_err(|e| format!("bind: {e}"))?;
    socket.connect(upstream).await.map_err(|e| format!("connect: {e}"))?;
    socket.send(bytes).await.map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buf).await.map_err(|e| format!("recv: {e}"))?;
        // Anything that is not the answer to our question is ignored (spoofing, stale).
        if let Some(message) = matching(&buf[..n], id, query) {
            return Ok(Reply {
                message,
                bytes: buf[..n].into(),
            });
        }
    }
}

async fn ask_tcp(upstream: SocketAddr, bytes: &[u8], id: u16, query: &Query) -> Result<Reply, String> {
    let mut stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_owned())?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(|e| format!("send: {e}"))?;
    let len = stream.read_u16().await.map_err(|e| format!("recv: {e}"))?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.map_err(|e| format!("recv: {e}"))?;
    let message = matching(&buf, id, query).ok_or_else(|| "mismatched response".to_owned())?;
    Ok(Reply {
        message,
        bytes: buf.into(),
    })
}

/// `bytes` parsed if it is the response to (`id`, `query`).
fn matching(bytes: &[u8], id: u16, query: &Query) -> Option<Message> {
    let message = Message::from_vec(bytes).ok()?;
    let same = message.metadata.id == id
        && message.metadata.message_type == MessageType::Response
        && message.queries.len() == 1
        && message.queries[0].query_type() == query.query_type()
        && message.queries[0].query_class() == query.query_class()
        && message.queries[0].name().eq_ignore_root_case(query.name());
    same.then_some(message)
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // Without randomness, fall back to a clock-derived ID: still matched
    // against the question and a random source port.
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos as u16;
    }
    u16::from_be_bytes(b)
}
