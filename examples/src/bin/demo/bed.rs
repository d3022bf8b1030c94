//! The demo's network: three sites behind the WAN emulator, a netmanager
//! on each, and the order in which it all goes away again.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns_tests::grove::GroveMesh;
use netns_tests::{ping_with, PingOptions, ScratchDir, Site, Testbed};

use crate::stop;
use crate::ui::{progress, step};

/// How long the first handshake between two nodes may take.
const MESH_TIMEOUT: Duration = Duration::from_secs(15);

/// The sites the demo's nodes stand at.
pub fn sites() -> Vec<Site> {
    vec![
        Site::new("munich", 48.1374, 11.5755),
        Site::new("frankfurt", 50.1109, 8.6821),
        Site::new("helsinki", 60.1699, 24.9384),
    ]
}

/// Everything the demo brought up. Fields drop in declaration order: the
/// daemons stop, their directory (keys, configs, sockets, logs) goes, and
/// last the namespaces, the veths and the WAN emulator.
pub struct DemoBed {
    pub mesh: GroveMesh,
    pub dir: ScratchDir,
    pub tb: Testbed,
}

impl DemoBed {
    /// Builds the namespaces, writes keys and configs, starts every node and
    /// waits until every pair has completed a handshake.
    pub fn bring_up(sites: &[Site]) -> Result<DemoBed> {
        let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        step(&format!(
            "building namespaces: a router with the WAN emulator, and {}",
            names.join(", ")
        ));
        let started = Instant::now();
        let builder = sites.iter().fold(Testbed::builder(), |b, site| {
            b.with_node_at(site.name.clone(), site.clone())
        });
        let tb = builder.build().context("building the testbed")?;
        progress(&format!(
            "{} namespaces up in {:.1} s; packets between sites are delayed by their distance",
            tb.netns_names().len(),
            started.elapsed().as_secs_f64()
        ));
        stop::check()?;

        let dir = ScratchDir::new("demo").context("creating the demo directory")?;
        step("generating a key and a static-mode config per node");
        progress(&format!("in {}", dir.path().display()));
        let specs: Vec<(&str, &str, IpAddr)> = tb
            .nodes()
            .iter()
            .map(|n| (n.name(), n.netns().name(), IpAddr::V4(n.ipv4())))
            .collect();
        let mut plans = GroveMesh::plan(&specs);
        // Each config carries every node's location, for DNS `closest`.
        for (plan, node) in plans.iter_mut().zip(tb.nodes()) {
            plan.location = node.site().map(|s| (s.lat, s.lon));
        }
        let mut mesh = GroveMesh::prepare(plans, dir.path()).context("netmanager keygen")?;
        step("starting netmanager on each node");
        for i in 0..mesh.nodes.len() {
            stop::check()?;
            let plan = mesh.nodes[i].plan.clone();
            progress(&format!(
                "starting netmanager on {} (namespace {}, underlay {}, overlay {})",
                plan.name, plan.netns, plan.underlay, plan.overlay
            ));
            if let Err(e) = mesh.start_node(i) {
                stop::check()?;
                return Err(anyhow::anyhow!("{e}\n{}", mesh.logs())).context("starting netmanager");
            }
        }
        let bed = DemoBed { mesh, dir, tb };
        bed.wait_for_mesh()?;
        Ok(bed)
    }

    /// The overlay address of node `i`.
    pub fn overlay(&self, i: usize) -> IpAddr {
        IpAddr::V4(self.mesh.nodes[i].plan.overlay)
    }

    /// Node pairs `(a, b)` with `a < b`.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        let n = self.mesh.nodes.len();
        (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect()
    }

    fn wait_for_mesh(&self) -> Result<()> {
        step("waiting for the mesh: the first ping on each pair starts its handshake");
        let once = PingOptions {
            count: 1,
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
        };
        for (a, b) in self.pairs() {
            let (from, to) = (self.tb.node(a), self.overlay(b));
            let started = Instant::now();
            loop {
                stop::check()?;
                if ping_with(from.netns(), to, &once).is_ok_and(|s| s.received > 0) {
                    break;
                }
                stop::sleep(Duration::from_millis(100))?;
                if started.elapsed() > MESH_TIMEOUT {
                    anyhow::bail!(
                        "{} cannot reach {} ({to}) over the overlay after {MESH_TIMEOUT:?}\n{}",
                        from.name(),
                        self.tb.node(b).name(),
                        self.mesh.logs()
                    );
                }
            }
            progress(&format!(
                "{} ↔ {}: tunnel up, first reply after {:.0} ms",
                from.name(),
                self.tb.node(b).name(),
                started.elapsed().as_secs_f64() * 1000.0
            ));
        }
        Ok(())
    }

    /// Tears everything down and checks that no namespace of ours is left.
    pub fn tear_down(self) -> Result<()> {
        step("tearing down: stopping the netmanagers, deleting namespaces and files");
        let names = self.tb.netns_names();
        let dir = self.dir.path().to_owned();
        drop(self);
        let left: Vec<&String> = names
            .iter()
            .filter(|n| netns_tests::Netns::exists(n))
            .collect();
        if !left.is_empty() {
            anyhow::bail!(
                "namespaces left behind: {left:?}; delete them with `ip netns delete NAME`"
            );
        }
        progress(&format!(
            "nothing left behind: {} namespaces deleted, {} removed",
            names.len(),
            dir.display()
        ));
        Ok(())
    }
}
