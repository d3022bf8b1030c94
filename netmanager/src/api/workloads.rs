//! `/v1/workloads` (dynamic mode): a network namespace per instance on the
//! node bridge, registered in DNS under its service name, the way
//! Oakestra's NetManager serves its node engine.
//!
//! ```sh
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/workloads \
//!      -d '{"service":"ms2","app":"cam","number":1,"ports":[{"name":"http","protocol":"tcp","port":8080}]}'
//! ip netns exec <netns from the answer> getent hosts closest.ms2
//! ```

use std::sync::Arc;

use dns::{Instance, NamedPort};
use serde::{Deserialize, Serialize};

use super::instances::{default_scope, entry, parse_key};
use super::{ApiError, ApiState};
use crate::control::InstanceKey;
use crate::workload::{Workload, WorkloadKey, Workloads};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub service: String,
    #[serde(default = "default_scope")]
    pub app: String,
    #[serde(default = "default_scope")]
    pub namespace: String,
    pub number: u32,
    #[serde(default)]
    pub ports: Vec<NamedPort>,
}

#[derive(Serialize)]
pub struct Created {
    pub workload: Workload,
    pub instance: Instance,
}

type Shared = Arc<parking_lot::Mutex<Option<Workloads>>>;

fn dynamic(state: &ApiState) -> Result<(&crate::control::ControlHandle, Shared), ApiError> {
    match (&state.control, &state.workloads) {
        (Some(control), Some(workloads)) => Ok((control, workloads.clone())),
        _ => Err(ApiError::NotFound(
            "/v1/workloads needs dynamic mode ([control]): workload addresses come from the node's granted subnet".into(),
        )),
    }
}

/// Runs `op` on the workloads off the async runtime (it spawns `ip`).
async fn with_workloads<T: Send + 'static>(
    workloads: Shared,
    op: impl FnOnce(&mut Workloads) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || match workloads.lock().as_mut() {
        Some(w) => op(w),
        None => Err(ApiError::Internal("netmanager is shutting down".into())),
    })
    .await
    .map_err(|e| ApiError::Internal(format!("workload task: {e}")))?
}

pub(super) fn list(state: &ApiState) -> Result<Vec<Workload>, ApiError> {
    let (_, workloads) = dynamic(state)?;
    let guard = workloads.lock();
    Ok(guard.as_ref().map(|w| w.list()).unwrap_or_default())
}

/// `POST /v1/workloads`: namespace first, then the DNS registration; if
/// the registration fails the namespace is removed again.
pub(super) async fn create(state: &ApiState, body: &[u8]) -> Result<Created, ApiError> {
    let (control, workloads) = dynamic(state)?;
    let spec: WorkloadSpec =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("workload JSON: {e}")))?;
    let key = WorkloadKey { service: spec.service.clone(), app: spec.app.clone(), namespace: spec.namespace.clone(), number: spec.number };
    let created = {
        let key = key.clone();
        with_workloads(workloads.clone(), move |w| {
            w.create(key).map_err(|e| match e {
                crate::workload::WorkloadError::Exists(_) => ApiError::Conflict(e.to_string()),
                crate::workload::WorkloadError::InvalidName(_) => ApiError::BadRequest(e.to_string()),
                other => ApiError::Internal(other.to_string()),
            })
        })
        .await?
    };
    let mut instance = Instance::new(&spec.service, &spec.app, &spec.namespace, spec.number, &state.local).with_ipv4(created.address);
    instance.ports = spec.ports;
    if let Err(e) = control.register(vec![entry(&instance)]).await {
        let _ = with_workloads(workloads, move |w| w.delete(&key).map_err(|e| ApiError::Internal(e.to_string()))).await;
        return Err(ApiError::BadRequest(e));
    }
    tracing::info!(netns = %created.netns, address = %created.address, service = %spec.service, "workload created");
    Ok(Created { workload: created, instance })
}

/// `DELETE /v1/workloads/<service>/<app>/<namespace>/<number>`: out of DNS
/// first (so nobody is sent to a vanishing address), then the namespace.
pub(super) async fn delete(state: &ApiState, rest: &str) -> Result<Workload, ApiError> {
    let (control, workloads) = dynamic(state)?;
    let InstanceKey(service, app, namespace, number) = parse_key(rest, "/v1/workloads")?;
    let key = WorkloadKey { service: service.clone(), app: app.clone(), namespace: namespace.clone(), number };
    if let Err(e) = control.deregister(InstanceKey(service, app, namespace, number)).await {
        tracing::debug!("workload had no DNS registration: {e}");
    }
    let removed = with_workloads(workloads, move |w| {
        w.delete(&key).map_err(|e| match e {
            crate::workload::WorkloadError::NotFound(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        })
    })
    .await?;
    tracing::info!(netns = %removed.netns, "workload deleted");
    Ok(removed)
}
