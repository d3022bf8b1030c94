//! Several [`ControlNode`]s wired together in memory: a virtual clock, a
//! network of connections with a delay per message, crashes (connections
//! refused), silent nodes and links (messages lost), and gossip flooded the
//! way gossipsub does it (each node forwards what it accepts, once, to the
//! peers it trusts). The directory each node's outputs build is a real
//! [`MemoryDirectory`], so tests ask it what `closest` answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns::store::MemoryDirectory;
use dns::{InstanceKey, InstanceSpec, Location, NodeId};
use libp2p_identity::{Keypair, PeerId};
use overlay::PeerConfig;
use sha2::{Digest, Sha256};

use super::*;
use crate::control::admission::pool::SubnetPool;
use crate::control::admission::tokens::TokenSpec;
use crate::control::admission::{verify_grant, Authority, GrantRules};
use crate::control::events::Event;
use crate::control::feed::Feed;
use crate::control::projection::apply_directory;
use crate::control::wire::protocol::JoinRequest;

/// One message in flight.
enum Delivery {
    Input { to: usize, input: Input },
    /// A request to `to`; the answer goes back to `from` as `id`.
    Request { from: usize, to: usize, id: RequestId, request: Req },
}

enum Req {
    Control(ControlRequest),
    Probe(ProbeRequest),
}

pub struct Sim {
    pub keypair: Keypair,
    pub peer: PeerId,
    pub node: Option<ControlNode>,
    pub directory: Arc<MemoryDirectory>,
    pub peers: Vec<PeerConfig>,
    pub done: Vec<Result<Done, ControlError>>,
    pub published: usize,
    /// Gossip ids seen (gossipsub's duplicate cache).
    seen: HashSet<Vec<u8>>,
    /// Peers whose gossip this node takes (what `Output::Trust` said).
    trusted: HashSet<usize>,
    /// Silent: receives nothing, answers nothing (but its connections stay up).
    pub silent: bool,
    /// What `Output::Members` added up to, as the local API's stream has it.
    pub feed: Feed,
    /// The events that feed produced, in order.
    pub events: Vec<Event>,
}

pub struct Harness {
    pub now: Instant,
    pub nodes: Vec<Sim>,
    pub authority: Authority,
    token: String,
    links: HashSet<(usize, usize)>,
    /// Links on which every message is lost (one direction: from, to).
    pub lossy: HashSet<(usize, usize)>,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    delay: Duration,
    replies: HashMap<ReplyId, (usize, usize, RequestId, bool)>,
    next_reply: u64,
}

fn location(i: usize) -> Location {
    Location { lat: 48.0 + i as f64 * 0.5, lon: 11.0 }
}

impl Harness {
    /// `n` nodes, node 0 the authority, all admitted, none connected yet.
    pub fn new(n: usize) -> Harness {
        let start = Instant::now();
        let authority_key = Keypair::generate_ed25519();
        let mut authority = Authority::new(authority_key.clone(), SubnetPool::default(), Default::default()).expect("authority");
        let (token, _) = authority.tokens_mut().create(&TokenSpec::default(), 0).expect("token");
        let mut harness = Harness {
            now: start,
            nodes: Vec::new(),
            authority,
            token,
            links: HashSet::new(),
            lossy: HashSet::new(),
            queue: BTreeMap::new(),
            seq: 0,
            delay: Duration::from_millis(5),
            replies: HashMap::new(),
            next_reply: 0,
        };
        for i in 0..n {
            let keypair = if i == 0 { authority_key.clone() } else { Keypair::generate_ed25519() };
            harness.add(keypair, &format!("n{i}"), 1);
        }
        harness
    }

    /// Adds (or restarts, with the same key) a node.
    pub fn add(&mut self, keypair: Keypair, name: &str, incarnation: u32) -> usize {
        let peer = keypair.public().to_peer_id();
        let index = self.nodes.iter().position(|s| s.peer == peer).unwrap_or(self.nodes.len());
        let wg = [index as u8 + 1; 32];
        let grant = if peer == self.authority.peer_id() {
            self.authority.admit_self(name, wg, 0).expect("self grant")
        } else {
            let request = JoinRequest { token: self.token.clone(), name: name.into(), wg_public_key: wg };
            self.authority.admit(&peer, &request, 0).expect("grant").grant
        };
        let rules = GrantRules::default();
        let info = verify_grant(&grant, None, &self.authority.peer_id(), &peer, &rules).expect("valid grant");
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, index as u8 + 1)), 50103);
        let settings = NodeSettings {
            keypair: keypair.clone(),
            authority: self.authority.peer_id(),
            is_authority: index == 0,
            rules,
            grant,
            delegation: None,
            info,
            endpoints: vec![addr],
            control: vec![addr],
            location: Some(location(index)),
            incarnation,
            bootstrap: Vec::new(),
        };
        let (node, outputs) = ControlNode::new(settings, self.now);
        let feed = Feed::new(node.local_entry());
        let sim = Sim {
            keypair,
            peer,
            node: Some(node),
            directory: Arc::new(MemoryDirectory::new(NodeId::named(&peer.to_string(), name))),
            peers: Vec::new(),
            done: Vec::new(),
            published: 0,
            seen: HashSet::new(),
            trusted: HashSet::new(),
            silent: false,
            feed,
            events: Vec::new(),
        };
        if index == self.nodes.len() {
            self.nodes.push(sim);
        } else {
            self.nodes[index] = sim;
        }
        self.act(index, outputs);
        index
    }

    pub fn index_of(&self, peer: &PeerId) -> Option<usize> {
        self.nodes.iter().position(|s| s.peer == *peer)
    }

    /// Connects `a` (dialer) and `b`, as an established libp2p connection.
    pub fn connect(&mut self, a: usize, b: usize) {
        if a == b || !self.up(a) || !self.up(b) || !self.links.insert(key(a, b)) {
            return;
        }
        let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(198, 18, 0, i as u8 + 1));
        self.input(a, Input::Connected { peer: self.nodes[b].peer, ip: ip(b), dialer: true });
        self.input(b, Input::Connected { peer: self.nodes[a].peer, ip: ip(a), dialer: false });
    }

    pub fn connect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.connect(a, b);
            }
        }
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        if self.links.remove(&key(a, b)) {
            for (x, y) in [(a, b), (b, a)] {
                if self.up(x) {
                    let peer = self.nodes[y].peer;
                    self.input(x, Input::Disconnected { peer });
                }
            }
        }
    }

    /// The process is gone: connections close, dials are refused.
    pub fn crash(&mut self, i: usize) {
        let linked: Vec<usize> = (0..self.nodes.len()).filter(|j| self.links.contains(&key(i, *j))).collect();
        for j in linked {
            self.disconnect(i, j);
        }
        self.nodes[i].node = None;
    }

    pub fn up(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|s| s.node.is_some())
    }

    fn input(&mut self, i: usize, input: Input) {
        let now = self.now;
        let Some(node) = self.nodes[i].node.as_mut() else { return };
        let outputs = node.handle(input, now);
        self.act(i, outputs);
    }

    pub fn command(&mut self, i: usize, command: Command) {
        self.input(i, Input::Command { id: CommandId(0), command });
    }

    pub fn register(&mut self, i: usize, service: &str, number: u32) -> InstanceKey {
        let node = self.nodes[i].node.as_ref().expect("running");
        let subnet = node.local.subnet();
        let key = InstanceKey::new(service, "cam", "default", number).expect("key");
        let ip = Ipv4Addr::from(u32::from(subnet.network()) + 2 + number % 50);
        self.command(i, Command::Register(vec![InstanceSpec::new(key).with_ipv4(ip)]));
        key
    }

    fn schedule(&mut self, at: Instant, delivery: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), delivery);
    }

    /// Does what node `i` asked.
    fn act(&mut self, i: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Publish(data) => {
                    self.nodes[i].published += 1;
                    let id = Sha256::digest(&data).to_vec();
                    self.nodes[i].seen.insert(id.clone());
                    self.flood(i, id, data, None);
                }
                Output::Verdict { id, verdict, .. } => {
                    if verdict == Verdict::Accept {
                        if let Some(data) = self.pending_gossip(i, &id) {
                            self.flood(i, id, data, None);
                        }
                    }
                }
                Output::Control { to, id, request } => self.request(i, to, id, Req::Control(request)),
                Output::Probe { to, id, request } => self.request(i, to, id, Req::Probe(request)),
                Output::ReplyControl { reply, response } => self.reply(reply, |from, id| Input::ControlResponse { from, id, response }),
                Output::ReplyProbe { reply, response } => self.reply(reply, |from, id| Input::ProbeResponse { from, id, response }),
                Output::Admit { reply, peer, request } => {
                    let result = self.authority.admit(&peer, &request, 0);
                    let at = self.now;
                    self.schedule(at, Delivery::Input { to: i, input: Input::Admitted { reply, result } });
                }
                Output::Dial { peer, .. } => {
                    if let Some(j) = self.index_of(&peer) {
                        self.connect(i, j);
                    }
                }
                Output::DialAddress(_) => {}
                Output::Disconnect(peer) => {
                    if let Some(j) = self.index_of(&peer) {
                        self.disconnect(i, j);
                    }
                }
                Output::Trust { peer, member } => {
                    if let Some(j) = self.index_of(&peer) {
                        if member {
                            self.nodes[i].trusted.insert(j);
                        } else {
                            self.nodes[i].trusted.remove(&j);
                        }
                    }
                }
                Output::Peers(peers) => self.nodes[i].peers = peers,
                Output::Directory(ops) => apply_directory(&self.nodes[i].directory, ops),
                Output::Members(changes) => {
                    let sim = &mut self.nodes[i];
                    sim.events.extend(changes.into_iter().filter_map(|c| sim.feed.apply(c)));
                }
                Output::Done { result, .. } => self.nodes[i].done.push(result),
            }
        }
    }

    /// Gossip waiting for node `i`'s verdict.
    fn pending_gossip(&mut self, i: usize, id: &[u8]) -> Option<Vec<u8>> {
        PENDING.with(|p| p.borrow_mut().remove(&(i, id.to_vec())))
    }

    /// Sends `data` to every connected peer of `i` that trusts `i` and has
    /// not seen it (gossipsub: graylisted peers get nothing).
    fn flood(&mut self, i: usize, id: Vec<u8>, data: Vec<u8>, _except: Option<usize>) {
        let targets: Vec<usize> = (0..self.nodes.len())
            .filter(|j| *j != i && self.links.contains(&key(i, *j)) && self.nodes[i].trusted.contains(j))
            .collect();
        for j in targets {
            if self.lossy.contains(&(i, j)) {
                continue;
            }
            let at = self.now + self.delay;
            let source = self.nodes[i].peer;
            self.schedule(at, Delivery::Input { to: j, input: Input::Gossip { source, id: id.clone(), data: data.clone() } });
        }
    }

    fn request(&mut self, from: usize, to: PeerId, id: RequestId, request: Req) {
        match self.index_of(&to) {
            Some(j) if self.up(j) => {
                if !self.links.contains(&key(from, j)) {
                    self.connect(from, j);
                }
                let at = self.now + self.delay;
                self.schedule(at, Delivery::Request { from, to: j, id, request });
            }
            // Refused at once: nobody listens there.
            _ => {
                let at = self.now + self.delay;
                self.schedule(at, Delivery::Input { to: from, input: Input::Failed { id } });
            }
        }
    }

    fn reply(&mut self, reply: ReplyId, make: impl FnOnce(PeerId, RequestId) -> Input) {
        let Some((asker, answerer, id, _)) = self.replies.remove(&reply) else { return };
        if self.lossy.contains(&(answerer, asker)) || self.nodes[answerer].silent {
            return;
        }
        let at = self.now + self.delay;
        let from = self.nodes[answerer].peer;
        self.schedule(at, Delivery::Input { to: asker, input: make(from, id) });
    }

    fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Input { to, input } => {
                if self.nodes[to].silent {
                    return;
                }
                if let Input::Gossip { id, data, source } = input {
                    if !self.nodes[to].seen.insert(id.clone()) {
                        return;
                    }
                    PENDING.with(|p| p.borrow_mut().insert((to, id.clone()), data.clone()));
                    self.input(to, Input::Gossip { source, id: id.clone(), data });
                    PENDING.with(|p| p.borrow_mut().remove(&(to, id)));
                    return;
                }
                self.input(to, input);
            }
            Delivery::Request { from, to, id, request } => {
                if !self.up(to) || self.nodes[to].silent || self.lossy.contains(&(from, to)) {
                    return; // lost: the asker's own deadline decides
                }
                self.next_reply += 1;
                let reply = ReplyId(self.next_reply);
                self.replies.insert(reply, (from, to, id, true));
                let peer = self.nodes[from].peer;
                let input = match request {
                    Req::Control(request) => Input::ControlRequest { from: peer, request, reply },
                    Req::Probe(request) => Input::ProbeRequest { from: peer, request, reply },
                };
                self.input(to, input);
            }
        }
    }

    /// Runs the world for `duration`: deliveries in time order, a tick per
    /// node every [`TICK`].
    pub fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        let mut next_tick = self.now + TICK;
        loop {
            let next_delivery = self.queue.keys().next().map(|(at, _)| *at);
            let at = match next_delivery {
                Some(at) if at <= next_tick => at,
                _ => next_tick,
            };
            if at > end {
                break;
            }
            self.now = at;
            if Some(at) == next_delivery {
                if let Some((_, delivery)) = self.queue.pop_first() {
                    self.deliver(delivery);
                }
            } else {
                next_tick = at + TICK;
                for i in 0..self.nodes.len() {
                    if self.up(i) && !self.nodes[i].silent {
                        self.input(i, Input::Tick);
                    }
                }
            }
        }
        self.now = end;
    }

    /// Runs until `f` holds (checked every tick) or `limit`; the time taken.
    pub fn until(&mut self, limit: Duration, mut f: impl FnMut(&Harness) -> bool) -> Option<Duration> {
        let start = self.now;
        while self.now.saturating_duration_since(start) < limit {
            if f(self) {
                return Some(self.now.saturating_duration_since(start));
            }
            self.run(TICK);
        }
        f(self).then(|| self.now.saturating_duration_since(start))
    }

    pub fn state_of(&self, observer: usize, subject: usize) -> Option<MemberState> {
        let node = self.nodes[observer].node.as_ref()?;
        node.membership().get(&self.nodes[subject].peer).map(|m| MemberState::of(&m.liveness))
    }

    /// Every running node sees every other running node in `state`.
    pub fn all_see(&self, subject: usize, state: MemberState) -> bool {
        (0..self.nodes.len()).filter(|i| *i != subject && self.up(*i) && !self.nodes[*i].silent).all(|i| self.state_of(i, subject) == Some(state))
    }

    pub fn converged(&self) -> bool {
        (0..self.nodes.len()).filter(|i| self.up(*i)).all(|s| self.all_see(s, MemberState::Alive))
    }

    /// The instances of `service` node `i`'s directory serves, healthy ones.
    pub fn healthy_hosts(&self, i: usize, service: &str) -> Vec<String> {
        let snapshot = self.nodes[i].directory.snapshot();
        let mut hosts: Vec<String> = dns::Directory::service(&*snapshot, service).iter().filter(|x| x.healthy).map(|x| x.node.name().to_owned()).collect();
        hosts.sort();
        hosts
    }
}

use crate::control::view::MemberState;

/// Gossip bytes waiting for a node's verdict, by (node, message id).
type Pending = std::cell::RefCell<HashMap<(usize, Vec<u8>), Vec<u8>>>;

thread_local! {
    static PENDING: Pending = std::cell::RefCell::new(HashMap::new());
}

fn key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}
