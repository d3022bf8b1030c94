//! `--hold`: keep the mesh up and show the user how to poke at it.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::bed::DemoBed;
use crate::stop;
use crate::ui::say;

/// Prints commands to try, then waits for Ctrl-C, watching the daemons.
pub fn hold(bed: &mut DemoBed, netmanager: &Path) -> Result<()> {
    let first = &bed.mesh.nodes[0];
    let last = &bed.mesh.nodes[bed.mesh.nodes.len() - 1];
    let last_overlay = bed.overlay(bed.mesh.nodes.len() - 1);
    let (ns0, ns1) = (first.netns.as_str(), last.netns.as_str());
    let dir = bed.dir.path().display();
    say("");
    say("The mesh stays up until you press Ctrl-C. From another terminal, as root:");
    say("");
    for (command, what) in [
        (
            format!("ip netns exec {ns0} ping {last_overlay}"),
            format!("{} → {} through the tunnel", first.name, last.name),
        ),
        (
            format!(
                "{} status --socket {}",
                netmanager.display(),
                first.control_socket.display()
            ),
            format!("members, RTTs, closest answers and tunnels of {}", first.name),
        ),
        (
            format!("ip netns exec {ns1} tcpdump -ni eth0 udp port 50103"),
            "what crosses the underlay: WireGuard messages only".into(),
        ),
        (
            format!("ip netns exec {ns0} ip addr show grove0"),
            "the TUN and its overlay address".into(),
        ),
        (
            format!("ip netns exec {ns1} dig @127.0.0.153 explain.closest.ms2.cam.grove TXT"),
            "why the resolver picks what it picks".into(),
        ),
        (
            format!("ip netns exec {ns0} curl -s 127.0.0.1:9103/metrics | grep grove_member"),
            "Prometheus metrics".into(),
        ),
        (
            format!("cat {dir}/{}.toml", first.name),
            "the authority's config ([control] + --admit)".into(),
        ),
        (
            format!("tail -f {dir}/{}.log", first.name),
            "a node's log".into(),
        ),
    ] {
        say(&format!("  {command}"));
        say(&format!("      # {what}"));
    }
    say("");
    say("Namespaces: ip netns list (ours are the tb-… ones; the -r one is the router with the WAN emulator).");
    let mut reported = vec![false; bed.mesh.nodes.len()];
    loop {
        stop::sleep(Duration::from_millis(500))?;
        for (node, seen) in bed.mesh.nodes.iter_mut().zip(&mut reported) {
            let running = node.child.as_mut().is_some_and(|c| c.is_running());
            if !running && !*seen && !stop::requested() {
                *seen = true;
                say(&format!(
                    "note: netmanager on {} has exited; see {dir}/{}.log",
                    node.name, node.name
                ));
            }
        }
    }
}
