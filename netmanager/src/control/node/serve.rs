//! Connections and the control protocol: who is a member and who a
//! stranger, sync pages (to members only, proven by the asker's own signed
//! record), joins (the authority only, rate-limited per address).
//!
//! A stranger gets nothing but the join exchange: no records, no probe
//! answers, no gossip (it is graylisted), and it is disconnected after
//! [`STRANGER_GRACE`] unless a join is under way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;

use super::{Connection, ControlNode, Output, ReplyId, RequestId};
use crate::control::admission::{Granted, Refusal};
use crate::control::membership::{Liveness, Rejection};
use crate::control::wire::protocol::{ControlRequest, ControlResponse, Page, SyncRequest, PAGE_BUDGET, PAGE_ITEMS};
use crate::control::wire::records::Gossip;
use crate::control::wire::{Bounded, Signed};

/// A connection that has not shown itself to be a member's is closed after this.
pub const STRANGER_GRACE: Duration = Duration::from_secs(10);
/// A join at the authority may take this long (disk, slow links).
const JOIN_GRACE: Duration = Duration::from_secs(30);
/// A member is asked for its records at most this often.
const SYNC_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Serving {
    /// Sync requests we sent, and to whom.
    syncs: HashMap<RequestId, PeerId>,
    last_sync: HashMap<PeerId, Instant>,
    /// Strangers whose join the authority is deciding.
    joining: HashMap<PeerId, Instant>,
    admits: HashMap<ReplyId, PeerId>,
}

impl ControlNode {
    pub(super) fn on_connected(&mut self, peer: PeerId, ip: IpAddr, dialer: bool, now: Instant, out: &mut Vec<Output>) {
        let member = self.membership.is_member(&peer);
        self.connections.insert(peer, Connection { ip, since: now, trusted: member });
        out.push(Output::Trust { peer, member });
        self.redial.connected(&peer);
        // We dialled it (a member's or bootstrap address) or know it: show
        // who we are and ask for its records. An unknown peer that dialled
        // us must show itself first.
        if member || dialer {
            self.sync_with(peer, None, now, out);
        }
    }

    pub(super) fn on_disconnected(&mut self, peer: PeerId, now: Instant, out: &mut Vec<Output>) {
        self.connections.remove(&peer);
        self.serving.joining.remove(&peer);
        self.serving.last_sync.remove(&peer);
        // A closed connection to a watched node is worth an immediate
        // probe: a dead process refuses the redial at once.
        self.probe_if_watched(peer, now, out);
    }

    /// Asks `peer` for its records (a page at a time).
    pub(super) fn sync_with(&mut self, peer: PeerId, after: Option<Vec<u8>>, now: Instant, out: &mut Vec<Output>) {
        let Some(me) = self.membership.get(&self.local_peer).map(|m| m.signed.clone()) else { return };
        if after.is_none() {
            self.serving.last_sync.insert(peer, now);
        }
        let id = self.request_id();
        self.serving.syncs.insert(id, peer);
        out.push(Output::Control { to: peer, id, request: ControlRequest::Sync(SyncRequest { me, after }) });
    }

    /// Syncs with `peer` unless we did so recently.
    pub(super) fn sync_soon(&mut self, peer: PeerId, now: Instant, out: &mut Vec<Output>) {
        let recent = self.serving.last_sync.get(&peer).is_some_and(|at| now.saturating_duration_since(*at) < SYNC_INTERVAL);
        if !recent && self.connections.contains_key(&peer) {
            self.sync_with(peer, None, now, out);
        }
    }

    pub(super) fn on_control_request(&mut self, from: PeerId, request: ControlRequest, reply: ReplyId, now: Instant, out: &mut Vec<Output>) {
        let response = match request {
            ControlRequest::Join(join) => {
                if !self.is_authority {
                    ControlResponse::Refused(Refusal::NotAuthority)
                } else if !self.join_allowed(&from, now) {
                    tracing::warn!(peer = %from, "join attempts rate-limited");
                    ControlResponse::Refused(Refusal::RateLimited)
                } else {
                    self.serving.joining.insert(from, now);
                    self.serving.admits.insert(reply, from);
                    out.push(Output::Admit { reply, peer: from, request: join });
                    return;
                }
            }
            ControlRequest::Sync(sync) => match self.accept_member(from, &sync.me, now, out) {
                Ok(()) => ControlResponse::Page(self.page(sync.after.as_deref())),
                Err(e) => {
                    tracing::debug!(peer = %from, "sync refused: {e}");
                    ControlResponse::NotMember
                }
            },
        };
        out.push(Output::ReplyControl { reply, response });
    }

    fn join_allowed(&mut self, peer: &PeerId, now: Instant) -> bool {
        let Some(ip) = self.connections.get(peer).map(|c| c.ip) else { return false };
        self.join_attempts.allow(&ip, now)
    }

    /// A sync's `me`: the asker's own record, which proves it holds a grant.
    /// A new record is applied and relayed (its own gossip may not have
    /// reached anyone while it was still a stranger to them).
    fn accept_member(&mut self, from: PeerId, me: &Signed<crate::control::wire::NodeRecord>, now: Instant, out: &mut Vec<Output>) -> Result<(), Rejection> {
        if me.signer()? != from {
            return Err(Rejection::SignerMismatch { kind: "sync record", signer: from });
        }
        match self.membership.apply_node(me, now) {
            Ok(changes) => {
                self.changed(changes, now, out);
                self.gossip(&Gossip::Node(me.clone()), out);
                self.trust(from, out);
                Ok(())
            }
            Err(e) if e.is_noise() && self.membership.is_member(&from) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) fn on_control_response(&mut self, from: PeerId, id: RequestId, response: ControlResponse, now: Instant, out: &mut Vec<Output>) {
        if self.serving.syncs.remove(&id) != Some(from) {
            tracing::debug!(peer = %from, "control answer to nothing we asked: dropped");
            return;
        }
        match response {
            ControlResponse::Page(page) => {
                let next = page.next.clone();
                self.apply_page(from, page, now, out);
                if let Some(after) = next {
                    self.sync_with(from, Some(after), now, out);
                }
            }
            ControlResponse::NotMember => {
                tracing::warn!(peer = %from, "a member does not take us for one (revoked, or it has not seen our record yet)");
            }
            ControlResponse::Joined { .. } | ControlResponse::Refused(_) => {}
        }
    }

    pub(super) fn on_failed_sync(&mut self, id: RequestId) -> bool {
        self.serving.syncs.remove(&id).is_some()
    }

    pub(super) fn on_admitted(&mut self, reply: ReplyId, result: Result<Granted, Refusal>, out: &mut Vec<Output>) {
        if let Some(peer) = self.serving.admits.remove(&reply) {
            if result.is_err() {
                self.serving.joining.remove(&peer);
            }
        }
        let response = match result {
            Ok(Granted { grant, delegation }) => ControlResponse::Joined { grant, delegation },
            Err(refusal) => ControlResponse::Refused(refusal),
        };
        out.push(Output::ReplyControl { reply, response });
    }

    /// Closes connections that never proved to be a member's.
    pub(super) fn drop_strangers(&mut self, now: Instant, out: &mut Vec<Output>) {
        let joining = &self.serving.joining;
        let stale: Vec<PeerId> = self
            .connections
            .iter()
            .filter(|(_, c)| !c.trusted && now.saturating_duration_since(c.since) >= STRANGER_GRACE)
            .filter(|(peer, _)| joining.get(peer).is_none_or(|at| now.saturating_duration_since(*at) >= JOIN_GRACE))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in stale {
            tracing::debug!(%peer, "closing a connection that is not a member's");
            self.connections.remove(&peer);
            self.serving.joining.remove(&peer);
            out.push(Output::Disconnect(peer));
        }
    }

    /// Records of members after `after`, as much as fits a page.
    pub(super) fn page(&self, after: Option<&[u8]>) -> Page {
        let after = after.and_then(|a| PeerId::from_bytes(a).ok());
        let mut page = Page::default();
        let (mut nodes, mut sets, mut accusations, mut leaves) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut bytes = 0usize;
        let members = self.membership.after(after.as_ref());
        let mut last = None;
        for (i, member) in members.iter().enumerate() {
            let size = member.signed.wire_len() + member.instances.as_ref().map_or(0, |(s, _)| s.wire_len());
            if i > 0 && (bytes + size > PAGE_BUDGET || nodes.len() == PAGE_ITEMS) {
                page.next = last.map(|p: PeerId| p.to_bytes());
                break;
            }
            bytes += size;
            nodes.push(member.signed.clone());
            if let Some((signed, _)) = &member.instances {
                sets.push(signed.clone());
            }
            if let Some(leave) = &member.leave {
                leaves.push(leave.clone());
            }
            if matches!(member.liveness, Liveness::Suspect { .. } | Liveness::Dead { .. }) {
                accusations.push((member.peer.to_bytes(), member.record.version));
            }
            last = Some(member.peer);
        }
        page.nodes = Bounded::truncate(nodes);
        page.instances = Bounded::truncate(sets);
        page.accusations = Bounded::truncate(accusations);
        page.leaves = Bounded::truncate(leaves);
        if after.is_none() {
            page.revocations = Bounded::truncate(self.membership.revocations().cloned().collect());
        }
        page
    }
}
