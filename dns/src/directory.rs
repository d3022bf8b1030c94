//! The seam the resolver asks: which instances a service has, and how far
//! each node is from this one.
//!
//! Today [`crate::MemoryDirectory`] fills it from netmanager's local API; the
//! control plane replaces the source later, not the seam. Implementations
//! must be cheap to call: the resolver asks once per query for the service
//! and once per candidate for its distance.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::{Deref, Range};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A node of the mesh, as the control plane names it (today the key or name
/// from the static config). Cheap to clone.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for NodeId {
    fn eq(&self, other: &NodeId) -> bool {
        // The store shares one `Arc` per node, which makes this the usual case.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl NodeId {
    /// Wraps a node name.
    pub fn new(id: &str) -> NodeId {
        NodeId(Arc::from(id))
    }

    /// The node name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> NodeId {
        NodeId::new(id)
    }
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        Ok(NodeId(Arc::from(id)))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", &self.0)
    }
}

/// Transport protocol of a port (RFC 2782 `_tcp` / `_udp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (`_tcp`).
    Tcp,
    /// UDP (`_udp`).
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A port an instance exposes, by name (answered as SRV).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPort {
    /// Lowercase grove label (`http`, `grpc`).
    pub name: String,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Port number on the instance's overlay address.
    pub port: u16,
}

/// One running instance of a service, as the directory knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Service name (lowercase grove label), e.g. `ms2`.
    pub service: String,
    /// The application the service belongs to.
    pub app: String,
    /// The application's namespace.
    pub namespace: String,
    /// Instance number, unique within (service, app, namespace).
    pub number: u32,
    /// The node it runs on; the distance oracle is asked about this node.
    pub node: NodeId,
    /// Overlay IPv4 address (A).
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// Overlay IPv6 address (AAAA).
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// Named ports (SRV).
    #[serde(default)]
    pub ports: Vec<NamedPort>,
    /// False when the instance or its node is known to be down. Unhealthy
    /// instances are served only when no healthy one exists.
    #[serde(default = "default_healthy")]
    pub healthy: bool,
}

fn default_healthy() -> bool {
    true
}

impl Instance {
    /// A healthy instance without addresses or ports; add them with the
    /// `with_*` methods.
    pub fn new(service: &str, app: &str, namespace: &str, number: u32, node: &str) -> Instance {
        Instance {
            service: service.into(),
            app: app.into(),
            namespace: namespace.into(),
            number,
            node: NodeId::new(node),
            ipv4: None,
            ipv6: None,
            ports: Vec::new(),
            healthy: true,
        }
    }

    /// With an overlay IPv4 address.
    pub fn with_ipv4(mut self, ipv4: Ipv4Addr) -> Instance {
        self.ipv4 = Some(ipv4);
        self
    }

    /// With an overlay IPv6 address.
    pub fn with_ipv6(mut self, ipv6: Ipv6Addr) -> Instance {
        self.ipv6 = Some(ipv6);
        self
    }

    /// With one more named port.
    pub fn with_port(mut self, name: &str, protocol: Protocol, port: u16) -> Instance {
        self.ports.push(NamedPort {
            name: name.into(),
            protocol,
            port,
        });
        self
    }

    /// True when the instance exposes the port `name` over `protocol`.
    pub fn has_port(&self, name: &str, protocol: Protocol) -> bool {
        self.ports.iter().any(|p| p.protocol == protocol && p.name == name)
    }

    /// True when both belong to the same (app, namespace).
    pub fn same_scope(&self, other: &Instance) -> bool {
        self.app == other.app && self.namespace == other.namespace
    }

    fn order_key(&self) -> (&str, &str, u32, &NodeId) {
        (&self.app, &self.namespace, self.number, &self.node)
    }
}

/// A shared, immutable list of instances of one service, sorted by (app,
/// namespace, number), possibly narrowed to a sub-range. Cloning is an
/// `Arc` increment; narrowing ([`Instances::scoped`]) never copies, so
/// looking up and scoping a service costs no allocation.
#[derive(Clone)]
pub struct Instances {
    all: Arc<[Instance]>,
    range: Range<usize>,
}

impl Instances {
    /// Sorts `instances` into the order the type promises.
    pub fn new(mut instances: Vec<Instance>) -> Instances {
        instances.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let len = instances.len();
        Instances {
            all: Arc::from(instances),
            range: 0..len,
        }
    }

    /// No instances (shared, allocation-free after first use).
    pub fn empty() -> Instances {
        static EMPTY: OnceLock<Arc<[Instance]>> = OnceLock::new();
        Instances {
            all: EMPTY.get_or_init(|| Arc::from(Vec::new())).clone(),
            range: 0..0,
        }
    }

    /// The instances of one app (and namespace, if given); `app: None`
    /// keeps everything. Binary search: the list is sorted by (app, namespace).
    pub fn scoped(&self, app: Option<&str>, namespace: Option<&str>) -> Instances {
        let Some(app) = app else {
            return self.clone();
        };
        let slice = &self[..];
        let start =
            slice.partition_point(|i| (i.app.as_str(), namespace.map(|_| i.namespace.as_str())) < (app, namespace));
        let end =
            start + slice[start..].partition_point(|i| i.app == app && namespace.is_none_or(|ns| i.namespace == ns));
        Instances {
            all: self.all.clone(),
            range: self.range.start + start..self.range.start + end,
        }
    }

    /// The distinct (app, namespace) pairs present, in order, each with its
    /// instances.
    pub fn groups(&self) -> impl Iterator<Item = Instances> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let first = self.get(at)?;
            let rest = &self[at..];
            // Most services live in one app: one comparison says so.
            let len = match rest.last() {
                Some(last) if last.same_scope(first) => rest.len(),
                _ => rest.partition_point(|i| i.same_scope(first)),
            };
            let group = Instances {
                all: self.all.clone(),
                range: self.range.start + at..self.range.start + at + len,
            };
            at += len;
            Some(group)
        })
    }
}

impl Deref for Instances {
    type Target = [Instance];
    fn deref(&self) -> &[Instance] {
        self.all.get(self.range.clone()).unwrap_or(&[])
    }
}

impl fmt::Debug for Instances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An RTT figure from this node to another.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RttEstimate {
    /// The round-trip time.
    pub rtt: Duration,
    /// How far to trust it, 0 to 1 (a Vivaldi coordinate's 1 − relative error).
    pub confidence: f64,
    /// True for an RTT measured on a live path; false for one estimated
    /// from network coordinates.
    pub measured: bool,
}

impl RttEstimate {
    /// A measured RTT (confidence 1).
    pub fn measured(rtt: Duration) -> RttEstimate {
        RttEstimate {
            rtt,
            confidence: 1.0,
            measured: true,
        }
    }

    /// An RTT estimated from coordinates, with its confidence.
    pub fn estimated(rtt: Duration, confidence: f64) -> RttEstimate {
        RttEstimate {
            rtt,
            confidence,
            measured: false,
        }
    }
}

/// How far a node is from the asking (local) node.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Distance {
    /// Estimated round-trip time, if any is known.
    pub rtt: Option<RttEstimate>,
    /// Great-circle distance in km, if both locations are known.
    pub km: Option<f64>,
}

impl Distance {
    /// Nothing known.
    pub const UNKNOWN: Distance = Distance { rtt: None, km: None };
    /// The local node itself: zero, measured.
    pub const LOCAL: Distance = Distance {
        rtt: Some(RttEstimate {
            rtt: Duration::ZERO,
            confidence: 1.0,
            measured: true,
        }),
        km: Some(0.0),
    };
}

/// Distances from the local node (the one whose resolver answers, hence the
/// asker's) to any node.
pub trait DistanceOracle: Send + Sync {
    /// Unknown nodes get [`Distance::UNKNOWN`]; the local node
    /// [`Distance::LOCAL`].
    fn distance(&self, node: &NodeId) -> Distance;
}

/// Instances by service, plus distances.
pub trait Directory: DistanceOracle {
    /// Every instance of `service` (lowercase), in every app and namespace.
    fn service(&self, service: &str) -> Instances;

    /// The instances of `service` in `app` (and `namespace`, if given).
    fn instances(&self, service: &str, app: Option<&str>, namespace: Option<&str>) -> Instances {
        self.service(service).scoped(app, namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::instance;

    fn sample() -> Instances {
        Instances::new(vec![
            instance("web", "prod", 2, "n1"),
            instance("cam", "prod", 1, "n2"),
            instance("web", "dev", 1, "n3"),
            instance("web", "prod", 1, "n4"),
            instance("cam", "edge", 0, "n5"),
        ])
    }

    fn keys(list: &Instances) -> Vec<String> {
        list.iter()
            .map(|i| format!("{}/{}/{}", i.app, i.namespace, i.number))
            .collect()
    }

    #[test]
    fn sorted_by_app_namespace_number() {
        assert_eq!(
            keys(&sample()),
            ["cam/edge/0", "cam/prod/1", "web/dev/1", "web/prod/1", "web/prod/2"]
        );
    }

    #[test]
    fn scoped_narrows_without_copying() {
        let all = sample();
        assert_eq!(
            keys(&all.scoped(Some("web"), None)),
            ["web/dev/1", "web/prod/1", "web/prod/2"]
        );
        assert_eq!(
            keys(&all.scoped(Some("web"), Some("prod"))),
            ["web/prod/1", "web/prod/2"]
        );
        assert_eq!(keys(&all.scoped(Some("cam"), Some("prod"))), ["cam/prod/1"]);
        assert!(all.scoped(Some("web"), Some("edge")).is_empty());
        assert!(all.scoped(Some("zzz"), None).is_empty());
        assert!(all.scoped(Some("a"), None).is_empty());
        assert_eq!(all.scoped(None, Some("prod")).len(), 5);
        // Scoping a scope.
        let web = all.scoped(Some("web"), None);
        assert_eq!(keys(&web.scoped(Some("web"), Some("dev"))), ["web/dev/1"]);
        assert!(Arc::ptr_eq(&web.all, &all.all));
    }

    #[test]
    fn groups_in_order() {
        let groups: Vec<Vec<String>> = sample().groups().map(|g| keys(&g)).collect();
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[3], ["web/prod/1", "web/prod/2"]);
        assert_eq!(Instances::empty().groups().count(), 0);
    }

    #[test]
    fn instance_json_defaults() {
        let json = r#"{"service":"ms2","app":"web","namespace":"prod","number":1,"node":"n1"}"#;
        let i: Instance = serde_json::from_str(json).expect("parse");
        assert!(i.healthy && i.ports.is_empty() && i.ipv4.is_none());
        assert!(serde_json::from_str::<Instance>(&json.replace("}", r#","extra":1}"#)).is_err());
    }
}
