//! The name grammar: what a query name under the platform zone means.
//!
//! ```text
//! [_<port>._<tcp|udp>.][explain.]<policy>.<service>[.<app>[.<namespace>]][.<asker-app>.<asker-namespace>.svc].<zone>
//! ```
//!
//! * `<policy>`: `closest`, `rr`, `all` or `instance-N` ([`Policy`]).
//! * `explain.` in front asks for the reasoning as TXT instead of addresses.
//! * `_<port>._<proto>.` in front is the RFC 2782 SRV form: only instances
//!   that expose that named port are considered.
//!
//! # Search domains (short names)
//!
//! A workload's `resolv.conf` is written as
//!
//! ```text
//! nameserver <node resolver>
//! search <app>.<namespace>.svc.<zone> <zone>
//! options ndots:5
//! ```
//!
//! so `closest.ms2` (fewer than 5 dots: search list first, as in Kubernetes)
//! goes out as `closest.ms2.<app>.<namespace>.svc.<zone>`, then as
//! `closest.ms2.<zone>`, then as typed (forwarded). A trailing
//! `<asker-app>.<asker-namespace>.svc` before the zone is therefore not part
//! of what the user wrote: it says who asks ([`SearchContext`]), which
//! settles ambiguous short names (the asker's own app first, see
//! [`crate::scope`]). The label `svc` is reserved for this marker: it is
//! never a service, app or namespace name (nor should the zone's labels be
//! app or namespace names: `closest.ms2.grove` through the search path would
//! read as app `grove`). `svc.<zone>`,
//! `<namespace>.svc.<zone>` and `<app>.<namespace>.svc.<zone>` themselves
//! are the search-domain skeleton ([`NameOutcome::SearchDomain`]).
//!
//! A name that is already qualified but has fewer dots than `ndots`
//! (`closest.ms2.web.prod.grove`) is tried with the search suffix first;
//! that has too many labels, we answer NXDOMAIN, and the resolver goes on to
//! the name as typed: correct, two quick local round trips slower. Names on
//! the internet with fewer than 5 dots likewise cost two local NXDOMAINs
//! before they are forwarded.
//!
//! Parsing works on raw labels (as they come off the wire), folds ASCII case
//! (RFC 4343), never allocates and never panics.

pub use crate::directory::Protocol;
use crate::label::{eq_ignore_case, Label, MAX_LABEL_LEN, MAX_NAME_LEN};
pub use crate::query::{NameError, NameOutcome, Policy, PortSelector, QueryName, SearchContext, ServicePath};
use crate::Zone;

/// The label that marks a search-domain suffix (`<app>.<namespace>.svc.<zone>`).
pub const SEARCH_MARKER: &str = "svc";
/// The label that turns a query into an explanation.
pub const EXPLAIN_LABEL: &str = "explain";

/// Most labels a name can have: 255 wire octets, at least 2 per label.
const MAX_LABELS: usize = 127;

/// Parses a name given as text (`closest.ms2.grove`, trailing dot optional).
/// Labels are split at every `.`: escaped dots (`\.`) are not understood, so
/// wire names should go through [`parse_labels`].
pub fn parse_name(name: &str, zone: &Zone) -> NameOutcome {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return NameOutcome::Outside; // the root
    }
    parse_labels(name.split('.').map(str::as_bytes), zone)
}

/// Parses a name given as its labels, leftmost first, without the root
/// label (as `hickory_proto::rr::Name::iter` yields them).
pub fn parse_labels<'a, I>(labels: I, zone: &Zone) -> NameOutcome
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut buf: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
    let mut count = 0;
    let mut text_len = 0usize;
    for label in labels {
        if count == MAX_LABELS {
            return NameOutcome::Invalid(NameError::NameTooLong {
                len: text_len + 1 + label.len(),
            });
        }
        if label.is_empty() {
            return NameOutcome::Invalid(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return NameOutcome::Invalid(NameError::LabelTooLong { len: label.len() });
        }
        text_len += label.len() + usize::from(count > 0);
        buf[count] = label;
        count += 1;
    }
    if text_len > MAX_NAME_LEN {
        return NameOutcome::Invalid(NameError::NameTooLong { len: text_len });
    }
    let labels = &buf[..count];
    match zone.strip(labels) {
        None => NameOutcome::Outside,
        Some(0) => NameOutcome::Apex,
        Some(n) => parse_relative(&labels[..n]),
    }
}

/// Parses the labels in front of the zone (at least one).
fn parse_relative(labels: &[&[u8]]) -> NameOutcome {
    let malformed = |error| NameOutcome::Malformed { error, above: None };
    let mut rest = labels;

    // Search-domain suffix: `<asker-app>.<asker-namespace>.svc`.
    let mut context = None;
    if let Some((last, before)) = rest.split_last() {
        if eq_ignore_case(last, SEARCH_MARKER) {
            if before.len() <= 2 {
                return match before.iter().all(|l| Label::from_bytes(l).is_some()) {
                    true => NameOutcome::SearchDomain,
                    false => malformed(NameError::BadLabel { position: 0 }),
                };
            }
            let at = before.len() - 2;
            let (Some(app), Some(namespace)) = (Label::from_bytes(before[at]), Label::from_bytes(before[at + 1]))
            else {
                return malformed(NameError::BadLabel { position: at });
            };
            context = Some(SearchContext { app, namespace });
            rest = &before[..at];
        }
    }
    let above = as_service_path(rest);
    let with_above = |error| NameOutcome::Malformed { error, above };

    let mut position = 0;
    // SRV prefix `_<port>._<proto>`.
    let mut port = None;
    if rest.first().is_some_and(|l| l.starts_with(b"_")) {
        match parse_port(rest) {
            Some(p) => port = Some(p),
            None => return malformed(NameError::BadPort),
        }
        rest = &rest[2..];
        position = 2;
    }

    let explain = rest.first().is_some_and(|l| eq_ignore_case(l, EXPLAIN_LABEL));
    if explain {
        rest = &rest[1..];
        position += 1;
    }

    let Some((raw_policy, path)) = rest.split_first() else {
        return with_above(NameError::MissingService);
    };
    let Some(policy_label) = Label::from_bytes(raw_policy) else {
        return malformed(NameError::BadLabel { position });
    };
    let policy = match Policy::from_label(&policy_label) {
        Ok(Some(policy)) => policy,
        Ok(None) => return with_above(NameError::UnknownPolicy { policy: policy_label }),
        Err(error) => return with_above(error),
    };
    if path.is_empty() {
        return with_above(NameError::MissingService);
    }
    if path.len() > 3 {
        return with_above(NameError::TooManyLabels { count: labels.len() });
    }
    let mut parts = [None; 3];
    for (i, raw) in path.iter().enumerate() {
        let Some(label) = Label::from_bytes(raw) else {
            return malformed(NameError::BadLabel {
                position: position + 1 + i,
            });
        };
        if label == SEARCH_MARKER {
            return malformed(NameError::ReservedLabel);
        }
        parts[i] = Some(label);
    }
    let [Some(service), app, namespace] = parts else {
        return with_above(NameError::MissingService);
    };
    NameOutcome::Query(QueryName {
        explain,
        policy,
        path: ServicePath {
            service,
            app,
            namespace,
        },
        port,
        context,
    })
}

/// `_<port>._<proto>` at the front of `labels`.
fn parse_port(labels: &[&[u8]]) -> Option<PortSelector> {
    let name = Label::from_bytes(labels.first()?.strip_prefix(b"_")?)?;
    let protocol = labels.get(1)?;
    let protocol = if eq_ignore_case(protocol, "_tcp") {
        Protocol::Tcp
    } else if eq_ignore_case(protocol, "_udp") {
        Protocol::Udp
    } else {
        return None;
    };
    Some(PortSelector { name, protocol })
}

/// The labels read as `<service>[.<app>[.<namespace>]]`, for the empty
/// non-terminal check of [`NameOutcome::Malformed`].
fn as_service_path(labels: &[&[u8]]) -> Option<ServicePath> {
    if labels.is_empty() || labels.len() > 3 {
        return None;
    }
    let mut parts = [None; 3];
    for (slot, raw) in parts.iter_mut().zip(labels) {
        let label = Label::from_bytes(raw)?;
        if label == SEARCH_MARKER {
            return None;
        }
        *slot = Some(label);
    }
    let [Some(service), app, namespace] = parts else {
        return None;
    };
    Some(ServicePath {
        service,
        app,
        namespace,
    })
}

#[cfg(test)]
#[path = "name_tests.rs"]
mod tests;
