//! Forwarding of names outside the zone to upstream resolvers, with a
//! cache that honours TTLs.
//!
//! A small forwarder of our own rather than `hickory-resolver`: the
//! resolver's API returns records or errors, so NXDOMAIN/NODATA with their
//! SOA, the upstream's rcode and the authority section would have to be
//! reconstructed from error values. Here the upstream's response is relayed
//! as it came (rcode, answers, authorities, additionals minus OPT), and the
//! cache is a map we can reason about:
//!
//! * key: lowercase name, type, class;
//! * lifetime: the smallest TTL of the answer and authority records; for
//!   negative answers the SOA's MINIMUM when smaller (RFC 2308 §5); at most
//!   [`MAX_CACHE_TTL`]; SERVFAIL and other failures are not cached;
//! * served TTLs count down from the time of caching;
//! * at most [`MAX_ENTRIES`]; when full, expired entries go first, then
//!   everything (simple, bounded, and rare).
//!
//! Each upstream is asked over UDP from a fresh socket (random source port
//! and ID, the response must match both and the question), then over TCP
//! when the UDP answer is truncated. Every attempt has a timeout, so a dead
//! upstream costs [`ATTEMPT_TIMEOUT`] per upstream, then SERVFAIL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::fasthash::FastMap;

/// Longest time one upstream attempt (UDP, or TCP after truncation) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Cached answers live at most this long, whatever their TTL.
pub const MAX_CACHE_TTL: u32 = 3600;
/// Most cached answers.
pub const MAX_ENTRIES: usize = 10_000;
/// EDNS payload we ask upstreams for.
const UPSTREAM_PAYLOAD: u16 = 1232;

/// An upstream's response, ready to relay.
#[derive(Clone, Debug)]
pub struct Forwarded {
    /// The upstream's response code.
    pub rcode: ResponseCode,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section, without OPT.
    pub additionals: Vec<Record>,
}

/// Why forwarding failed (answered SERVFAIL).
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No upstream resolver is configured or found in resolv.conf.
    #[error("no upstream resolver configured")]
    NoUpstream,
    /// Every upstream failed; the last failure.
    #[error("upstream {upstream}: {reason}")]
    Upstream {
        /// The last upstream tried.
        upstream: SocketAddr,
        /// What went wrong there.
        reason: String,
    },
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    name: Name,
    qtype: RecordType,
    qclass: DNSClass,
}

struct CacheEntry {
    response: Forwarded,
    stored: Instant,
    ttl: u32,
}

/// The forwarder: upstreams plus a cache. `Send + Sync`; one per server.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    cache: Mutex<FastMap<CacheKey, CacheEntry>>,
}

impl Forwarder {
    /// A forwarder asking `upstreams` in order.
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder {
            upstreams,
            cache: Mutex::new(FastMap::default()),
        }
    }

    /// The upstreams asked, in order.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Resolves `query` from the cache or the upstreams.
    pub async fn resolve(&self, query: &Query) -> Result<Forwarded, ForwardError> {
        let key = CacheKey {
            name: query.name().to_lowercase(),
            qtype: query.query_type(),
            qclass: query.query_class(),
        };
        if let Some(hit) = self.cached(&key, Instant::now()) {
            return Ok(hit);
        }
        let mut last = ForwardError::NoUpstream;
        for &upstream in &self.upstreams {
            match ask(upstream, &key).await {
                Ok(response) => {
                    self.store(key, &response, Instant::now());
                    return Ok(response);
                }
                Err(reason) => {
                    tracing::debug!(%upstream, %reason, "upstream failed");
                    last = ForwardError::Upstream { upstream, reason };
                }
            }
        }
        Err(last)
    }

    /// A live cache entry with its TTLs counted down to `now`.
    fn cached(&self, key: &CacheKey, now: Instant) -> Option<Forwarded> {
        let cache = self.cache.lock();
        let entry = cache.get(key)?;
        let age = u32::try_from(now.saturating_duration_since(entry.stored).as_secs()).unwrap_or(u32::MAX);
        if age >= entry.ttl {
            return None;
        }
        let mut response = entry.response.clone();
        for record in response
            .answers
            .iter_mut()
            .chain(response.authorities.iter_mut())
            .chain(response.additionals.iter_mut())
        {
            record.ttl = record.ttl.saturating_sub(age);
        }
        Some(response)
    }

    fn store(&self, key: CacheKey, response: &Forwarded, now: Instant) {
        let Some(ttl) = cache_ttl(response) else {
            return;
        };
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, e| now.saturating_duration_since(e.stored).as_secs() < u64::from(e.ttl));
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            key,
            CacheEntry {
                response: response.clone(),
                stored: now,
                ttl,
            },
        );
    }
}

/// How long `response` may be cached, `None` for not at all.
fn cache_ttl(response: &Forwarded) -> Option<u32> {
    if !matches!(response.rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        return None;
    }
    let mut ttl = MAX_CACHE_TTL;
    let mut any = false;
    for record in response.answers.iter().chain(&response.authorities) {
        any = true;
        ttl = ttl.min(record.ttl);
        if let RData::SOA(soa) = &record.data {
            if response.answers.is_empty() {
                ttl = ttl.min(soa.minimum);
            }
        }
    }
    // A negative answer without SOA must not be cached (RFC 2308 §5).
    (any && ttl > 0).then_some(ttl)
}

/// One upstream, UDP then TCP on truncation.
async fn ask(upstream: SocketAddr, key: &CacheKey) -> Result<Forwarded, String> {
    let id = random_id();
    let mut request = Message::new(id, MessageType::Query, OpCode::Query);
    request.metadata.recursion_desired = true;
    let mut query = Query::query(key.name.clone(), key.qtype);
    query.set_query_class(key.qclass);
    request.add_query(query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD);
    request.set_edns(edns);
    let bytes = request.to_vec().map_err(|e| format!("encoding the query: {e}"))?;

    let udp = tokio::time::timeout(ATTEMPT_TIMEOUT, ask_udp(upstream, &bytes, id, &query))
        .await
        .map_err(|_| "timed out (udp)".to_owned())??;
    let response = if udp.metadata.truncation {
        tokio::time::timeout(ATTEMPT_TIMEOUT, ask_tcp(upstream, &bytes, id, &query))
            .await
            .map_err(|_| "timed out (tcp)".to_owned())??
    } else {
        udp
    };
    Ok(Forwarded {
        rcode: response.metadata.response_code,
        answers: response.answers,
        authorities: response.authorities,
        additionals: response
            .additionals
            .into_iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .collect(),
    })
}

async fn ask_udp(upstream: SocketAddr, bytes: &[u8], id: u16, query: &Query) -> Result<Message, String> {
    let local: IpAddr = match upstream {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0)).await.map_err(|e| format!("bind: {e}"))?;
    socket.connect(upstream).await.map_err(|e| format!("connect: {e}"))?;
    socket.send(bytes).await.map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(|e| format!("recv: {e}"))?;
        // Anything that is not the answer to our question is ignored (spoofing, stale).
        if let Some(message) = matching(&buf[..n], id, query) {
            return Ok(message);
        }
    }
}

async fn ask_tcp(upstream: SocketAddr, bytes: &[u8], id: u16, query: &Query) -> Result<Message, String> {
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
    matching(&buf, id, query).ok_or_else(|| "mismatched response".to_owned())
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn forwarded(rcode: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Forwarded {
        Forwarded {
            rcode,
            answers,
            authorities,
            additionals: Vec::new(),
        }
    }

    #[test]
    fn cache_ttl_follows_records_and_soa_minimum() {
        let a = Record::from_rdata(name("x.test."), 60, RData::A(A(Ipv4Addr::LOCALHOST)));
        assert_eq!(
            cache_ttl(&forwarded(ResponseCode::NoError, vec![a.clone()], vec![])),
            Some(60)
        );
        let soa = SOA::new(name("test."), name("h.test."), 1, 1, 1, 1, 7);
        let soa = Record::from_rdata(name("test."), 300, RData::SOA(soa));
        assert_eq!(
            cache_ttl(&forwarded(ResponseCode::NXDomain, vec![], vec![soa])),
            Some(7)
        );
        assert_eq!(cache_ttl(&forwarded(ResponseCode::NXDomain, vec![], vec![])), None);
        assert_eq!(cache_ttl(&forwarded(ResponseCode::ServFail, vec![a], vec![])), None);
    }

    #[test]
    fn cached_ttls_count_down_and_expire() {
        let f = Forwarder::new(Vec::new());
        let key = CacheKey {
            name: name("x.test."),
            qtype: RecordType::A,
            qclass: DNSClass::IN,
        };
        let a = Record::from_rdata(name("x.test."), 10, RData::A(A(Ipv4Addr::LOCALHOST)));
        let t0 = Instant::now();
        f.store(key.clone(), &forwarded(ResponseCode::NoError, vec![a], vec![]), t0);
        let hit = f.cached(&key, t0 + Duration::from_secs(4)).expect("live");
        assert_eq!(hit.answers[0].ttl, 6);
        assert!(f.cached(&key, t0 + Duration::from_secs(10)).is_none());
    }
}
