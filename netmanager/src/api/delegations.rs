//! `/v1/delegations` on the authority and `/v1/delegation` on a cluster's
//! node: the authority sets a block aside for a cluster and signs it; the
//! cluster's netmanager installs it and from then on admits its site's
//! nodes (`/v1/tokens` there), every grant checked by members against the
//! authority's key through the delegation. The orchestrator does both
//! steps when a cluster registers with the root; by hand:
//!
//! ```sh
//! # on the authority
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/delegations -d '{"cluster":"munich"}'
//! # on the cluster's node, with the "delegation" field of that answer
//! curl --unix-socket /run/grove/netmanager.sock -X PUT http://netmanager/v1/delegation -d '{"delegation":"…"}'
//! ```

use base64::Engine;

use super::routes::json;
use super::types::{DelegationEntry, DelegationInstall, DelegationIssued, DelegationRequest, DelegationState};
use super::{ApiError, ApiState};
use crate::control::admission::actor::unix_now_ms;
use crate::control::wire::records::Delegation;
use crate::control::wire::{decode, encode, Signed};

/// Largest encoded delegation accepted (a signed record is a few hundred bytes).
const MAX_DELEGATION: usize = 4096;

pub(super) async fn issue(state: &ApiState, body: &[u8]) -> Result<DelegationIssued, ApiError> {
    let request: DelegationRequest = json(body, "delegation request")?;
    let (entry, signed) = state.admission()?.delegate(request.cluster, request.block_len, unix_now_ms()).await?;
    let bytes = encode(&signed).map_err(|e| ApiError::BadRequest(format!("delegation not encoded: {e}")))?;
    Ok(DelegationIssued { entry, delegation: base64::engine::general_purpose::STANDARD.encode(bytes) })
}

pub(super) async fn list(state: &ApiState) -> Result<Vec<DelegationEntry>, ApiError> {
    Ok(state.admission()?.delegations().await?)
}

pub(super) async fn install(state: &ApiState, body: &[u8]) -> Result<DelegationState, ApiError> {
    let dynamic = state.dynamic("delegation needs dynamic mode ([control])")?;
    let delegate = dynamic.delegate.as_ref().ok_or(ApiError::NotInThisMode("this node is the authority itself; delegations are for clusters"))?;
    let request: DelegationInstall = json(body, "delegation")?;
    let signed = parse(&request.delegation)?;
    let info = tokio::task::block_in_place(|| delegate.install(signed))?;
    dynamic.control.delegated().await?;
    Ok(DelegationState { block: info.block, serial: info.serial, authority: dynamic.authority.to_string() })
}

pub(super) fn current(state: &ApiState) -> Result<DelegationState, ApiError> {
    let dynamic = state.dynamic("delegation needs dynamic mode ([control])")?;
    let info = dynamic.delegate.as_ref().and_then(|d| d.current()).ok_or(ApiError::NotInThisMode("this node holds no delegation"))?;
    Ok(DelegationState { block: info.block, serial: info.serial, authority: dynamic.authority.to_string() })
}

fn parse(text: &str) -> Result<Signed<Delegation>, ApiError> {
    if text.len() > MAX_DELEGATION * 2 {
        return Err(ApiError::BadRequest("delegation too long".into()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| ApiError::BadRequest(format!("delegation is not base64: {e}")))?;
    decode(&bytes).map_err(|e| ApiError::BadRequest(format!("not a signed delegation: {e}")))
}
