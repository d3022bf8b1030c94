//! Becoming a delegate while running: the cluster orchestrator hands its
//! netmanager the authority's delegation (`PUT /v1/delegation`), which is
//! checked, kept in `<state_dir>/delegate/` and from then on admits the
//! site's nodes into the delegated block; after a restart the node resumes
//! as a delegate from that state. The admission slot is shared with the
//! control plane (joins) and the local API (tokens, members).

use std::path::PathBuf;
use std::sync::Arc;

use libp2p_identity::{Keypair, PeerId};
use parking_lot::{Mutex, RwLock};

use super::actor::AdmissionThread;
use super::authority::{Authority, GrantRules};
use super::delegation::{verify_delegation, DelegationInfo};
use super::store::AuthorityStore;
use super::{AdmissionError, AdmissionHandle};
use crate::control::wire::records::Delegation;
use crate::control::wire::Signed;

/// The node's admission, if it admits: set at start on the authority (or a
/// delegate resuming), or later when a delegation is installed.
pub type SharedAdmission = Arc<RwLock<Option<AdmissionHandle>>>;

/// Everything needed to start a delegate's authority.
pub struct Delegate {
    keypair: Keypair,
    dir: PathBuf,
    authority: PeerId,
    rules: GrantRules,
    tokens_file: Option<PathBuf>,
    slot: SharedAdmission,
    /// The delegation in force, and its actor's thread.
    running: Mutex<Option<(DelegationInfo, AdmissionThread)>>,
}

impl Delegate {
    pub fn new(keypair: Keypair, state_dir: &std::path::Path, authority: PeerId, rules: GrantRules, tokens_file: Option<PathBuf>, slot: SharedAdmission) -> Delegate {
        Delegate { keypair, dir: state_dir.join("delegate"), authority, rules, tokens_file, slot, running: Mutex::new(None) }
    }

    /// The delegation in force.
    pub fn current(&self) -> Option<DelegationInfo> {
        self.running.lock().as_ref().map(|(info, _)| *info)
    }

    /// Resumes a delegation kept from an earlier run; `Ok(false)` if there is none.
    pub fn resume(&self) -> Result<bool, AdmissionError> {
        if !self.dir.join("authority.json").exists() {
            return Ok(false);
        }
        let local = self.keypair.public().to_peer_id();
        let (store, state) = AuthorityStore::open(&self.dir, &local, false)?;
        let Some(delegation) = state.delegated.clone() else { return Ok(false) };
        self.start(delegation, store, state).map(|_| true)
    }

    /// Checks `delegation` (signed by the pinned authority, for this node,
    /// a block of the pool) and starts admitting. Installing the one in
    /// force again changes nothing; another block while one is in force is
    /// refused (remove the cluster on the authority first).
    pub fn install(&self, delegation: Signed<Delegation>) -> Result<DelegationInfo, AdmissionError> {
        let info = verify_delegation(&delegation, &self.authority, &self.rules)?;
        let local = self.keypair.public().to_peer_id();
        if info.cluster != local {
            return Err(AdmissionError::NotOurDelegation { delegate: info.cluster.to_string(), node: local.to_string() });
        }
        if let Some(current) = self.current() {
            if current.block == info.block {
                return Ok(current);
            }
            return Err(AdmissionError::Reserve {
                node: local.to_string(),
                subnet: info.block,
                reason: format!("this node already admits into {}", current.block),
            });
        }
        crate::files::create_private_dir(&self.dir).map_err(|source| AdmissionError::StateIo { path: self.dir.clone(), source })?;
        let (store, state) = AuthorityStore::open(&self.dir, &local, false)?;
        self.start(delegation, store, state)
    }

    fn start(&self, delegation: Signed<Delegation>, store: AuthorityStore, state: super::authority::AuthorityState) -> Result<DelegationInfo, AdmissionError> {
        let info = verify_delegation(&delegation, &self.authority, &self.rules)?;
        let authority = Authority::delegate_of(self.keypair.clone(), delegation, info.block, self.rules.prefix_len, state)?;
        store.save(&authority.state())?;
        let (handle, thread) = AdmissionHandle::spawn(authority, store, self.tokens_file.clone())?;
        *self.slot.write() = Some(handle);
        *self.running.lock() = Some((info, thread));
        tracing::info!(block = %info.block, authority = %self.authority, "admitting nodes into the delegated block");
        Ok(info)
    }
}
