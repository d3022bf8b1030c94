//! `GET /v1/members`: the membership as this node sees it, with RTTs, plus
//! the instance this node's resolver would answer `closest.<service>` with.

use dns::closest::pick_closest;
use dns::Directory;
use serde::Serialize;

use super::{ApiError, ApiState};
use crate::control::view::ControlView;

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Members {
    #[serde(flatten)]
    pub view: ControlView,
    /// service → "instance N on <node> (<address>)", as `closest` answers now.
    pub closest: Vec<ClosestAnswer>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ClosestAnswer {
    pub service: String,
    pub app: String,
    pub namespace: String,
    pub number: u32,
    pub node: String,
    pub address: Option<std::net::Ipv4Addr>,
}

pub(super) fn list(state: &ApiState) -> Result<Members, ApiError> {
    let Some(control) = &state.control else {
        return Err(ApiError::NotFound("/v1/members (static mode has no membership; peers are in /v1/status)".into()));
    };
    Ok(Members { view: control.view(), closest: closest_answers(state) })
}

/// What `closest` picks for each service right now, from this node.
fn closest_answers(state: &ApiState) -> Vec<ClosestAnswer> {
    let snapshot = state.directory.snapshot();
    let mut answers = Vec::new();
    let services: Vec<String> = snapshot.service_names().map(str::to_owned).collect();
    for service in services {
        for group in snapshot.service(&service).groups() {
            let candidates: &[dns::Instance] = &group;
            // As the resolver does: healthy ones first, unhealthy only if
            // nothing else is left.
            let any_healthy = candidates.iter().any(|i| i.healthy);
            let admit = |i: &dns::Instance| i.healthy || !any_healthy;
            if let Some(index) = pick_closest(candidates, admit, &*snapshot, &state.policy) {
                let picked = &candidates[index];
                answers.push(ClosestAnswer {
                    service: service.clone(),
                    app: picked.app.clone(),
                    namespace: picked.namespace.clone(),
                    number: picked.number,
                    node: picked.node.as_str().to_owned(),
                    address: picked.ipv4,
                });
            }
        }
    }
    answers
}
