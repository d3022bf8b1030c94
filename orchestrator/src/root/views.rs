//! The API's views of the root's records.

use crate::api::types::{AppView, ClusterView, InstanceView, NodeView, ServiceView};
use crate::model::InstanceState;
use crate::sla::{Constraint, LatencyFrom};

use super::records::{AppRecord, ServiceRecord};
use super::state::{ClusterRecord, RootState};

/// The DNS zone the names are shown in.
pub const ZONE: &str = "grove";

/// One service.
pub fn service_view(service: &ServiceRecord, now_ms: u64) -> ServiceView {
    let spec = &service.spec;
    let mut command = vec![spec.command.program.display().to_string()];
    command.extend(spec.command.args.iter().cloned());
    ServiceView {
        name: service.full_name(),
        service: spec.name.to_string(),
        app: service.app.to_string(),
        namespace: service.namespace.to_string(),
        closest: format!("closest.{}.{ZONE}", service.full_name()),
        wanted: service.wanted,
        command,
        memory_mib: spec.resources.memory_mib,
        vcpus: spec.resources.vcpus,
        constraints: spec.constraints.iter().map(render).collect(),
        instances: service
            .instances
            .iter()
            .map(|(&number, i)| InstanceView {
                number,
                state: i.status.state,
                reason: if i.status.state.has_reason() { i.status.reason.clone() } else { i.pending.clone() }
                    .filter(|_| i.status.state != InstanceState::Running),
                for_ms: now_ms.saturating_sub(i.status.since_ms),
                cluster: i.cluster.clone(),
                node: i.node.clone(),
                address: i.address,
                restarts: i.restarts,
            })
            .collect(),
    }
}

/// One application and its services.
pub fn app_view(state: &RootState, app: &AppRecord, now_ms: u64) -> AppView {
    let key = app.full_name();
    AppView {
        name: app.name.to_string(),
        namespace: app.namespace.to_string(),
        customer: app.customer.clone(),
        description: app.description.clone(),
        services: state.services.values().filter(|s| s.app_name() == key).map(|s| service_view(s, now_ms)).collect(),
    }
}

/// One cluster.
pub fn cluster_view(state: &RootState, cluster: &ClusterRecord, now_ms: u64) -> ClusterView {
    let summary = cluster.summary();
    let instances = state.services.values().flat_map(|s| s.instances.values()).filter(|i| i.cluster.as_deref() == Some(&cluster.name)).count();
    ClusterView {
        name: cluster.name.clone(),
        address: cluster.address,
        state: if cluster.alive { "alive" } else { "lost" }.to_owned(),
        location: cluster.location,
        workers: cluster.workers.len() as u32,
        total: summary.total,
        free: summary.free,
        instances: instances as u32,
        last_report_ms: now_ms.saturating_sub(cluster.last_report_ms),
    }
}

/// Every worker of every cluster.
pub fn node_views(state: &RootState) -> Vec<NodeView> {
    let mut views = Vec::new();
    for cluster in state.clusters.values() {
        for worker in &cluster.workers {
            let instances =
                state.services.values().flat_map(|s| s.instances.values()).filter(|i| i.node.as_deref() == Some(&worker.name)).count();
            views.push(NodeView {
                name: worker.name.clone(),
                cluster: cluster.name.clone(),
                arch: worker.arch.clone(),
                capacity: worker.capacity,
                reserved: worker.reserved,
                load: worker.load,
                location: worker.location,
                state: if cluster.alive { "alive" } else { "unknown (cluster lost)" }.to_owned(),
                instances: instances as u32,
            });
        }
    }
    views
}

/// A constraint, for people.
pub fn render(constraint: &Constraint) -> String {
    match constraint {
        Constraint::Geo { near, within_km } => format!("geo: within {within_km} km of {:.3},{:.3}", near.lat, near.lon),
        Constraint::Latency { from: LatencyFrom::Location(at), within_ms } => {
            format!("latency: within {within_ms} ms of {:.3},{:.3}", at.lat, at.lon)
        }
        Constraint::Latency { from: LatencyFrom::Area(area), within_ms } => format!("latency: within {within_ms} ms of {area}"),
        Constraint::Direct { clusters, nodes } => {
            let list = |names: &[dns::Label]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
            match (clusters.is_empty(), nodes.is_empty()) {
                (false, false) => format!("direct: clusters {} and nodes {}", list(clusters), list(nodes)),
                (false, true) => format!("direct: clusters {}", list(clusters)),
                _ => format!("direct: nodes {}", list(nodes)),
            }
        }
    }
}
