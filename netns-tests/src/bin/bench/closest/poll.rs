//! Asking many resolvers at once, and workloads through the local API.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use netns_tests::dynamic::{ask, DynamicNode};
use netns_tests::interrupt;

/// Rounds over the resolvers start this far apart (or back to back when a
/// round takes longer).
const ROUND: Duration = Duration::from_millis(20);

/// The A answer of one resolver, `None` if it did not answer in time.
pub fn answer(socket: &UdpSocket, name: &str) -> Option<Vec<Ipv4Addr>> {
    ask(socket, name).ok().map(|a| a.addresses)
}

/// What [`watch`] found for each node it watched.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Per watched node (in the order given): since `t0`, when its answers
    /// started to satisfy the condition for good (`None`: never, or not
    /// at the end).
    pub settled: Vec<Option<Duration>>,
    /// Nodes whose answers satisfied the condition and then stopped again.
    pub relapses: usize,
}

impl Watched {
    /// When the last node settled; `None` if any did not.
    pub fn all(&self) -> Option<Duration> {
        self.settled
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    pub fn unsettled(&self) -> usize {
        self.settled.iter().filter(|s| s.is_none()).count()
    }
}

/// Asks `name` on the resolvers of `nodes` round after round until every
/// one's answer satisfies `ok`, and has for `hold` since the last one got
/// there (to catch answers that come back), or `timeout` since `t0`.
/// A resolver that does not answer does not satisfy `ok`.
pub fn watch(
    sockets: &[UdpSocket],
    nodes: &[usize],
    name: &str,
    t0: Instant,
    timeout: Duration,
    hold: Duration,
    ok: impl Fn(&[Ipv4Addr]) -> bool,
) -> Result<Watched> {
    let mut settled: Vec<Option<Duration>> = vec![None; nodes.len()];
    let mut relapses = 0;
    loop {
        interrupt::check()?;
        let round = Instant::now();
        for (k, &i) in nodes.iter().enumerate() {
            let good = answer(&sockets[i], name).is_some_and(|a| ok(&a));
            match (good, settled[k]) {
                (true, None) => settled[k] = Some(t0.elapsed()),
                (false, Some(_)) => {
                    settled[k] = None;
                    relapses += 1;
                }
                _ => {}
            }
        }
        let last = settled
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .and_then(|s| s.into_iter().max());
        if last.is_some_and(|l| t0.elapsed() >= l + hold) || t0.elapsed() >= timeout {
            return Ok(Watched { settled, relapses });
        }
        std::thread::sleep(ROUND.saturating_sub(round.elapsed()));
    }
}

/// Starts a workload of `service` (app `bench`) on `node`; its address.
pub fn deploy(node: &DynamicNode, service: &str, number: u32) -> Result<Ipv4Addr> {
    let body = format!(
        r#"{{"service":"{service}","app":"bench","number":{number},"ports":[{{"name":"http","protocol":"tcp","port":8080}}]}}"#
    );
    let (code, created) = node
        .api("POST", "/v1/workloads", Some(&body))
        .with_context(|| format!("POST /v1/workloads on {}", node.name))?;
    if code != 201 {
        return Err(anyhow!(
            "POST /v1/workloads on {} ({service} #{number}): HTTP {code} {created}",
            node.name
        ));
    }
    created["workload"]["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "POST /v1/workloads on {}: no address in {created}",
                node.name
            )
        })
}

/// Deletes the workload [`deploy`] started.
pub fn remove(node: &DynamicNode, service: &str, number: u32) -> Result<()> {
    let path = format!("/v1/workloads/{service}/bench/default/{number}");
    let (code, body) = node
        .api("DELETE", &path, None)
        .with_context(|| format!("DELETE {path} on {}", node.name))?;
    if code != 200 {
        return Err(anyhow!(
            "DELETE {path} on {}: HTTP {code} {body}",
            node.name
        ));
    }
    Ok(())
}

/// Sleeps `duration`, waking early on Ctrl-C.
pub fn pause(duration: Duration) -> Result<()> {
    interrupt::sleep(duration).map_err(Into::into)
}
