//! The control plane's I/O shell: swarm events become [`Input`]s for the
//! [`ControlNode`], its [`Output`]s become swarm calls, tunnel updates and
//! directory updates. No policy lives here.
//!
//! The driver runs on the control plane's own thread and runtime
//! ([`super::spawn`]), so neither a DNS flood nor a slow API call can delay
//! probe answers; the tunnel's peer set is applied on a thread of its own
//! (it may fork `ip route`), and the authority's disk work on the
//! authority's ([`super::admission::AdmissionHandle`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns::store::MemoryDirectory;
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, PeerId, Swarm};
use overlay::{Device, PeerConfig};
use tokio::sync::{mpsc, oneshot};

use super::admission::delegate::SharedAdmission;
use super::admission::join::multiaddr;
use super::feed::FeedHub;
use super::gate::ip_of;
use super::node::{Command, CommandId, ControlNode, Done, Input, Output, ReplyId, RequestId, Verdict, TICK};
use super::projection::apply_directory;
use super::swarm::{Behaviour, BehaviourEvent, STRANGER_SCORE};
use super::view::SharedView;
use super::wire::protocol::{ControlRequest, ControlResponse, ProbeRequest, ProbeResponse, GOSSIP_TOPIC};
use super::ControlError;

/// What the API asks of the control plane.
pub enum Request {
    Command(Command, oneshot::Sender<Result<Done, ControlError>>),
    /// Leave the mesh (signed goodbye), then stop.
    Shutdown(oneshot::Sender<()>),
    /// A delegation was installed in the shared admission slot.
    Delegated,
}

/// How long a leaving node keeps its swarm running so the goodbye gets out.
const LEAVE_FLUSH: Duration = Duration::from_millis(400);
/// Gossip kept for when the first subscribed peer shows up.
const UNSENT: usize = 16;
/// The view is refreshed every this many ticks.
const VIEW_EVERY: u32 = 5;

/// Where the node's decisions land: the tunnel, the resolver, the API's
/// view and its event stream.
pub struct Sinks {
    pub device: Arc<Device>,
    pub directory: Arc<MemoryDirectory>,
    pub view: SharedView,
    pub feed: FeedHub,
}

pub struct Driver {
    swarm: Swarm<Behaviour>,
    node: ControlNode,
    topic: gossipsub::IdentTopic,
    requests: mpsc::Receiver<Request>,
    admission: SharedAdmission,
    admitted: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
    directory: Arc<MemoryDirectory>,
    peers: PeerSetter,
    view: SharedView,
    feed: FeedHub,
    control_out: HashMap<OutboundRequestId, RequestId>,
    probe_out: HashMap<OutboundRequestId, RequestId>,
    control_replies: HashMap<ReplyId, ResponseChannel<ControlResponse>>,
    probe_replies: HashMap<ReplyId, ResponseChannel<ProbeResponse>>,
    commands: HashMap<CommandId, oneshot::Sender<Result<Done, ControlError>>>,
    next_id: u64,
    unsent: Vec<Vec<u8>>,
}

impl Driver {
    pub fn new(
        mut swarm: Swarm<Behaviour>,
        node: ControlNode,
        first: Vec<Output>,
        requests: mpsc::Receiver<Request>,
        admission: SharedAdmission,
        sinks: Sinks,
    ) -> Driver {
        let Sinks { device, directory, view, feed } = sinks;
        feed.start(node.local_entry());
        let topic = gossipsub::IdentTopic::new(GOSSIP_TOPIC);
        if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&topic) {
            tracing::error!("cannot subscribe to the records topic: {e}");
        }
        let mut driver = Driver {
            swarm,
            node,
            topic,
            requests,
            admission,
            admitted: mpsc::channel(64),
            directory,
            peers: PeerSetter::spawn(device),
            view,
            feed,
            control_out: HashMap::new(),
            probe_out: HashMap::new(),
            control_replies: HashMap::new(),
            probe_replies: HashMap::new(),
            commands: HashMap::new(),
            next_id: 0,
            unsent: Vec::new(),
        };
        driver.act(first);
        driver
    }

    /// Runs until shut down (or every handle is gone); then the API's
    /// event streams end.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = tick.tick() => {
                    self.input(Input::Tick);
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(VIEW_EVERY) {
                        *self.view.write() = Some(self.node.view(Instant::now()));
                    }
                }
                Some(input) = self.admitted.1.recv() => self.input(input),
                request = self.requests.recv() => match request {
                    Some(Request::Command(command, reply)) => {
                        let id = CommandId(self.id());
                        self.commands.insert(id, reply);
                        self.input(Input::Command { id, command });
                        *self.view.write() = Some(self.node.view(Instant::now()));
                    }
                    Some(Request::Delegated) => self.input(Input::Delegated),
                    Some(Request::Shutdown(done)) => {
                        self.leave().await;
                        let _ = done.send(());
                        break;
                    }
                    None => {
                        self.leave().await;
                        break;
                    }
                },
            }
        }
        self.feed.stop();
    }

    /// Gossips a signed leave and gives it a moment to get out.
    async fn leave(&mut self) {
        let id = CommandId(self.id());
        self.input(Input::Command { id, command: Command::Leave });
        let deadline = tokio::time::sleep(LEAVE_FLUSH);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = &mut deadline => break,
            }
        }
        tracing::info!("left the mesh");
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn input(&mut self, input: Input) {
        let outputs = self.node.handle(input, Instant::now());
        self.act(outputs);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                self.input(Input::Gossip { source: propagation_source, id: message_id.0, data: message.data });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { .. })) => self.retry_unsent(),
            SwarmEvent::Behaviour(BehaviourEvent::Control(event)) => self.on_control(event),
            SwarmEvent::Behaviour(BehaviourEvent::Probe(event)) => self.on_probe(event),
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } if num_established.get() == 1 => {
                let ip = ip_of(endpoint.get_remote_address());
                match ip {
                    Some(ip) => self.input(Input::Connected { peer: peer_id, ip, dialer: endpoint.is_dialer() }),
                    None => {
                        let _ = self.swarm.disconnect_peer_id(peer_id);
                    }
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => self.input(Input::Disconnected { peer: peer_id }),
            SwarmEvent::IncomingConnectionError { error, send_back_addr, .. } => {
                tracing::debug!(from = %send_back_addr, "inbound connection refused: {error}");
            }
            _ => {}
        }
    }

    fn on_control(&mut self, event: request_response::Event<ControlRequest, ControlResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let reply = ReplyId(self.id());
                    self.control_replies.insert(reply, channel);
                    self.input(Input::ControlRequest { from: peer, request, reply });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(id) = self.control_out.remove(&request_id) {
                        self.input(Input::ControlResponse { from: peer, id, response });
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                tracing::debug!(%peer, "control request failed: {error}");
                if let Some(id) = self.control_out.remove(&request_id) {
                    self.input(Input::Failed { id });
                }
            }
            _ => {}
        }
    }

    fn on_probe(&mut self, event: request_response::Event<ProbeRequest, ProbeResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let reply = ReplyId(self.id());
                    self.probe_replies.insert(reply, channel);
                    self.input(Input::ProbeRequest { from: peer, request, reply });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(id) = self.probe_out.remove(&request_id) {
                        self.input(Input::ProbeResponse { from: peer, id, response });
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, .. } => {
                if let Some(id) = self.probe_out.remove(&request_id) {
                    self.input(Input::Failed { id });
                }
            }
            _ => {}
        }
    }

    /// Carries out what the node decided.
    fn act(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Publish(bytes) => self.publish(bytes),
                Output::Verdict { id, source, verdict } => {
                    let acceptance = match verdict {
                        Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                        Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                        Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    };
                    let id = gossipsub::MessageId(id);
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &source, acceptance);
                }
                Output::Control { to, id, request } => {
                    let out = self.swarm.behaviour_mut().control.send_request(&to, request);
                    self.control_out.insert(out, id);
                }
                Output::Probe { to, id, request } => {
                    let out = self.swarm.behaviour_mut().probe.send_request(&to, request);
                    self.probe_out.insert(out, id);
                }
                Output::ReplyControl { reply, response } => {
                    if let Some(channel) = self.control_replies.remove(&reply) {
                        if self.swarm.behaviour_mut().control.send_response(channel, response).is_err() {
                            tracing::debug!("control answer dropped: connection gone");
                        }
                    }
                }
                Output::ReplyProbe { reply, response } => {
                    if let Some(channel) = self.probe_replies.remove(&reply) {
                        let _ = self.swarm.behaviour_mut().probe.send_response(channel, response);
                    }
                }
                Output::Admit { reply, peer, request } => self.admit(reply, peer, request),
                Output::Dial { peer, addrs } => {
                    let opts = DialOpts::peer_id(peer)
                        .addresses(addrs.into_iter().map(multiaddr).collect())
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::debug!(%peer, "dial: {e}");
                    }
                }
                Output::DialAddress(addr) => {
                    if let Err(e) = self.swarm.dial(multiaddr(addr)) {
                        tracing::debug!(%addr, "dial: {e}");
                    }
                }
                Output::Disconnect(peer) => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Output::Trust { peer, member } => {
                    let score = if member { 0.0 } else { STRANGER_SCORE };
                    self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, score);
                }
                Output::Peers(peers) => self.peers.set(peers),
                Output::Directory(ops) => apply_directory(&self.directory, ops),
                Output::Members(changes) => self.feed.publish(changes),
                Output::Done { id, result } => {
                    if let Some(reply) = self.commands.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        // Channels of requests the node chose not to answer would pile up.
        self.control_replies.retain(|_, c| c.is_open());
        self.probe_replies.retain(|_, c| c.is_open());
    }

    /// Joins go to the authority's thread; its answer comes back as an input.
    fn admit(&mut self, reply: ReplyId, peer: PeerId, request: super::wire::protocol::JoinRequest) {
        let Some(admission) = self.admission.read().clone() else {
            self.input(Input::Admitted { reply, result: Err(super::admission::Refusal::NotAuthority) });
            return;
        };
        let back = self.admitted.0.clone();
        tokio::spawn(async move {
            let result = admission.admit(peer, request, super::admission::actor::unix_now_ms()).await;
            let _ = back.send(Input::Admitted { reply, result }).await;
        });
    }

    /// Gossips `bytes`; if no subscribed peer is known yet (just joined,
    /// or alone), keeps it and retries when a peer subscribes.
    fn publish(&mut self, bytes: Vec<u8>) {
        match self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), bytes.clone()) {
            Ok(_) => {}
            Err(gossipsub::PublishError::Duplicate) => {}
            Err(e) => {
                tracing::debug!("gossip not sent yet: {e}");
                if self.unsent.len() < UNSENT {
                    self.unsent.push(bytes);
                }
            }
        }
    }

    fn retry_unsent(&mut self) {
        for bytes in std::mem::take(&mut self.unsent) {
            self.publish(bytes);
        }
    }
}

/// Applies tunnel peer sets on a thread of its own, latest first: adding a
/// route may fork `ip`, which must not stall the control plane.
struct PeerSetter {
    sender: Option<std::sync::mpsc::Sender<Vec<PeerConfig>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeerSetter {
    fn spawn(device: Arc<Device>) -> PeerSetter {
        let (sender, receiver) = std::sync::mpsc::channel::<Vec<PeerConfig>>();
        let spawned = std::thread::Builder::new().name("grove-peers".into()).spawn(move || {
            while let Ok(mut peers) = receiver.recv() {
                while let Ok(newer) = receiver.try_recv() {
                    peers = newer;
                }
                match device.set_peers(&peers) {
                    Ok(()) => tracing::info!(peers = peers.len(), "tunnel peer set updated from membership"),
                    Err(e) => tracing::error!("tunnel peer set not updated: {e}"),
                }
            }
        });
        let thread = match spawned {
            Ok(thread) => Some(thread),
            Err(e) => {
                tracing::error!("cannot start the tunnel peer thread: {e}");
                None
            }
        };
        PeerSetter { sender: Some(sender), thread }
    }

    fn set(&self, peers: Vec<PeerConfig>) {
        if self.sender.as_ref().is_none_or(|s| s.send(peers).is_err()) {
            tracing::error!("tunnel peer thread is gone; peer set not updated");
        }
    }
}

impl Drop for PeerSetter {
    /// Lets go of the device before the daemon shuts it down.
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
