//! The DNS part of the tour: `ms2` runs as workloads (each in its own
//! namespace) in Frankfurt and Helsinki; every node's resolver names the
//! instance nearest to it; then Helsinki dies and the answers move.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netns_tests::dynamic::ask;
use netns_tests::Signal;

use crate::bed::DemoBed;
use crate::stop;
use crate::ui::{progress, say, step};

const NAME: &str = "closest.ms2.cam.grove";

/// Starts a workload of ms2 on `node`; returns its address.
fn deploy(bed: &DemoBed, node: usize, number: u32) -> Result<Ipv4Addr> {
    let n = &bed.mesh.nodes[node];
    let body = format!(r#"{{"service":"ms2","app":"cam","number":{number},"ports":[{{"name":"http","protocol":"tcp","port":8080}}]}}"#);
    let (code, created) = n.api("POST", "/v1/workloads", Some(&body)).context("POST /v1/workloads")?;
    if code != 201 {
        bail!("creating a workload on {}: HTTP {code} {created}", n.name);
    }
    let address: Ipv4Addr = created["workload"]["address"].as_str().unwrap_or_default().parse().context("workload address")?;
    progress(&format!(
        "{}: ms2 instance {number} in namespace {} at {address}",
        n.name,
        created["workload"]["netns"].as_str().unwrap_or("?")
    ));
    Ok(address)
}

pub fn show(bed: &mut DemoBed) -> Result<()> {
    step("workloads: ms2 starts in frankfurt and helsinki, each in its own namespace on the node's bridge");
    let (frankfurt, helsinki, espoo) = (1, 2, 3);
    deploy(bed, frankfurt, 1)?;
    let hel_ip = deploy(bed, helsinki, 2)?;
    step("semantic DNS: every node asks its own resolver for closest.ms2");
    let sockets = bed.mesh.nodes.iter().map(|n| n.resolver()).collect::<Result<Vec<_>, _>>()?;
    // Records spread by gossip within a round trip or two; wait for them.
    let answer = |i: usize| ask(&sockets[i], NAME).ok().and_then(|a| a.addresses.first().copied());
    let started = Instant::now();
    while (0..sockets.len()).any(|i| answer(i).is_none()) {
        stop::sleep(Duration::from_millis(50))?;
        if started.elapsed() > Duration::from_secs(10) {
            bail!("ms2 did not become resolvable everywhere\n{}", bed.mesh.logs(15));
        }
    }
    progress(&format!("resolvable on every node {:.0} ms after the workloads were created", started.elapsed().as_secs_f64() * 1000.0));
    say(&format!("    {:<10}  {:<28}  why", "asker", NAME));
    for (i, node) in bed.mesh.nodes.iter().enumerate() {
        stop::check()?;
        let ip = answer(i).context("no answer")?;
        let why = bed.tb.node(i).netns().exec("dig", &["+short", "+time=2", "@127.0.0.153", &format!("explain.{NAME}"), "TXT"]);
        let why = why.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        let reason = why.split("\" \"").nth(1).unwrap_or("").trim_matches(|c| c == '"' || c == '\n');
        say(&format!("    {:<10}  {:<28}  {reason}", node.name, format!("{ip} ({})", bed.owner(ip))));
    }

    step("helsinki's netmanager is killed (SIGKILL): no goodbye, its watchers notice");
    let before = answer(espoo);
    bed.mesh.nodes[helsinki].stop_with(Signal::Kill).context("killing helsinki")?;
    let killed = Instant::now();
    let moved = loop {
        stop::check()?;
        let now: Vec<Option<Ipv4Addr>> = (0..sockets.len()).filter(|i| *i != helsinki).map(answer).collect();
        if now.iter().all(|a| *a != Some(hel_ip)) {
            break killed.elapsed();
        }
        if killed.elapsed() > Duration::from_secs(10) {
            bail!("helsinki's instance still answered 10 s after the kill\n{}", bed.mesh.logs(15));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let after = answer(espoo).context("espoo has no answer")?;
    progress(&format!(
        "{:.0} ms later no resolver names helsinki's instance; espoo's answer moved {} → {after} ({})",
        moved.as_secs_f64() * 1000.0,
        before.map_or("-".into(), |b| format!("{b} ({})", bed.owner(b))),
        bed.owner(after)
    ));
    say(&indented_status(bed, espoo));

    step("helsinki restarts: same identity, kept grant; its workload comes back");
    bed.mesh.nodes[helsinki].start().context("restarting helsinki")?;
    let back_ip = deploy(bed, helsinki, 2)?;
    let started = Instant::now();
    while answer(espoo) != Some(back_ip) {
        stop::sleep(Duration::from_millis(20))?;
        if started.elapsed() > Duration::from_secs(15) {
            bail!("espoo never went back to helsinki\n{}", bed.mesh.logs(15));
        }
    }
    progress(&format!("espoo answers helsinki ({back_ip}) again, {:.0} ms after the instance was re-created", started.elapsed().as_secs_f64() * 1000.0));
    say("    (ask yourself: ip netns exec <ns> dig @127.0.0.153 explain.closest.ms2.cam.grove TXT)");
    say("");
    Ok(())
}

/// `netmanager status` of one node, members part only, indented.
fn indented_status(bed: &DemoBed, i: usize) -> String {
    let text = bed.mesh.nodes[i].status_text().unwrap_or_default();
    let members: String = text.split("\ninterface:").next().unwrap_or("").lines().map(|l| format!("    {l}\n")).collect();
    format!("    `netmanager status` on {}:\n{members}", bed.mesh.nodes[i].name)
}
