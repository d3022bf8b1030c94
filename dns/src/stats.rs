//! Query counters for metrics: how many queries of each kind got each
//! response code, plus truncated answers, answers that served an
//! unhealthy instance, and the front door's refusals: queries from outside
//! `allow_from`, over the rate limit, or over the forwarder's in-flight
//! bounds.
//!
//! The handler bumps these on every query (tens of thousands a second on
//! one core), so they are a fixed array of relaxed atomics indexed by
//! ([`QueryKind`], [`RcodeClass`]): no lock, no allocation, no map lookup.
//! Relaxed is enough: each counter is independent and only ever read for
//! monotonic totals; a scrape may see one counter a few queries ahead of
//! another, which Prometheus tolerates.
//!
//! Requests whose bytes do not parse never reach the handler (hickory's
//! server answers FORMERR or drops them itself), so they are not counted.
//! Queries refused by the ACL or the rate limit are counted only in their
//! own counters, not by kind and code: they are turned away before the
//! question is read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hickory_proto::op::ResponseCode;

use crate::name::{NameOutcome, Policy};

/// What a query asked for, as its name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum QueryKind {
    /// `closest.<service>…`
    Closest,
    /// `rr.<service>…`
    RoundRobin,
    /// `all.<service>…`
    All,
    /// `instance-N.<service>…`
    Instance,
    /// `explain.<policy>.<service>…`, whatever the policy.
    Explain,
    /// Under the zone but not a query: the apex, search-domain skeletons,
    /// names that are no grove query (NXDOMAIN or NODATA).
    OtherInZone,
    /// Outside the zone: forwarded upstream, or REFUSED when forwarding is off.
    Forwarded,
    /// Not a well-formed single question: an opcode other than QUERY, not
    /// exactly one question, an EDNS version above 0, an invalid name.
    Malformed,
}

impl QueryKind {
    /// Every kind, in index order.
    pub const ALL: [QueryKind; 8] = [
        QueryKind::Closest,
        QueryKind::RoundRobin,
        QueryKind::All,
        QueryKind::Instance,
        QueryKind::Explain,
        QueryKind::OtherInZone,
        QueryKind::Forwarded,
        QueryKind::Malformed,
    ];

    /// Stable label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Closest => "closest",
            QueryKind::RoundRobin => "rr",
            QueryKind::All => "all",
            QueryKind::Instance => "instance",
            QueryKind::Explain => "explain",
            QueryKind::OtherInZone => "other_in_zone",
            QueryKind::Forwarded => "forwarded",
            QueryKind::Malformed => "malformed",
        }
    }

    /// The kind of a name, as [`crate::parse_labels`] read it.
    pub fn of(outcome: &NameOutcome) -> QueryKind {
        match outcome {
            NameOutcome::Query(q) if q.explain => QueryKind::Explain,
            NameOutcome::Query(q) => match q.policy {
                Policy::Closest => QueryKind::Closest,
                Policy::RoundRobin => QueryKind::RoundRobin,
                Policy::All => QueryKind::All,
                Policy::Instance(_) => QueryKind::Instance,
            },
            NameOutcome::Apex | NameOutcome::SearchDomain | NameOutcome::Malformed { .. } => QueryKind::OtherInZone,
            NameOutcome::Outside => QueryKind::Forwarded,
            NameOutcome::Invalid(_) => QueryKind::Malformed,
        }
    }
}

/// Response codes as counted: the common ones, the rest as `Other` (BADVERS
/// and whatever an upstream relays) so the array stays small and fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum RcodeClass {
    /// NOERROR (answers and NODATA).
    NoError,
    /// NXDOMAIN.
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// FORMERR.
    FormErr,
    /// NOTIMP.
    NotImp,
    /// Anything else.
    Other,
}

impl RcodeClass {
    /// Every class, in index order.
    pub const ALL: [RcodeClass; 7] = [
        RcodeClass::NoError,
        RcodeClass::NxDomain,
        RcodeClass::ServFail,
        RcodeClass::Refused,
        RcodeClass::FormErr,
        RcodeClass::NotImp,
        RcodeClass::Other,
    ];

    /// Stable label used in metrics (the RFC mnemonic).
    pub fn as_str(self) -> &'static str {
        match self {
            RcodeClass::NoError => "NOERROR",
            RcodeClass::NxDomain => "NXDOMAIN",
            RcodeClass::ServFail => "SERVFAIL",
            RcodeClass::Refused => "REFUSED",
            RcodeClass::FormErr => "FORMERR",
            RcodeClass::NotImp => "NOTIMP",
            RcodeClass::Other => "other",
        }
    }

    /// The class of a response code.
    pub fn of(code: ResponseCode) -> RcodeClass {
        match code {
            ResponseCode::NoError => RcodeClass::NoError,
            ResponseCode::NXDomain => RcodeClass::NxDomain,
            ResponseCode::ServFail => RcodeClass::ServFail,
            ResponseCode::Refused => RcodeClass::Refused,
            ResponseCode::FormErr => RcodeClass::FormErr,
            ResponseCode::NotImp => RcodeClass::NotImp,
            _ => RcodeClass::Other,
        }
    }
}

const KINDS: usize = QueryKind::ALL.len();
const RCODES: usize = RcodeClass::ALL.len();

/// One non-zero cell of [`QueryStats::snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryCount {
    /// [`QueryKind::as_str`].
    pub kind: &'static str,
    /// [`RcodeClass::as_str`].
    pub rcode: &'static str,
    /// Queries so far.
    pub count: u64,
}

/// Counters of the queries a handler answered. Shared (`Arc`) between the
/// handler and whoever reports them; every method takes `&self`.
#[derive(Debug)]
pub struct QueryStats {
    queries: [AtomicU64; KINDS * RCODES],
    truncated: AtomicU64,
    unhealthy_served: AtomicU64,
    not_allowed: AtomicU64,
    rate_limited: AtomicU64,
    rate_slipped: AtomicU64,
    forward_busy: AtomicU64,
}

impl Default for QueryStats {
    fn default() -> QueryStats {
        QueryStats {
            queries: std::array::from_fn(|_| AtomicU64::new(0)),
            truncated: AtomicU64::new(0),
            unhealthy_served: AtomicU64::new(0),
            not_allowed: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            rate_slipped: AtomicU64::new(0),
            forward_busy: AtomicU64::new(0),
        }
    }
}

impl QueryStats {
    /// All counters at zero.
    pub fn new() -> QueryStats {
        QueryStats::default()
    }

    /// Counts one query of `kind` answered with `code`.
    #[inline]
    pub fn record(&self, kind: QueryKind, code: ResponseCode) {
        self.queries[index(kind, RcodeClass::of(code))].fetch_add(1, Relaxed);
    }

    /// Counts one response cut to fit UDP (TC set).
    #[inline]
    pub fn record_truncated(&self) {
        self.truncated.fetch_add(1, Relaxed);
    }

    /// Counts one answer that served an unhealthy instance (no healthy one
    /// qualified and `serve_unhealthy` is on, or `instance-N` of a sick one).
    #[inline]
    pub fn record_unhealthy_served(&self) {
        self.unhealthy_served.fetch_add(1, Relaxed);
    }

    /// Counts one query from a source outside `allow_from` (dropped over
    /// UDP, REFUSED over TCP).
    #[inline]
    pub fn record_not_allowed(&self) {
        self.not_allowed.fetch_add(1, Relaxed);
    }

    /// Counts one query over its client's rate limit; `slipped` when it got
    /// an empty TC=1 response rather than none (or REFUSED over TCP).
    #[inline]
    pub fn record_rate_limited(&self, slipped: bool) {
        self.rate_limited.fetch_add(1, Relaxed);
        if slipped {
            self.rate_slipped.fetch_add(1, Relaxed);
        }
    }

    /// Counts one forwarded query refused by the in-flight bounds (SERVFAIL
    /// at once; also counted as forwarded/SERVFAIL).
    #[inline]
    pub fn record_forward_busy(&self) {
        self.forward_busy.fetch_add(1, Relaxed);
    }

    /// Queries from outside `allow_from` so far.
    pub fn not_allowed(&self) -> u64 {
        self.not_allowed.load(Relaxed)
    }

    /// Queries over their client's rate limit so far (dropped or slipped).
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Relaxed)
    }

    /// Of [`QueryStats::rate_limited`], those answered with an empty TC=1.
    pub fn rate_slipped(&self) -> u64 {
        self.rate_slipped.load(Relaxed)
    }

    /// Forwarded queries refused by the in-flight bounds so far.
    pub fn forward_busy(&self) -> u64 {
        self.forward_busy.load(Relaxed)
    }

    /// Queries of `kind` answered with a code of class `rcode` so far.
    pub fn count(&self, kind: QueryKind, rcode: RcodeClass) -> u64 {
        self.queries[index(kind, rcode)].load(Relaxed)
    }

    /// Responses truncated so far.
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Relaxed)
    }

    /// Answers that served an unhealthy instance so far.
    pub fn unhealthy_served(&self) -> u64 {
        self.unhealthy_served.load(Relaxed)
    }

    /// Every non-zero (kind, rcode) count, kinds then rcodes in declaration order.
    pub fn snapshot(&self) -> Vec<QueryCount> {
        let mut out = Vec::new();
        for kind in QueryKind::ALL {
            for rcode in RcodeClass::ALL {
                let count = self.count(kind, rcode);
                if count > 0 {
                    out.push(QueryCount {
                        kind: kind.as_str(),
                        rcode: rcode.as_str(),
                        count,
                    });
                }
            }
        }
        out
    }
}

#[inline]
fn index(kind: QueryKind, rcode: RcodeClass) -> usize {
    kind as usize * RCODES + rcode as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_match_the_discriminants() {
        for (i, kind) in QueryKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i);
        }
        for (i, rcode) in RcodeClass::ALL.into_iter().enumerate() {
            assert_eq!(rcode as usize, i);
        }
    }

    #[test]
    fn counts_land_in_their_cell_and_snapshot_skips_zeros() {
        let stats = QueryStats::new();
        assert!(stats.snapshot().is_empty());
        stats.record(QueryKind::Closest, ResponseCode::NoError);
        stats.record(QueryKind::Closest, ResponseCode::NoError);
        stats.record(QueryKind::Forwarded, ResponseCode::BADVERS);
        stats.record(QueryKind::Malformed, ResponseCode::FormErr);
        stats.record_truncated();
        let cell = |kind, rcode, count| QueryCount { kind, rcode, count };
        assert_eq!(
            stats.snapshot(),
            vec![
                cell("closest", "NOERROR", 2),
                cell("forwarded", "other", 1),
                cell("malformed", "FORMERR", 1),
            ]
        );
        assert_eq!(stats.truncated(), 1);
        assert_eq!(stats.unhealthy_served(), 0);
    }

    #[test]
    fn front_door_refusals_have_their_own_counters() {
        let stats = QueryStats::new();
        stats.record_not_allowed();
        stats.record_rate_limited(false);
        stats.record_rate_limited(true);
        stats.record_forward_busy();
        assert_eq!((stats.not_allowed(), stats.forward_busy()), (1, 1));
        assert_eq!((stats.rate_limited(), stats.rate_slipped()), (2, 1));
        assert!(stats.snapshot().is_empty(), "not in the (kind, rcode) cells");
    }
}
