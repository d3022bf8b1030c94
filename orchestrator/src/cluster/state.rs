//! A cluster's core, free of I/O: its workers, the instances the root
//! placed here, and the decisions — which worker runs an instance, where a
//! lost worker's instances go, what to tell the root.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dns::{InstanceKey, Label};

use crate::model::{Capacity, InstanceState, WorkerId};
use crate::proto::{InstanceReport, Message, WorkerReport};
use crate::schedule::{pick_worker_spread, Decision, RttOracle, WorkerState};
use crate::sla::ServiceSpec;

/// A message for one worker.
pub type ToWorker = (String, Message);

/// One worker.
#[derive(Clone, Debug)]
pub struct WorkerEntry {
    /// Scheduler id.
    pub id: WorkerId,
    /// What it reported last.
    pub report: WorkerReport,
    /// Its link is up and the mesh holds it alive.
    pub alive: bool,
}

/// One instance placed on this cluster.
#[derive(Clone, Debug)]
pub struct Placed {
    /// What it runs (`None` for an instance a worker reported that this
    /// cluster did not place: adopted after a cluster restart).
    pub spec: Option<ServiceSpec>,
    /// The worker running it.
    pub worker: Option<String>,
    /// Its state, as its worker reports it.
    pub state: InstanceState,
    /// Why it failed, or (REQUESTED) why it could not be placed here.
    pub reason: Option<String>,
    /// Its overlay address.
    pub address: Option<Ipv4Addr>,
    /// Restarts by its worker.
    pub restarts: u32,
}

/// Everything a cluster holds.
#[derive(Debug, Default)]
pub struct ClusterState {
    /// Workers by mesh name.
    pub workers: BTreeMap<String, WorkerEntry>,
    /// Instances by key.
    pub instances: BTreeMap<InstanceKey, Placed>,
    next_worker: u64,
}

impl ClusterState {
    /// A worker connected (again).
    pub fn worker_up(&mut self, name: &str, report: WorkerReport) {
        let next = &mut self.next_worker;
        let entry = self.workers.entry(name.to_owned()).or_insert_with(|| {
            *next += 1;
            WorkerEntry { id: WorkerId(*next), report: report.clone(), alive: true }
        });
        entry.report = WorkerReport { name: name.to_owned(), ..report };
        entry.alive = true;
    }

    /// The scheduler's view of the workers, with what this cluster has placed
    /// counted as reserved (the worker's own figure lags by a report).
    pub fn candidates(&self) -> Vec<WorkerState> {
        self.workers
            .iter()
            .map(|(name, w)| {
                let reserved = self
                    .instances
                    .values()
                    .filter(|p| p.worker.as_deref() == Some(name) && p.state.occupies_worker())
                    .filter_map(|p| p.spec.as_ref().map(|s| Capacity::request(&s.resources)))
                    .fold(Capacity::ZERO, Capacity::saturating_add);
                WorkerState {
                    id: w.id,
                    name: Label::parse(name).unwrap_or_else(|| Label::parse("unnamed").expect("a label")),
                    capacity: w.report.capacity,
                    reserved,
                    arch: w.report.arch.clone(),
                    location: w.report.location,
                    alive: w.alive,
                }
            })
            .collect()
    }

    /// The root placed `key` here: pick a worker, or say why none fits.
    pub fn place(&mut self, key: InstanceKey, spec: ServiceSpec, oracle: &dyn RttOracle<WorkerId>) -> Vec<ToWorker> {
        if let Some(existing) = self.instances.get(&key) {
            if existing.state != InstanceState::Requested && existing.state != InstanceState::Failed {
                return Vec::new(); // a repeated Place: already on its way
            }
        }
        self.place_avoiding(key, spec, None, oracle)
    }

    fn place_avoiding(&mut self, key: InstanceKey, spec: ServiceSpec, avoid: Option<&str>, oracle: &dyn RttOracle<WorkerId>) -> Vec<ToWorker> {
        let candidates: Vec<WorkerState> = self.candidates().into_iter().filter(|w| Some(w.name.as_str()) != avoid).collect();
        // How many of this service's instances each worker runs already.
        let same_service = |k: &InstanceKey| k.service == key.service && k.app == key.app && k.namespace == key.namespace;
        let siblings = |id: WorkerId| {
            let Some(worker) = candidates.iter().find(|w| w.id == id) else { return 0 };
            let on_it = self.instances.iter().filter(|(k, p)| same_service(k) && **k != key && p.worker.as_deref() == Some(worker.name.as_str()));
            on_it.count() as u32
        };
        match pick_worker_spread(&spec, &candidates, &siblings, oracle) {
            Decision::Place(placement) => {
                let name = placement.name.to_string();
                self.instances.insert(
                    key,
                    Placed {
                        spec: Some(spec.clone()),
                        worker: Some(name.clone()),
                        state: InstanceState::NodeScheduled,
                        reason: None,
                        address: None,
                        restarts: 0,
                    },
                );
                vec![(name, Message::Start { key, spec: Box::new(spec) })]
            }
            Decision::Unschedulable(reason) => {
                let reason = if candidates.is_empty() { "no worker is connected to this cluster".to_owned() } else { reason.to_string() };
                let placed = Placed { spec: Some(spec), worker: None, state: InstanceState::Requested, reason: Some(reason), address: None, restarts: 0 };
                self.instances.insert(key, placed);
                Vec::new()
            }
        }
    }

    /// The root took `key` away.
    pub fn stop(&mut self, key: &InstanceKey) -> Vec<ToWorker> {
        match self.instances.remove(key).and_then(|p| p.worker) {
            Some(worker) => vec![(worker, Message::Stop { key: *key })],
            None => Vec::new(),
        }
    }

    /// A worker's status: its capacity and its instances' states. Instances
    /// it runs that are not (or no longer) placed on it are stopped.
    pub fn worker_status(&mut self, name: &str, report: WorkerReport, instances: Vec<InstanceReport>) -> Vec<ToWorker> {
        self.worker_up(name, report);
        let mut out = Vec::new();
        for r in instances {
            match self.instances.get_mut(&r.key) {
                Some(p) if p.worker.as_deref() == Some(name) => {
                    p.state = r.state;
                    p.reason = r.reason;
                    p.address = r.address.or(p.address);
                    p.restarts = r.restarts;
                }
                Some(_) => out.push((name.to_owned(), Message::Stop { key: r.key })),
                None => {
                    // Placed before this cluster restarted: keep it, the root decides.
                    let adopted = Placed {
                        spec: None,
                        worker: Some(name.to_owned()),
                        state: r.state,
                        reason: r.reason,
                        address: r.address,
                        restarts: r.restarts,
                    };
                    self.instances.insert(r.key, adopted);
                }
            }
        }
        out
    }

    /// The mesh says the worker died (or its link stayed down past the
    /// grace): its instances go to other workers, or FAIL upwards with why.
    pub fn worker_lost(&mut self, name: &str, oracle: &dyn RttOracle<WorkerId>) -> Vec<ToWorker> {
        let Some(worker) = self.workers.get_mut(name) else { return Vec::new() };
        if !worker.alive {
            return Vec::new();
        }
        worker.alive = false;
        let mut lost: Vec<(InstanceKey, Placed)> =
            self.instances.iter().filter(|(_, p)| p.worker.as_deref() == Some(name) && p.state.occupies_worker()).map(|(k, p)| (*k, p.clone())).collect();
        // Largest first, so small instances fill the gaps big ones leave.
        lost.sort_by_key(|(_, p)| std::cmp::Reverse(p.spec.as_ref().map(|s| (s.resources.memory_mib, s.resources.vcpus))));
        let mut out = Vec::new();
        for (key, placed) in lost {
            match placed.spec {
                Some(spec) => {
                    out.extend(self.place_avoiding(key, spec, Some(name), oracle));
                    if let Some(p) = self.instances.get_mut(&key) {
                        if p.state == InstanceState::Requested {
                            p.state = InstanceState::Failed;
                            p.reason = Some(format!("worker {name} lost, and no other worker here fits: {}", p.reason.take().unwrap_or_default()));
                        }
                    }
                }
                None => {
                    if let Some(p) = self.instances.get_mut(&key) {
                        p.state = InstanceState::Failed;
                        p.reason = Some(format!("worker {name} lost"));
                        p.worker = None;
                    }
                }
            }
        }
        out
    }

    /// The report for the root. Refusals (REQUESTED) and failures are
    /// reported once and then forgotten: the root moves them.
    pub fn report(&mut self) -> Message {
        let workers = self.workers.values().filter(|w| w.alive).map(|w| {
            let mut r = w.report.clone();
            r.reserved = self
                .instances
                .values()
                .filter(|p| p.worker.as_deref() == Some(r.name.as_str()) && p.state.occupies_worker())
                .filter_map(|p| p.spec.as_ref().map(|s| Capacity::request(&s.resources)))
                .fold(Capacity::ZERO, Capacity::saturating_add)
                .max_by_reported(r.reserved);
            r
        });
        let workers = workers.collect();
        let instances = self
            .instances
            .iter()
            .map(|(key, p)| InstanceReport {
                key: *key,
                state: p.state,
                reason: p.reason.clone(),
                node: p.worker.clone(),
                address: p.address,
                restarts: p.restarts,
            })
            .collect();
        self.instances.retain(|_, p| !matches!(p.state, InstanceState::Requested | InstanceState::Failed | InstanceState::Dead));
        Message::Report { workers, instances }
    }
}

/// The larger, per dimension, of two reservations.
trait MaxBy {
    fn max_by_reported(self, other: Capacity) -> Capacity;
}

impl MaxBy for Capacity {
    fn max_by_reported(self, other: Capacity) -> Capacity {
        Capacity::new(self.cpu_millis.max(other.cpu_millis), self.memory_mib.max(other.memory_mib))
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
