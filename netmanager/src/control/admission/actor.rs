//! The authority on a thread of its own: it owns the [`Authority`] and its
//! [`AuthorityStore`], takes requests over a channel and persists every
//! change (fsync) before it answers, so neither the control plane nor the
//! local API ever waits on a disk on the async runtime. The control plane
//! sends it joins; the local API sends it token and member management.

use std::path::PathBuf;
use std::time::SystemTime;

use libp2p_identity::PeerId;
use tokio::sync::{mpsc, oneshot};

use super::authority::{Authority, GrantEntry, Granted};
use super::delegation::DelegationEntry;
use super::store::AuthorityStore;
use super::token_file::parse_token_file;
use super::tokens::{TokenEntry, TokenId, TokenSpec};
use super::{AdmissionError, Refusal};
use crate::control::wire::protocol::JoinRequest;
use crate::control::wire::records::{Delegation, Revocation};
use crate::control::wire::Signed;
use crate::files::read_private;

/// Requests waiting for the authority at most; a flood of joins queues
/// here, bounded, instead of in memory without end.
const QUEUE: usize = 64;

enum Job {
    Admit { peer: PeerId, request: JoinRequest, now_unix_ms: u64, reply: oneshot::Sender<Result<Granted, Refusal>> },
    Delegate { who: String, block_len: u8, now_unix_ms: u64, reply: oneshot::Sender<Result<(DelegationEntry, Signed<Delegation>), AdmissionError>> },
    CreateToken { spec: TokenSpec, reply: oneshot::Sender<Result<(String, TokenEntry), AdmissionError>> },
    ListTokens { reply: oneshot::Sender<Vec<TokenEntry>> },
    RevokeToken { id: TokenId, reply: oneshot::Sender<Result<TokenEntry, AdmissionError>> },
    ListGrants { reply: oneshot::Sender<Vec<GrantEntry>> },
    ListDelegations { reply: oneshot::Sender<Vec<DelegationEntry>> },
    Remove { who: String, reply: oneshot::Sender<Result<(GrantEntry, Signed<Revocation>), AdmissionError>> },
}

/// Cheap to clone; every method fails with [`AdmissionError::Stopped`] (or
/// [`Refusal::Unavailable`]) once the authority's thread is gone.
#[derive(Clone)]
pub struct AdmissionHandle {
    jobs: mpsc::Sender<Job>,
    peer: PeerId,
}

/// The authority's thread; joined when the last handle is dropped.
pub struct AdmissionThread(Option<std::thread::JoinHandle<()>>);

impl AdmissionThread {
    /// Waits for the thread (after every handle is gone).
    pub fn join(mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

impl AdmissionHandle {
    /// Starts the thread. `tokens_file`, if any, is re-read whenever it
    /// changed (new lines are new tokens, removed lines revoked ones).
    pub fn spawn(authority: Authority, store: AuthorityStore, tokens_file: Option<PathBuf>) -> Result<(AdmissionHandle, AdmissionThread), AdmissionError> {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        let peer = authority.peer_id();
        let mut worker = Worker { authority, store, tokens_file, tokens_mtime: None };
        worker.reload_tokens()?;
        let thread = std::thread::Builder::new()
            .name("grove-authority".into())
            .spawn(move || worker.run(receiver))
            .map_err(|source| AdmissionError::StateIo { path: PathBuf::from("<authority thread>"), source })?;
        Ok((AdmissionHandle { jobs, peer }, AdmissionThread(Some(thread))))
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer
    }

    /// Admits a joining node; a full queue counts as "unavailable", so a
    /// join flood is shed rather than buffered.
    pub async fn admit(&self, peer: PeerId, request: JoinRequest, now_unix_ms: u64) -> Result<Granted, Refusal> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send(Job::Admit { peer, request, now_unix_ms, reply }).map_err(|_| Refusal::Unavailable)?;
        answer.await.unwrap_or(Err(Refusal::Unavailable))
    }

    /// Sets a block aside for the member `who` and signs the delegation.
    pub async fn delegate(&self, who: String, block_len: u8, now_unix_ms: u64) -> Result<(DelegationEntry, Signed<Delegation>), AdmissionError> {
        self.call(|reply| Job::Delegate { who, block_len, now_unix_ms, reply }).await?
    }

    pub async fn create_token(&self, spec: TokenSpec) -> Result<(String, TokenEntry), AdmissionError> {
        self.call(|reply| Job::CreateToken { spec, reply }).await?
    }

    pub async fn tokens(&self) -> Result<Vec<TokenEntry>, AdmissionError> {
        self.call(|reply| Job::ListTokens { reply }).await
    }

    pub async fn revoke_token(&self, id: TokenId) -> Result<TokenEntry, AdmissionError> {
        self.call(|reply| Job::RevokeToken { id, reply }).await?
    }

    pub async fn delegations(&self) -> Result<Vec<DelegationEntry>, AdmissionError> {
        self.call(|reply| Job::ListDelegations { reply }).await
    }

    pub async fn grants(&self) -> Result<Vec<GrantEntry>, AdmissionError> {
        self.call(|reply| Job::ListGrants { reply }).await
    }

    /// Removes a member; the revocation must then be gossiped.
    pub async fn remove(&self, who: String) -> Result<(GrantEntry, Signed<Revocation>), AdmissionError> {
        self.call(|reply| Job::Remove { who, reply }).await?
    }

    async fn call<T>(&self, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, AdmissionError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(job(reply)).await.map_err(|_| AdmissionError::Stopped)?;
        answer.await.map_err(|_| AdmissionError::Stopped)
    }
}

struct Worker {
    authority: Authority,
    store: AuthorityStore,
    tokens_file: Option<PathBuf>,
    tokens_mtime: Option<SystemTime>,
}

impl Worker {
    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(job) = jobs.blocking_recv() {
            match job {
                Job::Admit { peer, request, now_unix_ms, reply } => {
                    if let Err(e) = self.reload_tokens() {
                        tracing::error!("token file not re-read: {e}");
                    }
                    let result = self.change(|a| a.admit(&peer, &request, now_unix_ms).map_err(Change::Refused));
                    let result = result.map_err(|e| match e {
                        Change::Refused(r) => r,
                        Change::Store(e) => {
                            tracing::error!("join not recorded: {e}");
                            Refusal::Unavailable
                        }
                    });
                    match &result {
                        Ok(_) => tracing::info!(%peer, name = %request.name, "admitted a node"),
                        Err(r) => tracing::warn!(%peer, "refused a join: {r}"),
                    }
                    let _ = reply.send(result);
                }
                Job::Delegate { who, block_len, now_unix_ms, reply } => {
                    let result = self.change(|a| a.delegate(&who, block_len, now_unix_ms).map_err(Change::Store));
                    if let Ok((entry, _)) = &result {
                        tracing::info!(cluster = %entry.cluster, block = %entry.block, "delegated a block: the cluster admits its site's nodes");
                    }
                    let _ = reply.send(result.map_err(Change::into_error));
                }
                Job::CreateToken { spec, reply } => {
                    let now = unix_now();
                    let result = self.change(|a| a.tokens_mut().create(&spec, now).map_err(Change::Store));
                    let _ = reply.send(result.map_err(Change::into_error));
                }
                Job::ListTokens { reply } => {
                    let _ = reply.send(self.authority.tokens().list().to_vec());
                }
                Job::RevokeToken { id, reply } => {
                    let result = self.change(|a| a.tokens_mut().revoke(id).map_err(Change::Store));
                    let _ = reply.send(result.map_err(Change::into_error));
                }
                Job::ListDelegations { reply } => {
                    let _ = reply.send(self.authority.delegations().cloned().collect());
                }
                Job::ListGrants { reply } => {
                    let _ = reply.send(self.authority.grants().cloned().collect());
                }
                Job::Remove { who, reply } => {
                    let result = self.change(|a| a.revoke(&who).map_err(Change::Store));
                    if let Ok((entry, _)) = &result {
                        tracing::warn!(node = %entry.node, name = %entry.name, "member removed: its grant is revoked");
                    }
                    let _ = reply.send(result.map_err(Change::into_error));
                }
            }
        }
    }

    /// Runs `op`, persists, and rolls the authority back if the state
    /// cannot be written: nothing is granted that is not on disk.
    fn change<T>(&mut self, op: impl FnOnce(&mut Authority) -> Result<T, Change>) -> Result<T, Change> {
        let before = self.authority.clone();
        let value = op(&mut self.authority)?;
        if let Err(e) = self.store.save(&self.authority.state()) {
            self.authority = before;
            return Err(Change::Store(e));
        }
        Ok(value)
    }

    /// Imports the token file if it changed since the last look.
    fn reload_tokens(&mut self) -> Result<(), AdmissionError> {
        let Some(path) = self.tokens_file.clone() else { return Ok(()) };
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if mtime.is_some() && mtime == self.tokens_mtime {
            return Ok(());
        }
        let text = read_private(&path)?;
        let lines = parse_token_file(&text, &format!("join token file {}", path.display()))?;
        let now = unix_now();
        let result = self.change(|a| {
            for line in &lines {
                a.tokens_mut().import(&line.token, line.expires, line.uses, now).map_err(Change::Store)?;
            }
            let kept: Vec<String> = lines.iter().map(|l| l.token.clone()).collect();
            a.tokens_mut().revoke_file_tokens_except(&kept);
            Ok(())
        });
        result.map_err(Change::into_error)?;
        self.tokens_mtime = mtime;
        tracing::info!(tokens = lines.len(), file = %path.display(), "join tokens read");
        Ok(())
    }
}

enum Change {
    Refused(Refusal),
    Store(AdmissionError),
}

impl Change {
    fn into_error(self) -> AdmissionError {
        match self {
            Change::Store(e) => e,
            Change::Refused(_) => AdmissionError::Stopped,
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
