//! `/v1/members`: the membership as this node sees it with RTTs, plus what
//! this node's resolver answers `closest.<service>` with (computed by the
//! resolver's own [`dns::select`], so status never disagrees with DNS);
//! removing a member (on the authority).

use std::net::{IpAddr, Ipv4Addr};

use dns::{parse_name, select, Asker, Directory, NameOutcome, RrTable, SelectOutcome};

use super::types::{ClosestAnswer, MemberRemoved, Members};
use super::{ApiError, ApiState};
use crate::control::wire::records::Gossip;

pub(super) fn list(state: &ApiState) -> Result<Members, ApiError> {
    let dynamic = state.dynamic("/v1/members: static mode has no membership; peers are in /v1/status")?;
    let view = dynamic.control.view().ok_or(ApiError::Control(crate::control::ControlError::Stopped))?;
    Ok(Members { view, closest: closest_answers(state) })
}

/// What `closest` picks for each service and app right now, from this node.
pub(super) fn closest_answers(state: &ApiState) -> Vec<ClosestAnswer> {
    let snapshot = state.directory.snapshot();
    let rr = RrTable::new(1, 0);
    let asker = Asker::from_address(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut answers = Vec::new();
    for service in snapshot.service_names() {
        for group in snapshot.service(service).groups() {
            let Some(first) = group.first() else { continue };
            let name = format!("closest.{service}.{}.{}.{}", first.app, first.namespace, state.zone.as_str());
            let NameOutcome::Query(query) = parse_name(&name, &state.zone) else { continue };
            if let SelectOutcome::Selected(selection) = select(&query, &asker, &*snapshot, &rr, &state.policy) {
                if let Some(picked) = selection.first() {
                    answers.push(ClosestAnswer {
                        service: service.to_owned(),
                        app: picked.app.to_string(),
                        namespace: picked.namespace.to_string(),
                        number: picked.number,
                        node: picked.node.name().to_owned(),
                        address: picked.ipv4,
                        degraded: selection.degraded,
                    });
                }
            }
        }
    }
    answers
}

/// `DELETE /v1/members/<name or peer id>` on the authority: the grant is
/// revoked (its name and subnet free again) and every member drops the node.
pub(super) async fn remove(state: &ApiState, who: &str) -> Result<MemberRemoved, ApiError> {
    let admission = state.admission()?;
    let (removed, revocation) = admission.remove(who.to_owned()).await?;
    state.dynamic("")?.control.publish(Gossip::Revoke(revocation)).await?;
    Ok(MemberRemoved { removed })
}
