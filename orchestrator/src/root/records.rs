//! What the root keeps, and persists: applications, services and their
//! instances. One service record holds its instances, so one store write
//! moves a service and its instances together.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dns::{InstanceKey, Label};
use serde::{Deserialize, Serialize};

use crate::model::{InstanceState, InstanceStatus};
use crate::sla::ServiceSpec;

/// One application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    /// `application_name`.
    pub name: Label,
    /// `application_namespace`.
    pub namespace: Label,
    /// `customerID`.
    pub customer: String,
    /// `application_desc`.
    pub description: Option<String>,
}

impl AppRecord {
    /// `<app>.<namespace>`: the store key and what `grove rm` takes.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }
}

/// One service and its instances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Its application.
    pub app: Label,
    /// The application's namespace.
    pub namespace: Label,
    /// What it runs.
    pub spec: ServiceSpec,
    /// Instances wanted.
    pub wanted: u32,
    /// Instances by number, UNDEPLOYED ones dropped.
    pub instances: BTreeMap<u32, InstanceRecord>,
    /// The next instance number: numbers are never reused, so a DNS name
    /// `instance-N` never points at a different copy than it did.
    pub next_number: u32,
}

impl ServiceRecord {
    /// `<service>.<app>.<namespace>`.
    pub fn full_name(&self) -> String {
        format!("{}.{}.{}", self.spec.name, self.app, self.namespace)
    }

    /// `<app>.<namespace>`.
    pub fn app_name(&self) -> String {
        format!("{}.{}", self.app, self.namespace)
    }

    /// The mesh-wide key of instance `number`.
    pub fn key(&self, number: u32) -> InstanceKey {
        InstanceKey { service: self.spec.name, app: self.app, namespace: self.namespace, number }
    }

    /// Instances that count towards `wanted`.
    pub fn live(&self) -> usize {
        self.instances.values().filter(|i| !matches!(i.status.state, InstanceState::Completed | InstanceState::Undeployed)).count()
    }
}

/// One instance: its state and where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// State, reason (FAILED/DEAD) and since when (ms since the epoch).
    pub status: InstanceStatus,
    /// The cluster it was sent to.
    pub cluster: Option<String>,
    /// The worker it runs on.
    pub node: Option<String>,
    /// Its overlay address.
    pub address: Option<Ipv4Addr>,
    /// Restarts by its worker.
    pub restarts: u32,
    /// Times it FAILED or DIED; spaces out retries of a service that keeps failing.
    pub failures: u32,
    /// Why it is still REQUESTED (nowhere fits, clusters refused); not persisted.
    #[serde(skip)]
    pub pending: Option<String>,
    /// Clusters that refused it lately, with their reasons; not persisted.
    #[serde(skip)]
    pub refused: Vec<(String, String)>,
    /// When it was last sent to a cluster or refused (ms); not persisted.
    #[serde(skip)]
    pub sent_ms: u64,
    /// Not to be placed before this (ms): the retry backoff; not persisted.
    #[serde(skip)]
    pub retry_at_ms: u64,
}

impl InstanceRecord {
    /// A new instance, REQUESTED.
    pub fn requested(now_ms: u64) -> InstanceRecord {
        InstanceRecord {
            status: InstanceStatus::requested(now_ms),
            cluster: None,
            node: None,
            address: None,
            restarts: 0,
            failures: 0,
            pending: None,
            refused: Vec::new(),
            sent_ms: 0,
            retry_at_ms: 0,
        }
    }

    /// Moves to `to` if that is a legal step; an illegal one (a late or
    /// repeated report) is ignored and `false` returned.
    pub fn set(&mut self, to: InstanceState, reason: Option<String>, now_ms: u64) -> bool {
        let reason = if to.has_reason() { reason } else { None };
        match self.status.transition(to, reason, now_ms) {
            Ok(next) => {
                let changed = next != self.status;
                self.status = next;
                changed
            }
            Err(e) => {
                tracing::debug!("ignored: {e}");
                false
            }
        }
    }

    /// Back to REQUESTED, off its cluster, to be placed again (through
    /// FAILED when it was placed or running: Oakestra's path).
    pub fn requeue(&mut self, reason: &str, now_ms: u64) {
        if !self.status.state.can_become(InstanceState::Requested) {
            self.set(InstanceState::Failed, Some(reason.to_owned()), now_ms);
        }
        self.set(InstanceState::Requested, None, now_ms);
        self.pending = Some(format!("being placed again: {reason}"));
        self.cluster = None;
        self.node = None;
        self.address = None;
    }
}
