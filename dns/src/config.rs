//! What the DNS service is told: zone, listeners, TTLs, policy tuning,
//! forwarding. A serde struct netmanager embeds as its `[dns]` table.
//!
//! ```toml
//! [dns]
//! zone = "grove"                      # default
//! listen = ["127.0.0.153:53"]         # default; netmanager adds its overlay address
//!
//! [dns.ttl]
//! moving_secs = 2                     # closest, rr
//! stable_secs = 30                    # all, instance-N
//! negative_secs = 5                   # SOA minimum: NXDOMAIN/NODATA caching
//!
//! [dns.policy]
//! tie_margin_ratio = 0.10
//! tie_margin_min_ms = 2.0
//!
//! [dns.forward]
//! enabled = true
//! upstreams = []                      # empty: the host's /etc/resolv.conf
//! ```

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::{Deserialize, Serialize};

use crate::ttl::TtlConfig;
use crate::{DnsError, Zone};

/// grove's loopback resolver address: on the host's loopback network but
/// clear of systemd-resolved's 127.0.0.53 (stub) and 127.0.0.54 (proxy).
pub const GROVE_LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 153);

/// The whole DNS configuration. Every field has a default, so an empty
/// `[dns]` table (or none) is a working setup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// The platform zone (default `grove`); names under it are answered here.
    pub zone: Zone,
    /// UDP and TCP addresses to serve on. Default: `127.0.0.153:53`.
    pub listen: Vec<SocketAddr>,
    /// Answer TTLs (`[dns.ttl]`).
    pub ttl: TtlConfig,
    /// Selection policy tuning (`[dns.policy]`).
    pub policy: PolicyConfig,
    /// Forwarding of other names (`[dns.forward]`).
    pub forward: ForwardConfig,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zone: Zone::default(),
            listen: vec![SocketAddr::V4(SocketAddrV4::new(GROVE_LOOPBACK, 53))],
            ttl: TtlConfig::default(),
            policy: PolicyConfig::default(),
            forward: ForwardConfig::default(),
        }
    }
}

impl DnsConfig {
    /// Checks values serde cannot (ranges); the error names the field.
    pub fn validate(&self) -> Result<(), DnsError> {
        self.policy.validate()?;
        self.ttl.validate()
    }
}

/// Tuning of the selection policies. See `closest` for how the figures are
/// used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Candidates whose RTT is within this fraction of the best one are a
    /// near-tie, decided by geography. Default 0.10 (10 %).
    pub tie_margin_ratio: f64,
    /// …or within this many ms, whichever is larger: below a few ms, RTT
    /// differences are jitter. Default 2.0.
    pub tie_margin_min_ms: f64,
    /// An RTT estimated from network coordinates (not measured) counts as
    /// known only with at least this confidence; below it, geography stands
    /// in. Default 0.25: a fresh Vivaldi coordinate is noise.
    pub min_estimate_confidence: f64,
    /// The stand-in RTT for a node with no usable RTT but a known distance is
    /// `stand_in_base_ms + km × stand_in_ms_per_1000km / 1000`: deliberately
    /// pessimistic (light in fibre needs 10 ms per 1000 km round trip; real
    /// paths are longer, and access links add a few ms). A known RTT beats a
    /// stand-in unless it is worse than even this pessimistic guess. Default 10.
    pub stand_in_base_ms: f64,
    /// See `stand_in_base_ms`. Default 30 (3× the speed of light in fibre).
    pub stand_in_ms_per_1000km: f64,
    /// When no instance is healthy, serve the unhealthy ones (flagged
    /// degraded, short TTL) instead of nothing. Health may be stale or
    /// partitioned; an empty answer is negatively cached and certain to fail,
    /// an unhealthy instance only likely to. Default true.
    pub serve_unhealthy: bool,
    /// Round-robin rotation state: this many counters (rounded up to a power
    /// of two), shared by hashing (asker, service). Memory is fixed whatever
    /// the number of askers, spoofed or not. Default 4096 (32 KiB).
    pub rr_buckets: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            tie_margin_ratio: 0.10,
            tie_margin_min_ms: 2.0,
            min_estimate_confidence: 0.25,
            stand_in_base_ms: 10.0,
            stand_in_ms_per_1000km: 30.0,
            serve_unhealthy: true,
            rr_buckets: 4096,
        }
    }
}

impl PolicyConfig {
    /// Largest RTT (ms) still tied with a leader of `lead_ms`.
    pub fn tie_limit_ms(&self, lead_ms: f64) -> f64 {
        lead_ms + self.tie_margin_ms(lead_ms)
    }

    /// The tie margin around a leader of `lead_ms`.
    pub fn tie_margin_ms(&self, lead_ms: f64) -> f64 {
        (lead_ms * self.tie_margin_ratio).max(self.tie_margin_min_ms)
    }

    /// The pessimistic RTT guess for a node `km` away (see
    /// `stand_in_base_ms`).
    pub fn stand_in_ms(&self, km: f64) -> f64 {
        self.stand_in_base_ms + km * self.stand_in_ms_per_1000km / 1000.0
    }

    fn validate(&self) -> Result<(), DnsError> {
        let check = |field: &'static str, value: f64, max: f64| {
            if value.is_finite() && (0.0..=max).contains(&value) {
                Ok(())
            } else {
                Err(DnsError::InvalidConfig {
                    field,
                    reason: format!("is {value}; it must be between 0 and {max}"),
                })
            }
        };
        check("policy.tie_margin_ratio", self.tie_margin_ratio, 10.0)?;
        check("policy.tie_margin_min_ms", self.tie_margin_min_ms, 10_000.0)?;
        check("policy.min_estimate_confidence", self.min_estimate_confidence, 1.0)?;
        check("policy.stand_in_base_ms", self.stand_in_base_ms, 10_000.0)?;
        check("policy.stand_in_ms_per_1000km", self.stand_in_ms_per_1000km, 10_000.0)?;
        if !(1..=crate::rr::MAX_BUCKETS).contains(&self.rr_buckets) {
            return Err(DnsError::InvalidConfig {
                field: "policy.rr_buckets",
                reason: format!(
                    "is {}; it must be between 1 and {}",
                    self.rr_buckets,
                    crate::rr::MAX_BUCKETS
                ),
            });
        }
        Ok(())
    }
}

/// Forwarding of names outside the zone to upstream resolvers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Off: names outside the zone get REFUSED. Default on, so a workload
    /// whose only resolver is grove still resolves the internet.
    pub enabled: bool,
    /// Upstream resolvers. Empty (the default): the host's `nameserver`
    /// lines from /etc/resolv.conf (see `resolv_conf`), minus grove's own
    /// listen addresses.
    pub upstreams: Vec<SocketAddr>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            enabled: true,
            upstreams: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_the_default() {
        let config: DnsConfig = toml::from_str("").expect("parse");
        assert_eq!(config, DnsConfig::default());
        assert_eq!(config.listen[0].to_string(), "127.0.0.153:53");
        assert_eq!(config.zone.as_str(), "grove");
        assert!(config.forward.enabled);
        config.validate().expect("defaults are valid");
    }

    #[test]
    fn full_config() {
        let text = r#"
            zone = "Edge.Example."
            listen = ["127.0.0.153:5353", "[::1]:53"]
            [ttl]
            moving_secs = 1
            stable_secs = 60
            [policy]
            tie_margin_ratio = 0.2
            serve_unhealthy = false
            [forward]
            enabled = false
            upstreams = ["9.9.9.9:53"]
        "#;
        let config: DnsConfig = toml::from_str(text).expect("parse");
        assert_eq!(config.zone.as_str(), "edge.example");
        assert_eq!(config.listen.len(), 2);
        assert_eq!(config.ttl.moving_secs, 1);
        assert_eq!(config.ttl.negative_secs, TtlConfig::default().negative_secs);
        assert_eq!(config.policy.tie_margin_ratio, 0.2);
        assert_eq!(config.policy.tie_margin_min_ms, 2.0);
        assert!(!config.policy.serve_unhealthy && !config.forward.enabled);
        config.validate().expect("valid");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<DnsConfig>("zonee = \"grove\"").is_err());
        assert!(toml::from_str::<DnsConfig>("[policy]\ntie_margin = 1.0").is_err());
        assert!(toml::from_str::<DnsConfig>("zone = \"bad_zone\"").is_err());
        for (text, field) in [
            ("[policy]\ntie_margin_ratio = -0.1", "policy.tie_margin_ratio"),
            (
                "[policy]\nmin_estimate_confidence = 1.5",
                "policy.min_estimate_confidence",
            ),
            ("[policy]\nstand_in_base_ms = nan", "policy.stand_in_base_ms"),
            ("[policy]\nrr_buckets = 0", "policy.rr_buckets"),
            ("[ttl]\nmoving_secs = 100000", "ttl.moving_secs"),
        ] {
            let config: DnsConfig = toml::from_str(text).expect(text);
            match config.validate() {
                Err(DnsError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn tie_margin_is_the_larger_of_ratio_and_floor() {
        let p = PolicyConfig::default();
        assert_eq!(p.tie_margin_ms(0.0), 2.0);
        assert_eq!(p.tie_margin_ms(10.0), 2.0);
        assert!((p.tie_margin_ms(100.0) - 10.0).abs() < 1e-9);
        assert!((p.tie_limit_ms(50.0) - 55.0).abs() < 1e-9);
        assert!((p.stand_in_ms(1000.0) - 40.0).abs() < 1e-9);
        assert_eq!(p.stand_in_ms(0.0), 10.0);
    }
}
