//! Records coming in: gossip (each message judged before gossipsub may
//! forward it) and sync pages. Everything is verified by
//! [`crate::control::membership`]; this decides what to believe from whom.
//!
//! Gossip is taken only from members: a message whose forwarder we do not
//! hold as a member is rejected before it is decoded, so a stranger cannot
//! make us verify signatures (it is also graylisted in gossipsub, which
//! drops its traffic before it reaches us). The one exception is a new
//! member introducing itself: a node record signed by the forwarder itself.

use std::time::Instant;

use libp2p_identity::PeerId;

use super::{ControlNode, Output, Verdict};
use crate::control::membership::{Change, Rejection};
use crate::control::wire::protocol::Page;
use crate::control::wire::records::Gossip;
use crate::control::wire::decode;

impl ControlNode {
    pub(super) fn on_gossip(&mut self, source: PeerId, id: Vec<u8>, data: &[u8], now: Instant, out: &mut Vec<Output>) {
        let verdict = self.judge_gossip(source, data, now, out);
        out.push(Output::Verdict { id, source, verdict });
    }

    fn judge_gossip(&mut self, source: PeerId, data: &[u8], now: Instant, out: &mut Vec<Output>) -> Verdict {
        let member = self.membership.is_member(&source);
        let gossip = match decode::<Gossip>(data) {
            Ok(gossip) => gossip,
            Err(e) => {
                if member {
                    tracing::debug!(%source, "dropped gossip: {e}");
                }
                return Verdict::Reject;
            }
        };
        if !member {
            let introduction = matches!(&gossip, Gossip::Node(signed) if signed.signer().ok() == Some(source));
            if !introduction {
                return Verdict::Reject;
            }
        }
        match self.apply_gossip(&gossip, now, out) {
            Ok(()) => Verdict::Accept,
            Err(e) if e.is_noise() || matches!(e, Rejection::RateLimited) => {
                // Debug only: stale and duplicate copies arrive all the time.
                tracing::debug!(signer = %gossip.signer().map(|p| p.to_string()).unwrap_or_default(), %source, kind = gossip.kind(), "gossip ignored: {e}");
                Verdict::Ignore
            }
            Err(e) => {
                self.log_rejection(gossip.signer(), &e, now);
                Verdict::Reject
            }
        }
    }

    /// Applies one gossiped (or relayed) record.
    pub(super) fn apply_gossip(&mut self, gossip: &Gossip, now: Instant, out: &mut Vec<Output>) -> Result<(), Rejection> {
        let changes = match gossip {
            Gossip::Node(signed) => self.membership.apply_node(signed, now)?,
            Gossip::Instances(signed) => self.membership.apply_instances(signed, now)?,
            Gossip::Suspect(signed) => self.membership.apply_suspicion(signed, now)?,
            Gossip::Leave(signed) => self.membership.apply_leave(signed, now)?,
            Gossip::Revoke(signed) => self.membership.apply_revocation(signed, now)?,
        };
        self.changed(changes, now, out);
        Ok(())
    }

    /// One page of a member's sync answer. Our own records in it are not
    /// applied but tell us our version (a restart may have lost it);
    /// accusations against us are refuted.
    pub(super) fn apply_page(&mut self, from: PeerId, page: Page, now: Instant, out: &mut Vec<Output>) {
        let mut rejected = 0usize;
        let mut first_error = None;
        let (mut own_record, mut own_set) = (None, None);
        let local = self.local_peer;
        for signed in page.revocations.iter() {
            if let Some(changes) = note(self.membership.apply_revocation(signed, now), &mut rejected, &mut first_error) {
                self.changed(changes, now, out);
            }
        }
        for signed in page.nodes.iter() {
            if signed.signer().ok() == Some(local) {
                own_record = signed.verify().ok().map(|v| v.value.version);
                continue;
            }
            if let Some(changes) = note(self.membership.apply_node(signed, now), &mut rejected, &mut first_error) {
                self.changed(changes, now, out);
            }
        }
        for signed in page.instances.iter() {
            if signed.signer().ok() == Some(local) {
                own_set = signed.verify().ok().map(|v| v.value.version);
                continue;
            }
            if let Some(changes) = note(self.membership.apply_instances(signed, now), &mut rejected, &mut first_error) {
                self.changed(changes, now, out);
            }
        }
        for signed in page.leaves.iter() {
            if let Some(changes) = note(self.membership.apply_leave(signed, now), &mut rejected, &mut first_error) {
                self.changed(changes, now, out);
            }
        }
        self.adopt_own_versions(own_record, own_set, now, out);
        let local_bytes = local.to_bytes();
        // The node layer refutes an accusation of our current record.
        if let Some(newest) = page.accusations.iter().filter(|(peer, _)| *peer == local_bytes).map(|(_, accused)| *accused).max() {
            self.changed(vec![Change::Refute { version: newest }], now, out);
        }
        // One line per page, not one per record: a hostile page must not
        // turn into a flood of log lines.
        if let Some(e) = first_error {
            tracing::warn!(%from, rejected, "sync page: records rejected, e.g.: {e}");
        }
    }
}

/// Counts a rejection (the harmless kinds are not counted).
fn note<T>(result: Result<T, Rejection>, rejected: &mut usize, first: &mut Option<Rejection>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if e.is_noise() => None,
        Err(e) => {
            *rejected += 1;
            first.get_or_insert(e);
            None
        }
    }
}

impl ControlNode {
    /// Forged or unowned claims are worth a warning, but a member sending
    /// thousands of them must not turn into thousands of log lines: at most
    /// a burst of 20, then 2 a second, the rest counted in the next line.
    fn log_rejection(&mut self, signer: Option<PeerId>, e: &Rejection, now: Instant) {
        let signer = signer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
        if !self.rejection_log.allow(now) {
            self.rejections_unlogged += 1;
            return;
        }
        let unlogged = std::mem::take(&mut self.rejections_unlogged);
        tracing::warn!(%signer, unlogged, "gossip rejected: {e}");
    }
}
