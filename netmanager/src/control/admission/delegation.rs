//! Delegation: the pinned authority lets a cluster admit the nodes of its
//! site. The authority sets a block of its pool aside for the cluster and
//! signs a [`Delegation`]; the cluster then runs an [`super::Authority`] of
//! its own over that block (tokens, /26 grants, revocations of what it
//! granted) and hands its delegation out with every grant. A member
//! believes a grant signed by anyone but the authority only through
//! [`verify_delegation`]: root → cluster → node, checked against the one
//! key every member pins.

use ipnet::Ipv4Net;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use super::authority::GrantRules;
use super::AdmissionError;
use crate::control::wire::records::Delegation;
use crate::control::wire::Signed;

/// What the authority remembers of one delegation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationEntry {
    #[serde(with = "super::authority::peer_text")]
    pub cluster: PeerId,
    pub block: Ipv4Net,
    pub serial: u64,
    pub issued_unix_ms: u64,
}

/// A delegation's content after [`verify_delegation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelegationInfo {
    pub cluster: PeerId,
    pub block: Ipv4Net,
    pub serial: u64,
    /// The serial of the cluster's own grant it is bound to.
    pub cluster_grant_serial: u64,
}

/// Checks a delegation: signed by `authority`, for a valid peer, an aligned
/// block of the pool that holds whole node subnets.
pub fn verify_delegation(signed: &Signed<Delegation>, authority: &PeerId, rules: &GrantRules) -> Result<DelegationInfo, AdmissionError> {
    let verified = signed.verify()?;
    if verified.signer != *authority {
        let (signer, authority) = (verified.signer.to_string(), authority.to_string());
        return Err(AdmissionError::NotAuthority { signer, authority });
    }
    let value = verified.value;
    let cluster = PeerId::from_bytes(&value.cluster).map_err(AdmissionError::BadPeerId)?;
    let block = value.block;
    if block.trunc() != block || !rules.pool.contains(&block) || block.prefix_len() > rules.prefix_len {
        return Err(AdmissionError::DelegationShape { block, pool: rules.pool, prefix_len: rules.prefix_len });
    }
    Ok(DelegationInfo { cluster, block, serial: value.serial, cluster_grant_serial: value.cluster_grant_serial })
}

/// The delegation a delegate's grant must come with: signed by the
/// authority, naming the grant's signer, and holding the granted subnet.
pub fn check_chain(
    delegation: Option<&Signed<Delegation>>,
    signer: &PeerId,
    subnet: Ipv4Net,
    authority: &PeerId,
    rules: &GrantRules,
) -> Result<DelegationInfo, AdmissionError> {
    let Some(delegation) = delegation else {
        return Err(AdmissionError::NotAuthority { signer: signer.to_string(), authority: authority.to_string() });
    };
    let info = verify_delegation(delegation, authority, rules)?;
    if info.cluster != *signer {
        return Err(AdmissionError::DelegationMismatch { signer: signer.to_string(), delegate: info.cluster.to_string() });
    }
    if !info.block.contains(&subnet) {
        return Err(AdmissionError::OutsideBlock { subnet, block: info.block });
    }
    Ok(info)
}
