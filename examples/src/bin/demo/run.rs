//! The demo from start to end: bring up, measure, show, (hold), tear down.

use std::time::Instant;

use anyhow::Result;

use crate::bed::{sites, DemoBed};
use crate::hold::hold;
use crate::naming;
use crate::preflight::{self, Binaries};
use crate::rtt::{self, PairRtt};
use crate::stop;
use crate::ui::{indented, say, step};
use crate::DemoArgs;

/// Runs the demo. Once the mesh is up, every way out — success, error,
/// Ctrl-C — goes through [`DemoBed::tear_down`]; a failure while bringing
/// it up unwinds through the `Drop` guards instead.
pub fn run(args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let binaries = preflight::check()?;
    say("grove demo: a dynamic encrypted mesh of 4 nodes at 3 sites on this machine, with WAN latency from geography");
    say("");
    let mut bed = DemoBed::bring_up(&sites())?;
    let result = tour(&mut bed, args, &binaries);
    if let Err(e) = &result {
        say("");
        say(&format!("stopping: {e}"));
    }
    bed.tear_down()?;
    if result.is_ok() {
        say(&format!(
            "Done in {:.1} s.",
            started.elapsed().as_secs_f64()
        ));
    }
    result
}

/// What the user came to see, on a mesh that is up.
fn tour(bed: &mut DemoBed, args: &DemoArgs, binaries: &Binaries) -> Result<()> {
    let rows = rtt::measure(bed, args.pings)?;
    say("");
    say(&rtt::render(&rows));

    let first = &bed.mesh.nodes[0];
    step(&format!("`netmanager status` on {}", first.name));
    stop::check()?;
    let status = first.status_text()?;
    say(&indented(&status));
    if status.contains("no_route") {
        say("    (no_route counts packets the kernel put into grove0 for addresses no peer owns:");
        say("    here its IPv6 router solicitations, sent when the interface came up.)");
        say("");
    }

    naming::show(bed)?;

    summary(bed, &rows, args.hold);
    if args.hold {
        // Returns only with an error: Interrupted on Ctrl-C.
        match hold(bed, &binaries.netmanager) {
            Err(e) if e.downcast_ref::<stop::Interrupted>().is_some() => say(&format!("\n{e}")),
            other => other?,
        }
    }
    Ok(())
}

fn summary(bed: &DemoBed, rows: &[PairRtt], hold: bool) {
    let names: Vec<&str> = bed.mesh.nodes.iter().map(|n| n.name.as_str()).collect();
    let costs: Vec<f64> = rows.iter().filter_map(PairRtt::tunnel_cost_ms).collect();
    let mean_cost = costs.iter().sum::<f64>() / costs.len().max(1) as f64;
    say("What you saw:");
    say(&format!(
        "  - {} network namespaces ({}) behind a router whose userspace WAN emulator",
        names.len(),
        names.join(", ")
    ));
    say("    delays every packet by the great-circle distance between the sites (0.5 ms + 1 ms per 100 km, each way).");
    say("  - a dynamic mesh: munich is the admission authority; the others joined with a token, got a /26 each");
    say("    (10.18.0.0 upward) and learnt their peers from signed, gossiped records (libp2p, TCP 50103).");
    say("  - WireGuard-style tunnels (Noise IK, boringtun) on UDP 50103 between all of them, derived from those records;");
    say(&format!("    on average the tunnel added {mean_cost:+.2} ms per round trip."));
    say("  - `netmanager status`: members, their RTT (measured by probes or estimated by Vivaldi coordinates),");
    say("    and what `closest` answers from that node.");
    say("  - workloads in their own namespaces, found by name; killing a node moved the answers within a second or two.");
    say("");
    say("Try next:");
    if !hold {
        say("  cargo run --release -p examples --bin demo -- --hold      # keep the mesh up and poke at it");
    }
    say("  cargo test --release --workspace                           # the scenario tests (as root)");
    say("  cargo run --release -p netns-tests --bin bench -- closest  # 30 nodes: accuracy, failover, convergence");
    say("  README.md, \"Dynamic mode\"                                 # run netmanager on real machines");
    say("");
}
