//! `/v1/instances`: register, list and remove the service instances DNS
//! answers with. Static mode writes the directory directly; dynamic mode
//! hands local instances to the control plane, which signs and gossips them
//! (and the directory follows from the records).
//!
//! ```sh
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/instances \
//!      -d '{"service":"ms2","app":"cam","number":1,"ipv4":"10.18.0.70"}'
//! ```
//!
//! The body is an [`InstanceSpec`] (or an array of them); static mode also
//! takes `node` (a `[[peer]]` name; default this node) and `healthy`.

use dns::{Directory, Instance, InstanceKey, InstanceSpec, NodeId};
use serde_json::Value;

use super::routes::json;
use super::{ApiError, ApiState, Mode};

/// What a static-mode registration may say besides the spec.
struct Placement {
    node: Option<String>,
    healthy: bool,
}

/// Splits `node` and `healthy` off a registration; the rest is the spec.
fn parse_one(mut value: Value) -> Result<(InstanceSpec, Placement), ApiError> {
    let object = value.as_object_mut().ok_or_else(|| ApiError::BadRequest("an instance is a JSON object".into()))?;
    let node = match object.remove("node") {
        None | Some(Value::Null) => None,
        Some(Value::String(node)) => Some(node),
        Some(other) => return Err(ApiError::BadRequest(format!("`node` must be a name, not {other}"))),
    };
    let healthy = match object.remove("healthy") {
        None => true,
        Some(Value::Bool(healthy)) => healthy,
        Some(other) => return Err(ApiError::BadRequest(format!("`healthy` must be true or false, not {other}"))),
    };
    let spec: InstanceSpec = serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("instance JSON: {e}")))?;
    Ok((spec, Placement { node, healthy }))
}

/// `POST /v1/instances`: adds or replaces one instance (an object) or many
/// (an array, applied as one change).
pub(super) async fn register(state: &ApiState, body: &[u8]) -> Result<Vec<Instance>, ApiError> {
    let values = match json::<Value>(body, "instance")? {
        Value::Array(values) => values,
        one => vec![one],
    };
    let parsed = values.into_iter().map(parse_one).collect::<Result<Vec<_>, _>>()?;
    for (spec, _) in &parsed {
        if spec.ipv4.is_none() && spec.ipv6.is_none() {
            return Err(ApiError::BadRequest(format!("instance {} needs ipv4 or ipv6", spec.key)));
        }
    }
    match &state.mode {
        Mode::Dynamic(dynamic) => {
            if let Some((spec, placement)) = parsed.iter().find(|(_, p)| p.node.as_deref().is_some_and(|n| n != state.local.name()) || !p.healthy) {
                let _ = placement;
                return Err(ApiError::BadRequest(format!(
                    "instance {}: in dynamic mode a node announces only its own instances, healthy (no `node`, no `healthy`)",
                    spec.key
                )));
            }
            let specs = parsed.into_iter().map(|(spec, _)| spec).collect();
            let specs = dynamic.control.register(specs).await?;
            tracing::info!(count = specs.len(), "instances announced");
            Ok(specs.into_iter().map(|spec| Instance::new(spec, state.local.clone())).collect())
        }
        Mode::Static => {
            let instances: Vec<Instance> = parsed
                .into_iter()
                .map(|(spec, placement)| {
                    let node = placement.node.map_or_else(|| state.local.clone(), |n| NodeId::new(&n));
                    let mut instance = Instance::new(spec, node);
                    instance.healthy = placement.healthy;
                    instance
                })
                .collect();
            state.directory.update(|u| u.register_all(instances.clone()));
            tracing::info!(count = instances.len(), "instances registered");
            Ok(instances)
        }
    }
}

/// `GET /v1/instances`: every instance in the directory.
pub(super) fn list(state: &ApiState) -> Vec<Instance> {
    let snapshot = state.directory.snapshot();
    let mut all: Vec<Instance> = Vec::new();
    for name in snapshot.service_names() {
        all.extend(snapshot.service(name).iter().cloned());
    }
    all
}

/// `<service>/<app>/<namespace>/<number>` from a path.
pub(super) fn parse_key(rest: &str) -> Result<InstanceKey, ApiError> {
    rest.parse().map_err(|e: dns::DnsError| ApiError::BadRequest(format!("{e}: use DELETE …/<service>/<app>/<namespace>/<number>")))
}

/// `DELETE /v1/instances/<service>/<app>/<namespace>/<number>`.
pub(super) async fn deregister(state: &ApiState, rest: &str) -> Result<Instance, ApiError> {
    let key = parse_key(rest)?;
    match &state.mode {
        Mode::Dynamic(dynamic) => {
            let spec = dynamic.control.deregister(key).await?;
            Ok(Instance::new(spec, state.local.clone()))
        }
        Mode::Static => state.directory.deregister(&key).ok_or(ApiError::UnknownInstance(Box::new(key))),
    }
}
