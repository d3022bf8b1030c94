//! Getting into the mesh: become the authority (`[control.admit]`), reuse a
//! grant kept from an earlier run, or join through a bootstrap node with a
//! token. Runs before the tunnel exists, because the tunnel's address comes
//! from the grant.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{request_response, Multiaddr, Swarm};
use libp2p_identity::{Keypair, PeerId};

use super::admission::{verify_grant, Authority, SubnetGrant, SubnetPool, TokenList};
use super::config::ControlConfig;
use super::protocol::{ControlRequest, ControlResponse, State};
use super::records::{decode, encode};
use super::signed::Signed;
use super::swarm::{build, Behaviour, BehaviourEvent};
use super::{identity, now_unix_ms, ControlError};

const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const GRANT_FILE: &str = "grant";
const AUTHORITY_FILE: &str = "authority-grants";

/// A node that may run: it holds a subnet grant signed by the authority.
pub struct Admitted {
    pub swarm: Swarm<Behaviour>,
    pub keypair: Keypair,
    pub authority: Option<Authority>,
    pub authority_peer: PeerId,
    pub grant: Signed<SubnetGrant>,
    pub subnet: Ipv4Net,
    /// Membership handed over at join (empty otherwise; sync fills it).
    pub state: State,
}

pub fn multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::from(addr.ip()).with(Protocol::Tcp(addr.port()))
}

/// Listens, then admits this node by the first route that applies.
pub async fn admit(config: &ControlConfig, token: Option<String>) -> Result<Admitted, ControlError> {
    let keypair = identity::load_or_create(&config.identity_file)?;
    let local = keypair.public().to_peer_id();
    let mut swarm = build(keypair.clone())?;
    swarm
        .listen_on(multiaddr(config.listen))
        .map_err(|e| ControlError::Listen(config.listen, e.to_string()))?;
    wait_listening(&mut swarm, config.listen).await?;
    tracing::info!(peer_id = %local, listen = %config.listen, "control plane listening");

    if let Some(admit) = &config.admit {
        let tokens = TokenList::load(&admit.tokens_file)?;
        let pool = SubnetPool::new(admit.pool, 26)?;
        let state_path = config.state_dir.join(AUTHORITY_FILE);
        ensure_dir(&config.state_dir)?;
        let mut authority = Authority::new(keypair.clone(), tokens, pool, Some(state_path))?;
        let grant = authority.admit_self(now_unix_ms())?;
        let subnet = verify_grant(&grant, &local, &local)?;
        tracing::info!(%subnet, "admission authority: granted ourselves a subnet");
        return Ok(Admitted { swarm, keypair, authority: Some(authority), authority_peer: local, grant, subnet, state: State::default() });
    }
    let grant_path = config.state_dir.join(GRANT_FILE);
    if let Some((authority_peer, grant)) = load_grant(&grant_path, &local)? {
        let subnet = verify_grant(&grant, &authority_peer, &local)?;
        tracing::info!(%subnet, authority = %authority_peer, "rejoining with the grant kept from the last run");
        // No join needed, but the membership is: the driver syncs with
        // whoever these connections reach.
        for addr in &config.bootstrap {
            if let Err(e) = swarm.dial(multiaddr(*addr)) {
                tracing::warn!(%addr, "cannot dial bootstrap node: {e}");
            }
        }
        return Ok(Admitted { swarm, keypair, authority: None, authority_peer, grant, subnet, state: State::default() });
    }
    if config.bootstrap.is_empty() {
        return Err(ControlError::NoBootstrap);
    }
    let token = token.unwrap_or_default();
    let (authority_peer, grant, state) = join(&mut swarm, &config.bootstrap, &token, &local).await?;
    let subnet = verify_grant(&grant, &authority_peer, &local)?;
    ensure_dir(&config.state_dir)?;
    save_grant(&grant_path, &authority_peer, &grant)?;
    tracing::info!(%subnet, authority = %authority_peer, members = state.nodes.len(), "joined the mesh");
    Ok(Admitted { swarm, keypair, authority: None, authority_peer, grant, subnet, state })
}

async fn wait_listening(swarm: &mut Swarm<Behaviour>, listen: SocketAddr) -> Result<(), ControlError> {
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { .. } => return Ok(()),
                SwarmEvent::ListenerClosed { reason: Err(e), .. } | SwarmEvent::ListenerError { error: e, .. } => {
                    return Err(ControlError::Listen(listen, e.to_string()))
                }
                _ => {}
            },
            _ = &mut deadline => return Err(ControlError::Listen(listen, "no listener after 5 s".into())),
        }
    }
}

/// Asks every bootstrap node at once; the authority answers, others refuse.
async fn join(
    swarm: &mut Swarm<Behaviour>,
    bootstrap: &[SocketAddr],
    token: &str,
    local: &PeerId,
) -> Result<(PeerId, Signed<SubnetGrant>, State), ControlError> {
    for addr in bootstrap {
        if let Err(e) = swarm.dial(multiaddr(*addr)) {
            tracing::warn!(%addr, "cannot dial bootstrap node: {e}");
        }
    }
    let started = Instant::now();
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    progress.tick().await;
    let mut asked = Vec::new();
    let mut answers = 0usize;
    let mut last_refusal: Option<(PeerId, String)> = None;
    loop {
        if answers >= bootstrap.len() {
            return Err(match last_refusal {
                Some((by, reason)) => ControlError::JoinRefused { by: by.to_string(), reason },
                None => ControlError::Unreachable(bootstrap.to_vec()),
            });
        }
        tokio::select! {
            _ = progress.tick() => {
                if started.elapsed() >= JOIN_TIMEOUT {
                    return Err(ControlError::Unreachable(bootstrap.to_vec()));
                }
                tracing::info!(?bootstrap, "still joining…");
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if !asked.contains(&peer_id) => {
                    asked.push(peer_id);
                    tracing::info!(peer = %peer_id, "connected to bootstrap node, presenting the join token");
                    swarm.behaviour_mut().control.send_request(&peer_id, ControlRequest::Join { token: token.to_owned() });
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    tracing::warn!("bootstrap node unreachable: {error}");
                    answers += 1;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Control(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Response { response, .. },
                    ..
                })) => match response {
                    ControlResponse::Joined { grant, authority, state } => {
                        let authority = PeerId::from_bytes(&authority).map_err(|e| ControlError::Protocol(e.to_string()))?;
                        if authority != peer {
                            return Err(ControlError::Protocol(format!("{peer} answered the join for another authority {authority}")));
                        }
                        verify_grant(&grant, &authority, local)?;
                        return Ok((authority, grant, state));
                    }
                    ControlResponse::Refused { reason } => {
                        tracing::warn!(by = %peer, "join refused: {reason}");
                        last_refusal = Some((peer, reason));
                        answers += 1;
                    }
                    ControlResponse::State(_) => {}
                },
                SwarmEvent::Behaviour(BehaviourEvent::Control(request_response::Event::OutboundFailure { peer, error, .. })) => {
                    tracing::warn!(%peer, "join request failed: {error}");
                    answers += 1;
                }
                _ => {}
            },
        }
    }
}

fn ensure_dir(dir: &Path) -> Result<(), ControlError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ControlError::State(dir.to_owned(), e.to_string()))
}

fn load_grant(path: &Path, local: &PeerId) -> Result<Option<(PeerId, Signed<SubnetGrant>)>, ControlError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ControlError::State(path.to_owned(), e.to_string())),
    };
    let (authority, grant): (Vec<u8>, Signed<SubnetGrant>) =
        decode(&bytes).map_err(|e| ControlError::State(path.to_owned(), format!("{e}; delete it to join afresh")))?;
    let authority = PeerId::from_bytes(&authority).map_err(|e| ControlError::State(path.to_owned(), e.to_string()))?;
    verify_grant(&grant, &authority, local)
        .map_err(|e| ControlError::State(path.to_owned(), format!("{e}; delete it to join afresh")))?;
    Ok(Some((authority, grant)))
}

fn save_grant(path: &Path, authority: &PeerId, grant: &Signed<SubnetGrant>) -> Result<(), ControlError> {
    let fail = |e: String| ControlError::State(path.to_owned(), e);
    let bytes = encode(&(authority.to_bytes(), grant)).map_err(|e| fail(e.to_string()))?;
    let tmp: PathBuf = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(e.to_string()))?;
    file.write_all(&bytes).and_then(|_| file.sync_all()).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}
