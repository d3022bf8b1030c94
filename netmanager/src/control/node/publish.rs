//! This node's own records: versions, signing, republishing, refuting a
//! suspicion, leaving.
//!
//! Versions are `incarnation << 32 | sequence` (see
//! [`crate::control::wire::records`]); a version of ours seen in a sync
//! answer that is higher than ours (state lost, or the incarnation file
//! restored from an old backup) is adopted, so the next record beats it.

use std::time::{Duration, Instant};

use super::{ControlNode, Done, Output};
use crate::control::membership::Rejection;
use crate::control::vivaldi::Coordinate;
use crate::control::wire::records::{Gossip, InstanceSet, Leave};
use crate::control::wire::{encode, Bounded, Signed};
use crate::control::ControlError;

/// The record is re-signed with a fresh coordinate at most this often, when
/// the coordinate moved more than [`REPUBLISH_MOVE`] (members that probe us
/// get our coordinate in every probe anyway)…
const REPUBLISH_MIN: Duration = Duration::from_secs(30);
const REPUBLISH_MOVE: Duration = Duration::from_millis(5);
/// …and at least this often (anti-entropy; sync on connect does the rest).
const REPUBLISH_MAX: Duration = Duration::from_secs(300);
/// Refutations at most this often: every watcher's probe says "suspected"
/// until our newer record reaches it, and one answer is enough.
const REFUTE_INTERVAL: Duration = Duration::from_millis(250);

pub struct Publishing {
    incarnation: u32,
    version: u64,
    set_version: u64,
    last_published: Instant,
    published_coordinate: Coordinate,
    refute_pending: bool,
    last_housekeeping: Instant,
}

impl Publishing {
    pub fn new(incarnation: u32, now: Instant) -> Publishing {
        Publishing {
            incarnation,
            version: 0,
            set_version: 0,
            last_published: now,
            published_coordinate: Coordinate::origin(),
            refute_pending: false,
            last_housekeeping: now,
        }
    }

    /// The version of our current record.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn next(&self, current: u64) -> u64 {
        (current + 1).max(u64::from(self.incarnation) << 32 | 1)
    }

    /// Once a second.
    pub fn housekeeping_due(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.last_housekeeping) >= Duration::from_secs(1) {
            self.last_housekeeping = now;
            return true;
        }
        self.refute_pending
    }
}

impl ControlNode {
    /// Signs the node record anew (fresh version and coordinate), applies
    /// it locally and gossips it.
    pub(super) fn publish_record(&mut self, now: Instant, out: &mut Vec<Output>) {
        let version = self.publishing.next(self.publishing.version);
        let coordinate = self.vivaldi.coordinate();
        let record = self.local.record(coordinate, version);
        match Signed::sign(&record, &self.keypair) {
            Ok(signed) => {
                self.publishing.version = version;
                self.publishing.published_coordinate = coordinate;
                self.publishing.last_published = now;
                self.publishing.refute_pending = false;
                match self.membership.apply_node(&signed, now) {
                    Ok(changes) => self.changed(changes, now, out),
                    Err(e) => tracing::error!("our own record is refused: {e}"),
                }
                self.gossip(&Gossip::Node(signed), out);
            }
            Err(e) => tracing::error!("cannot sign our node record: {e}"),
        }
    }

    pub(super) fn publish_instances(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Err(e) = self.try_publish_instances(now, out) {
            tracing::error!("our instance set is not published: {e}");
        }
    }

    /// Signs, applies and gossips the instance set; an error (too large to
    /// sign) changes nothing, so the caller can roll back and say why.
    pub(super) fn try_publish_instances(&mut self, now: Instant, out: &mut Vec<Output>) -> Result<(), ControlError> {
        let version = self.publishing.next(self.publishing.set_version);
        let instances = Bounded::new(self.local.instances().values().cloned().collect()).ok_or(ControlError::TooManyInstances {
            limit: crate::control::wire::records::MAX_INSTANCES,
        })?;
        let set = InstanceSet { node: self.local_peer.to_bytes(), version, instances };
        let signed = Signed::sign(&set, &self.keypair).map_err(ControlError::Sign)?;
        self.publishing.set_version = version;
        match self.membership.apply_instances(&signed, now) {
            Ok(changes) => self.changed(changes, now, out),
            Err(e) => tracing::error!("our own instance set is refused: {e}"),
        }
        self.gossip(&Gossip::Instances(signed), out);
        Ok(())
    }

    pub(super) fn gossip(&self, gossip: &Gossip, out: &mut Vec<Output>) {
        match encode(gossip) {
            Ok(bytes) => out.push(Output::Publish(bytes)),
            Err(e) => tracing::error!("cannot encode gossip: {e}"),
        }
    }

    /// Someone suspects us: answer with a newer record (at most every
    /// [`REFUTE_INTERVAL`], the rest waits for the next tick).
    pub(super) fn refute(&mut self, now: Instant, out: &mut Vec<Output>) {
        if now.saturating_duration_since(self.publishing.last_published) >= REFUTE_INTERVAL {
            tracing::info!("suspected by a watcher: refuting with a newer record");
            self.publish_record(now, out);
        } else {
            self.publishing.refute_pending = true;
        }
    }

    /// Pending refutations, coordinate moves, anti-entropy.
    pub(super) fn republish(&mut self, now: Instant, out: &mut Vec<Output>) {
        let age = now.saturating_duration_since(self.publishing.last_published);
        if self.publishing.refute_pending && age >= REFUTE_INTERVAL {
            tracing::info!("suspected by a watcher: refuting with a newer record");
            self.publish_record(now, out);
            return;
        }
        let moved = self.publishing.published_coordinate.estimate_rtt(&self.vivaldi.coordinate()) > REPUBLISH_MOVE;
        if (moved && age >= REPUBLISH_MIN) || age >= REPUBLISH_MAX {
            self.publish_record(now, out);
        }
    }

    /// A version of ours seen elsewhere: the next record must beat it.
    pub(super) fn adopt_own_versions(&mut self, record: Option<u64>, set: Option<u64>, now: Instant, out: &mut Vec<Output>) {
        let mut republish = false;
        if let Some(seen) = record.filter(|v| *v > self.publishing.version) {
            tracing::warn!(seen, ours = self.publishing.version, "a newer record of ours is about (state from an earlier run?): superseding it");
            self.publishing.version = seen;
            republish = true;
        }
        if let Some(seen) = set.filter(|v| *v > self.publishing.set_version) {
            self.publishing.set_version = seen;
            self.publish_instances(now, out);
        }
        if republish {
            self.publish_record(now, out);
        }
    }

    /// Gossips a record made elsewhere (the authority's revocation), after
    /// applying it ourselves.
    pub(super) fn publish_foreign(&mut self, gossip: Gossip, now: Instant, out: &mut Vec<Output>) -> Result<Done, ControlError> {
        let applied = match &gossip {
            Gossip::Revoke(signed) => self.membership.apply_revocation(signed, now),
            _ => Err(Rejection::Invalid("only revocations are published on behalf of others".into())),
        };
        match applied {
            Ok(changes) => self.changed(changes, now, out),
            Err(e) if e.is_noise() => {}
            Err(e) => return Err(ControlError::Rejected(e.to_string())),
        }
        self.gossip(&gossip, out);
        Ok(Done::Published)
    }

    /// A signed goodbye; peers drop us at once instead of suspecting us.
    pub(super) fn leave(&mut self, out: &mut Vec<Output>) -> Done {
        let leave = Leave { node: self.local_peer.to_bytes(), version: self.publishing.version };
        match Signed::sign(&leave, &self.keypair) {
            Ok(signed) => self.gossip(&Gossip::Leave(signed), out),
            Err(e) => tracing::error!("cannot sign our leave: {e}"),
        }
        Done::Left
    }
}
