//! Builders and fakes shared by the unit tests.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::directory::{Directory, Distance, DistanceOracle, Instances, NodeId, RttEstimate};
use crate::instance::{Instance, InstanceKey, InstanceSpec, NamedPort, Protocol};

/// A healthy instance of `ms2` with an `http/tcp` port, on node `node`.
pub(crate) fn instance(app: &str, namespace: &str, number: u32, node: &str) -> Instance {
    let key = InstanceKey::new("ms2", app, namespace, number).expect("valid test names");
    let spec = InstanceSpec::new(key)
        .with_ipv4(Ipv4Addr::new(10, 30, (number >> 8) as u8, number as u8))
        .with_port(NamedPort::new("http", Protocol::Tcp, 8080).expect("valid port name"));
    Instance::new(spec, NodeId::new(node))
}

/// Instances `0..n` of `web/prod`, instance `i` on node `n<i>`.
pub(crate) fn numbered(n: u32) -> Instances {
    Instances::new((0..n).map(|i| instance("web", "prod", i, &format!("n{i}"))).collect())
}

/// A distance oracle and directory from fixed tables.
#[derive(Default)]
pub(crate) struct Fake {
    pub distances: HashMap<NodeId, Distance>,
    pub services: HashMap<String, Instances>,
}

impl Fake {
    /// Sets the distance to `node`: RTT in ms (measured) and km, each optional.
    pub fn at(mut self, node: &str, rtt_ms: Option<f64>, km: Option<f64>) -> Fake {
        let rtt = rtt_ms.map(|ms| RttEstimate::measured(Duration::from_secs_f64(ms / 1000.0)));
        self.distances.insert(NodeId::new(node), Distance { rtt, km });
        self
    }

    /// Sets the distance to `node` with a coordinate estimate of `confidence`.
    pub fn estimated(mut self, node: &str, rtt_ms: f64, confidence: f64, km: Option<f64>) -> Fake {
        let rtt = Some(RttEstimate::estimated(
            Duration::from_secs_f64(rtt_ms / 1000.0),
            confidence,
        ));
        self.distances.insert(NodeId::new(node), Distance { rtt, km });
        self
    }

    /// Adds instances of their service.
    pub fn with(mut self, list: Vec<Instance>) -> Fake {
        for i in list {
            let mut all = self.services.get(i.service.as_str()).map(|l| l.to_vec()).unwrap_or_default();
            let service = i.service.to_string();
            all.push(i);
            self.services.insert(service, Instances::new(all));
        }
        self
    }
}

impl DistanceOracle for Fake {
    fn distance(&self, node: &NodeId) -> Distance {
        self.distances.get(node).copied().unwrap_or(Distance::UNKNOWN)
    }
}

impl Directory for Fake {
    fn service(&self, service: &str) -> Instances {
        self.services.get(service).cloned().unwrap_or_else(Instances::empty)
    }
}
