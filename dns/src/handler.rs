//! [`GroveHandler`]: hickory's [`RequestHandler`] for grove. It turns a
//! request into an [`Answer`] (names under the zone through the pure core,
//! other names through the [`Forwarder`]) and hands it to hickory's
//! [`MessageResponseBuilder`], which encodes it and truncates UDP responses
//! to the client's EDNS payload size (512 bytes without EDNS, RFC 1035
//! §4.2.1), setting TC so the client retries over TCP, where nothing is cut.
//!
//! Per request:
//! 1. the front door, on the source address before anything else: outside
//!    `allow_from` ([`ClientAcl`]), no response over UDP and REFUSED over
//!    TCP; over the client's rate ([`RateTable`]), no response over UDP
//!    (every `slip`-th an empty TC=1) and REFUSED over TCP. Both cost one
//!    short scan and one hash lookup, no allocation;
//! 2. opcode other than QUERY: NOTIMP; not exactly one question: FORMERR;
//!    EDNS version above 0: BADVERS (RFC 6891 §6.1.3);
//! 3. the name is parsed under the zone ([`parse_labels`]); outside the zone
//!    it is forwarded, or REFUSED when forwarding is off;
//! 4. one [`MemoryDirectory::snapshot`] answers everything about the query;
//! 5. [`select`] with the asker's source address, then [`answer_query`],
//!    then the bounds of [`crate::shape`] (RFC 8482 ANY, TXT size).
//!
//! Where the response code is set, the query is counted in [`QueryStats`]
//! by [`QueryKind`] and code (one relaxed atomic add); truncation is
//! counted once hickory has encoded the response; the front door's
//! refusals have counters of their own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Edns, LowerQuery, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use parking_lot::Mutex;

use crate::answer::{
    answer_query, rcode, Answer, Disposition, ExtendedError, ZoneRecords, EDE_NETWORK_ERROR, EDE_OPTION_CODE, EDE_OTHER,
};
use crate::client::{ClientAcl, ClientKey};
use crate::config::{DnsConfig, PolicyConfig};
use crate::directory::Directory;
use crate::forward::Forwarder;
use crate::name::{parse_labels, NameOutcome};
use crate::ratelimit::{RateTable, Verdict};
use crate::rr::RrTable;
use crate::select::{select, Asker, SelectOutcome};
use crate::shape::{cap_ede_text, shape_zone_answer};
use crate::stats::{QueryKind, QueryStats};
use crate::store::MemoryDirectory;
use crate::Zone;

/// Largest UDP response we send, whatever the client offers: the DNS flag
/// day 2020 figure, which avoids IP fragmentation on common paths.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// grove's request handler: the zone from the directory, the rest forwarded.
pub struct GroveHandler {
    zone: Zone,
    records: ZoneRecords,
    policy: PolicyConfig,
    rr: RrTable,
    directory: Arc<MemoryDirectory>,
    /// `None` when forwarding is off.
    forwarder: Option<Arc<Forwarder>>,
    stats: Arc<QueryStats>,
    /// Who may ask at all (`allow_from`).
    acl: ClientAcl,
    /// Per-client token buckets; `None` when the limit is off.
    rate: Option<Mutex<RateTable>>,
}

/// What the front door does with a request before it is read.
enum Door {
    /// Let it in.
    Open,
    /// No response at all.
    Drop,
    /// An empty response with this code, TC set when `truncated`.
    Bare { code: ResponseCode, truncated: bool },
}

/// An answer with what the counters need to know about it.
struct Counted {
    answer: Answer,
    kind: QueryKind,
    /// The answer's records are of an unhealthy instance.
    unhealthy: bool,
}

impl Counted {
    fn of(kind: QueryKind, answer: Answer) -> Counted {
        Counted {
            answer,
            kind,
            unhealthy: false,
        }
    }
}

impl GroveHandler {
    /// A handler for `config` over `directory`; `forwarder` is `None` when
    /// forwarding is off.
    pub fn new(config: &DnsConfig, directory: Arc<MemoryDirectory>, forwarder: Option<Arc<Forwarder>>) -> GroveHandler {
        GroveHandler {
            zone: config.zone.clone(),
            records: ZoneRecords::new(&config.zone, &config.ttl),
            policy: config.policy.clone(),
            rr: RrTable::new(config.policy.rr_buckets, random_seed()),
            directory,
            forwarder,
            stats: Arc::new(QueryStats::new()),
            acl: ClientAcl::new(&config.allow_from),
            rate: RateTable::new(&config.rate_limit, Instant::now()).map(Mutex::new),
        }
    }

    /// The front door: the source address against `allow_from`, then the
    /// client's rate. Over UDP a refusal sends nothing: a REFUSED to a
    /// forged source would still reflect, and a LAN scanner learns nothing
    /// (RRL's practice). Over TCP the handshake proved the source, an
    /// answer cannot reflect, and silence would only stall the connection,
    /// so refusals are REFUSED.
    fn door(&self, src: IpAddr, protocol: Protocol) -> Door {
        let udp = protocol == Protocol::Udp;
        let refused = |udp| {
            if udp {
                Door::Drop
            } else {
                Door::Bare {
                    code: ResponseCode::Refused,
                    truncated: false,
                }
            }
        };
        if !self.acl.allows(src) {
            self.stats.record_not_allowed();
            return refused(udp);
        }
        let Some(rate) = &self.rate else {
            return Door::Open;
        };
        let verdict = rate.lock().check(ClientKey::of(src), Instant::now());
        match verdict {
            Verdict::Allow => Door::Open,
            Verdict::Drop => {
                self.stats.record_rate_limited(false);
                refused(udp)
            }
            Verdict::Slip => {
                self.stats.record_rate_limited(udp);
                if udp {
                    Door::Bare {
                        code: ResponseCode::NoError,
                        truncated: true,
                    }
                } else {
                    refused(udp)
                }
            }
        }
    }

    /// The counters of the queries this handler answers (shared, live).
    pub fn stats(&self) -> Arc<QueryStats> {
        self.stats.clone()
    }

    /// The answer to one question from `src` (no EDNS or header concerns,
    /// and no front door: the caller is trusted with `src`).
    pub async fn answer(&self, query: &LowerQuery, src: SocketAddr) -> Answer {
        self.answer_counted(query, src).await.answer
    }

    /// [`GroveHandler::answer`], with the query's kind and health.
    async fn answer_counted(&self, query: &LowerQuery, src: SocketAddr) -> Counted {
        let original = query.original();
        let qname = original.name();
        let outcome = parse_labels(qname.iter(), &self.zone);
        let kind = QueryKind::of(&outcome);
        if outcome == NameOutcome::Outside {
            return Counted::of(kind, self.forward(original, src.ip()).await);
        }
        let mut counted = self.answer_in_zone(query, src, outcome, kind);
        shape_zone_answer(&mut counted.answer, query.query_type());
        counted
    }

    /// The answer to a question under the zone.
    fn answer_in_zone(&self, query: &LowerQuery, src: SocketAddr, outcome: NameOutcome, kind: QueryKind) -> Counted {
        let qname = query.original().name();
        if query.query_class() != DNSClass::IN && query.query_class() != DNSClass::ANY {
            return Counted::of(kind, Answer::empty(Disposition::Refused));
        }
        let qtype = query.query_type();
        let answer = match outcome {
            NameOutcome::Query(parsed) => {
                let snapshot = self.directory.snapshot();
                let asker = Asker::from_address(src.ip());
                let selected = select(&parsed, &asker, &*snapshot, &self.rr, &self.policy);
                let answer = answer_query(&absolute(qname), qtype, &parsed, &selected, &self.records);
                // Only records of instances count as serving one (an
                // explanation or NODATA serves nothing).
                let unhealthy = !parsed.explain
                    && answer.disposition == Disposition::Records
                    && matches!(&selected, SelectOutcome::Selected(s) if s.degraded);
                return Counted {
                    answer,
                    kind,
                    unhealthy,
                };
            }
            NameOutcome::Apex => self.records.apex(qtype),
            NameOutcome::SearchDomain => self.records.no_data(),
            NameOutcome::Malformed { above: Some(path), .. } => {
                // An empty non-terminal above real names (RFC 8020): NODATA
                // when the service path exists, NXDOMAIN otherwise.
                let snapshot = self.directory.snapshot();
                let found = snapshot.service(path.service.as_str()).scoped(
                    path.app.as_ref().map(|l| l.as_str()),
                    path.namespace.as_ref().map(|l| l.as_str()),
                );
                if found.is_empty() {
                    self.records.nx_domain()
                } else {
                    self.records.no_data()
                }
            }
            NameOutcome::Malformed { above: None, .. } => self.records.nx_domain(),
            NameOutcome::Invalid(_) => Answer::empty(Disposition::FormatError),
            NameOutcome::Outside => Answer::empty(Disposition::Refused),
        };
        Counted::of(kind, answer)
    }

    async fn forward(&self, query: &hickory_proto::op::Query, client: IpAddr) -> Answer {
        let Some(forwarder) = &self.forwarder else {
            return Answer::empty(Disposition::Refused);
        };
        match forwarder.resolve(query, client).await {
            Ok(forwarded) => Answer {
                // Relayed as is: the upstream's rcode is carried by the
                // disposition closest to it, see `forwarded_disposition`.
                disposition: forwarded_disposition(forwarded.rcode, !forwarded.answers.is_empty()),
                answers: forwarded.answers,
                authorities: forwarded.authorities,
                additionals: forwarded.additionals,
                extended_error: None,
            },
            Err(error) => {
                if error.is_busy() {
                    self.stats.record_forward_busy();
                }
                // RFC 8914: 23 "Network Error" for upstreams that failed; 0
                // "Other" for our own bounds. The text is generic: no
                // upstream address (review F27).
                let info_code = if error.is_busy() { EDE_OTHER } else { EDE_NETWORK_ERROR };
                Answer {
                    extended_error: Some(ExtendedError {
                        info_code,
                        text: error.public_text().to_owned(),
                    }),
                    ..Answer::empty(Disposition::ServerFailure)
                }
            }
        }
    }

    /// An empty response (REFUSED, or TC=1 to send the client to TCP) for
    /// the front door, echoing the question.
    async fn send_bare<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
        code: ResponseCode,
        truncated: bool,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        metadata.truncation = truncated;
        metadata.recursion_available = self.forwarder.is_some();
        let response = MessageResponseBuilder::new(&request.queries, None).build(
            metadata,
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "sending a DNS response failed");
                unanswered(request)
            }
        }
    }
}

/// The [`ResponseInfo`] of a request whose response was not sent (dropped
/// by the front door, or sending failed); hickory's server discards it.
fn unanswered(request: &Request) -> ResponseInfo {
    let mut header = hickory_proto::op::Header {
        metadata: Metadata::response_from_request(&request.metadata),
        counts: Default::default(),
    };
    header.metadata.response_code = ResponseCode::ServFail;
    header.into()
}

/// The disposition relaying an upstream's response code.
fn forwarded_disposition(code: ResponseCode, has_answers: bool) -> Disposition {
    match code {
        ResponseCode::NoError if has_answers => Disposition::Records,
        ResponseCode::NoError => Disposition::NoData,
        ResponseCode::NXDomain => Disposition::NxDomain,
        ResponseCode::Refused => Disposition::Refused,
        ResponseCode::FormErr => Disposition::FormatError,
        ResponseCode::NotImp => Disposition::NotImplemented,
        _ => Disposition::ServerFailure,
    }
}

/// The query name as an absolute name (hickory parses wire names as FQDNs;
/// this only guards the invariant).
fn absolute(name: &Name) -> Name {
    let mut name = name.clone();
    name.set_fqdn(true);
    name
}

/// The response EDNS for a request's, `None` when the request had none:
/// our payload size is the client's, between 512 and [`MAX_UDP_PAYLOAD`]
/// (hickory truncates UDP responses to the response's advertised size).
fn response_edns(request: Option<&Edns>) -> Option<Edns> {
    let request = request?;
    let mut edns = Edns::new();
    edns.set_max_payload(request.max_payload().clamp(512, MAX_UDP_PAYLOAD));
    edns.set_version(0);
    edns.set_dnssec_ok(request.flags().dnssec_ok);
    Some(edns)
}

#[async_trait::async_trait]
impl RequestHandler for GroveHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        match self.door(request.src().ip(), request.protocol()) {
            Door::Open => {}
            Door::Drop => return unanswered(request),
            Door::Bare { code, truncated } => {
                return self.send_bare(request, response_handle, code, truncated).await;
            }
        }
        let mut edns = response_edns(request.edns.as_ref());
        let malformed = |disposition| Counted::of(QueryKind::Malformed, Answer::empty(disposition));
        let counted = if request.metadata.op_code != OpCode::Query {
            malformed(Disposition::NotImplemented)
        } else if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            malformed(Disposition::BadVersion)
        } else if request.queries.len() != 1 {
            malformed(Disposition::FormatError)
        } else {
            self.answer_counted(&request.queries.queries()[0], request.src()).await
        };
        let mut answer = counted.answer;

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = rcode(answer.disposition);
        self.stats.record(counted.kind, metadata.response_code);
        if counted.unhealthy {
            self.stats.record_unhealthy_served();
        }
        metadata.recursion_available = self.forwarder.is_some();
        metadata.authoritative = matches!(
            answer.disposition,
            Disposition::Records | Disposition::NoData | Disposition::NxDomain
        ) && in_zone(request, &self.zone);
        if let Some(error) = &mut answer.extended_error {
            cap_ede_text(&mut error.text);
        }
        if let (Some(edns), Some(error)) = (edns.as_mut(), &answer.extended_error) {
            edns.options_mut()
                .insert(EdnsOption::Unknown(EDE_OPTION_CODE, error.payload()));
        }

        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => {
                if info.truncation {
                    self.stats.record_truncated();
                }
                info
            }
            Err(error) => {
                tracing::debug!(%error, "sending a DNS response failed");
                unanswered(request)
            }
        }
    }
}

/// True when the request's (single) question is at or under the zone.
fn in_zone(request: &Request, zone: &Zone) -> bool {
    request
        .queries
        .queries()
        .first()
        .is_some_and(|q| parse_labels(q.original().name().iter(), zone) != NameOutcome::Outside)
}

/// Seed for the round-robin table's hashing, so that rotation positions
/// cannot be predicted from outside.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "front_door_tests.rs"]
mod front_door_tests;
