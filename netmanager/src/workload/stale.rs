//! Leftovers of a previous run that was killed before
//! [`Workloads::teardown`]: its namespaces, their `/etc/netns` directories
//! and its policy rules are removed; its bridge is adopted.

use ipnet::Ipv4Net;

use super::linux::Bridge;
use super::{isolation, linux, names, WorkloadError, Workloads};

impl Workloads {
    /// [`cleanup_stale`] for startup, where a leftover that cannot be
    /// removed must not stop the node (new names skip it): failures are
    /// logged. Returns the names removed.
    pub fn cleanup_stale(prefix: &str) -> Vec<String> {
        match cleanup_stale(prefix) {
            Ok(removed) => removed,
            Err(e) => {
                tracing::warn!(%prefix, error = %e, "stale workload namespaces remain; remove them by hand (`ip netns list`)");
                Vec::new()
            }
        }
    }
}

/// Deletes the namespaces named `<prefix>-w<n>` and `/etc/netns/<prefix>-w<n>`
/// directories a previous run left, and the policy rules and workload
/// table of [`isolation`] in the calling thread's namespace (one node per
/// namespace, so whatever sits at those priorities is this node's). Call it
/// at start, before [`Workloads::setup`] and from the node's namespace,
/// never while a `Workloads` with this prefix is live.
/// Returns the namespace names removed; on failures carries on and returns
/// the first error.
pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>, WorkloadError> {
    names::validate_prefix(prefix)?;
    let mut removed = Vec::new();
    let mut first_error = None;
    for netns in linux::netns_names()? {
        if !names::is_netns_name(prefix, &netns) {
            continue;
        }
        match linux::remove_netns(&netns, &names::host_veth(&netns)) {
            Ok(()) => {
                linux::remove_etc_netns(&netns);
                removed.push(netns);
            }
            Err(e) => {
                tracing::warn!(%netns, error = %e, "cannot remove a stale workload namespace");
                first_error.get_or_insert(e);
            }
        }
    }
    for dir in linux::etc_netns_names()? {
        if names::is_netns_name(prefix, &dir)
            && !linux::netns_exists(&dir)
            && !removed.contains(&dir)
        {
            linux::remove_etc_netns(&dir);
            removed.push(dir);
        }
    }
    removed.sort();
    if !removed.is_empty() {
        tracing::info!(
            ?removed,
            "removed workload namespaces left by an earlier run"
        );
    }
    match isolation::remove() {
        Ok(0) => {}
        Ok(rules) => tracing::info!(
            rules,
            "removed workload policy rules left by an earlier run"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot remove stale workload policy rules");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(removed), Err)
}

/// Whether the bridge exists already with the gateway address (a previous
/// run's, to adopt); an error if the name is taken by anything else.
pub(super) fn bridge_to_adopt(bridge: &str, gateway: Ipv4Net) -> Result<bool, WorkloadError> {
    let conflict = |problem: String| WorkloadError::BridgeConflict {
        bridge: bridge.to_owned(),
        problem,
    };
    match linux::bridge_state(bridge)? {
        Bridge::Absent => Ok(false),
        Bridge::Present { addresses } if addresses.contains(&gateway) => Ok(true),
        Bridge::Present { addresses } => {
            let has: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            let has = if has.is_empty() {
                "none".to_owned()
            } else {
                has.join(", ")
            };
            Err(conflict(format!(
                "a bridge of that name exists without the gateway address {gateway} (it has: {has})"
            )))
        }
        Bridge::Other => Err(conflict(
            "an interface of that name exists and is not a bridge".into(),
        )),
    }
}
