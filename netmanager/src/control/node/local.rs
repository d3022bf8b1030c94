//! This node as it describes itself: its grant, addresses, location and
//! the instances it announces; registering and deregistering instances.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use dns::{InstanceKey, InstanceSpec, Location};
use ipnet::Ipv4Net;
use libp2p_identity::PeerId;

use super::{ControlNode, Done, NodeSettings, Output};
use crate::control::vivaldi::Coordinate;
use crate::control::wire::records::{Delegation, NodeRecord, SubnetGrant, MAX_INSTANCES};
use crate::control::wire::{Bounded, Signed};
use crate::control::ControlError;

pub struct LocalNode {
    peer: PeerId,
    name: String,
    subnet: Ipv4Net,
    grant: Signed<SubnetGrant>,
    delegation: Option<Signed<Delegation>>,
    endpoints: Vec<SocketAddr>,
    control: Vec<SocketAddr>,
    location: Option<Location>,
    instances: BTreeMap<InstanceKey, InstanceSpec>,
}

impl LocalNode {
    pub fn new(settings: &NodeSettings, peer: PeerId) -> LocalNode {
        LocalNode {
            peer,
            name: settings.info.name.clone(),
            subnet: settings.info.subnet,
            grant: settings.grant.clone(),
            delegation: settings.delegation.clone(),
            endpoints: settings.endpoints.clone(),
            control: settings.control.clone(),
            location: settings.location,
            instances: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the operator says this node is.
    pub fn location(&self) -> Option<Location> {
        self.location
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    pub fn peer(&self) -> PeerId {
        self.peer
    }

    pub fn instances(&self) -> &BTreeMap<InstanceKey, InstanceSpec> {
        &self.instances
    }

    pub fn record(&self, coordinate: Coordinate, version: u64) -> NodeRecord {
        NodeRecord {
            endpoints: Bounded::truncate(self.endpoints.clone()),
            control: Bounded::truncate(self.control.clone()),
            grant: self.grant.clone(),
            delegation: self.delegation.clone(),
            location: self.location,
            coordinate,
            version,
        }
    }

    /// Instances announced by this node must live in its subnet (every
    /// member would ignore them otherwise) and have an address: refuse
    /// them here, loudly, before anything is published.
    fn check(&self, specs: &[InstanceSpec]) -> Result<(), ControlError> {
        let mut total = self.instances.len();
        for spec in specs {
            if spec.ipv4.is_none() && spec.ipv6.is_none() {
                return Err(ControlError::NoAddress(Box::new(spec.key)));
            }
            if let Some(address) = spec.ipv4 {
                let outside = !self.subnet.contains(&address) || address == self.subnet.network() || address == self.subnet.broadcast();
                if outside {
                    return Err(ControlError::OutsideSubnet { instance: Box::new(spec.key), address, subnet: self.subnet });
                }
            }
            if let Some(address) = spec.ipv6 {
                if !address.is_unique_local() {
                    return Err(ControlError::NotUniqueLocal { instance: Box::new(spec.key), address });
                }
            }
            if !self.instances.contains_key(&spec.key) {
                total += 1;
            }
        }
        if total > MAX_INSTANCES {
            return Err(ControlError::TooManyInstances { limit: MAX_INSTANCES });
        }
        Ok(())
    }
}

impl ControlNode {
    /// Adds or replaces instances and publishes the new set; if the set
    /// cannot be signed (too large) nothing changes and the caller is told.
    pub(super) fn register(&mut self, specs: Vec<InstanceSpec>, now: Instant, out: &mut Vec<Output>) -> Result<Done, ControlError> {
        self.local.check(&specs)?;
        let before = self.local.instances.clone();
        for spec in &specs {
            self.local.instances.insert(spec.key, spec.clone());
        }
        if let Err(e) = self.try_publish_instances(now, out) {
            self.local.instances = before;
            return Err(e);
        }
        Ok(Done::Registered(specs))
    }

    pub(super) fn deregister(&mut self, key: &InstanceKey, now: Instant, out: &mut Vec<Output>) -> Result<Done, ControlError> {
        let removed = self.local.instances.remove(key).ok_or(ControlError::UnknownInstance(Box::new(*key)))?;
        if let Err(e) = self.try_publish_instances(now, out) {
            self.local.instances.insert(*key, removed);
            return Err(e);
        }
        Ok(Done::Deregistered(Box::new(removed)))
    }
}
