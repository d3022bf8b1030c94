//! `/v1/instances`: register, list and remove the service instances DNS
//! answers with. Static mode writes the directory directly; dynamic mode
//! hands local instances to the control plane, which signs and gossips them
//! (and the directory follows from the records).
//!
//! ```sh
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/instances \
//!      -d '{"service":"ms2","app":"cam","number":1,"ipv4":"10.18.0.70"}'
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use dns::{Directory, Instance, NamedPort, NodeId};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::control::records::InstanceEntry;
use crate::control::InstanceKey;

/// What a caller asks for; the node defaults to this one, app and namespace
/// to `default`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    pub service: String,
    #[serde(default = "default_scope")]
    pub app: String,
    #[serde(default = "default_scope")]
    pub namespace: String,
    pub number: u32,
    /// Name of the node the instance runs on (a `[[peer]]` name or this node's).
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    #[serde(default)]
    pub ports: Vec<NamedPort>,
    #[serde(default = "default_healthy")]
    pub healthy: bool,
}

pub(super) fn default_scope() -> String {
    "default".to_owned()
}

fn default_healthy() -> bool {
    true
}

/// `POST /v1/instances`: adds or replaces one instance (a JSON object) or
/// many (a JSON array, applied as one directory update: registering 10,000
/// instances one by one would copy the directory 10,000 times).
pub(super) async fn register(state: &ApiState, body: &[u8]) -> Result<Vec<Instance>, ApiError> {
    let specs: Vec<InstanceSpec> = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(_)) => serde_json::from_slice(body),
        _ => serde_json::from_slice(body).map(|one| vec![one]),
    }
    .map_err(|e| ApiError::BadRequest(format!("instance JSON: {e}")))?;
    let instances = specs
        .into_iter()
        .map(|spec| instance(state, spec))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(control) = &state.control {
        if let Some(other) = instances.iter().find(|i| i.node.as_str() != state.local) {
            return Err(ApiError::BadRequest(format!(
                "instance {} names node {:?}: in dynamic mode a node announces only its own instances",
                other.number,
                other.node.as_str()
            )));
        }
        control.register(instances.iter().map(entry).collect()).await.map_err(ApiError::BadRequest)?;
        tracing::info!(count = instances.len(), "instances announced");
        return Ok(instances);
    }
    state.directory.update(|u| {
        instances
            .iter()
            .try_for_each(|i| u.register(i.clone()).map(|_| ()))
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    })?;
    for i in &instances {
        tracing::debug!(service = %i.service, app = %i.app, number = i.number, node = ?i.node, "instance registered");
    }
    tracing::info!(count = instances.len(), "instances registered");
    Ok(instances)
}

fn instance(state: &ApiState, spec: InstanceSpec) -> Result<Instance, ApiError> {
    if spec.ipv4.is_none() && spec.ipv6.is_none() {
        return Err(ApiError::BadRequest(format!(
            "instance {} of {} needs ipv4 or ipv6",
            spec.number, spec.service
        )));
    }
    Ok(Instance {
        service: spec.service,
        app: spec.app,
        namespace: spec.namespace,
        number: spec.number,
        node: NodeId::new(spec.node.as_deref().unwrap_or(&state.local)),
        ipv4: spec.ipv4,
        ipv6: spec.ipv6,
        ports: spec.ports,
        healthy: spec.healthy,
    })
}

/// `GET /v1/instances`: every registered instance.
pub(super) fn list(state: &ApiState) -> Vec<Instance> {
    let snapshot = state.directory.snapshot();
    let mut all: Vec<Instance> = Vec::new();
    for name in snapshot.service_names() {
        all.extend(snapshot.service(name).iter().cloned());
    }
    all
}

/// The record form of an instance (what the control plane signs).
pub(super) fn entry(instance: &Instance) -> InstanceEntry {
    InstanceEntry {
        service: instance.service.clone(),
        app: instance.app.clone(),
        namespace: instance.namespace.clone(),
        number: instance.number,
        ipv4: instance.ipv4,
        ports: instance.ports.iter().map(|p| (p.name.clone(), p.protocol.to_string(), p.port)).collect(),
    }
}

/// `<service>/<app>/<namespace>/<number>` from a path.
pub(super) fn parse_key(rest: &str, route: &str) -> Result<InstanceKey, ApiError> {
    let parts: Vec<&str> = rest.split('/').collect();
    let [service, app, namespace, number] = parts[..] else {
        return Err(ApiError::BadRequest(format!("use DELETE {route}/<service>/<app>/<namespace>/<number>")));
    };
    let number: u32 = number
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("instance number {number:?} is not a number")))?;
    Ok(InstanceKey(service.to_owned(), app.to_owned(), namespace.to_owned(), number))
}

/// `DELETE /v1/instances/<service>/<app>/<namespace>/<number>`.
pub(super) async fn deregister(state: &ApiState, rest: &str) -> Result<Instance, ApiError> {
    let key = parse_key(rest, "/v1/instances")?;
    if let Some(control) = &state.control {
        let removed = control.deregister(key).await.map_err(ApiError::NotFound)?;
        return Ok(crate::control::project::to_instance(&removed, &state.local));
    }
    let InstanceKey(service, app, namespace, number) = key;
    state
        .directory
        .deregister(&service, &app, &namespace, number)
        .ok_or_else(|| ApiError::NotFound(format!("instance {service}/{app}/{namespace}/{number}")))
}
