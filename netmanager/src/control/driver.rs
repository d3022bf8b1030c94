//! The control plane's event loop: gossip and sync in, probes out, and
//! after every change the tunnel's peer set and the resolver's directory
//! re-derived from the membership ([`super::project`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns::store::MemoryDirectory;
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, Swarm};
use libp2p_identity::{Keypair, PeerId};
use overlay::Device;
use tokio::sync::{mpsc, oneshot};

use super::admission::Authority;
use super::admit::{multiaddr, Admitted};
use super::latency::{Explorer, RttTracker};
use super::membership::{Change, Liveness, Membership};
use super::project::{self, Projection};
use super::protocol::{ControlRequest, ControlResponse, ProbeRequest, ProbeResponse, State, GOSSIP_TOPIC};
use super::records::{decode, encode, Gossip, InstanceEntry, InstanceSet, NodeRecord};
use super::signed::{RecordKind, Signed};
use super::swarm::{Behaviour, BehaviourEvent};
use super::view::SharedView;
use super::vivaldi::{Coordinate, Vivaldi, VivaldiConfig};
use super::{now_unix_ms, InstanceKey, LocalNode};

/// Watch-set probes go out this often; with the 800 ms probe timeout a
/// death is suspected within ~1.2 s.
const PROBE_INTERVAL: Duration = Duration::from_millis(400);
/// Each node is watched by this many others.
const WATCHERS: usize = 3;
/// Members whose instances `closest` may pick, probed for real RTTs.
const CANDIDATES: usize = 8;
/// The record is re-signed with a fresh coordinate at most this often, when
/// the coordinate moved more than [`REPUBLISH_MOVE`] (members that probe us
/// get our coordinate in every probe anyway)…
const REPUBLISH_MIN: Duration = Duration::from_secs(30);
const REPUBLISH_MOVE: Duration = Duration::from_millis(5);
/// …and at least this often (anti-entropy; sync on connect does the rest).
const REPUBLISH_MAX: Duration = Duration::from_secs(300);
/// Refutations (re-signed records) at most this often.
const REFUTE_INTERVAL: Duration = Duration::from_secs(1);
/// Dead members are re-dialled this often, so a healed partition is seen.
const REDIAL_DEAD: Duration = Duration::from_secs(5);

pub enum Command {
    Register(Vec<InstanceEntry>, oneshot::Sender<Result<(), String>>),
    Deregister(InstanceKey, oneshot::Sender<Result<InstanceEntry, String>>),
}

pub struct Driver {
    swarm: Swarm<Behaviour>,
    keypair: Keypair,
    membership: Membership,
    authority: Option<Authority>,
    local: LocalNode,
    vivaldi: Vivaldi<PeerId>,
    rtts: RttTracker,
    explorer: Explorer,
    coords: HashMap<PeerId, Coordinate>,
    probes: HashMap<OutboundRequestId, (PeerId, Instant)>,
    probing: HashSet<PeerId>,
    redialed: HashMap<PeerId, Instant>,
    synced: HashMap<PeerId, Instant>,
    topic: gossipsub::IdentTopic,
    projection: Projection,
    view: SharedView,
    commands: mpsc::Receiver<Command>,
    last_published: Instant,
    published_coordinate: Coordinate,
    /// A refutation waits for [`REFUTE_INTERVAL`].
    refute_pending: bool,
    /// Gossip published before any subscribed peer was known.
    unsent: Vec<Vec<u8>>,
    dirty: bool,
}

impl Driver {
    pub fn new(
        admitted: Admitted,
        local: LocalNode,
        device: Arc<Device>,
        directory: Arc<MemoryDirectory>,
        view: SharedView,
        commands: mpsc::Receiver<Command>,
    ) -> Driver {
        let Admitted { mut swarm, keypair, authority, authority_peer, state, .. } = admitted;
        let topic = gossipsub::IdentTopic::new(GOSSIP_TOPIC);
        if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&topic) {
            tracing::error!("cannot subscribe to the records topic: {e}");
        }
        let local_peer = keypair.public().to_peer_id();
        // Seeded per node, so coinciding coordinates split in different
        // directions on different nodes.
        let seed = local_peer.to_bytes().iter().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(*b));
        let vivaldi = Vivaldi::new(VivaldiConfig { seed, ..VivaldiConfig::default() });
        let published_coordinate = vivaldi.coordinate();
        let mut driver = Driver {
            swarm,
            membership: Membership::new(local_peer, authority_peer),
            keypair,
            authority,
            local,
            vivaldi,
            rtts: RttTracker::default(),
            explorer: Explorer::default(),
            coords: HashMap::new(),
            probes: HashMap::new(),
            probing: HashSet::new(),
            redialed: HashMap::new(),
            synced: HashMap::new(),
            topic,
            projection: Projection::new(device, directory),
            view,
            commands,
            last_published: Instant::now(),
            published_coordinate,
            refute_pending: false,
            unsent: Vec::new(),
            dirty: true,
        };
        driver.publish_record();
        driver.publish_instances();
        driver.apply_state(state);
        // The connection used to join was made before this driver existed,
        // so its "sync on connect" never ran: pull the authority's state now
        // (it may have admitted others since answering our join).
        let connected: Vec<PeerId> = driver.swarm.connected_peers().copied().collect();
        for peer in connected {
            driver.sync_with(peer);
        }
        driver
    }

    /// Runs until the command channel closes (netmanager shutting down).
    pub async fn run(mut self) {
        let mut probe_tick = tokio::time::interval(PROBE_INTERVAL);
        probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = probe_tick.tick() => self.probe_round(),
                _ = housekeeping.tick() => self.housekeeping(),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
            }
            if self.dirty {
                self.dirty = false;
                self.projection.apply(&self.membership);
                self.refresh_view();
            }
        }
    }

    fn local_peer(&self) -> PeerId {
        *self.membership.local()
    }

    // ----- swarm events -------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                match decode::<Gossip>(&message.data) {
                    Ok(gossip) => self.on_gossip(gossip),
                    Err(e) => tracing::warn!(from = ?message.source, "dropped gossip: {e}"),
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { .. })) => {
                // Our first record may have been published before the
                // connection that carried the join learnt the authority's
                // subscription.
                self.retry_unsent();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Control(event)) => self.on_control(event),
            SwarmEvent::Behaviour(BehaviourEvent::Probe(event)) => self.on_probe(event),
            SwarmEvent::ConnectionEstablished { peer_id, num_established, .. } => {
                self.redialed.remove(&peer_id);
                if num_established.get() == 1 {
                    self.sync_with(peer_id);
                }
            }
            // A closed connection to a watched node is worth an immediate
            // probe: a dead process refuses the redial at once.
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                if self.membership.watch_targets(WATCHERS).contains(&peer_id) && !self.probing.contains(&peer_id) =>
            {
                self.send_probe(peer_id);
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, gossip: Gossip) {
        let now = Instant::now();
        match gossip {
            Gossip::Node(signed) => self.apply_node(&signed),
            Gossip::Instances(signed) => self.apply_instances(&signed),
            Gossip::Suspect(signed) => match self.membership.apply_suspicion(&signed, now) {
                Ok(change) => self.on_change(change),
                Err(e) => log_rejection("suspicion", signed.signer().ok(), &e),
            },
        }
    }

    fn apply_node(&mut self, signed: &Signed<NodeRecord>) {
        match self.membership.apply_node(signed) {
            Ok(change) => {
                if let Change::Joined(peer) | Change::Revived(peer) | Change::Updated(peer) = &change {
                    let peer = *peer;
                    if let Some(member) = self.membership.get(&peer) {
                        self.coords.insert(peer, member.record.coordinate);
                        for addr in member.record.control.clone() {
                            self.swarm.add_peer_address(peer, multiaddr(addr));
                        }
                    }
                    if let Some(pending) = self.membership.take_pending(&peer) {
                        self.apply_instances(&pending);
                    }
                }
                self.on_change(change);
            }
            Err(e) => log_rejection("node record", signed.signer().ok(), &e),
        }
    }

    fn apply_instances(&mut self, signed: &Signed<InstanceSet>) {
        match self.membership.apply_instances(signed) {
            Ok(change) => self.on_change(change),
            Err(e) => log_rejection("instance record", signed.signer().ok(), &e),
        }
    }

    fn on_change(&mut self, change: Change) {
        let name = |d: &Driver, p: &PeerId| d.membership.get(p).map(|m| m.record.name.clone()).unwrap_or_default();
        match &change {
            Change::None => return,
            Change::Joined(p) => tracing::info!(member = %name(self, p), peer = %p, "member joined"),
            Change::Revived(p) => tracing::info!(member = %name(self, p), "member is back"),
            Change::Suspected(p) => tracing::warn!(member = %name(self, p), "member suspected (not answering probes)"),
            Change::Died(p) => {
                tracing::warn!(member = %name(self, p), "member declared dead: its instances leave the answers");
                self.rtts.forget(p);
                self.vivaldi.forget(p);
            }
            Change::Refute => {
                // Every watcher's probe says "suspected" until our newer
                // record reaches it; one refutation per interval is enough,
                // and more would feed an overload that caused the suspicion.
                if self.last_published.elapsed() >= REFUTE_INTERVAL {
                    tracing::info!("suspected by a watcher: refuting with a newer record");
                    self.publish_record();
                } else {
                    self.refute_pending = true;
                }
                return;
            }
            Change::Updated(_) | Change::Instances(_) => {}
        }
        self.dirty = true;
    }

    fn apply_state(&mut self, state: State) {
        for signed in &state.nodes {
            self.apply_node(signed);
        }
        for signed in &state.instances {
            self.apply_instances(signed);
        }
        let local = self.local_peer().to_bytes();
        if state.accusations.iter().any(|(peer, version)| *peer == local && *version >= self.local.version) {
            self.on_change(Change::Refute);
        }
    }

    // ----- control protocol ---------------------------------------------

    fn sync_with(&mut self, peer: PeerId) {
        self.synced.insert(peer, Instant::now());
        self.swarm.behaviour_mut().control.send_request(&peer, ControlRequest::Sync);
    }

    fn state(&self) -> State {
        let (nodes, instances) = self.membership.records();
        let accusations = self.membership.accusations().into_iter().map(|(p, v)| (p.to_bytes(), v)).collect();
        State { nodes, instances, accusations }
    }

    fn on_control(&mut self, event: request_response::Event<ControlRequest, ControlResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let response = match request {
                        ControlRequest::Sync => ControlResponse::State(self.state()),
                        ControlRequest::Join { token } => self.admit(peer, &token),
                    };
                    if self.swarm.behaviour_mut().control.send_response(channel, response).is_err() {
                        tracing::debug!(%peer, "control answer dropped: connection gone");
                    }
                }
                request_response::Message::Response { response: ControlResponse::State(state), .. } => self.apply_state(state),
                request_response::Message::Response { .. } => {}
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "sync failed: {error}");
            }
            _ => {}
        }
    }

    fn admit(&mut self, peer: PeerId, token: &str) -> ControlResponse {
        let Some(authority) = self.authority.as_mut() else {
            return ControlResponse::Refused {
                reason: format!("{} does not admit members; join through the node started with --admit", self.local.name),
            };
        };
        if token.is_empty() {
            tracing::warn!(%peer, "refused a join without a token");
            return ControlResponse::Refused {
                reason: "no join token presented: set `join_token` in [control] or pass --join-token".into(),
            };
        }
        match authority.admit(&peer, token, now_unix_ms()) {
            Ok(grant) => {
                tracing::info!(%peer, "admitted a node");
                ControlResponse::Joined { grant, authority: self.local_peer().to_bytes(), state: self.state() }
            }
            Err(e) => {
                tracing::warn!(%peer, "refused a join: {e}");
                ControlResponse::Refused { reason: e.to_string() }
            }
        }
    }

    // ----- probes -------------------------------------------------------

    fn probe_round(&mut self) {
        if self.refute_pending && self.last_published.elapsed() >= REFUTE_INTERVAL {
            self.refute_pending = false;
            tracing::info!("suspected by a watcher: refuting with a newer record");
            self.publish_record();
        }
        let watched = self.membership.watch_targets(WATCHERS);
        for peer in &watched {
            if !self.probing.contains(peer) {
                self.send_probe(*peer);
            }
        }
        let mut members: Vec<PeerId> = self.membership.live().map(|m| m.peer).filter(|p| *p != self.local_peer()).collect();
        members.sort();
        let candidates = self.candidates();
        let mut skip = watched;
        skip.extend(self.probing.iter().copied());
        if let Some(peer) = self.explorer.next(&members, &candidates, &skip) {
            self.send_probe(peer);
        }
    }

    /// Members hosting instances, nearest first by what we know now.
    fn candidates(&self) -> Vec<PeerId> {
        let now = Instant::now();
        let mut hosts: Vec<(Duration, PeerId)> = self
            .membership
            .live()
            .filter(|m| m.peer != self.local_peer() && m.instances.as_ref().is_some_and(|(_, s)| !s.instances.is_empty()))
            .map(|m| (self.rtt_to(&m.peer, now).map(|(rtt, _)| rtt).unwrap_or(Duration::MAX), m.peer))
            .collect();
        hosts.sort();
        hosts.into_iter().take(CANDIDATES).map(|(_, p)| p).collect()
    }

    /// (RTT, measured?) to a member: a fresh measurement, else the estimate.
    pub(super) fn rtt_to(&self, peer: &PeerId, now: Instant) -> Option<(Duration, bool)> {
        if let Some(rtt) = self.rtts.measured(peer, now) {
            return Some((rtt, true));
        }
        let theirs = self.coords.get(peer)?;
        Some((self.vivaldi.coordinate().estimate_rtt(theirs), false))
    }

    fn send_probe(&mut self, peer: PeerId) {
        let suspected = self.membership.get(&peer).is_some_and(|m| m.liveness != Liveness::Alive);
        let request = ProbeRequest { coordinate: self.vivaldi.coordinate(), suspected };
        let id = self.swarm.behaviour_mut().probe.send_request(&peer, request);
        self.probes.insert(id, (peer, Instant::now()));
        self.probing.insert(peer);
    }

    fn on_probe(&mut self, event: request_response::Event<ProbeRequest, ProbeResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let response = ProbeResponse { coordinate: self.vivaldi.coordinate(), version: self.local.version };
                    let _ = self.swarm.behaviour_mut().probe.send_response(channel, response);
                    if request.coordinate.is_valid() {
                        self.coords.insert(peer, request.coordinate);
                    }
                    if request.suspected {
                        tracing::info!(by = %peer, "a watcher holds us suspect");
                        self.on_change(Change::Refute);
                    }
                }
                request_response::Message::Response { request_id, response } => self.on_probe_answer(request_id, response),
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                self.probes.remove(&request_id);
                self.probing.remove(&peer);
                self.on_probe_failure(peer, error);
            }
            _ => {}
        }
    }

    fn on_probe_answer(&mut self, id: OutboundRequestId, response: ProbeResponse) {
        let Some((peer, sent)) = self.probes.remove(&id) else { return };
        self.probing.remove(&peer);
        let rtt = sent.elapsed();
        self.rtts.record(peer, rtt, Instant::now());
        if response.coordinate.is_valid() {
            if let Err(e) = self.vivaldi.observe(&peer, &response.coordinate, rtt) {
                tracing::debug!(%peer, "coordinate sample dropped: {e:?}");
            }
            self.coords.insert(peer, response.coordinate);
        }
        // The member has a newer record than we hold: we missed gossip.
        let behind = self.membership.get(&peer).is_some_and(|m| m.record.version < response.version);
        let recently = self.synced.get(&peer).is_some_and(|at| at.elapsed() < Duration::from_secs(5));
        if behind && !recently {
            self.sync_with(peer);
        }
    }

    fn on_probe_failure(&mut self, peer: PeerId, error: OutboundFailure) {
        if !self.membership.watch_targets(WATCHERS).contains(&peer) {
            tracing::debug!(%peer, "exploratory probe failed: {error}");
            return;
        }
        let Some(suspicion) = self.membership.suspicion_of(&peer) else { return };
        tracing::debug!(%peer, "watched member did not answer: {error}");
        let signed = match Signed::sign(&suspicion, &self.keypair) {
            Ok(signed) => signed,
            Err(e) => return tracing::error!("cannot sign a suspicion: {e}"),
        };
        match self.membership.apply_suspicion(&signed, Instant::now()) {
            Ok(Change::None) => {}
            Ok(change) => {
                self.on_change(change);
                self.publish(Gossip::Suspect(signed));
            }
            Err(e) => tracing::error!("own suspicion rejected: {e}"),
        }
    }

    // ----- housekeeping -------------------------------------------------

    fn housekeeping(&mut self) {
        let now = Instant::now();
        if !self.unsent.is_empty() {
            self.retry_unsent();
        }
        for change in self.membership.tick(now) {
            self.on_change(change);
        }
        self.redial(now);
        let moved = self.published_coordinate.estimate_rtt(&self.vivaldi.coordinate()) > REPUBLISH_MOVE;
        let age = self.last_published.elapsed();
        if (moved && age >= REPUBLISH_MIN) || age >= REPUBLISH_MAX {
            self.publish_record();
        }
        let rtts = self
            .membership
            .live()
            .filter(|m| m.peer != self.local_peer())
            .filter_map(|m| Some((m.record.name.clone(), self.rtt_to(&m.peer, now)?)))
            .collect::<Vec<_>>();
        self.projection.set_rtts(&rtts, self.vivaldi.confidence());
        self.refresh_view();
    }

    /// Keeps a connection to every live member, and knocks on dead ones now
    /// and then so a healed partition is noticed.
    fn redial(&mut self, now: Instant) {
        let targets: Vec<(PeerId, bool, bool)> = self
            .membership
            .members()
            .filter(|m| m.peer != self.local_peer())
            .map(|m| (m.peer, matches!(m.liveness, Liveness::Dead { .. }), self.swarm.is_connected(&m.peer)))
            .filter(|(_, dead, connected)| *dead || !connected)
            .collect();
        for (peer, dead, connected) in targets {
            let wait = if dead { REDIAL_DEAD } else { Duration::from_secs(2) };
            if self.redialed.get(&peer).is_some_and(|at| now.saturating_duration_since(*at) < wait) {
                continue;
            }
            self.redialed.insert(peer, now);
            if connected {
                // A partition that healed under a live TCP connection brings
                // no new connection (and so no sync): ask the "dead" member
                // directly; an answer means it is back, and the probe's
                // "suspected" flag makes it re-sign its record.
                if !self.probing.contains(&peer) {
                    self.send_probe(peer);
                }
                continue;
            }
            // Explicit addresses from the member's record: the swarm keeps
            // no address book of its own for peers it lost.
            let addresses = self
                .membership
                .get(&peer)
                .map(|m| m.record.control.iter().map(|a| multiaddr(*a)).collect())
                .unwrap_or_default();
            let opts = DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, "dial: {e}");
            }
        }
    }

    // ----- publishing ---------------------------------------------------

    /// Gossips `gossip`; if no subscribed peer is known yet (just joined,
    /// or alone), keeps it and retries when a peer subscribes.
    fn publish(&mut self, gossip: Gossip) {
        let bytes = match encode(&gossip) {
            Ok(bytes) => bytes,
            Err(e) => return tracing::error!("cannot encode gossip: {e}"),
        };
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), bytes.clone()) {
            tracing::debug!("gossip not sent yet: {e}");
            if self.unsent.len() < 16 {
                self.unsent.push(bytes);
            }
        }
    }

    fn retry_unsent(&mut self) {
        for bytes in std::mem::take(&mut self.unsent) {
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), bytes.clone()) {
                tracing::debug!("gossip still not sent: {e}");
                self.unsent.push(bytes);
            }
        }
    }

    /// Signs the node record anew (fresh version and coordinate), applies
    /// it locally and gossips it.
    fn publish_record(&mut self) {
        self.local.version = now_unix_ms().max(self.local.version + 1);
        let coordinate = self.vivaldi.coordinate();
        let record = self.local.record(coordinate);
        match Signed::sign(&record, &self.keypair) {
            Ok(signed) => {
                self.published_coordinate = coordinate;
                self.last_published = Instant::now();
                self.apply_node(&signed);
                self.publish(Gossip::Node(signed));
            }
            Err(e) => tracing::error!("cannot sign our {} record: {e}", NodeRecord::KIND),
        }
    }

    fn publish_instances(&mut self) {
        self.local.instances_version = now_unix_ms().max(self.local.instances_version + 1);
        let set = InstanceSet {
            node: self.local_peer().to_bytes(),
            version: self.local.instances_version,
            instances: self.local.instances.values().cloned().collect(),
        };
        match Signed::sign(&set, &self.keypair) {
            Ok(signed) => {
                self.apply_instances(&signed);
                self.publish(Gossip::Instances(signed));
            }
            Err(e) => tracing::error!("cannot sign our instance set: {e}"),
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Register(entries, reply) => {
                let result = self.local.check(&entries);
                if result.is_ok() {
                    for entry in entries {
                        self.local.instances.insert(InstanceKey::of(&entry), entry);
                    }
                    self.publish_instances();
                }
                let _ = reply.send(result);
            }
            Command::Deregister(key, reply) => {
                let result = self.local.instances.remove(&key).ok_or_else(|| format!("no instance {key}"));
                if result.is_ok() {
                    self.publish_instances();
                }
                let _ = reply.send(result);
            }
        }
    }

    fn refresh_view(&mut self) {
        let now = Instant::now();
        let mut view = self.view.write();
        view.changes = self.membership.changes();
        view.local.version = self.local.version;
        view.local.coordinate_error = self.vivaldi.coordinate().error;
        view.members = project::member_views(&self.membership, |peer| {
            let measured = self.rtts.measured(peer, now);
            let estimated = self.coords.get(peer).map(|c| self.vivaldi.coordinate().estimate_rtt(c));
            (measured, estimated)
        });
    }
}

/// Forged or unowned claims are worth a warning; an old version is usually
/// just gossip and sync crossing (a replay looks the same and changes
/// nothing), so it is logged quietly.
fn log_rejection(what: &str, signer: Option<PeerId>, e: &super::membership::Rejection) {
    let signer = signer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
    match e {
        super::membership::Rejection::Stale { .. } => tracing::debug!(%signer, "{what} ignored: {e}"),
        _ => tracing::warn!(%signer, "{what} rejected: {e}"),
    }
}
