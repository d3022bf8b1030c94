//! Probes: failure detection (SWIM's direct probe, then indirect probes
//! through other members before anyone is suspected), RTTs and Vivaldi
//! coordinates for `closest`.
//!
//! Every [`PROBE_INTERVAL`] a node probes its watch set (the members after
//! it on the ring) and one more member to explore. A watched member that
//! does not answer within [`PROBE_TIMEOUT`] is probed through
//! [`INDIRECT_HELPERS`] others (`PingReq`); only if none of them reaches it
//! within [`INDIRECT_TIMEOUT`] does this node sign a suspicion. A lossy
//! path between two nodes therefore does not make one suspect the other.
//! A killed process refuses the connection at once, so a crash is
//! suspected within a few round trips.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;

use super::{ControlNode, Output, ReplyId, RequestId};
use crate::control::membership::{Liveness, WATCHERS};
use crate::control::wire::protocol::{ProbeRequest, ProbeResponse};
use crate::control::wire::Signed;

/// Watch-set probes go out this often.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(400);
/// A direct probe unanswered this long has failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(600);
/// Members asked to probe a target that did not answer us.
pub const INDIRECT_HELPERS: usize = 2;
/// How long their answers are waited for (their own probe's timeout plus a
/// round trip).
pub const INDIRECT_TIMEOUT: Duration = Duration::from_millis(900);
/// Members whose instances `closest` may pick, probed for real RTTs.
const CANDIDATES: usize = 8;

enum Probe {
    /// Our own probe of `target`; `on_behalf` are helpers' requests it answers.
    Direct { target: PeerId, sent: Instant, on_behalf: Vec<ReplyId> },
    /// Our request that `helper` probe `target`.
    Indirect { target: PeerId, helper: PeerId, sent: Instant },
}

/// A watched member that failed a direct probe, waiting on helpers.
struct Round {
    started: Instant,
    waiting: usize,
}

#[derive(Default)]
pub struct Probing {
    inflight: HashMap<RequestId, Probe>,
    direct: HashMap<PeerId, RequestId>,
    rounds: HashMap<PeerId, Round>,
    last_round: Option<Instant>,
    helper_cursor: usize,
}

impl ControlNode {
    pub(super) fn probe_round(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.probing.last_round.is_some_and(|at| now.saturating_duration_since(at) < PROBE_INTERVAL) {
            return;
        }
        self.probing.last_round = Some(now);
        let watched = self.membership.watch_targets(WATCHERS);
        for peer in &watched {
            if !self.probing.direct.contains_key(peer) && !self.probing.rounds.contains_key(peer) {
                self.send_probe(*peer, Vec::new(), now, out);
            }
        }
        let mut members: Vec<PeerId> = self.membership.live().map(|m| m.peer).filter(|p| *p != self.local_peer).collect();
        members.sort();
        let candidates = self.candidates(now);
        let mut skip = watched;
        skip.extend(self.probing.direct.keys().copied());
        if let Some(peer) = self.explorer.next(&members, &candidates, &skip) {
            self.send_probe(peer, Vec::new(), now, out);
        }
    }

    /// Members hosting instances, nearest first by what we know now.
    fn candidates(&self, now: Instant) -> Vec<PeerId> {
        let mut hosts: Vec<(Duration, PeerId)> = self
            .membership
            .live()
            .filter(|m| m.peer != self.local_peer && m.instances.as_ref().is_some_and(|(_, s)| !s.instances.is_empty()))
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

    /// Every live member's RTT, for the directory.
    pub(super) fn rtt_table(&self, now: Instant) -> Vec<(PeerId, Duration, bool)> {
        self.membership
            .live()
            .filter(|m| m.peer != self.local_peer)
            .filter_map(|m| self.rtt_to(&m.peer, now).map(|(rtt, measured)| (m.peer, rtt, measured)))
            .collect()
    }

    fn send_probe(&mut self, target: PeerId, on_behalf: Vec<ReplyId>, now: Instant, out: &mut Vec<Output>) {
        let suspected = self.membership.get(&target).is_some_and(|m| m.liveness != Liveness::Alive);
        let id = self.request_id();
        let request = ProbeRequest::Ping { coordinate: self.vivaldi.coordinate(), suspected };
        self.probing.inflight.insert(id, Probe::Direct { target, sent: now, on_behalf });
        self.probing.direct.insert(target, id);
        out.push(Output::Probe { to: target, id, request });
    }

    /// After a connection to `peer` closed.
    pub(super) fn probe_if_watched(&mut self, peer: PeerId, now: Instant, out: &mut Vec<Output>) {
        let watched = self.membership.watch_targets(WATCHERS).contains(&peer);
        if watched && !self.probing.direct.contains_key(&peer) && !self.probing.rounds.contains_key(&peer) {
            self.send_probe(peer, Vec::new(), now, out);
        }
    }

    /// A probe now, unless one is under way (a "dead" member still
    /// connected: an answer means it is back).
    pub(super) fn probe_now(&mut self, peer: PeerId, now: Instant, out: &mut Vec<Output>) {
        if !self.probing.direct.contains_key(&peer) {
            self.send_probe(peer, Vec::new(), now, out);
        }
    }

    /// Probes from members only; strangers learn nothing, not even our
    /// coordinate.
    pub(super) fn on_probe_request(&mut self, from: PeerId, request: ProbeRequest, reply: ReplyId, now: Instant, out: &mut Vec<Output>) {
        if !self.membership.is_member(&from) {
            out.push(Output::ReplyProbe { reply, response: ProbeResponse::NotMember });
            return;
        }
        match request {
            ProbeRequest::Ping { coordinate, suspected } => {
                let response = ProbeResponse::Ack { coordinate: self.vivaldi.coordinate(), version: self.publishing.version() };
                out.push(Output::ReplyProbe { reply, response });
                if coordinate.is_valid() {
                    self.coords.insert(from, coordinate);
                }
                // Only our watchers' word counts (anyone else claiming to
                // suspect us would make us re-sign and re-gossip for
                // nothing), and that of members we hold gone ourselves:
                // across a healed partition each side holds the other dead.
                if suspected && self.membership.accusation_counts(&from, now) {
                    tracing::info!(by = %from, "a watcher holds us suspect");
                    self.refute(now, out);
                }
            }
            ProbeRequest::PingReq { target } => {
                let target = PeerId::from_bytes(&target).ok().filter(|t| self.membership.live().any(|m| m.peer == *t) && *t != self.local_peer);
                let Some(target) = target else {
                    out.push(Output::ReplyProbe { reply, response: ProbeResponse::Indirect { reached: false } });
                    return;
                };
                match self.probing.direct.get(&target).and_then(|id| self.probing.inflight.get_mut(id)) {
                    Some(Probe::Direct { on_behalf, .. }) if on_behalf.len() < 16 => on_behalf.push(reply),
                    Some(_) => out.push(Output::ReplyProbe { reply, response: ProbeResponse::Indirect { reached: false } }),
                    None => self.send_probe(target, vec![reply], now, out),
                }
            }
        }
    }

    pub(super) fn on_probe_response(&mut self, from: PeerId, id: RequestId, response: ProbeResponse, now: Instant, out: &mut Vec<Output>) {
        let Some(probe) = self.probing.inflight.remove(&id) else { return };
        match probe {
            Probe::Direct { target, sent, on_behalf } => {
                self.probing.direct.remove(&target);
                if from != target {
                    return;
                }
                for reply in on_behalf {
                    out.push(Output::ReplyProbe { reply, response: ProbeResponse::Indirect { reached: true } });
                }
                self.probing.rounds.remove(&target);
                if let ProbeResponse::Ack { coordinate, version } = response {
                    let rtt = now.saturating_duration_since(sent);
                    self.rtts.record(target, rtt, now);
                    if coordinate.is_valid() {
                        if let Err(e) = self.vivaldi.observe(&target, &coordinate, rtt) {
                            tracing::debug!(peer = %target, "coordinate sample dropped: {e:?}");
                        }
                        self.coords.insert(target, coordinate);
                    }
                    // The member has a newer record than we hold (we missed
                    // gossip), or answers although we hold it gone (a healed
                    // partition): its records will tell.
                    let behind = self.membership.get(&target).is_some_and(|m| m.record.version < version || m.liveness != Liveness::Alive);
                    if behind {
                        self.sync_soon(target, now, out);
                    }
                }
            }
            Probe::Indirect { target, helper, .. } => match response {
                _ if from != helper => {}
                ProbeResponse::Indirect { reached: true } => {
                    self.probing.rounds.remove(&target);
                }
                _ => self.helper_failed(target, now, out),
            },
        }
    }

    pub(super) fn on_failed(&mut self, id: RequestId, now: Instant, out: &mut Vec<Output>) {
        if self.on_failed_sync(id) {
            return;
        }
        let Some(probe) = self.probing.inflight.remove(&id) else { return };
        self.probe_failed(probe, now, out);
    }

    fn probe_failed(&mut self, probe: Probe, now: Instant, out: &mut Vec<Output>) {
        match probe {
            Probe::Direct { target, on_behalf, .. } => {
                self.probing.direct.remove(&target);
                for reply in on_behalf {
                    out.push(Output::ReplyProbe { reply, response: ProbeResponse::Indirect { reached: false } });
                }
                if self.membership.watch_targets(WATCHERS).contains(&target) {
                    self.ask_helpers(target, now, out);
                } else {
                    tracing::debug!(peer = %target, "exploratory probe failed");
                }
            }
            Probe::Indirect { target, .. } => self.helper_failed(target, now, out),
        }
    }

    /// SWIM's ping-req: other members try the target for us.
    fn ask_helpers(&mut self, target: PeerId, now: Instant, out: &mut Vec<Output>) {
        if self.probing.rounds.contains_key(&target) {
            return;
        }
        let mut helpers: Vec<PeerId> = self
            .membership
            .live()
            .map(|m| m.peer)
            .filter(|p| *p != self.local_peer && *p != target && self.connections.get(p).is_some_and(|c| c.trusted))
            .collect();
        helpers.sort();
        if helpers.is_empty() {
            tracing::debug!(peer = %target, "watched member did not answer and no other member can try it");
            self.suspect(target, now, out);
            return;
        }
        let start = self.probing.helper_cursor % helpers.len();
        self.probing.helper_cursor = self.probing.helper_cursor.wrapping_add(1);
        let chosen: Vec<PeerId> = helpers.iter().cycle().skip(start).take(INDIRECT_HELPERS.min(helpers.len())).copied().collect();
        tracing::debug!(peer = %target, helpers = chosen.len(), "watched member did not answer: asking others to try");
        self.probing.rounds.insert(target, Round { started: now, waiting: chosen.len() });
        for helper in chosen {
            let id = self.request_id();
            self.probing.inflight.insert(id, Probe::Indirect { target, helper, sent: now });
            out.push(Output::Probe { to: helper, id, request: ProbeRequest::PingReq { target: target.to_bytes() } });
        }
    }

    fn helper_failed(&mut self, target: PeerId, now: Instant, out: &mut Vec<Output>) {
        let Some(round) = self.probing.rounds.get_mut(&target) else { return };
        round.waiting = round.waiting.saturating_sub(1);
        if round.waiting == 0 {
            self.probing.rounds.remove(&target);
            self.suspect(target, now, out);
        }
    }

    /// Probes past their deadline count as failed.
    pub(super) fn expire_probes(&mut self, now: Instant, out: &mut Vec<Output>) {
        let expired: Vec<RequestId> = self
            .probing
            .inflight
            .iter()
            .filter(|(_, p)| match p {
                Probe::Direct { sent, .. } => now.saturating_duration_since(*sent) >= PROBE_TIMEOUT,
                Probe::Indirect { sent, .. } => now.saturating_duration_since(*sent) >= INDIRECT_TIMEOUT,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(probe) = self.probing.inflight.remove(&id) {
                self.probe_failed(probe, now, out);
            }
        }
        let stuck: Vec<PeerId> = self
            .probing
            .rounds
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.started) >= INDIRECT_TIMEOUT * 2)
            .map(|(p, _)| *p)
            .collect();
        for peer in stuck {
            self.probing.rounds.remove(&peer);
        }
    }

    /// Signs and gossips a suspicion of `target` (if it is still watched
    /// and not already gone).
    fn suspect(&mut self, target: PeerId, now: Instant, out: &mut Vec<Output>) {
        if !self.membership.watch_targets(WATCHERS).contains(&target) {
            return;
        }
        let Some(suspicion) = self.membership.suspicion_of(&target) else { return };
        let signed = match Signed::sign(&suspicion, &self.keypair) {
            Ok(signed) => signed,
            Err(e) => return tracing::error!("cannot sign a suspicion: {e}"),
        };
        match self.membership.apply_suspicion(&signed, now) {
            Ok(changes) => {
                self.changed(changes, now, out);
                self.gossip(&crate::control::wire::records::Gossip::Suspect(signed), out);
            }
            Err(e) if e.is_noise() => {}
            Err(e) => tracing::error!("own suspicion rejected: {e}"),
        }
    }
}
