//! How long answers may be cached.
//!
//! Answers that move get short TTLs: `closest` follows latency and
//! placement, `rr` rotates (a cached rotation is no rotation). Answers that
//! only change when the deployment does (`all`, `instance-N`) get longer
//! ones. A degraded answer (unhealthy instances served because no healthy
//! one exists) is moving whatever its policy: it should be replaced as soon
//! as something recovers. `explain` answers describe one moment and are not
//! cached. Negative answers (NXDOMAIN, NODATA, ambiguous names) are cached
//! for the SOA minimum, RFC 2308 §5, kept short so that a service deployed
//! a moment after someone asked for it soon resolves.

use serde::{Deserialize, Serialize};

use crate::policy::Selection;
use crate::DnsError;

/// Longest TTL the config accepts for any of its fields (one day).
pub const MAX_TTL_SECS: u32 = 86_400;

/// TTLs in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtlConfig {
    /// `closest` and `rr`, and every degraded answer. Default 2.
    pub moving_secs: u32,
    /// `all` and `instance-N`. Default 30.
    pub stable_secs: u32,
    /// Negative answers: the SOA MINIMUM field and the SOA record's TTL.
    /// Default 5.
    pub negative_secs: u32,
    /// `explain` TXT answers. Default 0 (not cached).
    pub explain_secs: u32,
}

impl Default for TtlConfig {
    fn default() -> Self {
        TtlConfig {
            moving_secs: 2,
            stable_secs: 30,
            negative_secs: 5,
            explain_secs: 0,
        }
    }
}

impl TtlConfig {
    /// The TTL of the records answering with `selection`.
    pub fn answer_ttl(&self, selection: &Selection) -> u32 {
        if selection.explanation.is_some() {
            self.explain_secs
        } else if selection.degraded || selection.policy.is_moving() {
            self.moving_secs
        } else {
            self.stable_secs
        }
    }

    /// The TTL of negative answers (and the SOA minimum that says so).
    pub fn negative_ttl(&self) -> u32 {
        self.negative_secs
    }

    pub(crate) fn validate(&self) -> Result<(), DnsError> {
        for (field, value) in [
            ("ttl.moving_secs", self.moving_secs),
            ("ttl.stable_secs", self.stable_secs),
            ("ttl.negative_secs", self.negative_secs),
            ("ttl.explain_secs", self.explain_secs),
        ] {
            if value > MAX_TTL_SECS {
                return Err(DnsError::InvalidConfig {
                    field,
                    reason: format!("is {value}; it must be at most {MAX_TTL_SECS} (one day)"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::config::PolicyConfig;
    use crate::name::Policy;
    use crate::policy::{apply, PolicyContext};
    use crate::rr::RrTable;
    use crate::test_support::{numbered, Fake};

    fn selection(policy: Policy, explain: bool, healthy: bool) -> Selection {
        let mut list = numbered(2).to_vec();
        for i in &mut list {
            i.healthy = healthy;
        }
        let cx = PolicyContext {
            oracle: &Fake::default(),
            rr: &RrTable::new(8, 0),
            asker: IpAddr::V4(Ipv4Addr::LOCALHOST),
            config: &PolicyConfig::default(),
        };
        apply(policy, crate::Instances::new(list), None, explain, &cx).expect("selected")
    }

    #[test]
    fn moving_stable_degraded_and_explain() {
        let ttl = TtlConfig::default();
        assert_eq!(ttl.answer_ttl(&selection(Policy::Closest, false, true)), 2);
        assert_eq!(ttl.answer_ttl(&selection(Policy::RoundRobin, false, true)), 2);
        assert_eq!(ttl.answer_ttl(&selection(Policy::All, false, true)), 30);
        assert_eq!(ttl.answer_ttl(&selection(Policy::Instance(1), false, true)), 30);
        assert_eq!(ttl.answer_ttl(&selection(Policy::All, false, false)), 2, "degraded");
        assert_eq!(
            ttl.answer_ttl(&selection(Policy::Instance(0), false, false)),
            2,
            "degraded"
        );
        assert_eq!(ttl.answer_ttl(&selection(Policy::All, true, true)), 0, "explain");
        assert_eq!(ttl.negative_ttl(), 5);
        let custom = TtlConfig {
            moving_secs: 1,
            ..TtlConfig::default()
        };
        assert_eq!(custom.answer_ttl(&selection(Policy::Closest, false, true)), 1);
    }
}
