//! Shared test data: two cities ~350 km apart, and builders with roomy defaults.

use dns::{Label, Location};

use super::cluster::WorkerState;
use super::filter::Candidate;
use super::root::ClusterSummary;
use super::rtt::RttOracle;
use crate::model::{Capacity, ClusterId, WorkerId};
use crate::sla::{Command, Constraint, LatencyFrom, Resources, ServiceSpec};

pub const MUNICH: Location = Location { lat: 48.137, lon: 11.575 };
pub const MILAN: Location = Location { lat: 45.464, lon: 9.190 };

pub fn label(name: &str) -> Label {
    Label::parse(name).expect("label")
}

pub fn service(vcpus: u32, memory_mib: u32, constraints: Vec<Constraint>) -> ServiceSpec {
    ServiceSpec {
        name: label("web"),
        namespace: label("test"),
        command: Command { program: "/bin/true".into(), args: vec![] },
        environment: vec![],
        resources: Resources { memory_mib, vcpus },
        ports: vec![],
        constraints,
        one_shot: false,
        instances: 1,
    }
}

/// 4000m / 4096 MiB, all free, alive.
pub fn candidate(name: &str, location: Option<Location>) -> Candidate<u32> {
    let total = Capacity::new(4000, 4096);
    Candidate { id: 0, name: label(name), location, room: total, free: total, total, alive: true, siblings: 0 }
}

/// 4000m / 4096 MiB, nothing reserved, alive.
pub fn worker(id: u64, name: &str, location: Option<Location>) -> WorkerState {
    WorkerState {
        id: WorkerId(id),
        name: label(name),
        capacity: Capacity::new(4000, 4096),
        reserved: Capacity::ZERO,
        arch: "x86_64".into(),
        location,
        alive: true,
    }
}

/// One worker's worth: all of `total` free on its roomiest worker.
pub fn cluster(id: u64, name: &str, total: Capacity, location: Option<Location>) -> ClusterSummary {
    ClusterSummary { id: ClusterId(id), name: label(name), total, free: total, largest_worker_free: total, location, alive: true }
}

/// RTTs by candidate name, whatever the target.
pub struct FixedRtt(pub Vec<(Label, f64)>);

impl<Id> RttOracle<Id> for FixedRtt {
    fn rtt_ms(&self, candidate: &Candidate<Id>, _: &LatencyFrom) -> Option<f64> {
        self.0.iter().find(|(name, _)| *name == candidate.name).map(|(_, ms)| *ms)
    }
}
