//! Forwarding of names outside the zone to upstream resolvers, with a
//! cache that honours TTLs, bounded in bytes, in flight and per client.
//!
//! A small forwarder of our own rather than `hickory-resolver`: the
//! resolver's API returns records or errors, so NXDOMAIN/NODATA with their
//! SOA, the upstream's rcode and the authority section would have to be
//! reconstructed from error values. Here the upstream's response is relayed
//! as it came (rcode, answers, authorities, additionals minus OPT).
//!
//! The cache ([`crate::cache::ByteCache`]):
//!
//! * key: lowercase name, type, class;
//! * value: the upstream's response in wire form, so its size is known
//!   exactly (parsed records take several times the wire bytes); a hit is
//!   parsed again, about as costly as the record copies it replaces;
//! * lifetime: the smallest TTL of the answer and authority records; for
//!   negative answers the SOA's MINIMUM when smaller (RFC 2308 §5); at most
//!   [`MAX_CACHE_TTL`]; SERVFAIL and other failures are not cached;
//!   served TTLs count down from the time of caching;
//! * size: at most `cache_bytes` ([`ForwardConfig`]), least recently used
//!   evicted first; one answer larger than a fraction of that is relayed
//!   but not cached.
//!
//! In flight (`inflight`): at most `max_in_flight` queries wait
//! for an upstream, `max_in_flight_per_client` of them per client; beyond
//! that a query fails at once ([`ForwardError::Busy`]), so a flood of names
//! whose servers never answer holds a bounded number of sockets and
//! buffers. Identical queries in flight (same name, type, class) are
//! coalesced: the first asks the upstream, the others wait for its answer.
//!
//! Each upstream is asked over UDP, then over TCP when the answer is
//! truncated (`upstream`). Every attempt has a timeout, so a dead
//! upstream costs [`ATTEMPT_TIMEOUT`] per upstream, then SERVFAIL.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::cache::{ByteCache, Insert, Weigh, ALLOCATION_OVERHEAD};
use crate::client::ClientKey;
use crate::config::ForwardConfig;
use crate::inflight::{InFlight, Refusal};
pub use crate::upstream::ATTEMPT_TIMEOUT;

/// Cached answers live at most this long, whatever their TTL.
pub const MAX_CACHE_TTL: u32 = 3600;

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

impl Forwarded {
    fn from_message(message: Message) -> Forwarded {
        Forwarded {
            rcode: message.metadata.response_code,
            answers: message.answers,
            authorities: message.authorities,
            additionals: message
                .additionals
                .into_iter()
                .filter(|r| r.record_type() != RecordType::OPT)
                .collect(),
        }
    }

    /// TTLs as they are `age` seconds after caching.
    fn aged(mut self, age: u32) -> Forwarded {
        for record in self
            .answers
            .iter_mut()
            .chain(self.authorities.iter_mut())
            .chain(self.additionals.iter_mut())
        {
            record.ttl = record.ttl.saturating_sub(age);
        }
        self
    }
}

/// Why forwarding failed (answered SERVFAIL). `Display` is for logs;
/// [`ForwardError::public_text`] is what a client may be told.
#[derive(Clone, Debug, thiserror::Error)]
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
    /// `max_in_flight` forwarded queries are waiting already.
    #[error("too many forwarded queries in flight")]
    Busy,
    /// This client has `max_in_flight_per_client` forwarded queries waiting.
    #[error("too many forwarded queries in flight from this client")]
    ClientBusy,
    /// The identical query this one waited on was abandoned (shutdown).
    #[error("the upstream query was abandoned")]
    Abandoned,
}

impl ForwardError {
    /// A text for the client (RFC 8914 EXTRA-TEXT): what failed, never the
    /// upstream's address or the host's resolver setup (review F27).
    pub fn public_text(&self) -> &'static str {
        match self {
            ForwardError::NoUpstream => "no upstream resolver configured",
            ForwardError::Upstream { .. } | ForwardError::Abandoned => "upstream resolvers did not answer",
            ForwardError::Busy | ForwardError::ClientBusy => "too many forwarded queries in flight",
        }
    }

    /// True for refusals by the in-flight bounds (no upstream was asked).
    pub fn is_busy(&self) -> bool {
        matches!(self, ForwardError::Busy | ForwardError::ClientBusy)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    name: Name,
    qtype: RecordType,
    qclass: DNSClass,
}

impl CacheKey {
    fn of(query: &Query) -> CacheKey {
        CacheKey {
            name: query.name().to_lowercase(),
            qtype: query.query_type(),
            qclass: query.query_class(),
        }
    }
}

impl Weigh for CacheKey {
    fn heap_bytes(&self) -> usize {
        // A name keeps up to 32 bytes of labels inline; counting its whole
        // length (and one end offset per label) as heap overestimates a little.
        self.name.len() + usize::from(self.name.num_labels()) + 2 * ALLOCATION_OVERHEAD
    }
}

type Outcome = Result<Forwarded, ForwardError>;

/// The forwarder: upstreams, cache, in-flight bounds. `Send + Sync`; one
/// per server.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    cache: Mutex<ByteCache<CacheKey, Arc<[u8]>>>,
    in_flight: Mutex<InFlight>,
    /// Queries being asked upstream now; identical queries wait on these.
    /// At most one per admitted query, so bounded by `max_in_flight`.
    flights: Mutex<HashMap<CacheKey, watch::Receiver<Option<Outcome>>>>,
    upstream_queries: AtomicU64,
    coalesced: AtomicU64,
}

impl Forwarder {
    /// A forwarder asking `upstreams` in order, with the default bounds.
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder::with_config(upstreams, &ForwardConfig::default())
    }

    /// A forwarder asking `upstreams` in order, with `config`'s bounds
    /// (its `enabled` and `upstreams` are the caller's business).
    pub fn with_config(upstreams: Vec<SocketAddr>, config: &ForwardConfig) -> Forwarder {
        Forwarder {
            upstreams,
            cache: Mutex::new(ByteCache::new(config.cache_bytes)),
            in_flight: Mutex::new(InFlight::new(config.max_in_flight, config.max_in_flight_per_client)),
            flights: Mutex::new(HashMap::new()),
            upstream_queries: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
        }
    }

    /// The upstreams asked, in order.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Resolves `query` for `client`: from the cache, else by waiting on an
    /// identical query in flight, else by asking the upstreams, within the
    /// in-flight bounds.
    pub async fn resolve(&self, query: &Query, client: IpAddr) -> Outcome {
        let key = CacheKey::of(query);
        if let Some(hit) = self.cached(&key, Instant::now()) {
            return Ok(hit);
        }
        let _admitted = self.admit(ClientKey::of(client))?;
        let role = {
            let mut flights = self.flights.lock();
            match flights.get(&key) {
                Some(flight) => Role::Follow(flight.clone()),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    flights.insert(key.clone(), receiver);
                    Role::Lead(sender)
                }
            }
        };
        let sender = match role {
            Role::Lead(sender) => sender,
            Role::Follow(flight) => {
                self.coalesced.fetch_add(1, Relaxed);
                return wait_for(flight).await;
            }
        };
        // However this future ends (answer, error, or dropped), the flight
        // goes; waiters of a dropped one see the sender gone.
        let mut landing = Landing {
            flights: &self.flights,
            key: &key,
            sender: Some(sender),
        };
        // The flight before ours may have landed (and cached) since our miss.
        let outcome = match self.cached(&key, Instant::now()) {
            Some(hit) => Ok(hit),
            None => self.ask_upstreams(&key).await,
        };
        landing.land(&outcome);
        outcome
    }

    fn admit(&self, client: ClientKey) -> Result<Admitted<'_>, ForwardError> {
        match self.in_flight.lock().admit(client) {
            Ok(()) => Ok(Admitted {
                in_flight: &self.in_flight,
                client,
            }),
            Err(Refusal::Full) => Err(ForwardError::Busy),
            Err(Refusal::ClientFull) => Err(ForwardError::ClientBusy),
        }
    }

    async fn ask_upstreams(&self, key: &CacheKey) -> Outcome {
        let mut query = Query::query(key.name.clone(), key.qtype);
        query.set_query_class(key.qclass);
        let mut last = ForwardError::NoUpstream;
        for &upstream in &self.upstreams {
            self.upstream_queries.fetch_add(1, Relaxed);
            match crate::upstream::ask(upstream, &query).await {
                Ok(reply) => {
                    let response = Forwarded::from_message(reply.message);
                    self.store(key.clone(), reply.bytes, &response, Instant::now());
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
        let (bytes, age) = {
            let mut cache = self.cache.lock();
            let (bytes, age) = cache.get(key, now)?;
            (bytes.clone(), age)
        };
        // Parsed outside the lock; it parsed when it was stored.
        let message = Message::from_vec(&bytes).ok()?;
        Some(Forwarded::from_message(message).aged(age))
    }

    fn store(&self, key: CacheKey, bytes: Arc<[u8]>, response: &Forwarded, now: Instant) {
        let Some(ttl) = cache_ttl(response) else {
            return;
        };
        if self.cache.lock().insert(key, bytes, ttl, now) == Insert::TooLarge {
            tracing::debug!("upstream answer too large to cache");
        }
    }

    /// Bytes the cache holds (counted as its budget counts them).
    pub fn cache_bytes(&self) -> usize {
        self.cache.lock().bytes()
    }

    /// Answers the cache holds.
    pub fn cache_len(&self) -> usize {
        self.cache.lock().len()
    }

    /// Forwarded queries waiting now (asking or coalesced).
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().total()
    }

    /// Queries sent to upstreams so far (one per upstream tried).
    pub fn upstream_queries(&self) -> u64 {
        self.upstream_queries.load(Relaxed)
    }

    /// Queries answered by waiting on an identical one in flight, so far.
    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Relaxed)
    }
}

/// What a query that missed the cache does: ask the upstreams itself and
/// tell the waiters, or wait for the identical query already asking.
enum Role {
    Lead(watch::Sender<Option<Outcome>>),
    Follow(watch::Receiver<Option<Outcome>>),
}

/// One admitted query; released when dropped.
struct Admitted<'a> {
    in_flight: &'a Mutex<InFlight>,
    client: ClientKey,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.in_flight.lock().release(self.client);
    }
}

/// A leader's flight: removed from the map when the leader is done, or
/// when it is dropped before (its waiters then see the sender gone).
struct Landing<'a> {
    flights: &'a Mutex<HashMap<CacheKey, watch::Receiver<Option<Outcome>>>>,
    key: &'a CacheKey,
    /// `None` once landed.
    sender: Option<watch::Sender<Option<Outcome>>>,
}

impl Landing<'_> {
    /// Ends the flight with `outcome`. Removed first, so no waiter can join
    /// after; the outcome is copied only when someone waits for it.
    fn land(&mut self, outcome: &Outcome) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        self.flights.lock().remove(self.key);
        if sender.receiver_count() > 0 {
            sender.send_replace(Some(outcome.clone()));
        }
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if self.sender.is_some() {
            self.flights.lock().remove(self.key);
        }
    }
}

/// The outcome of the flight `receiver` follows.
async fn wait_for(mut receiver: watch::Receiver<Option<Outcome>>) -> Outcome {
    match receiver.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or(Err(ForwardError::Abandoned)),
        Err(_) => Err(ForwardError::Abandoned),
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use hickory_proto::op::{MessageType, OpCode};
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
        let mut message = Message::new(1, MessageType::Response, OpCode::Query);
        message.add_query(Query::query(name("x.test."), RecordType::A));
        message.add_answer(a.clone());
        let bytes: Arc<[u8]> = message.to_vec().expect("encode").into();
        let t0 = Instant::now();
        f.store(
            key.clone(),
            bytes,
            &forwarded(ResponseCode::NoError, vec![a], vec![]),
            t0,
        );
        assert!(f.cache_bytes() > 0);
        let hit = f.cached(&key, t0 + Duration::from_secs(4)).expect("live");
        assert_eq!(hit.answers[0].ttl, 6);
        assert_eq!(hit.answers[0].data, RData::A(A(Ipv4Addr::LOCALHOST)));
        assert!(f.cached(&key, t0 + Duration::from_secs(10)).is_none());
        assert_eq!(f.cache_bytes(), 0);
    }

    #[test]
    fn public_texts_name_no_address() {
        let e = ForwardError::Upstream {
            upstream: "10.1.2.3:53".parse().expect("addr"),
            reason: "timed out (udp)".into(),
        };
        assert!(e.to_string().contains("10.1.2.3"), "logs keep the detail");
        assert!(!e.public_text().contains("10.1.2.3"));
        assert!(!e.public_text().contains(':'));
        assert!(ForwardError::ClientBusy.is_busy() && !e.is_busy());
    }

    #[tokio::test]
    async fn over_the_client_share_fails_at_once() {
        let config = ForwardConfig {
            max_in_flight: 4,
            max_in_flight_per_client: 1,
            ..ForwardConfig::default()
        };
        let f = Forwarder::with_config(Vec::new(), &config);
        let client: IpAddr = Ipv4Addr::new(10, 18, 0, 5).into();
        let _held = f.admit(ClientKey::of(client)).expect("first");
        assert_eq!(f.in_flight(), 1);
        let q = Query::query(name("x.test."), RecordType::A);
        assert!(matches!(f.resolve(&q, client).await, Err(ForwardError::ClientBusy)));
        // Another client still gets through (to no upstream here).
        let other: IpAddr = Ipv4Addr::new(10, 18, 0, 6).into();
        assert!(matches!(f.resolve(&q, other).await, Err(ForwardError::NoUpstream)));
        assert_eq!(f.in_flight(), 1, "released after answering");
    }
}
