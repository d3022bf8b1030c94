//! Per-pair rules — delay, loss, cut — and the verdict for each packet.
//! Pure: randomness comes in as a number, time is not consulted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::protocol::WanCommand;

/// A directed (source, destination) pair.
pub type Pair = (IpAddr, IpAddr);

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Write it back after `delay`.
    Forward { delay: Duration },
    /// Drop it: the pair is cut.
    Cut,
    /// Drop it: random loss.
    Lost,
}

/// Rules for one direction of one pair.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct LinkRule {
    delay: Option<Duration>,
    /// 0.0–1.0
    loss: f64,
}

/// Counters of one direction of one pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PairCounters {
    pub forwarded: u64,
    pub lost: u64,
    pub cut: u64,
}

/// All rules and counters.
#[derive(Debug, Default)]
pub struct PolicyTable {
    default_delay: Duration,
    rules: HashMap<Pair, LinkRule>,
    /// Cut pairs, stored in both orders.
    cuts: HashSet<Pair>,
    counters: HashMap<Pair, PairCounters>,
    unparsed: u64,
}

impl PolicyTable {
    /// A table where every pair gets `default_delay` and nothing is dropped.
    pub fn new(default_delay: Duration) -> Self {
        PolicyTable {
            default_delay,
            ..PolicyTable::default()
        }
    }

    /// Applies a rule-changing command; [`WanCommand::Stats`] is a no-op here.
    pub fn apply(&mut self, command: &WanCommand) {
        match *command {
            WanCommand::Delay { src, dst, delay } => {
                self.rules.entry((src, dst)).or_default().delay = Some(delay);
            }
            WanCommand::Loss { src, dst, percent } => {
                self.rules.entry((src, dst)).or_default().loss = (percent / 100.0).clamp(0.0, 1.0);
            }
            WanCommand::Cut { a, b } => {
                self.cuts.insert((a, b));
                self.cuts.insert((b, a));
            }
            WanCommand::Heal { a, b } => {
                self.cuts.remove(&(a, b));
                self.cuts.remove(&(b, a));
            }
            WanCommand::Default { delay } => self.default_delay = delay,
            WanCommand::Stats => {}
        }
    }

    /// Decides the fate of a packet `src → dst` and counts it. `roll` is a
    /// uniform random number in [0, 1) used for loss.
    pub fn decide(&mut self, src: IpAddr, dst: IpAddr, roll: f64) -> Verdict {
        let pair = (src, dst);
        let rule = self.rules.get(&pair).copied().unwrap_or_default();
        let verdict = if self.cuts.contains(&pair) {
            Verdict::Cut
        } else if roll < rule.loss {
            Verdict::Lost
        } else {
            Verdict::Forward {
                delay: rule.delay.unwrap_or(self.default_delay),
            }
        };
        let counters = self.counters.entry(pair).or_default();
        match verdict {
            Verdict::Forward { .. } => counters.forwarded += 1,
            Verdict::Cut => counters.cut += 1,
            Verdict::Lost => counters.lost += 1,
        }
        verdict
    }

    /// Counts a packet that was not IPv4/IPv6 (it is dropped).
    pub fn count_unparsed(&mut self) {
        self.unparsed += 1;
    }

    /// Counters per pair (keyed `"src>dst"`) and packets that could not be parsed.
    pub fn counters(&self) -> (BTreeMap<String, PairCounters>, u64) {
        let per_pair = self
            .counters
            .iter()
            .map(|((s, d), c)| (format!("{s}>{d}"), *c))
            .collect();
        (per_pair, self.unparsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn default_then_specific_delay() {
        let (a, b) = (ip("198.18.1.2"), ip("198.18.2.2"));
        let mut t = PolicyTable::new(Duration::from_millis(1));
        assert_eq!(t.decide(a, b, 0.5), Verdict::Forward { delay: Duration::from_millis(1) });
        t.apply(&WanCommand::Delay { src: a, dst: b, delay: Duration::from_millis(20) });
        assert_eq!(t.decide(a, b, 0.5), Verdict::Forward { delay: Duration::from_millis(20) });
        // the reverse direction is untouched
        assert_eq!(t.decide(b, a, 0.5), Verdict::Forward { delay: Duration::from_millis(1) });
    }

    #[test]
    fn loss_uses_roll() {
        let (a, b) = (ip("198.18.1.2"), ip("198.18.2.2"));
        let mut t = PolicyTable::new(Duration::ZERO);
        t.apply(&WanCommand::Loss { src: a, dst: b, percent: 30.0 });
        assert_eq!(t.decide(a, b, 0.29), Verdict::Lost);
        assert!(matches!(t.decide(a, b, 0.31), Verdict::Forward { .. }));
        let (counters, _) = t.counters();
        let c = counters[&format!("{a}>{b}")];
        assert_eq!((c.forwarded, c.lost), (1, 1));
    }

    #[test]
    fn cut_is_symmetric_and_heals() {
        let (a, b) = (ip("198.18.1.2"), ip("198.18.2.2"));
        let mut t = PolicyTable::new(Duration::ZERO);
        t.apply(&WanCommand::Cut { a, b });
        assert_eq!(t.decide(a, b, 0.9), Verdict::Cut);
        assert_eq!(t.decide(b, a, 0.9), Verdict::Cut);
        t.apply(&WanCommand::Heal { a: b, b: a });
        assert!(matches!(t.decide(a, b, 0.9), Verdict::Forward { .. }));
    }
}
