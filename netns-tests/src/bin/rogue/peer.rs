//! The rogue's swarm: the members' own behaviour (so every protocol name
//! and the gossip configuration match), driven by hand. Whatever a member
//! asks of it (`Sync`, `Join`) is answered from the poison it was given.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, Message};
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, PeerId, Swarm};
use libp2p_identity::Keypair;
use netmanager::control::admit::multiaddr;
use netmanager::control::protocol::{ControlRequest, ControlResponse, ProbeResponse, State, GOSSIP_TOPIC};
use netmanager::control::swarm::{build, Behaviour, BehaviourEvent};
use netmanager::control::vivaldi::Coordinate;
use tokio::time::Instant;

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Rogue {
    swarm: Swarm<Behaviour>,
    pub peer_id: PeerId,
    /// Served to every member that syncs with us.
    poison: State,
    /// Sync requests answered with the poison.
    pub served: usize,
    topic: gossipsub::IdentTopic,
}

type Event = SwarmEvent<BehaviourEvent>;

impl Rogue {
    pub fn new(poison: State) -> anyhow::Result<Rogue> {
        Rogue::with_keypair(Keypair::generate_ed25519(), poison)
    }

    pub fn with_keypair(keypair: Keypair, poison: State) -> anyhow::Result<Rogue> {
        let peer_id = keypair.public().to_peer_id();
        let swarm = build(keypair).context("building the swarm")?;
        Ok(Rogue { swarm, peer_id, poison, served: 0, topic: gossipsub::IdentTopic::new(GOSSIP_TOPIC) })
    }

    /// Dials a member's control address; returns its PeerId.
    pub async fn connect(&mut self, addr: SocketAddr) -> anyhow::Result<PeerId> {
        self.swarm.dial(multiaddr(addr)).with_context(|| format!("dialing {addr}"))?;
        let what = format!("a connection to {addr}");
        self.until(&what, |event| match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => Some(Ok(*peer_id)),
            SwarmEvent::OutgoingConnectionError { error, .. } => Some(Err(anyhow!("dialing {addr}: {error}"))),
            _ => None,
        })
        .await?
    }

    /// `ControlRequest::Sync` to `member`: every record it holds.
    pub async fn sync(&mut self, member: PeerId) -> anyhow::Result<State> {
        self.swarm.behaviour_mut().control.send_request(&member, ControlRequest::Sync);
        self.until("a sync answer", |event| match event {
            SwarmEvent::Behaviour(BehaviourEvent::Control(request_response::Event::Message {
                message: Message::Response { response, .. },
                ..
            })) => Some(match response {
                ControlResponse::State(state) => Ok(state.clone()),
                other => Err(anyhow!("sync answered with {other:?}")),
            }),
            SwarmEvent::Behaviour(BehaviourEvent::Control(request_response::Event::OutboundFailure {
                error, ..
            })) => Some(Err(anyhow!("sync failed: {error}"))),
            _ => None,
        })
        .await?
    }

    pub fn subscribe(&mut self) -> anyhow::Result<()> {
        self.swarm.behaviour_mut().gossipsub.subscribe(&self.topic).map_err(|e| anyhow!("subscribe: {e}"))?;
        Ok(())
    }

    /// Until `member` tells us it is subscribed to the records topic.
    pub async fn wait_subscribed(&mut self, member: PeerId) -> anyhow::Result<()> {
        let hash = self.topic.hash();
        self.until("the member's subscription to the records topic", |event| match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }))
                if *peer_id == member && *topic == hash =>
            {
                Some(())
            }
            _ => None,
        })
        .await
    }

    pub fn publish(&mut self, payload: Vec<u8>) -> Result<(), String> {
        let topic = self.topic.clone();
        self.swarm.behaviour_mut().gossipsub.publish(topic, payload).map(drop).map_err(|e| e.to_string())
    }

    /// Keeps the connection serviced (and syncs answered) for `duration`.
    pub async fn pump(&mut self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
            self.serve(event);
        }
    }

    /// Drives the swarm until `pick` returns a value ([`STEP_TIMEOUT`]).
    async fn until<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> anyhow::Result<T> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let Ok(event) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await else {
                bail!("no {what} within {STEP_TIMEOUT:?}");
            };
            if let Some(event) = self.serve(event) {
                if let Some(value) = pick(&event) {
                    return Ok(value);
                }
            }
        }
    }

    /// Answers requests from members; hands every other event back.
    fn serve(&mut self, event: Event) -> Option<Event> {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Control(request_response::Event::Message {
                message: Message::Request { request, channel, .. },
                ..
            })) => {
                let response = match request {
                    ControlRequest::Sync => {
                        self.served += 1;
                        ControlResponse::State(self.poison.clone())
                    }
                    ControlRequest::Join { .. } => ControlResponse::Refused { reason: "not an authority".into() },
                };
                let _ = self.swarm.behaviour_mut().control.send_response(channel, response);
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Probe(request_response::Event::Message {
                message: Message::Request { channel, .. },
                ..
            })) => {
                let answer = ProbeResponse { coordinate: Coordinate::origin(), version: u64::MAX };
                let _ = self.swarm.behaviour_mut().probe.send_response(channel, answer);
                None
            }
            other => Some(other),
        }
    }
}
