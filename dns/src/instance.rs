//! What a service instance is, in one model shared by the resolver, the
//! node daemon's API and the records its control plane signs:
//!
//! * [`InstanceKey`]: which instance — (service, app, namespace, number),
//!   every name a validated grove [`Label`];
//! * [`InstanceSpec`]: what its node announces — the key plus addresses and
//!   named ports (innernet's `PeerContents`: what a user asks for);
//! * [`Instance`]: what the directory tracks — the spec plus the node it
//!   runs on and whether it is healthy (innernet's `Peer { id, contents }`).
//!
//! Each derefs to the one before, so `instance.service` reads through.
//! JSON stays flat (`{"service":…,"app":…,"number":…,"ipv4":…}`), and
//! decoding validates every name, so nothing built from the network, a
//! file or a user carries a name no query could reach.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::directory::NodeId;
use crate::label::Label;
use crate::name::SEARCH_MARKER;
use crate::DnsError;

/// The app and namespace an instance lands in when none is given.
pub const DEFAULT_SCOPE: &str = "default";

/// Transport protocol of a port (RFC 2782 `_tcp` / `_udp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPort {
    /// Grove label (`http`, `grpc`), lowercased.
    pub name: Label,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Port number on the instance's overlay address.
    pub port: u16,
}

impl NamedPort {
    /// A port named `name` (checked like every grove name).
    pub fn new(name: &str, protocol: Protocol, port: u16) -> Result<NamedPort, DnsError> {
        Ok(NamedPort { name: grove_label(name)?, protocol, port })
    }
}

/// Which instance: unique within the mesh. JSON: `{"service":…,"app":…,
/// "namespace":…,"number":…}`, names checked on the way in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "FlatKey")]
pub struct InstanceKey {
    /// Service name, e.g. `ms2`.
    pub service: Label,
    /// The application the service belongs to.
    pub app: Label,
    /// The application's namespace.
    pub namespace: Label,
    /// Instance number, unique within (service, app, namespace).
    pub number: u32,
}

impl InstanceKey {
    /// Checks and lowercases the names; `svc` is refused (the search-domain
    /// marker, [`SEARCH_MARKER`]), as is anything that is not a label.
    pub fn new(service: &str, app: &str, namespace: &str, number: u32) -> Result<InstanceKey, DnsError> {
        Ok(InstanceKey { service: grove_label(service)?, app: grove_label(app)?, namespace: grove_label(namespace)?, number })
    }

    /// True when both belong to the same (app, namespace).
    pub fn same_scope(&self, other: &InstanceKey) -> bool {
        self.app == other.app && self.namespace == other.namespace
    }
}

impl fmt::Display for InstanceKey {
    /// `ms2/cam/default/1`, as in the local API's instance paths.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{}", self.service, self.app, self.namespace, self.number)
    }
}

impl FromStr for InstanceKey {
    type Err = DnsError;

    /// The [`fmt::Display`] form back.
    fn from_str(text: &str) -> Result<InstanceKey, DnsError> {
        let parts: Vec<&str> = text.split('/').collect();
        let [service, app, namespace, number] = parts[..] else {
            return Err(DnsError::InvalidName { name: text.to_owned(), reason: "an instance is <service>/<app>/<namespace>/<number>" });
        };
        let number = number
            .parse()
            .map_err(|_| DnsError::InvalidName { name: text.to_owned(), reason: "the instance number is not a number" })?;
        InstanceKey::new(service, app, namespace, number)
    }
}

/// What a node announces about one instance it runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FlatSpec", into = "FlatSpec")]
pub struct InstanceSpec {
    /// Which instance.
    pub key: InstanceKey,
    /// Overlay IPv4 address (A).
    pub ipv4: Option<Ipv4Addr>,
    /// Overlay IPv6 address (AAAA).
    pub ipv6: Option<Ipv6Addr>,
    /// Named ports (SRV).
    pub ports: Vec<NamedPort>,
}

impl InstanceSpec {
    /// No addresses, no ports yet; add them with the `with_*` methods.
    pub fn new(key: InstanceKey) -> InstanceSpec {
        InstanceSpec { key, ipv4: None, ipv6: None, ports: Vec::new() }
    }

    /// With an overlay IPv4 address.
    pub fn with_ipv4(mut self, ipv4: Ipv4Addr) -> InstanceSpec {
        self.ipv4 = Some(ipv4);
        self
    }

    /// With an overlay IPv6 address.
    pub fn with_ipv6(mut self, ipv6: Ipv6Addr) -> InstanceSpec {
        self.ipv6 = Some(ipv6);
        self
    }

    /// With one more named port.
    pub fn with_port(mut self, port: NamedPort) -> InstanceSpec {
        self.ports.push(port);
        self
    }

    /// True when the instance exposes the port `name` over `protocol`.
    pub fn has_port(&self, name: &str, protocol: Protocol) -> bool {
        self.ports.iter().any(|p| p.protocol == protocol && p.name == name)
    }
}

impl Deref for InstanceSpec {
    type Target = InstanceKey;
    fn deref(&self) -> &InstanceKey {
        &self.key
    }
}

/// One running instance, as the directory knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FlatInstance", into = "FlatInstance")]
pub struct Instance {
    /// What its node announced.
    pub spec: InstanceSpec,
    /// The node it runs on; the distance oracle is asked about this node.
    pub node: NodeId,
    /// False when the instance or its node is known to be down. Unhealthy
    /// instances are served only when no healthy one exists.
    pub healthy: bool,
}

impl Instance {
    /// A healthy instance of `spec` on `node`.
    pub fn new(spec: InstanceSpec, node: NodeId) -> Instance {
        Instance { spec, node, healthy: true }
    }

    /// Sorting order of a service's list: (app, namespace, number, node).
    pub(crate) fn order_key(&self) -> (&Label, &Label, u32, &NodeId) {
        (&self.app, &self.namespace, self.number, &self.node)
    }
}

impl Deref for Instance {
    type Target = InstanceSpec;
    fn deref(&self) -> &InstanceSpec {
        &self.spec
    }
}

/// A grove label that is not the reserved search marker.
fn grove_label(name: &str) -> Result<Label, DnsError> {
    match Label::parse(name) {
        Some(label) if label != SEARCH_MARKER => Ok(label),
        _ => Err(DnsError::InvalidName {
            name: name.to_owned(),
            reason: "service, app, namespace and port names are 1-63 letters, digits or inner hyphens, and not `svc`",
        }),
    }
}

fn default_scope() -> String {
    DEFAULT_SCOPE.to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatKey {
    service: String,
    #[serde(default = "default_scope")]
    app: String,
    #[serde(default = "default_scope")]
    namespace: String,
    number: u32,
}

impl TryFrom<FlatKey> for InstanceKey {
    type Error = DnsError;
    fn try_from(flat: FlatKey) -> Result<InstanceKey, DnsError> {
        InstanceKey::new(&flat.service, &flat.app, &flat.namespace, flat.number)
    }
}

/// The JSON (and wire) shape of an [`InstanceSpec`]: flat, names as text,
/// checked on the way in.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatSpec {
    service: String,
    #[serde(default = "default_scope")]
    app: String,
    #[serde(default = "default_scope")]
    namespace: String,
    number: u32,
    #[serde(default)]
    ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    ipv6: Option<Ipv6Addr>,
    #[serde(default)]
    ports: Vec<NamedPort>,
}

impl TryFrom<FlatSpec> for InstanceSpec {
    type Error = DnsError;
    fn try_from(flat: FlatSpec) -> Result<InstanceSpec, DnsError> {
        let key = InstanceKey::new(&flat.service, &flat.app, &flat.namespace, flat.number)?;
        for port in &flat.ports {
            grove_label(port.name.as_str())?;
        }
        Ok(InstanceSpec { key, ipv4: flat.ipv4, ipv6: flat.ipv6, ports: flat.ports })
    }
}

impl From<InstanceSpec> for FlatSpec {
    fn from(spec: InstanceSpec) -> FlatSpec {
        let InstanceSpec { key, ipv4, ipv6, ports } = spec;
        FlatSpec {
            service: key.service.to_string(),
            app: key.app.to_string(),
            namespace: key.namespace.to_string(),
            number: key.number,
            ipv4,
            ipv6,
            ports,
        }
    }
}

fn default_healthy() -> bool {
    true
}

/// The JSON shape of an [`Instance`]: the flat spec plus `node` (its name),
/// `node_id` (its identity, when it differs from the name) and `healthy`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatInstance {
    service: String,
    #[serde(default = "default_scope")]
    app: String,
    #[serde(default = "default_scope")]
    namespace: String,
    number: u32,
    node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node_id: Option<String>,
    #[serde(default)]
    ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    ipv6: Option<Ipv6Addr>,
    #[serde(default)]
    ports: Vec<NamedPort>,
    #[serde(default = "default_healthy")]
    healthy: bool,
}

impl TryFrom<FlatInstance> for Instance {
    type Error = DnsError;
    fn try_from(flat: FlatInstance) -> Result<Instance, DnsError> {
        let FlatInstance { service, app, namespace, number, node, node_id, ipv4, ipv6, ports, healthy } = flat;
        let spec = InstanceSpec::try_from(FlatSpec { service, app, namespace, number, ipv4, ipv6, ports })?;
        let node = match node_id {
            Some(id) => NodeId::named(&id, &node),
            None => NodeId::new(&node),
        };
        Ok(Instance { spec, node, healthy })
    }
}

impl From<Instance> for FlatInstance {
    fn from(instance: Instance) -> FlatInstance {
        let Instance { spec, node, healthy } = instance;
        let flat = FlatSpec::from(spec);
        let node_id = (node.as_str() != node.name()).then(|| node.as_str().to_owned());
        FlatInstance {
            service: flat.service,
            app: flat.app,
            namespace: flat.namespace,
            number: flat.number,
            node: node.name().to_owned(),
            node_id,
            ipv4: flat.ipv4,
            ipv6: flat.ipv6,
            ports: flat.ports,
            healthy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> InstanceKey {
        InstanceKey::new("Ms2", "cam", "default", 3).expect("key")
    }

    #[test]
    fn keys_are_checked_lowercased_and_print_as_paths() {
        assert_eq!(key().to_string(), "ms2/cam/default/3");
        assert_eq!("ms2/cam/default/3".parse::<InstanceKey>().expect("parse"), key());
        for bad in ["ms2/cam/default", "ms2/svc/default/1", "m_s/cam/default/1", "ms2/cam/default/x"] {
            assert!(bad.parse::<InstanceKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_json_is_flat_with_defaults_and_refuses_bad_names() {
        let spec: InstanceSpec = serde_json::from_str(r#"{"service":"ms2","number":1,"ipv6":"fd18::5"}"#).expect("spec");
        assert_eq!(spec.key, InstanceKey::new("ms2", "default", "default", 1).expect("key"));
        assert_eq!(spec.ipv6, Some("fd18::5".parse().expect("v6")), "IPv6 is kept");
        let json = serde_json::to_string(&spec).expect("json");
        assert_eq!(serde_json::from_str::<InstanceSpec>(&json).expect("back"), spec);
        for bad in [
            r#"{"service":"svc","number":1}"#,
            r#"{"service":"ms2","number":1,"extra":true}"#,
            r#"{"service":"ms2","number":1,"ports":[{"name":"h_t","protocol":"tcp","port":1}]}"#,
            r#"{"service":"ms2","number":1,"ports":[{"name":"http","protocol":"sctp","port":1}]}"#,
        ] {
            assert!(serde_json::from_str::<InstanceSpec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instance_json_carries_node_name_and_identity() {
        let spec = InstanceSpec::new(key())
            .with_ipv4(Ipv4Addr::new(10, 18, 0, 66))
            .with_port(NamedPort::new("http", Protocol::Udp, 53).expect("port"));
        let instance = Instance::new(spec, NodeId::named("12D3KooW", "munich"));
        let json = serde_json::to_value(&instance).expect("json");
        assert_eq!(json["node"], "munich");
        assert_eq!(json["node_id"], "12D3KooW");
        assert_eq!(json["ports"][0]["protocol"], "udp", "the protocol survives");
        let back: Instance = serde_json::from_value(json).expect("back");
        assert_eq!(back, instance);
        assert_eq!(back.node.name(), "munich");
    }
}
