//! `explain.<policy>.<service>…`: why this answer, as TXT strings.
//!
//! Each string is one TXT character-string, at most 255 bytes (RFC 1035
//! §3.3: a length octet, then the bytes); longer lines are cut at a
//! character boundary and end in `...`. The first string says what was
//! chosen, the second why, then one per candidate in rank order (at most
//! [`MAX_ROWS`]):
//!
//! ```text
//! closest ms2 (app web, namespace prod): instance-1 on node n-berlin
//! near-tie: 2 candidates within 2.0 ms; a real RTT beats a distance guess, then the shorter distance wins
//! #1 instance-1 node=n-berlin rtt=3.1ms measured confidence=1.00 km=12 healthy
//! #2 instance-0 node=n-hamburg rtt=4.0ms estimated confidence=0.80 km=255 healthy
//! ```

use std::fmt::Write;

use crate::closest::{Basis, ClosestReason, Ranked};
use crate::name::QueryName;
use crate::policy::{Reason, Selection};
use crate::scope::AppScope;
use crate::select::SelectOutcome;

/// Longest TXT character-string.
pub const MAX_TXT_STRING: usize = 255;
/// Candidate rows listed at most; the rest are counted in one line.
pub const MAX_ROWS: usize = 10;

/// TXT strings explaining any outcome of a grove query.
pub fn explain_outcome(query: &QueryName, outcome: &SelectOutcome) -> Vec<String> {
    let service = query.path.service;
    let line = |text: String| vec![fit(text)];
    match outcome {
        SelectOutcome::Selected(selection) => explain_selection(query, selection),
        SelectOutcome::Ambiguous { candidates } => explain_ambiguous(query, candidates),
        SelectOutcome::NoSuchService => line(format!("no service {}", query.path)),
        SelectOutcome::NoSuchInstance { number } => line(format!("{service} has no instance-{number}")),
        SelectOutcome::NoSuchPort => match query.port {
            Some(port) => line(format!(
                "no instance of {service} exposes port {}/{}",
                port.name, port.protocol
            )),
            None => line(format!("no instance of {service} exposes the port")),
        },
        SelectOutcome::NoHealthyInstance => line(format!(
            "no instance of {service} is healthy, and serving unhealthy instances is off"
        )),
    }
}

/// TXT strings explaining a selection.
pub fn explain_selection(query: &QueryName, selection: &Selection) -> Vec<String> {
    let mut out = Vec::new();
    let mut head = String::new();
    let _ = write!(head, "{} {}", selection.policy, query.path.service);
    if let Some(first) = selection.candidates.first() {
        let _ = write!(head, " (app {}, namespace {})", first.app, first.namespace);
    }
    let chosen: Vec<String> = selection
        .chosen()
        .take(MAX_ROWS)
        .map(|i| format!("instance-{} on node {}", i.number, i.node))
        .collect();
    let _ = write!(head, ": {}", chosen.join(", "));
    if selection.degraded {
        head.push_str(" [no healthy instance: serving unhealthy]");
    }
    out.push(fit(head));

    let Some(explanation) = &selection.explanation else {
        return out;
    };
    let mut why = reason_text(&explanation.reason);
    if explanation.excluded > 0 {
        let _ = write!(
            why,
            "; {} excluded (unhealthy or without the port)",
            explanation.excluded
        );
    }
    out.push(fit(why));

    for (rank, ranked) in explanation.ranking.iter().take(MAX_ROWS).enumerate() {
        if let Some(instance) = selection.candidates.get(ranked.index) {
            let mut row = format!("#{} instance-{} node={} ", rank + 1, instance.number, instance.node);
            distance_text(&mut row, ranked);
            row.push_str(if instance.healthy { " healthy" } else { " unhealthy" });
            out.push(fit(row));
        }
    }
    if explanation.ranking.len() > MAX_ROWS {
        out.push(format!("... and {} more", explanation.ranking.len() - MAX_ROWS));
    }
    out
}

/// TXT strings for a short name that several apps answer to.
pub fn explain_ambiguous(query: &QueryName, candidates: &[AppScope]) -> Vec<String> {
    let service = query.path.service;
    let mut out = vec![fit(format!(
        "{service} is ambiguous: {} apps have it and the asker's app does not decide; name one",
        candidates.len()
    ))];
    for c in candidates.iter().take(MAX_ROWS) {
        out.push(fit(format!("{}.{service}.{}.{}", query.policy, c.app, c.namespace)));
    }
    if candidates.len() > MAX_ROWS {
        out.push(format!("... and {} more", candidates.len() - MAX_ROWS));
    }
    out
}

fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::Closest(ClosestReason::Only) => "only one candidate".into(),
        Reason::Closest(ClosestReason::LowestRtt) => "lowest RTT; no other within the tie margin".into(),
        Reason::Closest(ClosestReason::NearTie { tied, margin_ms }) => format!(
            "near-tie: {tied} candidates within {margin_ms:.1} ms; a real RTT beats a distance guess, then the shorter distance wins"
        ),
        Reason::Closest(ClosestReason::StandIn { beat_rtt: false }) => {
            "no usable RTT to any candidate; distance stood in".into()
        }
        Reason::Closest(ClosestReason::StandIn { beat_rtt: true }) => {
            "no usable RTT to it; its distance stood in and beat RTTs worse than even a pessimistic distance guess".into()
        }
        Reason::Closest(ClosestReason::NothingKnown) => {
            "no RTT or location known for any candidate; lowest instance number".into()
        }
        Reason::Turn { turn, eligible } => format!("round robin: turn {turn} among {eligible} eligible"),
        Reason::Every { count } => format!("every eligible instance ({count})"),
        Reason::Numbered => "asked for by number".into(),
    }
}

fn distance_text(row: &mut String, ranked: &Ranked) {
    match ranked.distance.rtt {
        Some(r) => {
            let kind = if r.measured { "measured" } else { "estimated" };
            let _ = write!(
                row,
                "rtt={:.1}ms {kind} confidence={:.2}",
                r.rtt.as_secs_f64() * 1000.0,
                r.confidence
            );
            if ranked.basis != Basis::Rtt {
                row.push_str(" (too uncertain)");
            }
        }
        None => row.push_str("rtt=?"),
    }
    if ranked.basis == Basis::StandIn {
        let _ = write!(row, " guess={:.1}ms", ranked.rank_ms);
    }
    match ranked.distance.km {
        Some(km) => {
            let _ = write!(row, " km={km:.0}");
        }
        None => row.push_str(" km=?"),
    }
}

/// Cuts `text` to one TXT character-string.
fn fit(mut text: String) -> String {
    if text.len() > MAX_TXT_STRING {
        let mut cut = MAX_TXT_STRING - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
