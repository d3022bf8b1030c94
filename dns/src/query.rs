//! The parsed form of a grove name, and what else a name can turn out to
//! be. The grammar that produces them is in [`crate::name`].

use std::fmt;

use crate::directory::Protocol;
use crate::label::Label;
use crate::name::EXPLAIN_LABEL;

/// How to choose among the instances of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The instance nearest to the asker by estimated RTT, geography breaking
    /// near-ties and standing in where no RTT is known.
    Closest,
    /// The next instance in a per-asker rotation (`rr`).
    RoundRobin,
    /// Every healthy instance.
    All,
    /// The instance with this number (`instance-N`).
    Instance(u32),
}

impl Policy {
    /// Reads a policy label. `Ok(None)` for a label that is no policy word,
    /// `Err` for `instance-…` with a bad number.
    pub(crate) fn from_label(label: &Label) -> Result<Option<Policy>, NameError> {
        Ok(Some(match label.as_str() {
            "closest" => Policy::Closest,
            "rr" => Policy::RoundRobin,
            "all" => Policy::All,
            other => match other.strip_prefix("instance-") {
                Some(digits) => Policy::Instance(parse_instance_number(digits)?),
                None => return Ok(None),
            },
        }))
    }

    /// True for answers that change from one query to the next (`closest`
    /// follows latency, `rr` rotates): they get short TTLs.
    pub fn is_moving(self) -> bool {
        matches!(self, Policy::Closest | Policy::RoundRobin)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Closest => f.write_str("closest"),
            Policy::RoundRobin => f.write_str("rr"),
            Policy::All => f.write_str("all"),
            Policy::Instance(n) => write!(f, "instance-{n}"),
        }
    }
}

/// Canonical decimal only (`0`, `7`, `12`; not `07`, `+7`, `1e3`), so that one
/// instance has one name and caches do not split.
fn parse_instance_number(digits: &str) -> Result<u32, NameError> {
    let canonical =
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return Err(NameError::BadInstanceNumber);
    }
    digits.parse().map_err(|_| NameError::BadInstanceNumber)
}

/// The SRV form's `_<port>._<proto>` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSelector {
    /// The port's name as the instance registered it (`http`, `grpc`).
    pub name: Label,
    /// `_tcp` or `_udp`.
    pub protocol: Protocol,
}

/// Who asks, as the search-domain suffix of the query says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchContext {
    /// The asking workload's app.
    pub app: Label,
    /// The asking workload's namespace.
    pub namespace: Label,
}

/// `<service>[.<app>[.<namespace>]]`: which service a name designates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServicePath {
    /// The service name.
    pub service: Label,
    /// The app, when the name gives it.
    pub app: Option<Label>,
    /// The namespace, when the name gives it (only ever with an app).
    pub namespace: Option<Label>,
}

/// A parsed grove query name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryName {
    /// `explain.` was given: answer with TXT reasoning.
    pub explain: bool,
    /// How to choose among the instances.
    pub policy: Policy,
    /// The service, and the app and namespace if the name gives them.
    pub path: ServicePath,
    /// `_<port>._<proto>.` was given (SRV form).
    pub port: Option<PortSelector>,
    /// The asker's app and namespace from a search-domain suffix.
    pub context: Option<SearchContext>,
}

/// What a name is to grove. The caller maps it to an action; see each variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameOutcome {
    /// A query to answer.
    Query(QueryName),
    /// The zone apex: SOA and NS live here.
    Apex,
    /// The search-domain skeleton (`svc.<zone>`, `<ns>.svc.<zone>`,
    /// `<app>.<ns>.svc.<zone>`): exists, holds no records (NODATA).
    SearchDomain,
    /// Not at or under the zone: forward upstream (or REFUSED when forwarding
    /// is off).
    Outside,
    /// Under the zone, but not a grove query: NXDOMAIN, unless `above` names
    /// an existing service path, in which case the name is an empty
    /// non-terminal above real query names (`ms2.grove` above
    /// `closest.ms2.grove`) and must get NODATA: RFC 8020 lets resolvers
    /// treat everything below an NXDOMAIN as nonexistent.
    Malformed {
        /// Why it is not a query.
        error: NameError,
        /// The name read as a service path, when it could be one.
        above: Option<ServicePath>,
    },
    /// Not a valid DNS name at all (empty label, oversize label or name):
    /// FORMERR.
    Invalid(NameError),
}

/// Why a name is not a grove query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Syntax: an empty label (`a..b`, a leading dot).
    #[error("empty label")]
    EmptyLabel,
    /// Syntax: a label over 63 bytes.
    #[error("label of {len} bytes (at most 63)")]
    LabelTooLong {
        /// Its length.
        len: usize,
    },
    /// Syntax: a name over 253 bytes (255 on the wire) or 127 labels.
    #[error("name of {len} bytes (at most 253)")]
    NameTooLong {
        /// Its length (so far, when counting stopped early).
        len: usize,
    },
    /// A label with other bytes than letters, digits and inner hyphens.
    #[error("label {position} is not letters, digits and inner hyphens")]
    BadLabel {
        /// Index of the label from the left, 0-based.
        position: usize,
    },
    /// The policy label is no policy.
    #[error("unknown policy {policy} (closest, rr, all, instance-N)")]
    UnknownPolicy {
        /// The label found there.
        policy: Label,
    },
    /// `instance-` followed by anything but a canonical u32.
    #[error("instance number must be a decimal without leading zeros")]
    BadInstanceNumber,
    /// A policy and nothing after it.
    #[error("no service after the policy")]
    MissingService,
    /// More than `<policy>.<service>.<app>.<namespace>`.
    #[error("{count} labels where at most policy.service.app.namespace fit")]
    TooManyLabels {
        /// Labels in front of the zone.
        count: usize,
    },
    /// `svc` used as a service, app or namespace.
    #[error("`svc` is reserved for search domains")]
    ReservedLabel,
    /// A malformed `_<port>._<proto>` prefix.
    #[error("SRV prefix must be _<port>._tcp or _<port>._udp")]
    BadPort,
}

impl NameError {
    /// True for errors that make the name invalid DNS (FORMERR), false for
    /// valid DNS names that are not grove queries (NXDOMAIN).
    pub fn is_syntax(&self) -> bool {
        matches!(
            self,
            NameError::EmptyLabel | NameError::LabelTooLong { .. } | NameError::NameTooLong { .. }
        )
    }
}
impl fmt::Display for ServicePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.service.as_str())?;
        for label in [&self.app, &self.namespace].into_iter().flatten() {
            write!(f, ".{label}")?;
        }
        Ok(())
    }
}

/// The name relative to the zone as the user would write it, without the
/// search suffix (`_http._tcp.explain.closest.ms2.web`).
impl fmt::Display for QueryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(port) = &self.port {
            write!(f, "_{}._{}.", port.name, port.protocol)?;
        }
        if self.explain {
            write!(f, "{EXPLAIN_LABEL}.")?;
        }
        write!(f, "{}.{}", self.policy, self.path)
    }
}
