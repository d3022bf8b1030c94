//! The admission authority's decisions, pure: who may join (tokens), which
//! subnet, name and tunnel key each member owns, and the signed grant that
//! proves it; removing a member (a signed revocation). A node puts its
//! grant into its own signed record; peers accept the record only if
//! [`verify_grant`] agrees, so nobody can claim addresses, a name or a key
//! the authority did not hand out.
//!
//! Persistence is the caller's ([`super::store`]): every method that
//! changes the state says so, and the caller writes it before answering.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use libp2p_identity::{Keypair, PeerId};
use serde::{Deserialize, Serialize};

use super::delegation::{check_chain, DelegationEntry};
use super::pool::SubnetPool;
use super::tokens::{TokenId, TokenProblem, TokenStore};
use super::{AdmissionError, Refusal};
use crate::control::wire::protocol::JoinRequest;
use crate::control::wire::records::{Delegation, Revocation, SubnetGrant, MAX_NAME};
use crate::control::wire::Signed;

/// What the authority remembers of one member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantEntry {
    #[serde(with = "peer_text")]
    pub node: PeerId,
    pub subnet: Ipv4Net,
    pub name: String,
    /// Base64 of the tunnel key.
    pub wg_public_key: String,
    pub serial: u64,
    pub issued_unix_ms: u64,
    /// The token that admitted it (none for the authority itself).
    pub token: Option<TokenId>,
}

/// Everything the authority persists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityState {
    pub next_serial: u64,
    pub grants: Vec<GrantEntry>,
    pub tokens: TokenStore,
    /// Revoked (node, serial): served to members in syncs.
    pub revoked: Vec<(String, u64)>,
    /// Blocks set aside for clusters (on the pinned authority).
    #[serde(default)]
    pub delegations: Vec<DelegationEntry>,
    /// On a delegate: the authority's delegation, handed out with every grant.
    #[serde(default)]
    pub delegated: Option<Signed<Delegation>>,
}

/// A grant as the joiner gets it: with the delegation when a delegate
/// signed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Granted {
    pub grant: Signed<SubnetGrant>,
    pub delegation: Option<Signed<Delegation>>,
}

/// The authority: its key, the pool and what it has handed out.
#[derive(Clone, Debug)]
pub struct Authority {
    keypair: Keypair,
    pool: SubnetPool,
    grants: BTreeMap<PeerId, GrantEntry>,
    pub(super) tokens: TokenStore,
    next_serial: u64,
    revocations: Vec<Signed<Revocation>>,
    revoked: Vec<(String, u64)>,
    delegations: BTreeMap<PeerId, DelegationEntry>,
    delegated: Option<Signed<Delegation>>,
}

impl Authority {
    /// Restores `state` into `pool`; a state that contradicts itself
    /// (two owners of one subnet, name or key) is refused.
    pub fn new(keypair: Keypair, mut pool: SubnetPool, state: AuthorityState) -> Result<Authority, AdmissionError> {
        let mut grants = BTreeMap::new();
        for grant in state.grants {
            pool.reserve(&grant.node, grant.subnet)?;
            let clash = grants.values().any(|g: &GrantEntry| g.name == grant.name || g.wg_public_key == grant.wg_public_key);
            if clash {
                return Err(AdmissionError::StateConflict(grant.name));
            }
            grants.insert(grant.node, grant);
        }
        let mut delegations = BTreeMap::new();
        for entry in state.delegations {
            pool.reserve_block(&entry.cluster, entry.block)?;
            delegations.insert(entry.cluster, entry);
        }
        let mut authority = Authority {
            keypair,
            pool,
            grants,
            tokens: state.tokens,
            next_serial: state.next_serial.max(1),
            revocations: Vec::new(),
            revoked: Vec::new(),
            delegations,
            delegated: state.delegated,
        };
        for (node, serial) in state.revoked {
            if let Ok(peer) = node.parse::<PeerId>() {
                authority.remember_revocation(peer, serial)?;
            }
        }
        Ok(authority)
    }

    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    pub fn pool(&self) -> &SubnetPool {
        &self.pool
    }

    pub fn grants(&self) -> impl Iterator<Item = &GrantEntry> {
        self.grants.values()
    }

    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    pub fn tokens_mut(&mut self) -> &mut TokenStore {
        &mut self.tokens
    }

    /// Signed revocations, for members' syncs.
    pub fn revocations(&self) -> &[Signed<Revocation>] {
        &self.revocations
    }

    /// The state to persist.
    pub fn state(&self) -> AuthorityState {
        AuthorityState {
            next_serial: self.next_serial,
            grants: self.grants.values().cloned().collect(),
            tokens: self.tokens.clone(),
            revoked: self.revoked.clone(),
            delegations: self.delegations.values().cloned().collect(),
            delegated: self.delegated.clone(),
        }
    }

    /// A delegate's authority: its own key, a pool over the delegated block,
    /// the delegation handed out with each grant. The caller has checked
    /// the delegation ([`super::verify_delegation`]).
    pub fn delegate_of(keypair: Keypair, delegation: Signed<Delegation>, block: Ipv4Net, prefix_len: u8, mut state: AuthorityState) -> Result<Authority, AdmissionError> {
        state.delegated = Some(delegation);
        Authority::new(keypair, SubnetPool::new(block, prefix_len)?, state)
    }

    /// On a delegate: the delegation its grants come with.
    pub fn delegation(&self) -> Option<&Signed<Delegation>> {
        self.delegated.as_ref()
    }

    /// Blocks set aside for clusters.
    pub fn delegations(&self) -> impl Iterator<Item = &DelegationEntry> {
        self.delegations.values()
    }

    /// Sets a `/block_len` of the pool aside for the member `who` (name or
    /// peer id) and signs the delegation; asked again, the same block and
    /// serial, signed anew. On success the state changed: persist it.
    pub fn delegate(&mut self, who: &str, block_len: u8, now_unix_ms: u64) -> Result<(DelegationEntry, Signed<Delegation>), AdmissionError> {
        if self.delegated.is_some() {
            return Err(AdmissionError::NotDelegable(format!("{who} (this node is itself a delegate; only the pinned authority delegates)")));
        }
        let cluster = self.member(who).ok_or_else(|| AdmissionError::NotDelegable(who.to_owned()))?;
        if cluster == self.peer_id() {
            return Err(AdmissionError::NotDelegable(format!("{who} (the authority itself)")));
        }
        let entry = match self.delegations.get(&cluster) {
            Some(held) => held.clone(),
            None => {
                let block = self.pool.grant_block(&cluster, block_len)?;
                let entry = DelegationEntry { cluster, block, serial: self.next_serial, issued_unix_ms: now_unix_ms };
                self.next_serial += 1;
                self.delegations.insert(cluster, entry.clone());
                entry
            }
        };
        let cluster_grant_serial = self.grants.get(&cluster).map_or(0, |g| g.serial);
        let delegation =
            Delegation { cluster: cluster.to_bytes(), block: entry.block, serial: entry.serial, cluster_grant_serial, issued_unix_ms: entry.issued_unix_ms };
        Ok((entry, Signed::sign(&delegation, &self.keypair)?))
    }

    /// A member by peer id or name.
    fn member(&self, who: &str) -> Option<PeerId> {
        match who.parse::<PeerId>() {
            Ok(peer) if self.grants.contains_key(&peer) => Some(peer),
            _ => self.grants.values().find(|g| g.name == who).map(|g| g.node),
        }
    }

    /// Admits `node` with `request` at `now_unix_ms`. A node that already
    /// holds a grant gets it again (re-signed, same serial) when its name
    /// and key are unchanged, without using up its token; otherwise names
    /// and keys must be free. On success the state changed: persist it.
    pub fn admit(&mut self, node: &PeerId, request: &JoinRequest, now_unix_ms: u64) -> Result<Granted, Refusal> {
        let token = match self.tokens.check(&request.token, now_unix_ms / 1000) {
            Ok(id) => id,
            Err(TokenProblem::Missing) => return Err(Refusal::NoToken),
            Err(problem) => {
                tracing::warn!(%node, "refused a join: {problem}");
                return Err(Refusal::Token);
            }
        };
        let grant = self.grant(node, &request.name, request.wg_public_key, Some(token), now_unix_ms)?;
        Ok(Granted { grant, delegation: self.delegated.clone() })
    }

    /// Grants the authority its own subnet (it is a member too), no token.
    pub fn admit_self(&mut self, name: &str, wg_public_key: [u8; 32], now_unix_ms: u64) -> Result<Signed<SubnetGrant>, Refusal> {
        let me = self.peer_id();
        self.grant(&me, name, wg_public_key, None, now_unix_ms)
    }

    fn grant(
        &mut self,
        node: &PeerId,
        name: &str,
        wg_public_key: [u8; 32],
        token: Option<TokenId>,
        now_unix_ms: u64,
    ) -> Result<Signed<SubnetGrant>, Refusal> {
        if !valid_name(name) {
            return Err(Refusal::BadName);
        }
        let key = overlay::PublicKey(wg_public_key).to_string();
        for other in self.grants.values().filter(|g| g.node != *node) {
            if other.name == name {
                return Err(Refusal::NameTaken { name: name.to_owned() });
            }
            if other.wg_public_key == key {
                return Err(Refusal::KeyTaken);
            }
        }
        let held = self.grants.get(node).cloned();
        let entry = match held {
            Some(held) if held.name == name && held.wg_public_key == key => held,
            held => {
                let subnet = match &held {
                    Some(held) => held.subnet,
                    None => self.pool.grant(node).map_err(|_| Refusal::PoolExhausted)?,
                };
                let serial = self.next_serial;
                self.next_serial += 1;
                if let Some(token) = token.filter(|_| held.is_none()) {
                    self.tokens.consume(token);
                }
                let entry = GrantEntry { node: *node, subnet, name: name.to_owned(), wg_public_key: key, serial, issued_unix_ms: now_unix_ms, token };
                self.grants.insert(*node, entry.clone());
                entry
            }
        };
        let grant = SubnetGrant {
            node: node.to_bytes(),
            subnet: entry.subnet,
            name: entry.name,
            wg_public_key,
            serial: entry.serial,
            issued_unix_ms: entry.issued_unix_ms,
        };
        Signed::sign(&grant, &self.keypair).map_err(|_| Refusal::Unavailable)
    }

    /// Removes a member (by peer id or name): its subnet, name and key are
    /// free again, and the signed revocation tells members to drop it.
    pub fn revoke(&mut self, who: &str) -> Result<(GrantEntry, Signed<Revocation>), AdmissionError> {
        let node = self.member(who).ok_or_else(|| AdmissionError::NoSuchMember(who.to_owned()))?;
        if node == self.peer_id() {
            return Err(AdmissionError::RevokeSelf);
        }
        let entry = self.grants.remove(&node).ok_or_else(|| AdmissionError::NoSuchMember(who.to_owned()))?;
        self.pool.release(&node);
        // A removed cluster's block comes back; members drop the nodes it
        // admitted when they see the revocation.
        if self.delegations.remove(&node).is_some() {
            self.pool.release_block(&node);
        }
        let signed = self.remember_revocation(node, entry.serial)?;
        Ok((entry, signed))
    }

    fn remember_revocation(&mut self, node: PeerId, serial: u64) -> Result<Signed<Revocation>, AdmissionError> {
        let signed = Signed::sign(&Revocation { node: node.to_bytes(), serial }, &self.keypair)?;
        self.revoked.retain(|(n, _)| *n != node.to_string());
        self.revoked.push((node.to_string(), serial));
        self.revocations.retain(|r| r.signer().is_ok() && !revokes(r, &node));
        self.revocations.push(signed.clone());
        // Bounded: the oldest revocations fall out once the list is long;
        // their grants are long gone from members' views by then.
        if self.revoked.len() > MAX_REVOCATIONS {
            self.revoked.remove(0);
            self.revocations.remove(0);
        }
        Ok(signed)
    }
}

/// Revocations kept (and served) at most.
pub const MAX_REVOCATIONS: usize = 1024;

fn revokes(signed: &Signed<Revocation>, node: &PeerId) -> bool {
    signed.verify().is_ok_and(|v| v.value.node == node.to_bytes())
}

/// A node name is one DNS label (it appears in `explain` answers and
/// status output): letters, digits, inner hyphens, at most 63.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME && dns::Label::parse(name).is_some_and(|l| l == name)
}

/// What a member checks in every grant besides the signature: the shape the
/// mesh's address plan allows. A grant for anything else (`0.0.0.0/1`, a
/// LAN prefix, the whole pool) would become kernel routes and allowed-IPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantRules {
    pub pool: Ipv4Net,
    pub prefix_len: u8,
}

impl Default for GrantRules {
    fn default() -> Self {
        GrantRules { pool: super::pool::default_pool(), prefix_len: super::pool::SUBNET_PREFIX }
    }
}

/// A grant's content after [`verify_grant`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantInfo {
    /// Who signed the grant: the authority, or a delegate of it.
    pub issuer: PeerId,
    /// For a delegate's grant: the serial of the delegate's own grant that
    /// its delegation is bound to (revoking that voids this one too).
    pub delegate_grant_serial: Option<u64>,
    pub subnet: Ipv4Net,
    pub name: String,
    pub wg_public_key: [u8; 32],
    pub serial: u64,
}

/// Checks a grant: signed by `authority` (or by a delegate, with the
/// authority's `delegation` to it, for a subnet of the delegated block),
/// for `node`, a subnet of the configured size inside the pool, a valid
/// name. Returns what it grants.
pub fn verify_grant(
    grant: &Signed<SubnetGrant>,
    delegation: Option<&Signed<Delegation>>,
    authority: &PeerId,
    node: &PeerId,
    rules: &GrantRules,
) -> Result<GrantInfo, AdmissionError> {
    let verified = grant.verify()?;
    let issuer = verified.signer;
    let value = verified.value;
    let delegate_grant_serial =
        if issuer == *authority { None } else { Some(check_chain(delegation, &issuer, value.subnet, authority, rules)?.cluster_grant_serial) };
    let grant_for = PeerId::from_bytes(&value.node).map_err(AdmissionError::BadPeerId)?;
    if grant_for != *node {
        let (grant_for, node) = (grant_for.to_string(), node.to_string());
        return Err(AdmissionError::WrongNode { grant_for, node });
    }
    let subnet = value.subnet;
    if subnet.prefix_len() != rules.prefix_len || subnet.trunc() != subnet || !rules.pool.contains(&subnet) {
        return Err(AdmissionError::GrantShape { subnet, pool: rules.pool, prefix_len: rules.prefix_len });
    }
    if !valid_name(&value.name) {
        return Err(AdmissionError::GrantName(value.name));
    }
    Ok(GrantInfo { issuer, delegate_grant_serial, subnet, name: value.name, wg_public_key: value.wg_public_key, serial: value.serial })
}

pub(super) mod peer_text {
    use libp2p_identity::PeerId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(peer: &PeerId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&peer.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PeerId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
