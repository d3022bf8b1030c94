//! The rogue's swarm: the members' own behaviour
//! (`netmanager::control::swarm::build`: gate, limits, identify, gossipsub
//! with validation, control and probe request-response), so every protocol
//! name, limit and gossip setting matches, driven by hand. Whatever a peer
//! asks of it is answered by its [`Policy`]; what it sees is counted in
//! [`Seen`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, Message, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{gossipsub, PeerId, Swarm};
use libp2p_identity::Keypair;
use netmanager::control::admission::join::multiaddr;
use netmanager::control::admission::Refusal;
use netmanager::control::swarm::{build, Behaviour, BehaviourEvent};
use netmanager::control::vivaldi::Coordinate;
use netmanager::control::wire::decode;
use netmanager::control::wire::protocol::{ControlRequest, ControlResponse, Page, ProbeRequest, ProbeResponse, GOSSIP_TOPIC};
use netmanager::control::wire::records::Gossip;
use serde::Serialize;

use crate::forge;

/// How the rogue answers what others ask of it.
pub enum SyncAnswer {
    NotMember,
    Page(Box<Page>),
}

pub enum JoinAnswer {
    NotAuthority,
    /// A grant the rogue signs itself (F1: a fake authority).
    SelfGrant,
}

pub enum ProbeAnswer {
    NotMember,
    /// Answer like a member; `PingReq`s are really tried.
    Ack {
        version: u64,
    },
}

pub struct Policy {
    pub sync: SyncAnswer,
    pub join: JoinAnswer,
    pub probe: ProbeAnswer,
}

impl Policy {
    pub fn stranger() -> Policy {
        Policy {
            sync: SyncAnswer::NotMember,
            join: JoinAnswer::NotAuthority,
            probe: ProbeAnswer::NotMember,
        }
    }
}

/// What the rogue saw.
#[derive(Default, Serialize)]
pub struct Seen {
    pub connections_in: usize,
    pub connections_out: usize,
    pub syncs_received: usize,
    pub joins_received: usize,
    /// Length of every token presented to us (never the token itself).
    pub tokens_seen: Vec<usize>,
    pub pings_received: usize,
    pub pingreqs_received: usize,
    pub gossip_received: usize,
}

type Event = SwarmEvent<BehaviourEvent>;

pub struct Peer {
    pub swarm: Swarm<Behaviour>,
    pub keypair: Keypair,
    pub id: PeerId,
    pub policy: Policy,
    pub seen: Seen,
    /// Gossip received (decodable only), with who forwarded it.
    pub inbox: Vec<(PeerId, Gossip)>,
    /// When each open connection's peer connected.
    pub connected: HashMap<PeerId, Instant>,
    /// Closed connections: peer and how long they had lasted.
    pub closed: Vec<(PeerId, Duration)>,
    topic: gossipsub::IdentTopic,
    dials: HashMap<ConnectionId, Option<Result<PeerId, String>>>,
    control_done: HashMap<OutboundRequestId, Result<ControlResponse, String>>,
    probe_done: HashMap<OutboundRequestId, Result<ProbeResponse, String>>,
    /// Our pings made for someone's `PingReq`.
    relays: HashMap<OutboundRequestId, ResponseChannel<ProbeResponse>>,
}

impl Peer {
    pub fn new(keypair: Keypair, policy: Policy) -> anyhow::Result<Peer> {
        let id = keypair.public().to_peer_id();
        let swarm = build(keypair.clone()).context("building the swarm")?;
        Ok(Peer {
            swarm,
            keypair,
            id,
            policy,
            seen: Seen::default(),
            inbox: Vec::new(),
            connected: HashMap::new(),
            closed: Vec::new(),
            topic: gossipsub::IdentTopic::new(GOSSIP_TOPIC),
            dials: HashMap::new(),
            control_done: HashMap::new(),
            probe_done: HashMap::new(),
            relays: HashMap::new(),
        })
    }

    /// Listens on `addr` and waits until the listener is up.
    pub async fn listen(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        self.swarm
            .listen_on(multiaddr(addr))
            .with_context(|| format!("listening on {addr}"))?;
        let up = self
            .wait_for(Duration::from_secs(5), |me| me.swarm.listeners().next().map(drop))
            .await;
        up.ok_or_else(|| anyhow!("no listener on {addr} after 5 s"))
    }

    /// Dials `addr` (any peer id) and returns who answered.
    pub async fn connect(&mut self, addr: SocketAddr, timeout: Duration) -> Result<PeerId, String> {
        let opts = DialOpts::unknown_peer_id().address(multiaddr(addr)).build();
        self.dial(opts, timeout).await
    }

    /// Dials `addr` and checks that the pinned `authority` answered there.
    pub async fn connect_authority(&mut self, addr: SocketAddr, authority: PeerId) -> anyhow::Result<PeerId> {
        let answered = self.connect(addr, Duration::from_secs(10)).await.map_err(|e| anyhow!("connecting to {addr}: {e}"))?;
        if answered != authority {
            return Err(anyhow!("{addr} is {answered}, not the authority {authority}"));
        }
        Ok(answered)
    }

    /// Dials `peer` at `addrs` unless already connected.
    pub async fn connect_peer(&mut self, peer: PeerId, addrs: &[SocketAddr], timeout: Duration) -> Result<PeerId, String> {
        if self.swarm.is_connected(&peer) {
            return Ok(peer);
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs.iter().map(|a| multiaddr(*a)).collect())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        self.dial(opts, timeout).await
    }

    async fn dial(&mut self, opts: DialOpts, timeout: Duration) -> Result<PeerId, String> {
        let id = opts.connection_id();
        self.swarm.dial(opts).map_err(|e| e.to_string())?;
        self.dials.insert(id, None);
        let done = self.wait_for(timeout, |me| me.dials.get(&id).and_then(|d| d.clone())).await;
        self.dials.remove(&id);
        done.unwrap_or_else(|| Err(format!("no connection within {timeout:?}")))
    }

    /// Sends a control request and waits for its answer.
    pub async fn control(&mut self, peer: PeerId, request: ControlRequest, timeout: Duration) -> Result<ControlResponse, String> {
        let id = self.swarm.behaviour_mut().control.send_request(&peer, request);
        self.wait_for(timeout, |me| me.control_done.remove(&id))
            .await
            .unwrap_or_else(|| Err("no answer in time".into()))
    }

    /// Sends a probe and waits for its answer.
    pub async fn probe(&mut self, peer: PeerId, request: ProbeRequest, timeout: Duration) -> Result<ProbeResponse, String> {
        let id = self.swarm.behaviour_mut().probe.send_request(&peer, request);
        self.wait_for(timeout, |me| me.probe_done.remove(&id))
            .await
            .unwrap_or_else(|| Err("no answer in time".into()))
    }

    /// Sends a control request without waiting; see [`Peer::take_control`].
    pub fn send_control(&mut self, peer: PeerId, request: ControlRequest) -> OutboundRequestId {
        self.swarm.behaviour_mut().control.send_request(&peer, request)
    }

    pub fn take_control(&mut self, id: &OutboundRequestId) -> Option<Result<ControlResponse, String>> {
        self.control_done.remove(id)
    }

    pub fn subscribe(&mut self) -> anyhow::Result<()> {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&self.topic)
            .map_err(|e| anyhow!("subscribe: {e}"))?;
        Ok(())
    }

    /// Says "subscribed" again: a member ignores a stranger's RPCs, the
    /// first subscription included, until it holds it for a member.
    pub fn resubscribe(&mut self) -> anyhow::Result<()> {
        self.swarm.behaviour_mut().gossipsub.unsubscribe(&self.topic);
        self.subscribe()
    }

    pub fn publish(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        let topic = self.topic.clone();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, bytes)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Keeps every connection serviced for `duration`.
    pub async fn pump(&mut self, duration: Duration) {
        self.wait_for(duration, |_| None::<()>).await;
    }

    /// Drives the swarm (answering by the policy) until `check` gives a
    /// value, or `timeout`.
    pub async fn wait_for<T>(&mut self, timeout: Duration, mut check: impl FnMut(&mut Peer) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return Some(value);
            }
            let event = match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(event) => event,
                Err(_) => return check(self),
            };
            self.handle(event);
        }
    }

    /// Answers requests by the policy and records what happened.
    fn handle(&mut self, event: Event) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if endpoint.is_dialer() {
                    self.seen.connections_out += 1;
                } else {
                    self.seen.connections_in += 1;
                }
                if num_established.get() == 1 {
                    self.connected.insert(peer_id, Instant::now());
                }
                if let Some(slot) = self.dials.get_mut(&connection_id) {
                    *slot = Some(Ok(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                if let Some(since) = self.connected.remove(&peer_id) {
                    self.closed.push((peer_id, since.elapsed()));
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                if let Some(slot) = self.dials.get_mut(&connection_id) {
                    *slot = Some(Err(error.to_string()));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.seen.gossip_received += 1;
                if let Ok(g) = decode::<Gossip>(&message.data) {
                    self.inbox.push((propagation_source, g));
                }
                // Not ours to forward.
                let _ = self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Ignore,
                );
            }
            SwarmEvent::Behaviour(BehaviourEvent::Control(event)) => self.on_control(event),
            SwarmEvent::Behaviour(BehaviourEvent::Probe(event)) => self.on_probe(event),
            _ => {}
        }
    }

    fn on_control(&mut self, event: request_response::Event<ControlRequest, ControlResponse>) {
        match event {
            request_response::Event::Message {
                peer,
                message: Message::Request { request, channel, .. },
                ..
            } => {
                let response = match request {
                    ControlRequest::Sync(_) => {
                        self.seen.syncs_received += 1;
                        match &self.policy.sync {
                            SyncAnswer::NotMember => ControlResponse::NotMember,
                            SyncAnswer::Page(page) => ControlResponse::Page((**page).clone()),
                        }
                    }
                    ControlRequest::Join(join) => {
                        self.seen.joins_received += 1;
                        self.seen.tokens_seen.push(join.token.len());
                        match self.policy.join {
                            JoinAnswer::NotAuthority => ControlResponse::Refused(Refusal::NotAuthority),
                            JoinAnswer::SelfGrant => {
                                match forge::self_grant(&self.keypair, &peer, &join.name, forge::far_subnet(), join.wg_public_key) {
                                    Ok(grant) => ControlResponse::Joined { grant, delegation: None },
                                    Err(_) => ControlResponse::Refused(Refusal::Unavailable),
                                }
                            }
                        }
                    }
                };
                let _ = self.swarm.behaviour_mut().control.send_response(channel, response);
            }
            request_response::Event::Message {
                message: Message::Response { request_id, response },
                ..
            } => {
                self.control_done.insert(request_id, Ok(response));
            }
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                self.control_done.insert(request_id, Err(error.to_string()));
            }
            _ => {}
        }
    }

    fn on_probe(&mut self, event: request_response::Event<ProbeRequest, ProbeResponse>) {
        match event {
            request_response::Event::Message {
                message: Message::Request { request, channel, .. },
                ..
            } => {
                let version = match self.policy.probe {
                    ProbeAnswer::NotMember => {
                        let _ = self.swarm.behaviour_mut().probe.send_response(channel, ProbeResponse::NotMember);
                        return;
                    }
                    ProbeAnswer::Ack { version } => version,
                };
                match request {
                    ProbeRequest::Ping { .. } => {
                        self.seen.pings_received += 1;
                        let ack = ProbeResponse::Ack {
                            coordinate: Coordinate::origin(),
                            version,
                        };
                        let _ = self.swarm.behaviour_mut().probe.send_response(channel, ack);
                    }
                    ProbeRequest::PingReq { target } => {
                        self.seen.pingreqs_received += 1;
                        match PeerId::from_bytes(&target) {
                            Ok(target) if self.swarm.is_connected(&target) => {
                                let ping = ProbeRequest::Ping {
                                    coordinate: Coordinate::origin(),
                                    suspected: false,
                                };
                                let id = self.swarm.behaviour_mut().probe.send_request(&target, ping);
                                self.relays.insert(id, channel);
                            }
                            _ => {
                                let _ = self
                                    .swarm
                                    .behaviour_mut()
                                    .probe
                                    .send_response(channel, ProbeResponse::Indirect { reached: false });
                            }
                        }
                    }
                }
            }
            request_response::Event::Message {
                message: Message::Response { request_id, response },
                ..
            } => {
                if let Some(channel) = self.relays.remove(&request_id) {
                    let reached = matches!(response, ProbeResponse::Ack { .. });
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .probe
                        .send_response(channel, ProbeResponse::Indirect { reached });
                } else {
                    self.probe_done.insert(request_id, Ok(response));
                }
            }
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(channel) = self.relays.remove(&request_id) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .probe
                        .send_response(channel, ProbeResponse::Indirect { reached: false });
                } else {
                    self.probe_done.insert(request_id, Err(error.to_string()));
                }
            }
            _ => {}
        }
    }
}

/// The short name of a control answer, for reports.
pub fn answer_kind(answer: &Result<ControlResponse, String>) -> String {
    match answer {
        Ok(ControlResponse::Joined { .. }) => "Joined".into(),
        Ok(ControlResponse::Refused(r)) => format!("Refused({r:?})"),
        Ok(ControlResponse::Page(p)) => format!("Page(nodes={})", p.nodes.len()),
        Ok(ControlResponse::NotMember) => "NotMember".into(),
        Err(e) => format!("failed: {e}"),
    }
}

pub fn probe_kind(answer: &Result<ProbeResponse, String>) -> String {
    match answer {
        Ok(ProbeResponse::Ack { .. }) => "Ack".into(),
        Ok(ProbeResponse::Indirect { reached }) => format!("Indirect(reached={reached})"),
        Ok(ProbeResponse::NotMember) => "NotMember".into(),
        Err(e) => format!("failed: {e}"),
    }
}

/// The address this host sends from towards `peer` (a connected UDP
/// socket learns it without sending anything).
pub fn source_ip(peer: SocketAddr) -> anyhow::Result<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").context("udp socket")?;
    socket.connect(peer).with_context(|| format!("no route to {peer}"))?;
    Ok(socket.local_addr().context("local address")?.ip())
}
