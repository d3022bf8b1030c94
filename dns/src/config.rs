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
//! cache_bytes = 8388608               # 8 MiB of cached upstream answers
//! max_in_flight = 256                 # forwarded queries waiting, in total
//! max_in_flight_per_client = 16       # ... and per client (IPv4 address, IPv6 /64)
//!
//! [dns.rate_limit]                    # per client, every source (loopback too)
//! qps = 2000                          # 0: off
//! burst = 4000
//! clients = 4096                      # table slots (fixed memory)
//! slip = 2                            # every 2nd over-limit UDP query: empty TC=1
//! ```
//!
//! `allow_from` lists the client prefixes served (default loopback only);
//! netmanager adds the workload subnet and the mesh with
//! [`DnsConfig::with_allow_from`].

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::client::loopback_prefixes;
use crate::ttl::TtlConfig;
use crate::{DnsError, Zone};

/// Default byte budget of the forwarder's cache.
pub const DEFAULT_CACHE_BYTES: usize = 8 << 20;
/// Largest cache budget accepted.
pub const MAX_CACHE_BYTES: usize = 1 << 30;
/// Most forwarded queries in flight accepted as `max_in_flight`: each may
/// hold a socket, and sockets are file descriptors.
pub const MAX_IN_FLIGHT: usize = 4096;
/// Most rate-limit table slots accepted.
pub const MAX_RATE_CLIENTS: usize = 1 << 20;

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
    /// Client prefixes allowed to query; anything else is refused before
    /// its question is looked at (UDP: no response; TCP: REFUSED). Default:
    /// loopback (127.0.0.0/8, ::1). Writing the list in a config file
    /// replaces the default, so keep loopback in it. The embedding daemon
    /// adds the node's workload subnet and the mesh
    /// ([`DnsConfig::with_allow_from`]); never the LAN: the gateway address
    /// is reachable from the LAN (weak host model), and an open resolver
    /// there would reflect and amplify for anyone.
    pub allow_from: Vec<IpNet>,
    /// Query rate limit per client (`[dns.rate_limit]`).
    pub rate_limit: RateLimitConfig,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zone: Zone::default(),
            listen: vec![SocketAddr::V4(SocketAddrV4::new(GROVE_LOOPBACK, 53))],
            ttl: TtlConfig::default(),
            policy: PolicyConfig::default(),
            forward: ForwardConfig::default(),
            allow_from: loopback_prefixes(),
            rate_limit: RateLimitConfig::default(),
        }
    }
}

impl DnsConfig {
    /// Checks values serde cannot (ranges); the error names the field.
    pub fn validate(&self) -> Result<(), DnsError> {
        self.policy.validate()?;
        self.ttl.validate()?;
        self.forward.validate()?;
        self.rate_limit.validate()?;
        if self.allow_from.is_empty() {
            return Err(DnsError::InvalidConfig {
                field: "allow_from",
                reason: "is empty, so no client could query; list at least 127.0.0.0/8".into(),
            });
        }
        Ok(())
    }

    /// Also allows clients in `prefixes` (duplicates are skipped). For the
    /// embedding daemon: the node's workload subnet and the mesh pool.
    pub fn with_allow_from(mut self, prefixes: impl IntoIterator<Item = IpNet>) -> DnsConfig {
        for prefix in prefixes {
            let prefix = prefix.trunc();
            if !self.allow_from.contains(&prefix) {
                self.allow_from.push(prefix);
            }
        }
        self
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
    /// Memory the cache of upstream answers may take, in bytes (wire bytes
    /// of each answer plus the cache's own bookkeeping). 0: no cache.
    /// Default 8 MiB.
    pub cache_bytes: usize,
    /// Forwarded queries that may wait for an upstream at once, in total;
    /// beyond it, SERVFAIL at once. Bounds the sockets (file descriptors)
    /// and buffers forwarding holds. Default 256.
    pub max_in_flight: usize,
    /// …and per client (an IPv4 address, an IPv6 /64), so one client
    /// cannot take them all. Default 16.
    pub max_in_flight_per_client: usize,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            enabled: true,
            upstreams: Vec::new(),
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_in_flight: 256,
            max_in_flight_per_client: 16,
        }
    }
}

impl ForwardConfig {
    fn validate(&self) -> Result<(), DnsError> {
        let within = |field: &'static str, value: usize, min: usize, max: usize| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(DnsError::InvalidConfig {
                    field,
                    reason: format!("is {value}; it must be between {min} and {max}"),
                })
            }
        };
        within("forward.cache_bytes", self.cache_bytes, 0, MAX_CACHE_BYTES)?;
        within("forward.max_in_flight", self.max_in_flight, 1, MAX_IN_FLIGHT)?;
        within(
            "forward.max_in_flight_per_client",
            self.max_in_flight_per_client,
            1,
            self.max_in_flight,
        )
    }
}

/// Query rate limit per client (an IPv4 address, an IPv6 /64): a token
/// bucket each (see `ratelimit`). It applies to every source, loopback
/// included: the host's own processes share 127.0.0.1 and one bucket, so
/// the default is generous; set `qps = 0` to turn the limit off. Over the
/// limit, UDP queries are dropped (every `slip`-th answered with an empty
/// TC=1 response) and TCP queries are REFUSED.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained queries per second per client. 0: no limit. Default 2000.
    pub qps: u32,
    /// Queries a client may send at once after a pause. Default 4000.
    pub burst: u32,
    /// Clients tracked (table slots, rounded up to a power of two; about
    /// 32 bytes each, allocated once). Default 4096.
    pub clients: usize,
    /// Every `slip`-th over-limit UDP query gets an empty TC=1 response
    /// instead of none, so a real client retries over TCP; 0: never.
    /// Default 2, as BIND's.
    pub slip: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            qps: 2000,
            burst: 4000,
            clients: 4096,
            slip: 2,
        }
    }
}

impl RateLimitConfig {
    fn validate(&self) -> Result<(), DnsError> {
        let check = |field: &'static str, ok: bool, value: String, allowed: &str| {
            if ok {
                Ok(())
            } else {
                Err(DnsError::InvalidConfig {
                    field,
                    reason: format!("is {value}; it must be {allowed}"),
                })
            }
        };
        check(
            "rate_limit.qps",
            self.qps <= 10_000_000,
            self.qps.to_string(),
            "at most 10000000 (0: off)",
        )?;
        check(
            "rate_limit.burst",
            self.qps == 0 || (1..=100_000_000).contains(&self.burst),
            self.burst.to_string(),
            "between 1 and 100000000",
        )?;
        check(
            "rate_limit.clients",
            (1..=MAX_RATE_CLIENTS).contains(&self.clients),
            self.clients.to_string(),
            &format!("between 1 and {MAX_RATE_CLIENTS}"),
        )?;
        check(
            "rate_limit.slip",
            self.slip <= 100,
            self.slip.to_string(),
            "at most 100 (0: never)",
        )
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
            ("[forward]\nmax_in_flight = 0", "forward.max_in_flight"),
            (
                "[forward]\nmax_in_flight = 8\nmax_in_flight_per_client = 9",
                "forward.max_in_flight_per_client",
            ),
            ("[forward]\ncache_bytes = 4294967296", "forward.cache_bytes"),
            ("[rate_limit]\nburst = 0", "rate_limit.burst"),
            ("[rate_limit]\nclients = 0", "rate_limit.clients"),
            ("allow_from = []", "allow_from"),
        ] {
            let config: DnsConfig = toml::from_str(text).expect(text);
            match config.validate() {
                Err(DnsError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn allow_from_defaults_to_loopback_and_grows_with_the_daemons_prefixes() {
        let config = DnsConfig::default();
        let shown: Vec<String> = config.allow_from.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["127.0.0.0/8", "::1/128"]);
        let mesh: IpNet = "10.18.0.0/16".parse().expect("prefix");
        let subnet: IpNet = "10.18.0.65/26".parse().expect("prefix");
        let config = config.with_allow_from([mesh, subnet, mesh]);
        let shown: Vec<String> = config.allow_from.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["127.0.0.0/8", "::1/128", "10.18.0.0/16", "10.18.0.64/26"]);

        let text = r#"
            allow_from = ["127.0.0.0/8", "10.18.0.0/16"]
            [forward]
            cache_bytes = 0
            [rate_limit]
            qps = 0
        "#;
        let config: DnsConfig = toml::from_str(text).expect("parse");
        assert_eq!(config.allow_from.len(), 2);
        assert_eq!(config.forward.cache_bytes, 0);
        assert_eq!(config.forward.max_in_flight, 256);
        assert_eq!(config.rate_limit.qps, 0);
        config.validate().expect("valid: no cache, no rate limit");
        assert!(toml::from_str::<DnsConfig>("allow_from = [\"10.18.0.0/33\"]").is_err());
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
