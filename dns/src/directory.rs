//! The seam the resolver asks: which instances a service has, and how far
//! each node is from this one.
//!
//! [`crate::MemoryDirectory`] implements it; netmanager fills that from its
//! local API (static mode) or its control plane (dynamic mode). Implementations
//! must be cheap to call: the resolver asks once per query for the service
//! and once per candidate for its distance.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::instance::{Instance, InstanceKey, InstanceSpec, NamedPort, Protocol};

/// A node of the mesh: its identity (the control plane's peer id, or in
/// static mode the configured name) and the human name shown in `explain`
/// and status. Equality, order and hashing use the identity only, so two
/// nodes that share a name never share an entry. Cheap to clone.
#[derive(Clone)]
pub struct NodeId(Arc<NodeNames>);

struct NodeNames {
    id: Box<str>,
    name: Box<str>,
}

impl NodeId {
    /// A node whose identity is its name (static mode, tests).
    pub fn new(id: &str) -> NodeId {
        NodeId::named(id, id)
    }

    /// A node with an identity and a separate display name.
    pub fn named(id: &str, name: &str) -> NodeId {
        NodeId(Arc::new(NodeNames { id: id.into(), name: name.into() }))
    }

    /// The identity.
    pub fn as_str(&self) -> &str {
        &self.0.id
    }

    /// The human name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl PartialEq for NodeId {
    fn eq(&self, other: &NodeId) -> bool {
        // The store shares one `Arc` per node, which makes this the usual case.
        Arc::ptr_eq(&self.0, &other.0) || self.0.id == other.0.id
    }
}

impl Eq for NodeId {}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &NodeId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeId {
    fn cmp(&self, other: &NodeId) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> NodeId {
        NodeId::new(id)
    }
}

impl fmt::Display for NodeId {
    /// The human name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.id == self.0.name {
            write!(f, "NodeId({})", &self.0.id)
        } else {
            write!(f, "NodeId({} {:?})", &self.0.id, &self.0.name)
        }
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
