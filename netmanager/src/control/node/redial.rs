//! Keeping in touch: live members we lost the connection to are redialled
//! with exponential backoff; dead ones now and then (a healed partition
//! brings them back) until they are pruned; departed ones never. With no
//! member connected at all, the bootstrap addresses are tried.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;

use super::{ControlNode, Output};
use crate::control::membership::Liveness;

const FIRST_DELAY: Duration = Duration::from_secs(2);
const DEAD_DELAY: Duration = Duration::from_secs(5);
const MAX_DELAY: Duration = Duration::from_secs(60);

pub struct Redial {
    bootstrap: Vec<SocketAddr>,
    next: HashMap<PeerId, (Instant, Duration)>,
    bootstrap_next: Option<(Instant, Duration)>,
    last_round: Option<Instant>,
}

impl Redial {
    pub fn new(bootstrap: Vec<SocketAddr>) -> Redial {
        Redial { bootstrap, next: HashMap::new(), bootstrap_next: None, last_round: None }
    }

    pub fn connected(&mut self, peer: &PeerId) {
        self.next.remove(peer);
        self.bootstrap_next = None;
    }

    /// True (and the next attempt scheduled) when `key`'s attempt is due.
    fn due(slot: &mut Option<(Instant, Duration)>, first: Duration, now: Instant) -> bool {
        match slot {
            Some((at, _)) if now < *at => false,
            Some((at, delay)) => {
                *delay = (*delay * 2).min(MAX_DELAY);
                *at = now + *delay;
                true
            }
            None => {
                *slot = Some((now + first, first));
                true
            }
        }
    }
}

impl ControlNode {
    pub(super) fn redial_round(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.redial.last_round.is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1)) {
            return;
        }
        self.redial.last_round = Some(now);
        let targets: Vec<(PeerId, bool, Vec<SocketAddr>)> = self
            .membership
            .members()
            .filter(|m| m.peer != self.local_peer && !matches!(m.liveness, Liveness::Left { .. }))
            .map(|m| (m.peer, matches!(m.liveness, Liveness::Dead { .. }), m.record.control.to_vec()))
            .collect();
        let alive: std::collections::HashSet<PeerId> = targets.iter().map(|(p, _, _)| *p).collect();
        self.redial.next.retain(|p, _| alive.contains(p));
        for (peer, dead, addrs) in targets {
            let connected = self.connections.contains_key(&peer);
            if connected && !dead {
                continue;
            }
            let mut slot = self.redial.next.get(&peer).copied();
            if connected {
                // A probe over a live connection costs nothing: no backoff.
                slot = slot.map(|(at, _)| (at, DEAD_DELAY / 2));
            }
            let due = Redial::due(&mut slot, if dead { DEAD_DELAY } else { FIRST_DELAY }, now);
            if let Some(slot) = slot {
                self.redial.next.insert(peer, slot);
            }
            if !due {
                continue;
            }
            if connected {
                // A partition that healed under a live TCP connection brings
                // no new connection (and so no sync): ask the "dead" member
                // directly; an answer means it is back, and the probe's
                // "suspected" flag makes it re-sign its record.
                self.probe_now(peer, now, out);
            } else {
                out.push(Output::Dial { peer, addrs });
            }
        }
        let lonely = !self.connections.values().any(|c| c.trusted);
        if lonely && !self.redial.bootstrap.is_empty() {
            let mut slot = self.redial.bootstrap_next;
            if Redial::due(&mut slot, DEAD_DELAY, now) {
                for addr in &self.redial.bootstrap {
                    out.push(Output::DialAddress(*addr));
                }
            }
            self.redial.bootstrap_next = slot;
        }
    }
}
