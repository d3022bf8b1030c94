//! An in-memory [`Directory`]: netmanager fills it, from its local API in
//! static mode and from the control plane's signed records in dynamic mode.
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

use crate::directory::{Directory, Distance, DistanceOracle, Instance, InstanceKey, Instances, NodeId, RttEstimate};
use crate::fasthash::FastMap;
use crate::geo::Location;
use crate::label::Label;
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
    /// The services each node has instances in, so that changing one
    /// node's instances touches only those services' lists (cost in
    /// proportion to the change, not to the directory).
    by_node: FastMap<NodeId, Vec<Arc<str>>>,
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
                by_node: FastMap::default(),
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
    pub fn deregister(&self, key: &InstanceKey) -> Option<Instance> {
        self.update(|u| u.deregister(key))
    }

    /// Marks one instance healthy or not; false if there is no such instance.
    pub fn set_healthy(&self, key: &InstanceKey, healthy: bool) -> bool {
        self.update(|u| u.set_healthy(key, healthy))
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
    /// See [`MemoryDirectory::register`]. Names were checked when the
    /// instance was built ([`InstanceKey::new`], decoding), so this cannot
    /// fail today; the `Result` leaves room for store limits.
    pub fn register(&mut self, mut instance: Instance) -> Result<Option<Instance>, DnsError> {
        instance.node = self.shared_node(&instance.node);
        let service = instance.service;
        let mut list = self.take(service.as_str());
        let old = match list.iter().position(|i| i.key == instance.key) {
            Some(at) => Some(std::mem::replace(&mut list[at], instance.clone())),
            None => {
                list.push(instance.clone());
                None
            }
        };
        if let Some(old) = &old {
            if old.node != instance.node {
                self.unindex(&old.node, service.as_str(), &list);
            }
        }
        self.index(&instance.node, service.as_str());
        self.put(service.as_str(), list);
        Ok(old)
    }

    /// Registers many instances at once: one copy of each service's list
    /// however many instances it gains, so a batch costs time linear in
    /// the directory plus the batch. Returns how many replaced an instance.
    pub fn register_all(&mut self, instances: Vec<Instance>) -> usize {
        let mut by_service: FastMap<Label, Vec<Instance>> = FastMap::default();
        for mut instance in instances {
            instance.node = self.shared_node(&instance.node);
            by_service.entry(instance.service).or_default().push(instance);
        }
        let mut replaced = 0;
        for (service, batch) in by_service {
            let service = service.as_str();
            let mut list = self.take(service);
            let mut at: FastMap<InstanceKey, usize> = list.iter().enumerate().map(|(n, i)| (i.key, n)).collect();
            let mut displaced = Vec::new();
            for instance in batch {
                self.index(&instance.node, service);
                match at.get(&instance.key) {
                    Some(&n) => {
                        replaced += 1;
                        displaced.push(std::mem::replace(&mut list[n], instance).node);
                    }
                    None => {
                        at.insert(instance.key, list.len());
                        list.push(instance);
                    }
                }
            }
            for node in displaced {
                self.unindex(&node, service, &list);
            }
            self.put(service, list);
        }
        replaced
    }

    /// See [`MemoryDirectory::deregister`].
    pub fn deregister(&mut self, key: &InstanceKey) -> Option<Instance> {
        let service = key.service.as_str();
        let mut list = self.take(service);
        let old = list.iter().position(|i| i.key == *key).map(|at| list.remove(at));
        if let Some(old) = &old {
            self.unindex(&old.node, service, &list);
        }
        self.put(service, list);
        old
    }

    /// Makes `instances` exactly what `node` runs: its other instances
    /// leave, these replace whatever held their keys. `node` also renames
    /// the node if its display name changed. Touches only the services
    /// involved, each list rebuilt once; returns how many instances of
    /// `node` were removed.
    pub fn replace_node(&mut self, node: &NodeId, instances: Vec<Instance>) -> usize {
        let node = self.rename(node);
        let mut services: Vec<Arc<str>> = self.snapshot.by_node.remove(&node).unwrap_or_default();
        for instance in &instances {
            if !services.iter().any(|s| **s == *instance.service.as_str()) {
                services.push(Arc::from(instance.service.as_str()));
            }
        }
        let mut removed = 0;
        for service in services {
            let mut list = self.take(&service);
            let before = list.len();
            list.retain(|i| i.node != node);
            removed += before - list.len();
            for instance in instances.iter().filter(|i| *i.service.as_str() == *service) {
                let mut instance = instance.clone();
                instance.node = node.clone();
                match list.iter().position(|i| i.key == instance.key) {
                    Some(at) => {
                        // Another node held the key: the caller decided
                        // this one wins; the loser's index is fixed below.
                        let loser = std::mem::replace(&mut list[at], instance);
                        self.unindex(&loser.node, &service, &list);
                    }
                    None => list.push(instance),
                }
            }
            if list.iter().any(|i| i.node == node) {
                self.index(&node, &service);
            }
            self.put(&service, list);
        }
        removed
    }

    /// Removes every instance on `node` (the node left); returns how many.
    pub fn deregister_node(&mut self, node: &NodeId) -> usize {
        self.replace_node(node, Vec::new())
    }

    /// See [`MemoryDirectory::set_healthy`].
    pub fn set_healthy(&mut self, key: &InstanceKey, healthy: bool) -> bool {
        let service = key.service.as_str();
        let mut list = self.take(service);
        let found = list.iter_mut().find(|i| i.key == *key);
        let changed = found.map(|i| i.healthy = healthy).is_some();
        self.put(service, list);
        changed
    }

    /// Marks every instance on `node` healthy or not (node up or down);
    /// returns how many instances it touched.
    pub fn set_node_healthy(&mut self, node: &NodeId, healthy: bool) -> usize {
        let services = self.snapshot.by_node.get(node).cloned().unwrap_or_default();
        let mut touched = 0;
        for service in services {
            let mut list = self.take(&service);
            for i in list.iter_mut().filter(|i| i.node == *node) {
                i.healthy = healthy;
                touched += 1;
            }
            self.put(&service, list);
        }
        touched
    }

    /// Forgets a node entirely: its instances, location and distance.
    pub fn remove_node(&mut self, node: &NodeId) {
        self.deregister_node(node);
        if *node != self.snapshot.local {
            self.snapshot.nodes.remove(node);
        }
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

    /// The node's shared `NodeId` (one `Arc` per node makes equality a
    /// pointer compare), registering the node if it is new.
    fn shared_node(&mut self, node: &NodeId) -> NodeId {
        match self.snapshot.nodes.get_key_value(node) {
            Some((shared, _)) => shared.clone(),
            None => {
                self.snapshot.nodes.insert(node.clone(), NodeState::default());
                node.clone()
            }
        }
    }

    /// Like [`Self::shared_node`], but `node`'s display name wins: the
    /// stored key is replaced when the name changed.
    fn rename(&mut self, node: &NodeId) -> NodeId {
        match self.snapshot.nodes.get_key_value(node) {
            Some((shared, _)) if shared.name() == node.name() => shared.clone(),
            Some(_) => {
                let state = self.snapshot.nodes.remove(node).unwrap_or_default();
                self.snapshot.nodes.insert(node.clone(), state);
                if let Some(services) = self.snapshot.by_node.remove(node) {
                    self.snapshot.by_node.insert(node.clone(), services);
                }
                node.clone()
            }
            None => {
                self.snapshot.nodes.insert(node.clone(), NodeState::default());
                node.clone()
            }
        }
    }

    fn index(&mut self, node: &NodeId, service: &str) {
        let services = self.snapshot.by_node.entry(node.clone()).or_default();
        if !services.iter().any(|s| **s == *service) {
            services.push(Arc::from(service));
        }
    }

    /// Drops `service` from `node`'s index unless `list` (the service's
    /// new list) still has an instance on it.
    fn unindex(&mut self, node: &NodeId, service: &str, list: &[Instance]) {
        if list.iter().any(|i| i.node == *node) {
            return;
        }
        if let Some(services) = self.snapshot.by_node.get_mut(node) {
            services.retain(|s| **s != *service);
            if services.is_empty() {
                self.snapshot.by_node.remove(node);
            }
        }
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

fn km(local: Option<Location>, remote: Option<Location>) -> Option<f64> {
    Some(local?.km_to(&remote?))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
