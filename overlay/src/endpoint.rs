//! Where a peer is reached: configured endpoints tried in turn while
//! handshakes go unanswered, and roaming to wherever authenticated packets
//! come from. Pure: the caller passes `now`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an endpoint may stay silent during handshake attempts before the
/// next configured one (say, the IPv6 address) is tried. Just under
/// boringtun's REKEY_TIMEOUT (5 s), so the first retransmission already
/// goes to the next address.
pub const FAILOVER_AFTER: Duration = Duration::from_millis(4500);

#[derive(Debug, Clone)]
pub struct EndpointSelector {
    configured: Vec<SocketAddr>,
    current: Option<SocketAddr>,
    next: usize,
    last_authenticated: Option<Instant>,
    since: Instant,
}

impl EndpointSelector {
    pub fn new(configured: Vec<SocketAddr>, now: Instant) -> Self {
        Self {
            current: configured.first().copied(),
            configured,
            next: 1,
            last_authenticated: None,
            since: now,
        }
    }

    /// Where packets go now.
    #[inline]
    pub fn current(&self) -> Option<SocketAddr> {
        self.current
    }

    /// An authenticated packet arrived from `from`: the peer lives there now
    /// (WireGuard's roaming). Returns the previous endpoint if it changed.
    pub fn authenticated_from(&mut self, from: SocketAddr, now: Instant) -> Option<Option<SocketAddr>> {
        self.last_authenticated = Some(now);
        if self.current == Some(from) {
            return None;
        }
        let old = self.current.replace(from);
        self.since = now;
        Some(old)
    }

    /// Whether an authenticated packet arrived in the last `window`.
    pub fn heard_within(&self, now: Instant, window: Duration) -> bool {
        self.last_authenticated
            .is_some_and(|t| now.saturating_duration_since(t) < window)
    }

    /// A handshake is being (re)sent. If the current endpoint has been silent
    /// for [`FAILOVER_AFTER`], move on to the next configured one; returns it.
    pub fn handshake_retry(&mut self, now: Instant) -> Option<SocketAddr> {
        let silent = self
            .last_authenticated
            .is_none_or(|t| now.duration_since(t) >= FAILOVER_AFTER);
        if self.configured.len() < 2 || !silent || now.duration_since(self.since) < FAILOVER_AFTER {
            return None;
        }
        let next = self.configured[self.next % self.configured.len()];
        self.next = self.next.wrapping_add(1);
        self.current = Some(next);
        self.since = now;
        Some(next)
    }

    /// New configured endpoints. A peer we are talking to stays where it is;
    /// one we never reached starts over with the new list.
    pub fn reconfigure(&mut self, configured: Vec<SocketAddr>, now: Instant) {
        if self.configured == configured {
            return;
        }
        if self.last_authenticated.is_none() || self.current.is_none() {
            self.current = configured.first().copied();
            self.since = now;
        }
        self.configured = configured;
        self.next = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn silent_endpoint_fails_over_to_the_next_and_wraps() {
        let t0 = Instant::now();
        let (v4, v6) = (addr("198.18.1.2:50103"), addr("[fd18:1::2]:50103"));
        let mut e = EndpointSelector::new(vec![v4, v6], t0);
        assert_eq!(e.current(), Some(v4));
        assert_eq!(e.handshake_retry(t0 + Duration::from_secs(1)), None, "too early");
        assert_eq!(e.handshake_retry(t0 + Duration::from_secs(5)), Some(v6));
        assert_eq!(e.current(), Some(v6));
        assert_eq!(e.handshake_retry(t0 + Duration::from_secs(6)), None, "new endpoint gets its time");
        assert_eq!(e.handshake_retry(t0 + Duration::from_secs(10)), Some(v4), "wraps around");
    }

    #[test]
    fn answering_endpoint_is_kept_and_roaming_follows_the_peer() {
        let t0 = Instant::now();
        let (a, b) = (addr("198.18.1.2:50103"), addr("198.18.1.3:50103"));
        let mut e = EndpointSelector::new(vec![a, addr("[fd18:1::2]:50103")], t0);
        assert_eq!(e.authenticated_from(a, t0), None, "same endpoint, no change");
        assert_eq!(e.handshake_retry(t0 + Duration::from_secs(3)), None, "answered recently");
        assert_eq!(e.authenticated_from(b, t0 + Duration::from_secs(4)), Some(Some(a)));
        assert_eq!(e.current(), Some(b));
    }

    #[test]
    fn single_or_no_endpoint_never_rotates() {
        let t0 = Instant::now();
        let mut one = EndpointSelector::new(vec![addr("198.18.1.2:50103")], t0);
        assert_eq!(one.handshake_retry(t0 + Duration::from_secs(60)), None);
        let mut none = EndpointSelector::new(vec![], t0);
        assert_eq!(none.current(), None);
        assert_eq!(none.handshake_retry(t0 + Duration::from_secs(60)), None);
        assert_eq!(none.authenticated_from(addr("198.18.9.9:1"), t0), Some(None), "learned from the peer");
    }

    #[test]
    fn reconfigure_moves_only_unreached_peers() {
        let t0 = Instant::now();
        let (a, b) = (addr("198.18.1.2:50103"), addr("198.18.5.2:50103"));
        let mut fresh = EndpointSelector::new(vec![a], t0);
        fresh.reconfigure(vec![b], t0);
        assert_eq!(fresh.current(), Some(b));
        let mut talking = EndpointSelector::new(vec![a], t0);
        talking.authenticated_from(a, t0);
        talking.reconfigure(vec![b], t0);
        assert_eq!(talking.current(), Some(a), "a live session is not moved by config");
    }
}
