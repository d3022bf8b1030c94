//! The DNS part of the tour: `ms2` runs in two sites; every node's resolver
//! is asked for `closest.ms2` and names the instance nearest to it.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::bed::DemoBed;
use crate::stop;
use crate::ui::{say, step};

/// Instances of `ms2` (app `cam`): (number, node index).
const MS2: [(u32, usize); 2] = [(1, 1), (2, 2)];

pub fn show(bed: &DemoBed) -> Result<()> {
    step("semantic DNS: ms2 runs in frankfurt and helsinki; each node asks its resolver for closest.ms2");
    let body: Vec<String> = MS2
        .iter()
        .map(|(number, node)| {
            let plan = &bed.mesh.nodes[*node].plan;
            format!(
                r#"{{"service":"ms2","app":"cam","number":{number},"node":"{}","ipv4":"{}"}}"#,
                plan.name, plan.overlay
            )
        })
        .collect();
    let body = format!("[{}]", body.join(","));
    // Static mode: each node's directory is its own, so register everywhere.
    for node in &bed.mesh.nodes {
        stop::check()?;
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "--unix-socket"])
            .arg(&node.control_socket)
            .args(["http://netmanager/v1/instances", "-d", &body])
            .output()
            .context("running curl (apt-get install curl)")?;
        if !out.status.success() {
            bail!("registering ms2 on {}: {}", node.plan.name, String::from_utf8_lossy(&out.stdout));
        }
    }
    say(&format!("    {:<10}  {:<22}  {}", "asker", "closest.ms2.cam.grove", "why"));
    for (i, node) in bed.mesh.nodes.iter().enumerate() {
        stop::check()?;
        let ns = bed.tb.node(i).netns();
        let answer = dig(ns, "closest.ms2.cam.grove", "A")?;
        let site = bed
            .mesh
            .nodes
            .iter()
            .find(|n| n.plan.overlay.to_string() == answer)
            .map_or("?", |n| n.plan.name.as_str());
        let why = dig(ns, "explain.closest.ms2.cam.grove", "TXT")?;
        let reason = why.split("\" \"").nth(1).unwrap_or("").trim_matches('"');
        say(&format!("    {:<10}  {:<22}  {}", node.plan.name, format!("{answer} ({site})"), reason));
    }
    say("    (ask yourself: ip netns exec <ns> dig @127.0.0.153 explain.closest.ms2.cam.grove TXT)");
    say("");
    Ok(())
}

fn dig(ns: &netns_tests::Netns, name: &str, kind: &str) -> Result<String> {
    let out = ns
        .exec("dig", &["+short", "+time=2", "+tries=2", "@127.0.0.153", name, kind])
        .context("running dig (apt-get install dnsutils)")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
