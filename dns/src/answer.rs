//! From a parsed name and a [`SelectOutcome`] to DNS records: the meaning
//! layer between the pure core and hickory's wire types. Pure: no sockets,
//! no clock, no directory access beyond what the caller passes.
//!
//! Every answer is an [`Answer`] whose [`Disposition`] says what kind of
//! response it is; [`rcode`] is the one place dispositions become response
//! codes.
//!
//! * A/AAAA for the chosen instance(s); SRV (RFC 2782) for
//!   `_<port>._<proto>.` names, targets `instance-N.<service>.<app>.<namespace>.<zone>`
//!   with their A/AAAA as additionals; TXT for `explain.` names.
//! * NXDOMAIN with the zone's SOA in the authority section for names that do
//!   not exist, NODATA (NOERROR, no answers, SOA) for names that exist
//!   without the asked type: RFC 2308 §3 and §2.2. The SOA's TTL and MINIMUM
//!   are [`TtlConfig::negative_ttl`], RFC 2308 §5.
//! * An ambiguous short name is REFUSED with an RFC 8914 extended DNS error
//!   (INFO-CODE 0 "Other", EXTRA-TEXT listing the candidate apps), and the
//!   same text as TXT when TXT was asked. REFUSED, not NXDOMAIN: a stub
//!   resolver walking its search list must stop here rather than go on and
//!   resolve some other name (glibc ends the search on REFUSED), and nothing
//!   negative gets cached for a name that exists. hickory 0.26 has no typed
//!   EDE option, so it is carried as a raw EDNS option (code 15).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::directory::Instance;
use crate::explain::{explain_outcome, MAX_TXT_STRING};
use crate::name::QueryName;
use crate::policy::Selection;
use crate::select::SelectOutcome;
use crate::ttl::TtlConfig;
use crate::Zone;

/// RFC 8914 EDNS option code of an extended DNS error.
pub const EDE_OPTION_CODE: u16 = 15;
/// RFC 8914 §4.1 INFO-CODE "Other Error" (the EXTRA-TEXT says what).
pub const EDE_OTHER: u16 = 0;
/// RFC 8914 §4.23 INFO-CODE "Network Error" (upstream unreachable or timing out).
pub const EDE_NETWORK_ERROR: u16 = 23;

/// What kind of response an answer is; [`rcode`] maps it to the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The name has records of the asked type: NOERROR with answers.
    Records,
    /// The name exists, the type does not: NOERROR, no answers, SOA.
    NoData,
    /// The name does not exist: NXDOMAIN, SOA.
    NxDomain,
    /// A short name naming a service in several apps: REFUSED plus EDE.
    Ambiguous,
    /// Not a valid request (bad name, several questions): FORMERR.
    FormatError,
    /// Not ours to answer (outside the zone with forwarding off, a class
    /// other than IN): REFUSED.
    Refused,
    /// An opcode other than QUERY: NOTIMP.
    NotImplemented,
    /// The upstream failed or timed out: SERVFAIL.
    ServerFailure,
    /// The request's EDNS version is above 0: BADVERS (RFC 6891 §6.1.3).
    BadVersion,
}

/// The one mapping from dispositions to response codes.
pub fn rcode(disposition: Disposition) -> ResponseCode {
    match disposition {
        Disposition::Records | Disposition::NoData => ResponseCode::NoError,
        Disposition::NxDomain => ResponseCode::NXDomain,
        Disposition::Ambiguous | Disposition::Refused => ResponseCode::Refused,
        Disposition::FormatError => ResponseCode::FormErr,
        Disposition::NotImplemented => ResponseCode::NotImp,
        Disposition::ServerFailure => ResponseCode::ServFail,
        Disposition::BadVersion => ResponseCode::BADVERS,
    }
}

/// An RFC 8914 extended DNS error to attach when the client speaks EDNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendedError {
    /// INFO-CODE.
    pub info_code: u16,
    /// EXTRA-TEXT (UTF-8, for humans).
    pub text: String,
}

impl ExtendedError {
    /// The option's payload: INFO-CODE (big-endian) then EXTRA-TEXT.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.text.len());
        out.extend_from_slice(&self.info_code.to_be_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out
    }
}

/// A response's content, before hickory encodes it.
#[derive(Clone, Debug)]
pub struct Answer {
    /// What kind of response (and so its rcode).
    pub disposition: Disposition,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section (the SOA of negative answers).
    pub authorities: Vec<Record>,
    /// Additional section (A/AAAA of SRV targets).
    pub additionals: Vec<Record>,
    /// Extended DNS error, sent if the request had EDNS.
    pub extended_error: Option<ExtendedError>,
}

impl Answer {
    /// An answer with no records.
    pub fn empty(disposition: Disposition) -> Answer {
        Answer {
            disposition,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            extended_error: None,
        }
    }
}

/// The zone's own records (SOA and NS at the apex), built once from config.
#[derive(Clone, Debug)]
pub struct ZoneRecords {
    origin: Name,
    soa: Record,
    ns: Record,
    ttl: TtlConfig,
}

impl ZoneRecords {
    /// The records of `zone`. The SOA names the zone apex as primary server
    /// and `hostmaster.<zone>` as contact; MINIMUM and the SOA's own TTL are
    /// the negative TTL. grove is the only server for its zone, so its NS is
    /// the apex itself.
    pub fn new(zone: &Zone, ttl: &TtlConfig) -> ZoneRecords {
        let origin = zone_name(zone);
        let hostmaster = origin.prepend_label("hostmaster").unwrap_or_else(|_| origin.clone());
        let negative = ttl.negative_ttl();
        let soa = SOA::new(origin.clone(), hostmaster, 1, 60, 30, 3600, negative);
        ZoneRecords {
            soa: Record::from_rdata(origin.clone(), negative, RData::SOA(soa)),
            ns: Record::from_rdata(origin.clone(), ttl.stable_secs, RData::NS(NS(origin.clone()))),
            origin,
            ttl: ttl.clone(),
        }
    }

    /// The zone apex as an absolute name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The TTLs answers are given.
    pub fn ttl(&self) -> &TtlConfig {
        &self.ttl
    }

    fn negative(&self, disposition: Disposition) -> Answer {
        Answer {
            authorities: vec![self.soa.clone()],
            ..Answer::empty(disposition)
        }
    }

    /// NODATA: the name exists, not with this type.
    pub fn no_data(&self) -> Answer {
        self.negative(Disposition::NoData)
    }

    /// NXDOMAIN: the name does not exist.
    pub fn nx_domain(&self) -> Answer {
        self.negative(Disposition::NxDomain)
    }

    /// The zone apex: SOA and NS, NODATA for other types.
    pub fn apex(&self, qtype: RecordType) -> Answer {
        let answers: Vec<Record> = match qtype {
            RecordType::SOA => vec![self.soa_answer()],
            RecordType::NS => vec![self.ns.clone()],
            RecordType::ANY => vec![self.soa_answer(), self.ns.clone()],
            _ => return self.no_data(),
        };
        Answer {
            answers,
            ..Answer::empty(Disposition::Records)
        }
    }

    fn soa_answer(&self) -> Record {
        let mut soa = self.soa.clone();
        soa.ttl = self.ttl.stable_secs;
        soa
    }
}

/// The zone as an absolute hickory name.
pub fn zone_name(zone: &Zone) -> Name {
    let mut name = Name::from_labels(zone.labels().iter().map(|l| l.as_bytes())).unwrap_or_else(|_| Name::root());
    name.set_fqdn(true);
    name
}

/// The answer to a grove query (`qname`, as asked, owns the records).
pub fn answer_query(
    qname: &Name,
    qtype: RecordType,
    query: &QueryName,
    outcome: &SelectOutcome,
    zone: &ZoneRecords,
) -> Answer {
    if query.explain {
        return match qtype {
            RecordType::TXT | RecordType::ANY => {
                let ttl = match outcome {
                    SelectOutcome::Selected(s) => zone.ttl.answer_ttl(s),
                    _ => zone.ttl.explain_secs,
                };
                Answer {
                    answers: vec![txt(qname, ttl, explain_outcome(query, outcome))],
                    ..Answer::empty(Disposition::Records)
                }
            }
            _ => zone.no_data(),
        };
    }
    match outcome {
        SelectOutcome::Selected(selection) => answer_selection(qname, qtype, query, selection, zone),
        SelectOutcome::NoSuchService | SelectOutcome::NoSuchInstance { .. } | SelectOutcome::NoSuchPort => {
            zone.nx_domain()
        }
        SelectOutcome::NoHealthyInstance => zone.no_data(),
        SelectOutcome::Ambiguous { candidates } => {
            let apps: Vec<String> = candidates
                .iter()
                .map(|c| format!("{}.{}", c.app, c.namespace))
                .collect();
            let text = format!(
                "ambiguous: service {} exists in apps {}; name the app, as in {}.{}.{}",
                query.path.service,
                apps.join(", "),
                query.policy,
                query.path.service,
                candidates.first().map_or("<app>", |c| c.app.as_str()),
            );
            let answers = match qtype {
                RecordType::TXT | RecordType::ANY => {
                    vec![txt(qname, zone.ttl.negative_ttl(), vec![text.clone()])]
                }
                _ => Vec::new(),
            };
            Answer {
                answers,
                extended_error: Some(ExtendedError {
                    info_code: EDE_OTHER,
                    text,
                }),
                ..Answer::empty(Disposition::Ambiguous)
            }
        }
    }
}

fn answer_selection(
    qname: &Name,
    qtype: RecordType,
    query: &QueryName,
    selection: &Selection,
    zone: &ZoneRecords,
) -> Answer {
    let ttl = zone.ttl.answer_ttl(selection);
    let mut answer = Answer::empty(Disposition::Records);
    if let Some(port) = query.port {
        // RFC 2782 names hold SRV records only.
        if !matches!(qtype, RecordType::SRV | RecordType::ANY) {
            return zone.no_data();
        }
        let all = selection.chosen().take(2).count() > 1;
        for instance in selection.chosen() {
            let Some(p) = instance
                .ports
                .iter()
                .find(|p| p.name == port.name.as_str() && p.protocol == port.protocol)
            else {
                continue;
            };
            let Some(target) = instance_name(instance, zone.origin()) else {
                continue;
            };
            // `all`: one priority, equal weights (RFC 2782: weight 0 only when
            // there is no choice to make).
            let weight = u16::from(all);
            answer.answers.push(Record::from_rdata(
                qname.clone(),
                ttl,
                RData::SRV(SRV::new(0, weight, p.port, target.clone())),
            ));
            answer
                .additionals
                .extend(addresses(&target, ttl, instance, RecordType::ANY));
        }
    } else {
        if !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY) {
            return zone.no_data();
        }
        for instance in selection.chosen() {
            answer.answers.extend(addresses(qname, ttl, instance, qtype));
        }
    }
    if answer.answers.is_empty() {
        return zone.no_data();
    }
    answer
}

/// `instance-N.<service>.<app>.<namespace>.<zone>.`: resolves to exactly
/// this instance, whatever its health.
pub fn instance_name(instance: &Instance, origin: &Name) -> Option<Name> {
    let number = format!("instance-{}", instance.number);
    let labels = [
        number.as_str(),
        instance.service.as_str(),
        instance.app.as_str(),
        instance.namespace.as_str(),
    ];
    Name::from_labels(labels.iter().map(|l| l.as_bytes()))
        .ok()?
        .append_domain(origin)
        .ok()
}

/// The instance's A and/or AAAA records as `qtype` asks (ANY: both).
fn addresses(owner: &Name, ttl: u32, instance: &Instance, qtype: RecordType) -> impl Iterator<Item = Record> {
    let v4 = instance
        .ipv4
        .filter(|_| matches!(qtype, RecordType::A | RecordType::ANY))
        .map(|ip| Record::from_rdata(owner.clone(), ttl, RData::A(A(ip))));
    let v6 = instance
        .ipv6
        .filter(|_| matches!(qtype, RecordType::AAAA | RecordType::ANY))
        .map(|ip| Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(ip))));
    v4.into_iter().chain(v6)
}

/// A TXT record of `strings`, each cut to one character-string.
fn txt(owner: &Name, ttl: u32, mut strings: Vec<String>) -> Record {
    for s in &mut strings {
        if s.len() > MAX_TXT_STRING {
            let mut end = MAX_TXT_STRING;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
    }
    Record::from_rdata(owner.clone(), ttl, RData::TXT(TXT::new(strings)))
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
