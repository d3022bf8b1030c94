//! `/v1/workloads` (dynamic mode): a network namespace per instance on the
//! node bridge, announced under its service name, the way Oakestra's
//! NetManager serves its node engine. The namespace work runs on the
//! workload actor's own thread ([`crate::workload::WorkloadsHandle`]).
//!
//! ```sh
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/workloads \
//!      -d '{"service":"ms2","app":"cam","number":1,"ports":[{"name":"http","protocol":"tcp","port":8080}]}'
//! ip netns exec <netns from the answer> getent hosts closest.ms2
//! ```

use dns::{InstanceKey, InstanceSpec};

use super::instances::parse_key;
use super::routes::json;
use super::types::{Created, Workload, WorkloadSpec};
use super::{ApiError, ApiState};

const DYNAMIC_ONLY: &str = "/v1/workloads needs dynamic mode ([control]): workload addresses come from the node's granted subnet";

pub(super) fn list(state: &ApiState) -> Result<Vec<Workload>, ApiError> {
    Ok(state.dynamic(DYNAMIC_ONLY)?.workloads.list())
}

/// `POST /v1/workloads`: namespace first, then the announcement; if that
/// fails the namespace is removed again.
pub(super) async fn create(state: &ApiState, body: &[u8]) -> Result<Created, ApiError> {
    let dynamic = state.dynamic(DYNAMIC_ONLY)?;
    let spec: WorkloadSpec = json(body, "workload")?;
    let key = InstanceKey::new(&spec.service, &spec.app, &spec.namespace, spec.number)?;
    let workload = dynamic.workloads.create(key).await?;
    let mut instance = InstanceSpec::new(key).with_ipv4(workload.address);
    instance.ports = spec.ports;
    if let Err(e) = dynamic.control.register(vec![instance.clone()]).await {
        if let Err(undo) = dynamic.workloads.delete(&key).await {
            tracing::warn!("workload {key} not removed after its announcement failed: {undo}");
        }
        return Err(e.into());
    }
    tracing::info!(netns = %workload.netns, address = %workload.address, instance = %key, "workload created");
    Ok(Created { workload, instance })
}

/// `DELETE /v1/workloads/<service>/<app>/<namespace>/<number>`: out of DNS
/// first (so nobody is sent to a vanishing address), then the namespace.
pub(super) async fn delete(state: &ApiState, rest: &str) -> Result<Workload, ApiError> {
    let dynamic = state.dynamic(DYNAMIC_ONLY)?;
    let key = parse_key(rest)?;
    if let Err(e) = dynamic.control.deregister(key).await {
        tracing::debug!("workload {key} had no announcement: {e}");
    }
    let removed = dynamic.workloads.delete(&key).await?;
    tracing::info!(netns = %removed.netns, "workload deleted");
    Ok(removed)
}
