//! The root's core, free of I/O: what is deployed, which clusters report,
//! and the reconcile step that turns the difference between wanted and
//! reported into messages for clusters. The daemon ([`super::run`]) feeds
//! it clocks, reports and API calls, sends what it returns, and persists
//! what it marks dirty.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use dns::{InstanceKey, Location};

use super::records::{AppRecord, InstanceRecord, ServiceRecord};
use crate::model::{Capacity, ClusterId, InstanceState};
use crate::proto::{InstanceReport, Message, WorkerReport};
use crate::schedule::{pick_cluster_spread, ClusterSummary, Decision, GeoRtt};
use crate::sla::{AppSpec, SlaSpec};
use crate::OrchestratorError;

/// A Place not confirmed by the cluster's report within this long is sent again.
const PLACE_RESEND_MS: u64 = 2000;
/// A cluster's refusal is remembered this long; then it may be asked again
/// (its workers may have freed room).
const REFUSAL_MEMORY_MS: u64 = 2000;
/// First retry delay of an instance that failed; doubles per failure.
const RETRY_BASE_MS: u64 = 500;
/// Longest retry delay.
const RETRY_MAX_MS: u64 = 30_000;

/// A cluster, as the root knows it.
#[derive(Clone, Debug)]
pub struct ClusterRecord {
    /// Opaque id for the scheduler.
    pub id: ClusterId,
    /// Its mesh member name.
    pub name: String,
    /// Its overlay address.
    pub address: Option<Ipv4Addr>,
    /// Its node's location (from the mesh).
    pub location: Option<Location>,
    /// Reporting (within the timeout) and connected.
    pub alive: bool,
    /// Last report (ms).
    pub last_report_ms: u64,
    /// Its workers, as last reported.
    pub workers: Vec<WorkerReport>,
}

impl ClusterRecord {
    /// The scheduler's summary.
    pub fn summary(&self) -> ClusterSummary {
        let mut total = Capacity::ZERO;
        let mut free = Capacity::ZERO;
        let mut largest = Capacity::ZERO;
        for w in &self.workers {
            let f = w.capacity.saturating_sub(w.reserved);
            total = total.saturating_add(w.capacity);
            free = free.saturating_add(f);
            if f.memory_mib > largest.memory_mib || (f.memory_mib == largest.memory_mib && f.cpu_millis > largest.cpu_millis) {
                largest = f;
            }
        }
        let name = dns::Label::parse(&self.name).unwrap_or_else(|| dns::Label::parse("unnamed").expect("a valid label"));
        ClusterSummary { id: self.id, name, total, free, largest_worker_free: largest, location: self.location, alive: self.alive }
    }
}

impl ClusterRecord {
    /// One summary per distinct worker location (the cluster's own where a
    /// worker has none): a cluster spanning Munich and Milan passes a
    /// `geo` constraint near either, and its scheduler picks the worker.
    pub fn summaries(&self) -> Vec<ClusterSummary> {
        let base = self.summary();
        let mut locations: Vec<Option<Location>> = Vec::new();
        for location in self.workers.iter().map(|w| w.location.or(self.location)) {
            if !locations.contains(&location) {
                locations.push(location);
            }
        }
        if locations.len() <= 1 {
            return vec![base];
        }
        locations.into_iter().map(|location| ClusterSummary { location, ..base.clone() }).collect()
    }
}

/// A message for one cluster.
pub type Outbound = (String, Message);

/// Everything the root holds.
#[derive(Debug, Default)]
pub struct RootState {
    /// Applications by `<app>.<namespace>`.
    pub apps: BTreeMap<String, AppRecord>,
    /// Services by `<service>.<app>.<namespace>`.
    pub services: BTreeMap<String, ServiceRecord>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, ClusterRecord>,
    next_cluster: u64,
    /// Apps and services changed since the last [`RootState::take_dirty`].
    dirty: Dirty,
    /// Named areas for latency constraints: member name → location.
    pub areas: GeoRtt,
}

/// Store keys to write (or delete, when the record is gone).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirty {
    /// App keys.
    pub apps: BTreeSet<String>,
    /// Service keys.
    pub services: BTreeSet<String>,
}

impl Dirty {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty() && self.services.is_empty()
    }
}

impl RootState {
    /// A state restored from the store.
    pub fn restore(apps: Vec<AppRecord>, services: Vec<ServiceRecord>) -> RootState {
        let mut state = RootState::default();
        for app in apps {
            state.apps.insert(app.full_name(), app);
        }
        for service in services {
            state.services.insert(service.full_name(), service);
        }
        state
    }

    /// What changed since the last call: the daemon writes it to the store.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    /// Deploys the SLA's applications; existing ones are updated: a service
    /// whose spec changed has its instances replaced, services no longer
    /// listed are removed. Returns the touched app keys and the Stops to send.
    pub fn deploy(&mut self, sla: SlaSpec, now_ms: u64) -> (Vec<String>, Vec<Outbound>) {
        let mut out = Vec::new();
        let mut keys = Vec::new();
        for app in sla.apps {
            keys.push(self.deploy_app(&sla.customer, app, now_ms, &mut out));
        }
        (keys, out)
    }

    fn deploy_app(&mut self, customer: &str, app: AppSpec, now_ms: u64, out: &mut Vec<Outbound>) -> String {
        let record = AppRecord { name: app.name, namespace: app.namespace, customer: customer.to_owned(), description: app.description };
        let app_key = record.full_name();
        self.apps.insert(app_key.clone(), record);
        self.dirty.apps.insert(app_key.clone());
        let listed: BTreeSet<String> = app.services.iter().map(|s| format!("{}.{}", s.name, app_key)).collect();
        let gone: Vec<String> =
            self.services.iter().filter(|(k, s)| s.app_name() == app_key && !listed.contains(*k)).map(|(k, _)| k.clone()).collect();
        for key in gone {
            self.remove_service_key(&key, out);
        }
        for spec in app.services {
            let key = format!("{}.{}", spec.name, app_key);
            let wanted = spec.instances;
            match self.services.get_mut(&key) {
                Some(existing) if existing.spec == spec => existing.wanted = wanted,
                Some(existing) => {
                    // Changed: the old instances go, new ones (new numbers) come.
                    for (number, instance) in std::mem::take(&mut existing.instances) {
                        if let Some(cluster) = instance.cluster {
                            out.push((cluster, Message::Stop { key: existing.key(number) }));
                        }
                    }
                    existing.spec = spec;
                    existing.wanted = wanted;
                }
                None => {
                    let record = ServiceRecord {
                        app: app.name,
                        namespace: app.namespace,
                        spec,
                        wanted,
                        instances: BTreeMap::new(),
                        next_number: 0,
                    };
                    self.services.insert(key.clone(), record);
                }
            }
            self.fill(&key, now_ms);
            self.dirty.services.insert(key);
        }
        app_key
    }

    /// Adds REQUESTED instances up to `wanted`, and stops the newest beyond it.
    fn fill(&mut self, key: &str, now_ms: u64) -> Vec<Outbound> {
        let mut out = Vec::new();
        let Some(service) = self.services.get_mut(key) else { return out };
        while service.live() < service.wanted as usize {
            let number = service.next_number;
            service.next_number += 1;
            service.instances.insert(number, InstanceRecord::requested(now_ms));
        }
        while service.live() > service.wanted as usize {
            let Some((&number, _)) = service.instances.iter().rev().find(|(_, i)| i.status.state != InstanceState::Completed) else {
                break;
            };
            if let Some(instance) = service.instances.remove(&number) {
                if let Some(cluster) = instance.cluster {
                    out.push((cluster, Message::Stop { key: service.key(number) }));
                }
            }
        }
        self.dirty.services.insert(key.to_owned());
        out
    }

    /// Sets a service's instance count.
    pub fn scale(&mut self, key: &str, wanted: u32, now_ms: u64) -> Vec<Outbound> {
        if let Some(service) = self.services.get_mut(key) {
            service.wanted = wanted;
        }
        self.fill(key, now_ms)
    }

    /// Removes a service; its instances are stopped.
    pub fn remove_service_key(&mut self, key: &str, out: &mut Vec<Outbound>) -> Option<ServiceRecord> {
        let service = self.services.remove(key)?;
        for (number, instance) in &service.instances {
            if let Some(cluster) = &instance.cluster {
                out.push((cluster.clone(), Message::Stop { key: service.key(*number) }));
            }
        }
        self.dirty.services.insert(key.to_owned());
        Some(service)
    }

    /// Removes an application and its services.
    pub fn remove_app_key(&mut self, key: &str, out: &mut Vec<Outbound>) -> Option<(AppRecord, Vec<ServiceRecord>)> {
        let app = self.apps.remove(key)?;
        self.dirty.apps.insert(key.to_owned());
        let keys: Vec<String> = self.services.iter().filter(|(_, s)| s.app_name() == key).map(|(k, _)| k.clone()).collect();
        let services = keys.iter().filter_map(|k| self.remove_service_key(k, out)).collect();
        Some((app, services))
    }

    /// A cluster connected (or reconnected): it is alive until it goes silent.
    pub fn cluster_connected(&mut self, name: &str, address: Ipv4Addr, location: Option<Location>, now_ms: u64) {
        let next = &mut self.next_cluster;
        let record = self.clusters.entry(name.to_owned()).or_insert_with(|| {
            *next += 1;
            ClusterRecord {
                id: ClusterId(*next),
                name: name.to_owned(),
                address: None,
                location: None,
                alive: false,
                last_report_ms: now_ms,
                workers: Vec::new(),
            }
        });
        record.address = Some(address);
        record.location = location.or(record.location);
        record.alive = true;
        record.last_report_ms = now_ms;
    }

    /// A cluster's connection closed: its instances move at once.
    pub fn cluster_disconnected(&mut self, name: &str, now_ms: u64) {
        if let Some(cluster) = self.clusters.get_mut(name) {
            cluster.alive = false;
            cluster.workers.clear();
        }
        self.move_off(name, &format!("cluster {name} lost"), now_ms);
    }

    fn move_off(&mut self, cluster: &str, reason: &str, now_ms: u64) {
        for (key, service) in &mut self.services {
            let mut moved = false;
            for instance in service.instances.values_mut() {
                if instance.cluster.as_deref() == Some(cluster) && instance.status.state != InstanceState::Completed {
                    instance.requeue(reason, now_ms);
                    moved = true;
                }
            }
            if moved {
                self.dirty.services.insert(key.clone());
            }
        }
    }

    /// A cluster's report: its workers, and the state of every instance it has.
    pub fn apply_report(&mut self, cluster: &str, workers: Vec<WorkerReport>, reports: Vec<InstanceReport>, now_ms: u64) -> Vec<Outbound> {
        let mut out = Vec::new();
        let Some(record) = self.clusters.get_mut(cluster) else { return out };
        record.workers = workers;
        record.last_report_ms = now_ms;
        record.alive = true;
        let mut seen = BTreeSet::new();
        for report in reports {
            seen.insert(report.key);
            let service_key = format!("{}.{}.{}", report.key.service, report.key.app, report.key.namespace);
            let mine = self.services.get_mut(&service_key).and_then(|s| {
                let instance = s.instances.get_mut(&report.key.number)?;
                (instance.cluster.as_deref() == Some(cluster)).then_some(instance)
            });
            let Some(instance) = mine else {
                // Removed, or moved elsewhere while this cluster was away.
                out.push((cluster.to_owned(), Message::Stop { key: report.key }));
                continue;
            };
            if apply_instance(instance, cluster, report, now_ms) {
                self.dirty.services.insert(service_key);
            }
        }
        // What the cluster should have but does not report: Place again
        // (lost in flight, or the cluster restarted), or move it.
        for (key, service) in &mut self.services {
            let key_of = instance_keys(service);
            for (&number, instance) in &mut service.instances {
                if instance.cluster.as_deref() != Some(cluster) || seen.contains(&key_of(number)) {
                    continue;
                }
                match instance.status.state {
                    InstanceState::ClusterScheduled if now_ms.saturating_sub(instance.sent_ms) >= PLACE_RESEND_MS => {
                        instance.sent_ms = now_ms;
                        out.push((cluster.to_owned(), Message::Place { key: key_of(number), spec: Box::new(service.spec.clone()) }));
                    }
                    InstanceState::NodeScheduled | InstanceState::Creating | InstanceState::Running => {
                        instance.requeue(&format!("cluster {cluster} no longer has it"), now_ms);
                        self.dirty.services.insert(key.clone());
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Marks silent clusters lost, fills services, places REQUESTED
    /// instances and retries failed ones. Returns the messages to send.
    pub fn reconcile(&mut self, now_ms: u64, cluster_timeout: Duration) -> Vec<Outbound> {
        let mut out = Vec::new();
        let timeout = cluster_timeout.as_millis() as u64;
        let silent: Vec<String> = self
            .clusters
            .values()
            .filter(|c| c.alive && now_ms.saturating_sub(c.last_report_ms) > timeout)
            .map(|c| c.name.clone())
            .collect();
        for name in silent {
            tracing::warn!(cluster = %name, "cluster silent for more than {timeout} ms: marked lost, its instances move");
            self.cluster_disconnected(&name, now_ms);
        }
        let keys: Vec<String> = self.services.keys().cloned().collect();
        for key in &keys {
            out.extend(self.fill(key, now_ms));
        }
        let mut summaries: Vec<ClusterSummary> = self.clusters.values().flat_map(ClusterRecord::summaries).collect();
        let names: BTreeMap<ClusterId, String> = self.clusters.values().map(|c| (c.id, c.name.clone())).collect();
        for key in &keys {
            let Some(service) = self.services.get_mut(key) else { continue };
            let key_of = instance_keys(service);
            let mut changed = false;
            // Where this service's live instances are, to spread the next ones.
            let mut placed_in: BTreeMap<String, u32> = BTreeMap::new();
            for instance in service.instances.values() {
                if let (Some(cluster), false) = (&instance.cluster, matches!(instance.status.state, InstanceState::Failed | InstanceState::Dead)) {
                    *placed_in.entry(cluster.clone()).or_default() += 1;
                }
            }
            for (&number, instance) in &mut service.instances {
                match instance.status.state {
                    InstanceState::Failed | InstanceState::Dead if now_ms >= instance.retry_at_ms => {
                        let why = instance.status.reason.clone().unwrap_or_else(|| instance.status.state.to_string());
                        if let Some(cluster) = instance.cluster.take() {
                            out.push((cluster, Message::Stop { key: key_of(number) }));
                        }
                        instance.requeue(&why, now_ms);
                        changed = true;
                    }
                    _ => {}
                }
                if instance.status.state != InstanceState::Requested || now_ms < instance.retry_at_ms {
                    continue;
                }
                instance.refused.retain(|_| now_ms.saturating_sub(instance.sent_ms) < REFUSAL_MEMORY_MS);
                let candidates: Vec<ClusterSummary> =
                    summaries.iter().filter(|c| !instance.refused.iter().any(|(name, _)| Some(name) == names.get(&c.id))).cloned().collect();
                let siblings = |id: ClusterId| {
                    let Some(name) = names.get(&id) else { return 0 };
                    placed_in.get(name.as_str()).copied().unwrap_or(0)
                };
                match pick_cluster_spread(&service.spec, &candidates, &siblings, &self.areas) {
                    Decision::Place(placement) => {
                        let Some(name) = names.get(&placement.id) else { continue };
                        for summary in summaries.iter_mut().filter(|s| s.id == placement.id) {
                            summary.reserve(Capacity::request(&service.spec.resources));
                        }
                        instance.set(InstanceState::ClusterScheduled, None, now_ms);
                        instance.cluster = Some(name.clone());
                        *placed_in.entry(name.clone()).or_default() += 1;
                        instance.sent_ms = now_ms;
                        out.push((name.clone(), Message::Place { key: key_of(number), spec: Box::new(service.spec.clone()) }));
                        changed = true;
                    }
                    Decision::Unschedulable(reason) => {
                        let mut parts: Vec<String> = instance.refused.iter().map(|(cluster, why)| format!("cluster {cluster}: {why}")).collect();
                        if !candidates.is_empty() || parts.is_empty() {
                            parts.insert(0, reason.to_string());
                        }
                        let mut text = format!("cannot be placed: {}", parts.join("; "));
                        if self.clusters.is_empty() {
                            text = "cannot be placed: no cluster has registered with the root yet".to_owned();
                        }
                        instance.pending = Some(text);
                    }
                }
            }
            if changed {
                self.dirty.services.insert(key.clone());
            }
        }
        out
    }

    /// Finds a service by `service[.app[.namespace]]`.
    pub fn find_service(&self, reference: &str) -> Result<String, OrchestratorError> {
        find(self.services.keys(), reference, "service")
    }

    /// Finds an app by `app[.namespace]`.
    pub fn find_app(&self, reference: &str) -> Result<String, OrchestratorError> {
        find(self.apps.keys(), reference, "application")
    }

    /// The key of the instance `key` names, if the root has it.
    pub fn instance(&self, key: &InstanceKey) -> Option<&InstanceRecord> {
        self.services.get(&format!("{}.{}.{}", key.service, key.app, key.namespace))?.instances.get(&key.number)
    }
}

/// Makes the keys of a service's instances without borrowing the service.
fn instance_keys(service: &ServiceRecord) -> impl Fn(u32) -> InstanceKey {
    let (name, app, namespace) = (service.spec.name, service.app, service.namespace);
    move |number| InstanceKey { service: name, app, namespace, number }
}

/// Applies one instance report from its cluster; true if anything changed.
fn apply_instance(instance: &mut InstanceRecord, cluster: &str, report: InstanceReport, now_ms: u64) -> bool {
    if report.state == InstanceState::Requested {
        // The cluster could not place it: ask another.
        let why = report.reason.unwrap_or_else(|| "no worker fits".to_owned());
        instance.refused.push((cluster.to_owned(), why.clone()));
        instance.sent_ms = now_ms;
        instance.requeue(&format!("cluster {cluster} could not place it: {why}"), now_ms);
        return true;
    }
    let before = (instance.status.clone(), instance.node.clone(), instance.address, instance.restarts);
    // Steps the root did not see (NODE_SCHEDULED → CREATING → RUNNING in
    // one report interval) are walked through so the transition check holds.
    for step in path_to(instance.status.state, report.state) {
        let reason = if step == report.state { report.reason.clone() } else { None };
        instance.set(step, reason, now_ms);
    }
    if report.state.has_reason() && instance.status.state == report.state {
        instance.failures = instance.failures.saturating_add(1);
        let delay = RETRY_BASE_MS.saturating_mul(1 << instance.failures.min(10)).min(RETRY_MAX_MS);
        instance.retry_at_ms = now_ms + delay;
    }
    if instance.status.state == InstanceState::Running {
        instance.pending = None;
        instance.refused.clear();
    }
    instance.node = report.node.or(instance.node.take());
    instance.address = report.address.or(instance.address);
    instance.restarts = report.restarts;
    before != (instance.status.clone(), instance.node.clone(), instance.address, instance.restarts)
}

/// The states between `from` and `to` along the happy path, ending in
/// `to`; FAILED, DEAD and COMPLETED are reached from CREATING.
fn path_to(from: InstanceState, to: InstanceState) -> Vec<InstanceState> {
    use InstanceState::*;
    const HAPPY: [InstanceState; 5] = [Requested, ClusterScheduled, NodeScheduled, Creating, Running];
    let position = |state| HAPPY.iter().position(|s| *s == state);
    let Some(from) = position(from) else { return vec![to] };
    let target = position(to).unwrap_or(3);
    let mut path = if target > from { HAPPY[from + 1..=target].to_vec() } else { Vec::new() };
    if path.last() != Some(&to) {
        path.push(to);
    }
    path
}

/// The one full name among `names` that `reference` names: the name itself,
/// or a prefix of labels (`web` for `web.shop.prod`).
fn find<'a>(names: impl Iterator<Item = &'a String>, reference: &str, what: &'static str) -> Result<String, OrchestratorError> {
    let reference = reference.trim().to_ascii_lowercase();
    let mut matches = Vec::new();
    for name in names {
        if *name == reference {
            return Ok(name.clone());
        }
        if name.starts_with(&reference) && name.as_bytes().get(reference.len()) == Some(&b'.') {
            matches.push(name.clone());
        }
    }
    match matches.len() {
        0 => Err(OrchestratorError::NotFound { what, reference }),
        1 => Ok(matches.remove(0)),
        _ => Err(OrchestratorError::Ambiguous { what, reference, candidates: matches }),
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
