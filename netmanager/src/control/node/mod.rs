//! The control plane's core, without I/O: a state machine per node.
//!
//! [`ControlNode::handle`] takes one [`Input`] (a connection opened or
//! closed, a gossip message, a request or response from a peer, a failed
//! request, the authority's answer to a join, a timer tick, a command from
//! the local API) and the time, and returns [`Output`]s (gossip to publish,
//! verdicts on received gossip, requests and replies to send, dials and
//! disconnects, trust changes, the tunnel's new peer set, directory
//! changes, answers to commands). The driver ([`super::driver`]) turns
//! swarm events into inputs and outputs into swarm calls; tests wire
//! several nodes together in memory ([`tests`]).
//!
//! The parts: [`intake`] (records, suspicions, leaves, revocations from
//! gossip and sync pages), [`serve`] (connections, strangers, sync pages,
//! joins), [`probing`] (watch set, indirect probes, RTTs, coordinates,
//! suspicions), [`publish`] (own records, versions, refutation, leaving),
//! [`redial`] (keeping connections to members), [`local`] (this node's
//! instances), [`limits`] (token buckets), `events` (membership changes
//! for the local API's event stream).

mod events;
pub mod intake;
pub mod limits;
pub mod local;
pub mod probing;
pub mod publish;
pub mod redial;
pub mod serve;

#[cfg(test)]
mod event_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dns::{InstanceKey, InstanceSpec, Location};
use libp2p_identity::{Keypair, PeerId};
use overlay::PeerConfig;

use super::admission::{GrantInfo, GrantRules, Granted, Refusal};
use super::latency::{Explorer, RttTracker};
use super::events::MemberChange;
use super::membership::{Change, Membership};
use super::projection::{DirectoryOp, Projection};
use super::view::{ControlView, LocalView};
use super::vivaldi::{Coordinate, Vivaldi, VivaldiConfig};
use super::wire::protocol::{ControlRequest, ControlResponse, JoinRequest, ProbeRequest, ProbeResponse};
use super::wire::records::{Delegation, Gossip, SubnetGrant};
use super::wire::Signed;
use super::ControlError;
use limits::BucketMap;
use local::LocalNode;

/// A request this node sent, named by the node (the driver maps it to the
/// swarm's own ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A request this node must answer, named by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplyId(pub u64);

/// A local API command, named by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommandId(pub u64);

/// Gossipsub's verdict on a message we were asked to validate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: deliver and forward.
    Accept,
    /// Harmless but not worth forwarding (old, duplicate, rate-limited).
    Ignore,
    /// Invalid: drop, and hold it against the peer that sent it.
    Reject,
}

pub enum Input {
    /// A first connection to `peer` (from its address `ip`); `dialer`: we
    /// opened it.
    Connected { peer: PeerId, ip: IpAddr, dialer: bool },
    /// The last connection to `peer` closed.
    Disconnected { peer: PeerId },
    /// A gossip message, held for our verdict.
    Gossip { source: PeerId, id: Vec<u8>, data: Vec<u8> },
    ControlRequest { from: PeerId, request: ControlRequest, reply: ReplyId },
    ControlResponse { from: PeerId, id: RequestId, response: ControlResponse },
    ProbeRequest { from: PeerId, request: ProbeRequest, reply: ReplyId },
    ProbeResponse { from: PeerId, id: RequestId, response: ProbeResponse },
    /// A request we sent failed (unreachable, closed, timed out).
    Failed { id: RequestId },
    /// The authority's answer to a join handed to it by [`Output::Admit`].
    Admitted { reply: ReplyId, result: Result<Granted, Refusal> },
    /// This node now admits nodes for the authority (a delegation was installed).
    Delegated,
    /// Time passes; the driver sends one every [`TICK`].
    Tick,
    Command { id: CommandId, command: Command },
}

pub enum Command {
    /// Announce these instances (added to, or replacing, those with the same key).
    Register(Vec<InstanceSpec>),
    Deregister(InstanceKey),
    /// Gossip a record made elsewhere (the authority's revocations).
    Publish(Gossip),
    /// Say goodbye (SIGTERM): a signed leave.
    Leave,
}

/// What a command achieved.
#[derive(Debug, PartialEq)]
pub enum Done {
    Registered(Vec<InstanceSpec>),
    Deregistered(Box<InstanceSpec>),
    Published,
    Left,
}

pub enum Output {
    Publish(Vec<u8>),
    Verdict { id: Vec<u8>, source: PeerId, verdict: Verdict },
    Control { to: PeerId, id: RequestId, request: ControlRequest },
    Probe { to: PeerId, id: RequestId, request: ProbeRequest },
    ReplyControl { reply: ReplyId, response: ControlResponse },
    ReplyProbe { reply: ReplyId, response: ProbeResponse },
    /// Hand this join to the authority; answer with [`Input::Admitted`].
    Admit { reply: ReplyId, peer: PeerId, request: JoinRequest },
    Dial { peer: PeerId, addrs: Vec<SocketAddr> },
    DialAddress(SocketAddr),
    Disconnect(PeerId),
    /// Whether gossip may flow with `peer` (members yes, strangers no).
    Trust { peer: PeerId, member: bool },
    /// The tunnel's peers, as a whole.
    Peers(Vec<PeerConfig>),
    Directory(Vec<DirectoryOp>),
    /// Members that joined, came back, were suspected, died, left, were
    /// removed or moved, in order (the local API's event stream).
    Members(Vec<MemberChange>),
    Done { id: CommandId, result: Result<Done, ControlError> },
}

/// The driver ticks this often; the node's timers are multiples of it.
pub const TICK: Duration = Duration::from_millis(100);

/// What a node knows of itself when it starts.
pub struct NodeSettings {
    pub keypair: Keypair,
    pub authority: PeerId,
    pub is_authority: bool,
    pub rules: GrantRules,
    pub grant: Signed<SubnetGrant>,
    /// The authority's delegation, when a cluster admitted this node.
    pub delegation: Option<Signed<Delegation>>,
    pub info: GrantInfo,
    pub endpoints: Vec<SocketAddr>,
    pub control: Vec<SocketAddr>,
    pub location: Option<Location>,
    /// This start's count ([`super::identity::next_incarnation`]).
    pub incarnation: u32,
    /// Addresses to dial when no member is connected.
    pub bootstrap: Vec<SocketAddr>,
}

/// A connected peer.
struct Connection {
    ip: IpAddr,
    since: Instant,
    /// Trust last told to the driver.
    trusted: bool,
}

pub struct ControlNode {
    keypair: Keypair,
    local_peer: PeerId,
    is_authority: bool,
    membership: Membership,
    local: LocalNode,
    vivaldi: Vivaldi<PeerId>,
    rtts: RttTracker,
    explorer: Explorer,
    coords: HashMap<PeerId, Coordinate>,
    projection: Projection,
    connections: HashMap<PeerId, Connection>,
    probing: probing::Probing,
    publishing: publish::Publishing,
    redial: redial::Redial,
    serving: serve::Serving,
    join_attempts: BucketMap<IpAddr>,
    next_request: u64,
    /// Members whose directory entries must be re-derived.
    touched: BTreeSet<PeerId>,
    peers_dirty: bool,
    last_rtts: Option<Instant>,
    rejection_log: limits::TokenBucket,
    /// Rejections not logged since the last line (rate limit).
    rejections_unlogged: u64,
    /// Membership events not yet emitted.
    member_events: Vec<MemberChange>,
}

impl ControlNode {
    /// A node that has just started: it signs and applies its own records
    /// (publishing them too, for whoever is connected already).
    pub fn new(settings: NodeSettings, now: Instant) -> (ControlNode, Vec<Output>) {
        let local_peer = settings.keypair.public().to_peer_id();
        // Seeded per node, so coinciding coordinates split in different
        // directions on different nodes.
        let seed = local_peer.to_bytes().iter().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(*b));
        let vivaldi = Vivaldi::new(VivaldiConfig { seed, ..VivaldiConfig::default() });
        let mut node = ControlNode {
            membership: Membership::new(local_peer, settings.authority, settings.rules),
            local: LocalNode::new(&settings, local_peer),
            keypair: settings.keypair,
            local_peer,
            is_authority: settings.is_authority,
            vivaldi,
            rtts: RttTracker::default(),
            explorer: Explorer::default(),
            coords: HashMap::new(),
            projection: Projection::default(),
            connections: HashMap::new(),
            probing: probing::Probing::default(),
            publishing: publish::Publishing::new(settings.incarnation, now),
            redial: redial::Redial::new(settings.bootstrap),
            serving: serve::Serving::default(),
            join_attempts: BucketMap::new(1024, 5, Duration::from_secs(12)),
            next_request: 0,
            touched: BTreeSet::new(),
            peers_dirty: true,
            last_rtts: None,
            rejection_log: limits::TokenBucket::new(20, Duration::from_millis(500)),
            rejections_unlogged: 0,
            member_events: Vec::new(),
        };
        let mut out = Vec::new();
        node.publish_record(now, &mut out);
        node.publish_instances(now, &mut out);
        node.project(&mut out);
        (node, out)
    }

    /// Runs one input; returns what to do.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Connected { peer, ip, dialer } => self.on_connected(peer, ip, dialer, now, &mut out),
            Input::Disconnected { peer } => self.on_disconnected(peer, now, &mut out),
            Input::Gossip { source, id, data } => self.on_gossip(source, id, &data, now, &mut out),
            Input::ControlRequest { from, request, reply } => self.on_control_request(from, request, reply, now, &mut out),
            Input::ControlResponse { from, id, response } => self.on_control_response(from, id, response, now, &mut out),
            Input::ProbeRequest { from, request, reply } => self.on_probe_request(from, request, reply, now, &mut out),
            Input::ProbeResponse { from, id, response } => self.on_probe_response(from, id, response, now, &mut out),
            Input::Failed { id } => self.on_failed(id, now, &mut out),
            Input::Admitted { reply, result } => self.on_admitted(reply, result, &mut out),
            Input::Delegated => {
                tracing::info!("delegation installed: this node now admits nodes for the authority");
                self.is_authority = true;
            }
            Input::Tick => self.on_tick(now, &mut out),
            Input::Command { id, command } => self.on_command(id, command, now, &mut out),
        }
        self.project(&mut out);
        out
    }

    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Acts on what membership changed: logs, forgets, marks for projection.
    fn changed(&mut self, changes: Vec<Change>, now: Instant, out: &mut Vec<Output>) {
        for change in changes {
            self.note_event(&change);
            let name = |node: &ControlNode, p: &PeerId| node.membership.get(p).map(|m| m.name().to_owned()).unwrap_or_else(|| p.to_string());
            match &change {
                Change::Joined(p) => {
                    tracing::info!(member = %name(self, p), peer = %p, "member joined");
                    self.trust(*p, out);
                }
                Change::Revived(p) => tracing::info!(member = %name(self, p), "member is back"),
                Change::Suspected(p) => tracing::warn!(member = %name(self, p), "member suspected (not answering probes, directly or through others)"),
                Change::Died(p, _) => {
                    tracing::warn!(member = %name(self, p), "member declared dead: its instances leave the answers");
                    self.forget_measurements(p);
                }
                Change::Left(p) => {
                    tracing::info!(member = %name(self, p), "member left");
                    self.forget_measurements(p);
                }
                Change::Removed(p, why) => {
                    tracing::warn!(peer = %p, reason = ?why, "member removed (revoked, superseded by a later grant, or long gone)");
                    self.forget_measurements(p);
                    self.trust(*p, out);
                }
                Change::Refute { version } => {
                    // A suspicion of a record we already replaced is
                    // answered by the newer one in flight.
                    if *version >= self.publishing.version() {
                        self.refute(now, out);
                    }
                    continue;
                }
                Change::Instances(p) => {
                    let set = self.membership.get(p).and_then(|m| m.instances.as_ref()).map(|(_, s)| (s.version, s.instances.len()));
                    tracing::debug!(member = %name(self, p), version = ?set.map(|s| s.0), instances = ?set.map(|s| s.1), "instance set applied");
                }
                Change::Updated(_) => {}
            }
            match change {
                Change::Joined(p) | Change::Updated(p) | Change::Revived(p) | Change::Instances(p) | Change::Suspected(p) | Change::Died(p, _) | Change::Left(p) | Change::Removed(p, _) => {
                    if let Some(member) = self.membership.get(&p) {
                        self.coords.insert(p, member.record.coordinate);
                    }
                    self.touched.insert(p);
                    self.peers_dirty = true;
                }
                Change::Refute { .. } => {}
            }
        }
    }

    fn forget_measurements(&mut self, peer: &PeerId) {
        self.rtts.forget(peer);
        self.vivaldi.forget(peer);
        self.coords.remove(peer);
    }

    /// Tells the driver whether `peer` may exchange gossip, when that changed.
    fn trust(&mut self, peer: PeerId, out: &mut Vec<Output>) {
        let member = self.membership.is_member(&peer);
        if let Some(connection) = self.connections.get_mut(&peer) {
            if connection.trusted != member {
                connection.trusted = member;
                out.push(Output::Trust { peer, member });
            }
        }
    }

    /// Peer set and directory changes for whatever changed, and the
    /// membership events.
    fn project(&mut self, out: &mut Vec<Output>) {
        self.emit_events(out);
        if self.peers_dirty {
            self.peers_dirty = false;
            if let Some(peers) = self.projection.peers(&self.membership) {
                out.push(Output::Peers(peers));
            }
        }
        if !self.touched.is_empty() {
            let touched = std::mem::take(&mut self.touched);
            let ops = self.projection.directory(&self.membership, &touched);
            if !ops.is_empty() {
                out.push(Output::Directory(ops));
            }
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Output>) {
        let changes = self.membership.tick(now);
        self.changed(changes, now, out);
        self.probe_round(now, out);
        self.expire_probes(now, out);
        self.publishing.housekeeping_due(now).then(|| self.republish(now, out));
        self.redial_round(now, out);
        self.drop_strangers(now, out);
        if self.last_rtts.is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1)) {
            self.last_rtts = Some(now);
            let rtts = self.rtt_table(now);
            let ops = self.projection.rtts(&self.membership, &rtts, self.vivaldi.confidence());
            if !ops.is_empty() {
                out.push(Output::Directory(ops));
            }
        }
    }

    fn on_command(&mut self, id: CommandId, command: Command, now: Instant, out: &mut Vec<Output>) {
        let result = match command {
            Command::Register(specs) => self.register(specs, now, out),
            Command::Deregister(key) => self.deregister(&key, now, out),
            Command::Publish(gossip) => self.publish_foreign(gossip, now, out),
            Command::Leave => Ok(self.leave(out)),
        };
        out.push(Output::Done { id, result });
    }

    /// What the local API and `netmanager status` show.
    pub fn view(&self, now: Instant) -> ControlView {
        let local = LocalView {
            name: self.local.name().to_owned(),
            peer_id: self.local_peer,
            subnet: self.local.subnet(),
            authority: *self.membership.authority(),
            is_authority: self.is_authority,
            coordinate_error: self.vivaldi.coordinate().error,
            version: self.publishing.version(),
            instances: self.local.instances().len(),
            location: self.local.location(),
        };
        let members = super::view::member_views(&self.membership, |peer| {
            let measured = self.rtts.measured(peer, now);
            let estimated = self.coords.get(peer).map(|c| self.vivaldi.coordinate().estimate_rtt(c));
            (measured, estimated)
        });
        ControlView {
            local,
            members,
            changes: self.membership.changes(),
            conflicts: self.projection.conflicts(&self.membership),
            strangers: self.connections.values().filter(|c| !c.trusted).count(),
        }
    }
}
