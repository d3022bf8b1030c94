//! Step 5 and 6: how fast a new instance becomes resolvable everywhere, and
//! how fast a dead node's instance leaves every answer.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns_tests::dynamic::DynamicMesh;
use netns_tests::{Signal, Testbed};

use super::accuracy::Instance;
use super::poll::{answer, deploy, pause, remove, watch};
use super::world::{Rng, World};
use super::{step, Progress};

/// Give up on a new instance reaching every resolver after this long.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Give up on a dead instance leaving every answer after this long.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(20);
/// After the last resolver dropped the dead instance, keep watching this
/// long for answers that bring it back.
const FAILOVER_HOLD: Duration = Duration::from_secs(2);
/// A restarted node's instance must be answered by its city within this.
const COMEBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// One new-instance trial.
#[derive(Debug, Clone)]
pub struct Convergence {
    /// From the 201 of `POST /v1/workloads` to the last resolver answering
    /// the new address; `None`: not everywhere within [`CONVERGE_TIMEOUT`].
    pub took: Option<Duration>,
    /// How long the POST itself took (namespace, veth, registration).
    pub post: Duration,
}

/// Deploys `conv<k>` on a random node per trial and watches every resolver.
pub fn convergence(
    mesh: &DynamicMesh,
    sockets: &[UdpSocket],
    trials: usize,
    rng: &mut Rng,
    p: Progress,
) -> Result<Vec<Convergence>> {
    let everyone: Vec<usize> = (0..mesh.nodes.len()).collect();
    let mut out = Vec::new();
    for k in 0..trials {
        let host = &mesh.nodes[rng.below(mesh.nodes.len())];
        let service = format!("conv{k}");
        let posted = Instant::now();
        let addr = deploy(host, &service, 1)?;
        let t0 = Instant::now();
        let name = format!("closest.{service}.grove");
        let w = watch(
            sockets,
            &everyone,
            &name,
            t0,
            CONVERGE_TIMEOUT,
            Duration::ZERO,
            |a| a.contains(&addr),
        )?;
        let took = w.all();
        p.say(&format!(
            "  trial {}/{trials}: {service} on {} ({addr}): {} (POST {:.0} ms)",
            k + 1,
            host.name,
            took.map_or(
                format!(
                    "{} resolvers still without it after {CONVERGE_TIMEOUT:?}",
                    w.unsettled()
                ),
                |t| format!(
                    "every resolver answers it after {:.0} ms",
                    t.as_secs_f64() * 1000.0
                )
            ),
            (t0 - posted).as_secs_f64() * 1000.0
        ));
        out.push(Convergence {
            took,
            post: t0 - posted,
        });
        remove(host, &service, 1)?;
        pause(Duration::from_secs(1))?;
    }
    Ok(out)
}

/// One failover trial.
#[derive(Debug, Clone)]
pub struct Failover {
    /// Links cut before the kill (no FIN or RST reaches anyone).
    pub silent: bool,
    /// From the kill (silent: the first cut) to the last resolver that
    /// stopped answering the dead instance; `None`: not within the timeout.
    pub took: Option<Duration>,
    /// Resolvers that dropped it and later answered it again.
    pub relapses: usize,
    /// From the restart to the victim's city answering its new instance.
    pub comeback: Option<Duration>,
}

/// The testbed, mesh and view a failover trial works on.
pub struct Scene<'a> {
    pub tb: &'a Testbed,
    pub mesh: &'a mut DynamicMesh,
    pub world: &'a World,
    pub sockets: &'a [UdpSocket],
    pub p: Progress,
}

/// How many resolvers other than its host answer `instance` now.
pub fn answered_by(s: &Scene<'_>, instance: Instance) -> usize {
    let (host, addr) = instance;
    (0..s.mesh.nodes.len())
        .filter(|&i| i != host)
        .filter(|&i| answer(&s.sockets[i], "closest.ms2.grove").is_some_and(|a| a.contains(&addr)))
        .count()
}

/// Kills the host of `instances[slot]` (cutting its links first if
/// `silent`), times its instance out of every other resolver's answers,
/// then restarts it, re-deploys the instance and waits for its city to
/// answer it again (the new address is stored back in `instances`).
/// `before`: how many other resolvers answered the instance just now.
pub fn failover(
    s: &mut Scene<'_>,
    instances: &mut [Instance],
    slot: usize,
    silent: bool,
    before: usize,
) -> Result<Failover> {
    let (host, victim) = instances[slot];
    let n = s.mesh.nodes.len();
    let others: Vec<usize> = (0..n).filter(|&i| i != host).collect();
    let name = s.world.places[host].name.clone();

    let t0 = Instant::now();
    let wan = s.tb.wan();
    if silent {
        for &b in &others {
            wan.cut(s.tb.node(host), s.tb.node(b))
                .with_context(|| format!("cut {name}"))?;
        }
    }
    let cut = t0.elapsed();
    s.mesh.nodes[host]
        .stop_with(Signal::Kill)
        .with_context(|| format!("SIGKILL {name}"))?;
    let w = watch(
        s.sockets,
        &others,
        "closest.ms2.grove",
        t0,
        FAILOVER_TIMEOUT,
        FAILOVER_HOLD,
        |a| !a.contains(&victim),
    )?;
    let took = w.all();
    s.p.say(&format!(
        "    {name} {} ({before} resolvers answered its {victim} before{}): {}{}",
        if silent {
            "cut off and SIGKILLed"
        } else {
            "SIGKILLed"
        },
        if silent {
            format!(
                "; cutting {} links took {:.0} ms",
                others.len(),
                cut.as_secs_f64() * 1000.0
            )
        } else {
            String::new()
        },
        took.map_or(
            format!(
                "{} resolvers still answer it after {FAILOVER_TIMEOUT:?}",
                w.unsettled()
            ),
            |t| format!(
                "gone from every answer after {:.0} ms",
                t.as_secs_f64() * 1000.0
            )
        ),
        if w.relapses > 0 {
            format!(" ({} answers brought it back for a while)", w.relapses)
        } else {
            String::new()
        }
    ));
    if silent {
        for &b in &others {
            wan.heal(s.tb.node(host), s.tb.node(b))
                .with_context(|| format!("heal {name}"))?;
        }
    }

    let restarted = Instant::now();
    s.mesh.nodes[host]
        .start()
        .with_context(|| format!("restart {name}"))?;
    let number = u32::try_from(slot + 1).unwrap_or(u32::MAX);
    let addr = deploy(&s.mesh.nodes[host], "ms2", number)?;
    instances[slot].1 = addr;
    let city = s.world.city_of(host);
    let back = watch(
        s.sockets,
        &city,
        "closest.ms2.grove",
        restarted,
        COMEBACK_TIMEOUT,
        Duration::ZERO,
        |a| a.first() == Some(&addr),
    )?;
    let comeback = back.all();
    s.p.say(&format!(
        "    {name} restarted, ms2 re-deployed at {addr}: {}",
        comeback.map_or(
            format!(
                "{} of its city's {} resolvers do not answer it after {COMEBACK_TIMEOUT:?}",
                back.unsettled(),
                city.len()
            ),
            |t| format!(
                "its city ({} nodes) answers it {:.1} s after the restart",
                city.len(),
                t.as_secs_f64()
            )
        )
    ));
    pause(Duration::from_secs(1))?;
    Ok(Failover {
        silent,
        took,
        relapses: w.relapses,
        comeback,
    })
}

/// `kill` SIGKILL trials and `silent` ones spread among them, each on the
/// next ms2 host in rotation whose instance other resolvers answer (a
/// host that never came back is passed over).
pub fn failover_trials(
    s: &mut Scene<'_>,
    instances: &mut [Instance],
    kill: usize,
    silent: usize,
) -> Result<Vec<Failover>> {
    let total = kill + silent;
    let mut out = Vec::new();
    let mut cursor = 0;
    for t in 0..total {
        let is_silent = (t + 1) * silent / total > t * silent / total;
        let pick = (0..instances.len())
            .map(|k| (cursor + k) % instances.len())
            .map(|k| (k, answered_by(s, instances[k])))
            .find(|&(_, before)| before > 0);
        let Some((slot, before)) = pick else {
            s.p.say(&format!(
                "   trial {}/{total} skipped: no ms2 instance is answered by any resolver but its host's",
                t + 1
            ));
            continue;
        };
        cursor = slot + 1;
        let kind = if is_silent { "silent" } else { "SIGKILL" };
        s.p.say(&format!("   trial {}/{total} ({kind})", t + 1));
        match step(
            s.p,
            "failover trial",
            failover(s, instances, slot, is_silent, before),
        )? {
            Some(f) => out.push(f),
            None => break,
        }
    }
    Ok(out)
}
