//! The selection policies, as pure functions over the instances of one
//! (app, namespace), a distance oracle, round-robin state and config.
//!
//! The health rule, common to all: among the candidates that qualify (that
//! expose the asked port, for SRV-form names), only healthy ones are served
//! while any exists. When none is healthy the unhealthy ones are served,
//! flagged [`Selection::degraded`] (short TTL, said in `explain`), unless
//! `serve_unhealthy` is off, in which case the answer is
//! [`Miss::NoHealthyInstance`]. `instance-N` names one instance: its own
//! health alone counts.

use std::net::IpAddr;

use crate::closest::{assess, closest_reason, pick_closest, rank_closest, ClosestReason, Ranked};
use crate::config::PolicyConfig;
use crate::directory::{DistanceOracle, Instance, Instances};
use crate::name::{Policy, PortSelector};
use crate::rr::{pick_turn, RrKey, RrTable};

/// What the policies need besides the candidates.
pub struct PolicyContext<'a, O: ?Sized> {
    /// Distances from this node, for `closest` and `explain`.
    pub oracle: &'a O,
    /// Round-robin counters, for `rr`.
    pub rr: &'a RrTable,
    /// The querier's address: `rr` rotates per asker.
    pub asker: IpAddr,
    /// Tie margin, stand-in model, health fallback.
    pub config: &'a PolicyConfig,
}

/// Which candidates a selection may serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Only instances exposing this port (SRV form).
    pub port: Option<PortSelector>,
    /// Only healthy instances (false once the health rule fell back).
    pub healthy_only: bool,
}

impl Filter {
    /// True when `instance` may be served.
    pub fn admits(&self, instance: &Instance) -> bool {
        (!self.healthy_only || instance.healthy)
            && self.port.is_none_or(|p| instance.has_port(p.name.as_str(), p.protocol))
    }
}

/// Which candidate(s) a policy chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picked {
    /// This index into [`Selection::candidates`].
    One(usize),
    /// Every candidate the [`Selection::filter`] admits.
    All,
}

/// Why the selection came out as it did, for `explain`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// `closest`: why the winner won.
    Closest(ClosestReason),
    /// `rr`: the asker's `turn`, modulo `eligible` candidates.
    Turn {
        /// The asker's turn number (see [`RrTable::next_turn`]).
        turn: u64,
        /// How many candidates were in the rotation.
        eligible: usize,
    },
    /// `all`: every admitted candidate.
    Every {
        /// How many.
        count: usize,
    },
    /// `instance-N`: asked for by number.
    Numbered,
}

/// The reasoning behind a selection (only built for `explain` queries).
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// Why the winner won.
    pub reason: Reason,
    /// The admitted candidates with what the oracle said: for `closest` in
    /// rank order (the winner, then the runners-up), for `rr` in rotation
    /// order from the chosen one, otherwise by instance number.
    pub ranking: Vec<Ranked>,
    /// Candidates not admitted (unhealthy while a healthy one exists, or
    /// without the asked port).
    pub excluded: usize,
}

/// A policy's answer.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The policy that chose.
    pub policy: Policy,
    /// The instances of the (app, namespace) the name resolved to.
    pub candidates: Instances,
    /// Which of them it chose.
    pub picked: Picked,
    /// Which candidates were eligible (port, health).
    pub filter: Filter,
    /// No healthy instance qualified: unhealthy ones are served.
    pub degraded: bool,
    /// The reasoning, for `explain` queries only.
    pub explanation: Option<Explanation>,
}

impl Selection {
    /// The chosen instances, in answer order.
    pub fn chosen(&self) -> impl Iterator<Item = &Instance> + '_ {
        let (slice, check) = match self.picked {
            Picked::One(k) => (self.candidates.get(k..=k).unwrap_or(&[]), false),
            Picked::All => (&self.candidates[..], true),
        };
        slice.iter().filter(move |i| !check || self.filter.admits(i))
    }

    /// The first chosen instance.
    pub fn first(&self) -> Option<&Instance> {
        self.chosen().next()
    }
}

/// Why a policy had nothing to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No candidates at all.
    NoSuchService,
    /// `instance-N` with no instance N.
    NoSuchInstance(u32),
    /// No candidate exposes the asked port.
    NoSuchPort,
    /// None is healthy and `serve_unhealthy` is off.
    NoHealthyInstance,
}

/// Applies `policy` to `candidates` (instances of one app and namespace).
pub fn apply<O: DistanceOracle + ?Sized>(
    policy: Policy,
    candidates: Instances,
    port: Option<PortSelector>,
    explain: bool,
    cx: &PolicyContext<'_, O>,
) -> Result<Selection, Miss> {
    if let Policy::Instance(number) = policy {
        return apply_instance(number, candidates, port, explain, cx);
    }
    let (filter, degraded) = health_filter(&candidates, port, cx.config.serve_unhealthy)?;
    let admit = |i: &Instance| filter.admits(i);
    let (picked, explanation) = match policy {
        Policy::Closest if explain => {
            let ranking = rank_closest(&candidates, admit, cx.oracle, cx.config);
            let first = ranking.first().ok_or(Miss::NoSuchService)?.index;
            let reason = closest_reason(&ranking, cx.config).map_or(Reason::Numbered, Reason::Closest);
            (Picked::One(first), Some(explanation(reason, ranking, &candidates)))
        }
        Policy::Closest => {
            let first = pick_closest(&candidates, admit, cx.oracle, cx.config).ok_or(Miss::NoSuchService)?;
            (Picked::One(first), None)
        }
        Policy::RoundRobin => {
            let key = rr_key(&candidates, cx.asker).ok_or(Miss::NoSuchService)?;
            let turn = cx.rr.next_turn(&key);
            let chosen = pick_turn(&candidates, admit, turn).ok_or(Miss::NoSuchService)?;
            let explanation = explain.then(|| {
                let mut ranking = assess_admitted(&candidates, admit, cx);
                let eligible = ranking.len();
                let at = ranking.iter().position(|r| r.index == chosen).unwrap_or(0);
                ranking.rotate_left(at);
                explanation(Reason::Turn { turn, eligible }, ranking, &candidates)
            });
            (Picked::One(chosen), explanation)
        }
        Policy::All | Policy::Instance(_) => {
            let explanation = explain.then(|| {
                let ranking = assess_admitted(&candidates, admit, cx);
                explanation(Reason::Every { count: ranking.len() }, ranking, &candidates)
            });
            (Picked::All, explanation)
        }
    };
    Ok(Selection {
        policy,
        candidates,
        picked,
        filter,
        degraded,
        explanation,
    })
}

/// `instance-N`: the one instance, whatever the others' health.
fn apply_instance<O: DistanceOracle + ?Sized>(
    number: u32,
    candidates: Instances,
    port: Option<PortSelector>,
    explain: bool,
    cx: &PolicyContext<'_, O>,
) -> Result<Selection, Miss> {
    let at = candidates
        .iter()
        .position(|i| i.number == number)
        .ok_or(Miss::NoSuchInstance(number))?;
    let instance = &candidates[at];
    let filter = Filter {
        port,
        healthy_only: false,
    };
    if !filter.admits(instance) {
        return Err(Miss::NoSuchPort);
    }
    let degraded = !instance.healthy;
    if degraded && !cx.config.serve_unhealthy {
        return Err(Miss::NoHealthyInstance);
    }
    let explanation = explain.then(|| Explanation {
        reason: Reason::Numbered,
        ranking: vec![assess(at, instance, cx.oracle, cx.config)],
        excluded: 0,
    });
    Ok(Selection {
        policy: Policy::Instance(number),
        candidates,
        picked: Picked::One(at),
        filter,
        degraded,
        explanation,
    })
}

/// The health rule: healthy candidates with the port if any exist, else
/// (when allowed) every candidate with the port, flagged degraded.
fn health_filter(
    candidates: &[Instance],
    port: Option<PortSelector>,
    serve_unhealthy: bool,
) -> Result<(Filter, bool), Miss> {
    let any_port = Filter {
        port,
        healthy_only: false,
    };
    let healthy = Filter {
        port,
        healthy_only: true,
    };
    if candidates.iter().any(|i| healthy.admits(i)) {
        Ok((healthy, false))
    } else if !candidates.iter().any(|i| any_port.admits(i)) {
        Err(if candidates.is_empty() {
            Miss::NoSuchService
        } else {
            Miss::NoSuchPort
        })
    } else if serve_unhealthy {
        Ok((any_port, true))
    } else {
        Err(Miss::NoHealthyInstance)
    }
}

fn rr_key(candidates: &[Instance], asker: IpAddr) -> Option<RrKey<'_>> {
    let first = candidates.first()?;
    Some(RrKey {
        asker,
        service: first.service.as_str(),
        app: first.app.as_str(),
        namespace: first.namespace.as_str(),
    })
}

fn assess_admitted<O: DistanceOracle + ?Sized>(
    candidates: &[Instance],
    admit: impl Fn(&Instance) -> bool,
    cx: &PolicyContext<'_, O>,
) -> Vec<Ranked> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, i)| admit(i))
        .map(|(index, i)| assess(index, i, cx.oracle, cx.config))
        .collect()
}

fn explanation(reason: Reason, ranking: Vec<Ranked>, candidates: &[Instance]) -> Explanation {
    Explanation {
        reason,
        excluded: candidates.len().saturating_sub(ranking.len()),
        ranking,
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
