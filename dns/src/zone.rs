//! The platform zone grove answers for (default `grove`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::label::{eq_ignore_case, Label, MAX_NAME_LEN};
use crate::DnsError;

/// The default platform zone.
pub const DEFAULT_ZONE: &str = "grove";

/// The platform zone: one or more grove labels, lowercase, no trailing dot
/// (`grove`, `edge.example.com`). Names under it are answered locally;
/// everything else is forwarded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Zone {
    labels: Vec<Box<str>>,
    name: String,
}

impl Zone {
    /// Parses a zone name; a trailing dot is allowed, case is folded.
    pub fn new(name: &str) -> Result<Zone, DnsError> {
        let invalid = |reason: &'static str| DnsError::InvalidZone {
            zone: name.to_owned(),
            reason,
        };
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if trimmed.is_empty() {
            return Err(invalid("the zone must not be the root; use a name such as `grove`"));
        }
        // Leave room for at least `closest.<service>.` in front of the zone.
        if trimmed.len() > MAX_NAME_LEN - 16 {
            return Err(invalid("the zone name is too long to leave room for queries"));
        }
        let mut labels = Vec::new();
        for part in trimmed.split('.') {
            let label = Label::parse(part)
                .ok_or_else(|| invalid("each label must be 1-63 letters, digits or inner hyphens"))?;
            labels.push(Box::from(label.as_str()));
        }
        Ok(Zone {
            name: labels.join("."),
            labels,
        })
    }

    /// The zone's labels, leftmost first, lowercase.
    pub fn labels(&self) -> &[Box<str>] {
        &self.labels
    }

    /// The zone name in presentation form without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// True when `labels` (leftmost first, any case) end with this zone.
    /// Returns how many labels precede the zone, or `None` when the name is
    /// not at or under the zone.
    pub fn strip(&self, labels: &[&[u8]]) -> Option<usize> {
        let n = self.labels.len();
        if labels.len() < n {
            return None;
        }
        let prefix = labels.len() - n;
        let tail = &labels[prefix..];
        tail.iter()
            .zip(self.labels.iter())
            .all(|(raw, zone)| eq_ignore_case(raw, zone))
            .then_some(prefix)
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            labels: vec![Box::from(DEFAULT_ZONE)],
            name: DEFAULT_ZONE.to_owned(),
        }
    }
}

impl TryFrom<String> for Zone {
    type Error = DnsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Zone::new(&value)
    }
}

impl From<Zone> for String {
    fn from(zone: Zone) -> String {
        zone.name
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_multi_label_zones() {
        assert_eq!(Zone::new("grove").expect("ok").as_str(), "grove");
        let z = Zone::new("Edge.Example.COM.").expect("ok");
        assert_eq!(z.as_str(), "edge.example.com");
        assert_eq!(z.labels().len(), 3);
        assert_eq!(Zone::default(), Zone::new(DEFAULT_ZONE).expect("ok"));
    }

    #[test]
    fn rejects_bad_zones() {
        for bad in ["", ".", "a..b", "-x", "x_y", "caf\u{e9}", &"a.".repeat(120)] {
            assert!(Zone::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn strip_matches_suffix_case_insensitively() {
        let z = Zone::new("edge.example").expect("ok");
        let name: [&[u8]; 4] = [b"closest", b"ms2", b"EDGE", b"Example"];
        assert_eq!(z.strip(&name), Some(2));
        let apex: [&[u8]; 2] = [b"edge", b"example"];
        assert_eq!(z.strip(&apex), Some(0));
        let other: [&[u8]; 3] = [b"ms2", b"edge", b"examples"];
        assert_eq!(z.strip(&other), None);
        let short: [&[u8]; 1] = [b"example"];
        assert_eq!(z.strip(&short), None);
    }

    #[test]
    fn serde_round_trip_validates() {
        let z: Zone = serde_json::from_str("\"Grove.\"").expect("ok");
        assert_eq!(serde_json::to_string(&z).expect("ok"), "\"grove\"");
        assert!(serde_json::from_str::<Zone>("\"bad_zone\"").is_err());
    }
}
