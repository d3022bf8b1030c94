//! Why an instance could not be placed: one [`Rejection`] per candidate,
//! rendered for users the way kube-scheduler does ("0/3 nodes are
//! available: ..."), so `grove status` can say what to change.

use std::fmt;

use dns::Label;
use serde::Serialize;

use crate::model::Capacity;

/// Why one candidate cannot take the instance (the first filter it failed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Rejection {
    /// Not reporting (or marked lost).
    Down,
    /// A `direct` constraint names other clusters or nodes.
    NotAllowed,
    /// Free capacity (on a cluster: its roomiest worker's) is below the request.
    NotEnoughResources {
        /// What one instance reserves.
        need: Capacity,
        /// What is free.
        free: Capacity,
    },
    /// A `geo` constraint: distance km, `None` when the candidate has no location.
    TooFar {
        /// Great-circle distance to the constraint's point.
        km: Option<f64>,
        /// The bound.
        within_km: f64,
    },
    /// A `latency` constraint: RTT ms, `None` when the oracle has no estimate.
    TooSlow {
        /// Estimated round trip.
        ms: Option<f64>,
        /// The bound.
        within_ms: f64,
    },
}

/// One candidate and why it was rejected.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejected {
    /// The candidate's name.
    pub name: Label,
    /// Why.
    pub why: Rejection,
}

/// Why nowhere fits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Reason {
    /// There was nothing to choose from (no clusters or workers registered).
    NoCandidates,
    /// Every candidate was rejected, in the order given.
    NoneFit {
        /// Each candidate and why.
        rejected: Vec<Rejected>,
    },
}

impl Reason {
    /// How many candidates were rejected for a reason matching `kind`.
    pub fn count(&self, kind: impl Fn(&Rejection) -> bool) -> usize {
        match self {
            Reason::NoCandidates => 0,
            Reason::NoneFit { rejected } => rejected.iter().filter(|r| kind(&r.why)).count(),
        }
    }
}

/// At most this many candidates are named in the text; the rest are counted.
const NAMED: usize = 5;

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoCandidates => f.write_str("no candidates to place on"),
            Reason::NoneFit { rejected } => {
                write!(f, "none of {} candidates fit", rejected.len())?;
                for (i, r) in rejected.iter().take(NAMED).enumerate() {
                    write!(f, "{} {}: {}", if i == 0 { ":" } else { ";" }, r.name, r.why)?;
                }
                if rejected.len() > NAMED {
                    write!(f, "; and {} more", rejected.len() - NAMED)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Down => f.write_str("down"),
            Rejection::NotAllowed => f.write_str("not allowed by a direct constraint"),
            Rejection::NotEnoughResources { need, free } => write!(
                f,
                "not enough resources (needs {}m CPU and {} MiB, {}m and {} MiB free)",
                need.cpu_millis, need.memory_mib, free.cpu_millis, free.memory_mib
            ),
            Rejection::TooFar { km: Some(km), within_km } => write!(f, "too far ({km:.0} km > {within_km} km)"),
            Rejection::TooFar { km: None, .. } => f.write_str("location unknown, needed by a geo constraint"),
            Rejection::TooSlow { ms: Some(ms), within_ms } => write!(f, "too slow ({ms:.1} ms > {within_ms} ms)"),
            Rejection::TooSlow { ms: None, .. } => f.write_str("no round-trip estimate, needed by a latency constraint"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(name: &str, why: Rejection) -> Rejected {
        Rejected { name: Label::parse(name).expect("label"), why }
    }

    #[test]
    fn display_names_each_candidate() {
        assert_eq!(Reason::NoCandidates.to_string(), "no candidates to place on");
        let reason = Reason::NoneFit {
            rejected: vec![
                rejected("milan", Rejection::TooFar { km: Some(349.6), within_km: 50.0 }),
                rejected("rome", Rejection::Down),
                rejected(
                    "tiny",
                    Rejection::NotEnoughResources { need: Capacity::new(2000, 512), free: Capacity::new(1000, 4096) },
                ),
                rejected("far", Rejection::TooSlow { ms: Some(35.24), within_ms: 20.0 }),
                rejected("pinned", Rejection::NotAllowed),
                rejected("lost", Rejection::TooSlow { ms: None, within_ms: 20.0 }),
            ],
        };
        assert_eq!(
            reason.to_string(),
            "none of 6 candidates fit: milan: too far (350 km > 50 km); rome: down; \
             tiny: not enough resources (needs 2000m CPU and 512 MiB, 1000m and 4096 MiB free); \
             far: too slow (35.2 ms > 20 ms); pinned: not allowed by a direct constraint; and 1 more"
        );
        assert_eq!(reason.count(|r| matches!(r, Rejection::TooSlow { .. })), 2);
    }
}
