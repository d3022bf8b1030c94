//! An in-memory [`Directory`]: netmanager fills it from its local API until
//! the control plane lands.
//!
//! Reads dominate (every query), writes are rare (a deployment, a health
//! change, a new RTT). So the data lives in an immutable
//! [`DirectorySnapshot`] behind an `Arc`: a reader takes the current
//! snapshot (a read lock held for one `Arc` clone) and then works without
//! locks; a writer copies the snapshot, changes the copy and swaps it in.
//! The resolver should take one snapshot per query
//! ([`MemoryDirectory::snapshot`]) and ask it everything.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::directory::{Directory, Distance, DistanceOracle, Instance, Instances, NodeId, RttEstimate};
use crate::fasthash::FastMap;
use crate::geo::Location;
use crate::label::Label;
use crate::name::SEARCH_MARKER;
use crate::DnsError;

/// One immutable state of a [`MemoryDirectory`].
#[derive(Clone, Debug)]
pub struct DirectorySnapshot {
    local: NodeId,
    local_location: Option<Location>,
    /// Keyed by service name; `Arc` keys keep the copy-on-write clone cheap.
    services: FastMap<Arc<str>, Instances>,
    /// Every node with a known distance, the local node included (at
    /// [`Distance::LOCAL`]), so that a distance is one lookup.
    nodes: FastMap<NodeId, NodeState>,
}

/// A remote node's location (kept to recompute km when the local location
/// changes) and its distance as the oracle reports it.
#[derive(Clone, Copy, Debug, Default)]
struct NodeState {
    location: Option<Location>,
    distance: Distance,
}

impl DistanceOracle for DirectorySnapshot {
    fn distance(&self, node: &NodeId) -> Distance {
        self.nodes.get(node).map_or(Distance::UNKNOWN, |n| n.distance)
    }
}

impl Directory for DirectorySnapshot {
    fn service(&self, service: &str) -> Instances {
        self.services.get(service).cloned().unwrap_or_else(Instances::empty)
    }
}

impl DirectorySnapshot {
    /// The node this directory measures distances from.
    pub fn local(&self) -> &NodeId {
        &self.local
    }

    /// Every service name with at least one instance.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(|k| &**k)
    }
}

/// The in-memory directory. `Send + Sync`; share it in an `Arc`.
pub struct MemoryDirectory {
    current: RwLock<Arc<DirectorySnapshot>>,
    /// Serialises writers so that two updates cannot both copy the same
    /// snapshot and lose one another's change.
    writer: Mutex<()>,
}

impl MemoryDirectory {
    /// An empty directory for the node `local`.
    pub fn new(local: NodeId) -> MemoryDirectory {
        let mut nodes = FastMap::default();
        nodes.insert(
            local.clone(),
            NodeState {
                location: None,
                distance: Distance::LOCAL,
            },
        );
        MemoryDirectory {
            current: RwLock::new(Arc::new(DirectorySnapshot {
                local,
                local_location: None,
                services: FastMap::default(),
                nodes,
            })),
            writer: Mutex::new(()),
        }
    }

    /// The current state; lock-free to use once taken.
    pub fn snapshot(&self) -> Arc<DirectorySnapshot> {
        self.current.read().clone()
    }

    /// Applies several changes as one (one copy, one swap); readers see all
    /// of them or none.
    pub fn update<R>(&self, change: impl FnOnce(&mut DirectoryUpdate<'_>) -> R) -> R {
        let _writer = self.writer.lock();
        let mut next = DirectorySnapshot::clone(&self.snapshot());
        let result = change(&mut DirectoryUpdate { snapshot: &mut next });
        *self.current.write() = Arc::new(next);
        result
    }

    /// Adds or replaces an instance (same service, app, namespace and
    /// number); returns the one it replaced.
    pub fn register(&self, instance: Instance) -> Result<Option<Instance>, DnsError> {
        self.update(|u| u.register(instance))
    }

    /// Removes an instance; returns it if it was there.
    pub fn deregister(&self, service: &str, app: &str, namespace: &str, number: u32) -> Option<Instance> {
        self.update(|u| u.deregister(service, app, namespace, number))
    }

    /// Marks one instance healthy or not; false if there is no such instance.
    pub fn set_healthy(&self, service: &str, app: &str, namespace: &str, number: u32, healthy: bool) -> bool {
        self.update(|u| u.set_healthy(service, app, namespace, number, healthy))
    }

    /// Sets a node's location (the local node's too).
    pub fn set_location(&self, node: &NodeId, location: Location) -> Result<(), DnsError> {
        self.update(|u| u.set_location(node, location))
    }

    /// Sets or clears the RTT estimate from the local node to `node`.
    pub fn set_rtt(&self, node: &NodeId, rtt: Option<RttEstimate>) {
        self.update(|u| u.set_rtt(node, rtt))
    }
}

impl DistanceOracle for MemoryDirectory {
    fn distance(&self, node: &NodeId) -> Distance {
        self.current.read().distance(node)
    }
}

impl Directory for MemoryDirectory {
    fn service(&self, service: &str) -> Instances {
        self.current.read().service(service)
    }
}

/// Changes to a copy of the snapshot, inside [`MemoryDirectory::update`].
pub struct DirectoryUpdate<'a> {
    snapshot: &'a mut DirectorySnapshot,
}

impl DirectoryUpdate<'_> {
    /// See [`MemoryDirectory::register`]. Names are checked and lowercased:
    /// an instance whose names could never be asked for is refused.
    pub fn register(&mut self, mut instance: Instance) -> Result<Option<Instance>, DnsError> {
        for field in [&mut instance.service, &mut instance.app, &mut instance.namespace] {
            *field = checked_label(field)?;
        }
        for port in &mut instance.ports {
            port.name = checked_label(&port.name)?;
        }
        // One shared `NodeId` per node: equality is then a pointer compare.
        match self.snapshot.nodes.get_key_value(&instance.node) {
            Some((shared, _)) => instance.node = shared.clone(),
            None => {
                self.snapshot.nodes.insert(instance.node.clone(), NodeState::default());
            }
        }
        let mut list = self.take(&instance.service);
        let old = match list
            .iter()
            .position(|i| same_key(i, &instance.app, &instance.namespace, instance.number))
        {
            Some(at) => Some(std::mem::replace(&mut list[at], instance.clone())),
            None => {
                list.push(instance.clone());
                None
            }
        };
        self.put(&instance.service, list);
        Ok(old)
    }

    /// See [`MemoryDirectory::deregister`].
    pub fn deregister(&mut self, service: &str, app: &str, namespace: &str, number: u32) -> Option<Instance> {
        let service = service.to_ascii_lowercase();
        let mut list = self.take(&service);
        let (app, namespace) = (app.to_ascii_lowercase(), namespace.to_ascii_lowercase());
        let old = list
            .iter()
            .position(|i| same_key(i, &app, &namespace, number))
            .map(|at| list.remove(at));
        self.put(&service, list);
        old
    }

    /// Removes every instance on `node` (the node left); returns how many.
    pub fn deregister_node(&mut self, node: &NodeId) -> usize {
        let before: usize = self.snapshot.services.values().map(|l| l.len()).sum();
        self.snapshot.services = std::mem::take(&mut self.snapshot.services)
            .into_iter()
            .filter_map(|(name, list)| {
                let kept: Vec<Instance> = list.iter().filter(|i| i.node != *node).cloned().collect();
                (!kept.is_empty()).then(|| (name, Instances::new(kept)))
            })
            .collect();
        before - self.snapshot.services.values().map(|l| l.len()).sum::<usize>()
    }

    /// See [`MemoryDirectory::set_healthy`].
    pub fn set_healthy(&mut self, service: &str, app: &str, namespace: &str, number: u32, healthy: bool) -> bool {
        let service = service.to_ascii_lowercase();
        let mut list = self.take(&service);
        let (app, namespace) = (app.to_ascii_lowercase(), namespace.to_ascii_lowercase());
        let found = list.iter_mut().find(|i| same_key(i, &app, &namespace, number));
        let changed = found.map(|i| i.healthy = healthy).is_some();
        self.put(&service, list);
        changed
    }

    /// Marks every instance on `node` healthy or not (node up or down);
    /// returns how many instances it touched.
    pub fn set_node_healthy(&mut self, node: &NodeId, healthy: bool) -> usize {
        let mut touched = 0;
        for list in self.snapshot.services.values_mut() {
            if list.iter().any(|i| i.node == *node) {
                let mut copy = list.to_vec();
                for i in copy.iter_mut().filter(|i| i.node == *node) {
                    i.healthy = healthy;
                    touched += 1;
                }
                *list = Instances::new(copy);
            }
        }
        touched
    }

    /// See [`MemoryDirectory::set_location`].
    pub fn set_location(&mut self, node: &NodeId, location: Location) -> Result<(), DnsError> {
        let location = Location::new(location.lat, location.lon)?;
        if *node == self.snapshot.local {
            let snapshot = &mut *self.snapshot;
            snapshot.local_location = Some(location);
            for (id, state) in snapshot.nodes.iter_mut() {
                if *id != snapshot.local {
                    state.distance.km = km(snapshot.local_location, state.location);
                }
            }
        } else {
            let local = self.snapshot.local_location;
            let state = self.snapshot.nodes.entry(node.clone()).or_default();
            state.location = Some(location);
            state.distance.km = km(local, state.location);
        }
        Ok(())
    }

    /// See [`MemoryDirectory::set_rtt`]. Confidence is clamped to 0..=1
    /// (NaN counts as 0). Ignored for the local node, which is always 0.
    pub fn set_rtt(&mut self, node: &NodeId, rtt: Option<RttEstimate>) {
        if *node == self.snapshot.local {
            return;
        }
        let rtt = rtt.map(|mut r| {
            r.confidence = if r.confidence.is_nan() {
                0.0
            } else {
                r.confidence.clamp(0.0, 1.0)
            };
            r
        });
        let state = self.snapshot.nodes.entry(node.clone()).or_default();
        state.distance.rtt = rtt;
    }

    /// The current instances of `service` as a vector to edit.
    fn take(&self, service: &str) -> Vec<Instance> {
        self.snapshot
            .services
            .get(service)
            .map(|l| l.to_vec())
            .unwrap_or_default()
    }

    /// Stores an edited list (dropping the service when it is empty).
    fn put(&mut self, service: &str, list: Vec<Instance>) {
        if list.is_empty() {
            self.snapshot.services.remove(service);
        } else {
            self.snapshot.services.insert(Arc::from(service), Instances::new(list));
        }
    }
}

fn same_key(i: &Instance, app: &str, namespace: &str, number: u32) -> bool {
    i.number == number && i.app == app && i.namespace == namespace
}

fn km(local: Option<Location>, remote: Option<Location>) -> Option<f64> {
    Some(local?.km_to(&remote?))
}

/// A lowercase grove label that is not the reserved search marker.
fn checked_label(name: &str) -> Result<String, DnsError> {
    match Label::parse(name) {
        Some(label) if label != SEARCH_MARKER => Ok(label.as_str().to_owned()),
        _ => Err(DnsError::InvalidName {
            name: name.to_owned(),
            reason: "service, app, namespace and port names are 1-63 letters, digits or inner hyphens, and not `svc`",
        }),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
