//! Getting into the mesh, before the tunnel exists (its address comes from
//! the grant): become the authority (`[control.admit]`), reuse the grant
//! kept from an earlier run, or join with a token — and a join talks only
//! to the pinned authority, on a connection this node dialled, so the token
//! never reaches anyone else and no answer from anyone else is believed.
//! The control plane starts listening only after that.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{request_response, Multiaddr, Swarm};
use libp2p_identity::{Keypair, PeerId};

use super::authority::{verify_grant, Authority, GrantInfo, GrantRules, Granted};
use super::store::AuthorityStore;
use super::{Refusal, SubnetPool};
use crate::control::config::ControlConfig;
use crate::control::swarm::{build, Behaviour, BehaviourEvent};
use crate::control::wire::protocol::{ControlRequest, ControlResponse, JoinRequest};
use crate::control::wire::records::{Delegation, SubnetGrant};
use crate::control::wire::{decode, encode, Signed};
use crate::control::{identity, ControlError};
use crate::files::write_atomic;

const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_secs(2);
const GRANT_FILE: &str = "grant";
const INCARNATION_FILE: &str = "incarnation";

/// A node that may run: it holds a grant signed by the authority.
pub struct Admitted {
    pub swarm: Swarm<Behaviour>,
    pub keypair: Keypair,
    pub authority_peer: PeerId,
    /// On the authority: its decisions and their store.
    pub authority: Option<(Authority, AuthorityStore)>,
    pub grant: Signed<SubnetGrant>,
    /// When a cluster (a delegate of the authority) admitted this node.
    pub delegation: Option<Signed<Delegation>>,
    pub info: GrantInfo,
    pub incarnation: u32,
}

/// Who this node is, for the grant.
pub struct JoinAs {
    pub name: Option<String>,
    pub wg_public_key: [u8; 32],
    pub token: Option<String>,
    /// Start a lost authority state over (`--reset-authority`).
    pub reset_authority: bool,
}

pub fn multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::from(addr.ip()).with(Protocol::Tcp(addr.port()))
}

/// The default node name: from the identity, so a fleet of `raspberrypi`s
/// never collides.
pub fn default_name(peer: &PeerId) -> String {
    let text = peer.to_base58();
    let tail: String = text.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
    format!("node-{}", tail.to_ascii_lowercase())
}

/// Admits this node by the first route that applies, then listens.
pub async fn enter(config: &ControlConfig, who: JoinAs) -> Result<Admitted, ControlError> {
    let keypair = identity::load_or_create(&config.identity_file)?;
    let local = keypair.public().to_peer_id();
    crate::files::create_private_dir(&config.state_dir).map_err(|e| ControlError::State(config.state_dir.clone(), e.to_string()))?;
    let incarnation = identity::next_incarnation(&config.state_dir.join(INCARNATION_FILE))?;
    let name = who.name.clone().unwrap_or_else(|| default_name(&local));
    if !super::authority::valid_name(&name) {
        return Err(ControlError::Config(format!(
            "node name {name:?} is not valid: one DNS label (letters, digits, inner hyphens, at most 63); set `name` in the config"
        )));
    }
    let rules = GrantRules { pool: config.pool, prefix_len: super::pool::SUBNET_PREFIX };
    let mut swarm = build(keypair.clone())?;
    let admitted = if config.admit.is_some() {
        let pool = SubnetPool::new(config.pool, super::pool::SUBNET_PREFIX)?;
        let (store, state) = AuthorityStore::open(&config.state_dir, &local, who.reset_authority)?;
        let mut authority = Authority::new(keypair.clone(), pool, state)?;
        let grant = authority
            .admit_self(&name, who.wg_public_key, super::actor::unix_now_ms())
            .map_err(|refusal| ControlError::JoinRefused { by: "this node (the authority)".into(), refusal })?;
        store.save(&authority.state())?;
        let info = verify_grant(&grant, None, &local, &local, &rules)?;
        tracing::info!(subnet = %info.subnet, %name, peer_id = %local, "admission authority: granted ourselves a subnet");
        Admitted { swarm, keypair, authority_peer: local, authority: Some((authority, store)), grant, delegation: None, info, incarnation }
    } else {
        let grant_path = config.state_dir.join(GRANT_FILE);
        let kept = load_grant(&grant_path, &local, &rules)?;
        let kept = kept.filter(|(authority, _, info)| {
            let pinned = config.pinned_authority().ok().flatten();
            let same = info.name == name && info.wg_public_key == who.wg_public_key && pinned.is_none_or(|p| p == *authority);
            if !same {
                tracing::warn!("the kept grant is for another name, tunnel key or authority: joining again");
            }
            same
        });
        match kept {
            Some((authority_peer, Granted { grant, delegation }, info)) => {
                tracing::info!(subnet = %info.subnet, authority = %authority_peer, issuer = %info.issuer, "rejoining with the grant kept from the last run");
                Admitted { swarm, keypair, authority_peer, authority: None, grant, delegation, info, incarnation }
            }
            None => {
                let authority = config.pinned_authority()?.ok_or(ControlError::NotPinned)?;
                let token = who.token.clone().unwrap_or_default();
                let request = JoinRequest { token, name: name.clone(), wg_public_key: who.wg_public_key };
                // A site's nodes join through their cluster (a delegate):
                // its grant is believed through the authority's delegation.
                let admitter = config.admitter()?.unwrap_or(authority);
                let granted = join(&mut swarm, admitter, &config.bootstrap_addrs(), request).await?;
                let info = verify_grant(&granted.grant, granted.delegation.as_ref(), &authority, &local, &rules)?;
                if info.issuer != admitter {
                    return Err(ControlError::Protocol(format!("the grant is signed by {}, not by {admitter} whom we asked", info.issuer)));
                }
                if info.name != name || info.wg_public_key != who.wg_public_key {
                    return Err(ControlError::Protocol("the authority's grant names another node name or key".into()));
                }
                save_grant(&grant_path, &authority, &granted)?;
                close(&mut swarm, admitter).await;
                tracing::info!(subnet = %info.subnet, %authority, %admitter, %name, "joined the mesh");
                let Granted { grant, delegation } = granted;
                Admitted { swarm, keypair, authority_peer: authority, authority: None, grant, delegation, info, incarnation }
            }
        }
    };
    listen(admitted, config.listen).await
}

async fn listen(mut admitted: Admitted, addr: SocketAddr) -> Result<Admitted, ControlError> {
    let swarm = &mut admitted.swarm;
    swarm.listen_on(multiaddr(addr)).map_err(|e| ControlError::Listen(addr, e.to_string()))?;
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { .. } => break,
                SwarmEvent::ListenerClosed { reason: Err(e), .. } | SwarmEvent::ListenerError { error: e, .. } => {
                    return Err(ControlError::Listen(addr, e.to_string()))
                }
                _ => {}
            },
            _ = &mut deadline => return Err(ControlError::Listen(addr, "no listener after 5 s".into())),
        }
    }
    tracing::info!(peer_id = %admitted.keypair.public().to_peer_id(), listen = %addr, "control plane listening");
    Ok(admitted)
}

/// Dials the admitter (the pinned authority, or the cluster it delegated
/// to) at every bootstrap address (the noise handshake proves who answers:
/// another peer at an address fails it) and presents the token on the
/// first connection that is really the admitter's. Nothing else is
/// listened to.
async fn join(swarm: &mut Swarm<Behaviour>, authority: PeerId, addrs: &[SocketAddr], request: JoinRequest) -> Result<Granted, ControlError> {
    if addrs.is_empty() {
        return Err(ControlError::NoBootstrap);
    }
    let started = Instant::now();
    let mut progress = tokio::time::interval(RETRY);
    let mut asked = false;
    let mut last_error = String::from("no answer");
    loop {
        tokio::select! {
            _ = progress.tick() => {
                if started.elapsed() >= JOIN_TIMEOUT {
                    return Err(ControlError::Unreachable { authority: authority.to_string(), addrs: addrs.to_vec(), last: last_error });
                }
                if !asked && !swarm.is_connected(&authority) {
                    if started.elapsed() >= RETRY {
                        tracing::info!(%authority, ?addrs, "still trying to reach the authority: {last_error}");
                    }
                    // One dial per address: libp2p's concurrent dial keeps
                    // the first connection to finish its handshake, so a
                    // foreign peer quicker than the authority at one address
                    // would fail the whole dial, every time.
                    for addr in addrs {
                        let opts = DialOpts::peer_id(authority).addresses(vec![multiaddr(*addr)]).condition(PeerCondition::Always).build();
                        if let Err(e) = swarm.dial(opts) {
                            last_error = e.to_string();
                        }
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } if peer_id == authority && endpoint.is_dialer() && !asked => {
                    asked = true;
                    tracing::info!(%authority, "connected to the authority, presenting the join token");
                    swarm.behaviour_mut().control.send_request(&authority, ControlRequest::Join(request.clone()));
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => last_error = error.to_string(),
                SwarmEvent::Behaviour(BehaviourEvent::Control(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Response { response, .. },
                    ..
                })) if peer == authority => match response {
                    ControlResponse::Joined { grant, delegation } => return Ok(Granted { grant, delegation }),
                    ControlResponse::Refused(refusal) => {
                        return Err(ControlError::JoinRefused { by: authority.to_string(), refusal });
                    }
                    ControlResponse::NotMember | ControlResponse::Page(_) => {
                        return Err(ControlError::Protocol("the authority answered the join with something else".into()));
                    }
                },
                SwarmEvent::Behaviour(BehaviourEvent::Control(request_response::Event::OutboundFailure { peer, error, .. })) if peer == authority => {
                    last_error = error.to_string();
                    asked = false;
                }
                _ => {}
            },
        }
    }
}

/// Closes the join connection: the control plane starts from no
/// connections and dials its bootstrap addresses itself, so every
/// connection it has went through its own bookkeeping.
async fn close(swarm: &mut Swarm<Behaviour>, peer: PeerId) {
    if swarm.disconnect_peer_id(peer).is_err() {
        return;
    }
    let deadline = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(deadline);
    while swarm.is_connected(&peer) {
        tokio::select! {
            _ = swarm.select_next_some() => {}
            _ = &mut deadline => break,
        }
    }
}

/// What the grant file holds: the pinned authority, the grant and (for a
/// node a cluster admitted) the delegation.
type KeptGrant = (Vec<u8>, Signed<SubnetGrant>, Option<Signed<Delegation>>);

fn load_grant(path: &Path, local: &PeerId, rules: &GrantRules) -> Result<Option<(PeerId, Granted, GrantInfo)>, ControlError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ControlError::State(path.to_owned(), e.to_string())),
    };
    let fail = |e: String| ControlError::State(path.to_owned(), format!("{e}; delete it to join afresh"));
    // Files written before delegation held (authority, grant).
    let kept: KeptGrant = match decode::<KeptGrant>(&bytes) {
        Ok(kept) => kept,
        Err(_) => decode::<(Vec<u8>, Signed<SubnetGrant>)>(&bytes).map(|(a, g)| (a, g, None)).map_err(|e| fail(e.to_string()))?,
    };
    let (authority, grant, delegation) = kept;
    let authority = PeerId::from_bytes(&authority).map_err(|e| fail(e.to_string()))?;
    let info = verify_grant(&grant, delegation.as_ref(), &authority, local, rules).map_err(|e| fail(e.to_string()))?;
    Ok(Some((authority, Granted { grant, delegation }, info)))
}

fn save_grant(path: &Path, authority: &PeerId, granted: &Granted) -> Result<(), ControlError> {
    let kept: KeptGrant = (authority.to_bytes(), granted.grant.clone(), granted.delegation.clone());
    let bytes = encode(&kept).map_err(|e| ControlError::State(path.to_owned(), e.to_string()))?;
    write_atomic(path, &bytes).map_err(|e| ControlError::State(path.to_owned(), e.to_string()))
}

impl From<Refusal> for ControlError {
    fn from(refusal: Refusal) -> ControlError {
        ControlError::JoinRefused { by: "the authority".into(), refusal }
    }
}
