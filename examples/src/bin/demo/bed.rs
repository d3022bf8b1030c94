//! The demo's network: four nodes at three sites behind the WAN emulator,
//! joined into one dynamic mesh with a token, and the order in which it all
//! goes away again.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns_tests::dynamic::DynamicMesh;
use netns_tests::{ping_with, PingOptions, ScratchDir, Site, Testbed};

use crate::stop;
use crate::ui::{progress, step};

/// How long the first handshake between two nodes may take.
const MESH_TIMEOUT: Duration = Duration::from_secs(15);

/// The sites the demo's nodes stand at; the first is the admission
/// authority. Espoo is Helsinki's neighbour, so it has a near alternative
/// when Helsinki goes away.
pub fn sites() -> Vec<Site> {
    vec![
        Site::new("munich", 48.1374, 11.5755),
        Site::new("frankfurt", 50.1109, 8.6821),
        Site::new("helsinki", 60.1699, 24.9384),
        Site::new("espoo", 60.2055, 24.6559),
    ]
}

/// Everything the demo brought up. Fields drop in declaration order: the
/// daemons stop, their directory (keys, configs, sockets, logs) goes, and
/// last the namespaces, the veths and the WAN emulator.
pub struct DemoBed {
    pub mesh: DynamicMesh,
    pub dir: ScratchDir,
    pub tb: Testbed,
    /// Each node's overlay address (`.1` of the subnet it was granted).
    pub overlays: Vec<Ipv4Addr>,
}

impl DemoBed {
    /// Builds the namespaces, makes a join token, starts the authority and
    /// lets the other nodes join with the token, then waits for the tunnels.
    pub fn bring_up(sites: &[Site]) -> Result<DemoBed> {
        let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        step(&format!("building namespaces: a router with the WAN emulator, and {}", names.join(", ")));
        let started = Instant::now();
        let builder = sites.iter().fold(Testbed::builder(), |b, site| b.with_node_at(site.name.clone(), site.clone()));
        let tb = builder.build().context("building the testbed")?;
        progress(&format!(
            "{} namespaces up in {:.1} s; packets between sites are delayed by their distance",
            tb.netns_names().len(),
            started.elapsed().as_secs_f64()
        ));
        stop::check()?;

        let dir = ScratchDir::new("demo").context("creating the demo directory")?;
        step("making a join token on the authority (`netmanager token --file tokens`)");
        let mut mesh = DynamicMesh::prepare(&tb, dir.path()).context("writing keys and configs")?;
        progress(&format!("token {}… in {}/tokens (0600); configs in {}", &mesh.token[..8], dir.path().display(), dir.path().display()));
        step(&format!("starting the authority on {} (`netmanager run --admit tokens`), then the others with the token", names[0]));
        for i in 0..mesh.nodes.len() {
            stop::check()?;
            let started = Instant::now();
            if let Err(e) = mesh.nodes[i].start() {
                stop::check()?;
                return Err(anyhow::anyhow!("{e}\n{}", mesh.logs(15))).context("starting netmanager");
            }
            let node = &mesh.nodes[i];
            let subnet = node.subnet().unwrap_or_else(|| "?".into());
            let how = if i == 0 { "is the authority; granted itself" } else { "joined with the token; granted" };
            progress(&format!("{} {how} {subnet} ({:.0} ms)", node.name, started.elapsed().as_secs_f64() * 1000.0));
        }
        step("waiting until every node knows every other from their signed records");
        let started = Instant::now();
        mesh.wait_converged(Duration::from_secs(20)).map_err(|e| anyhow::anyhow!("{e}\n{}", mesh.logs(15)))?;
        progress(&format!("membership complete in {:.0} ms: no peer list was configured anywhere", started.elapsed().as_secs_f64() * 1000.0));
        let overlays = mesh
            .nodes
            .iter()
            .map(|n| n.overlay().with_context(|| format!("{} has no subnet", n.name)))
            .collect::<Result<Vec<_>>>()?;
        let bed = DemoBed { mesh, dir, tb, overlays };
        bed.wait_for_mesh()?;
        Ok(bed)
    }

    /// The overlay address of node `i`.
    pub fn overlay(&self, i: usize) -> IpAddr {
        IpAddr::V4(self.overlays[i])
    }

    /// Node pairs `(a, b)` with `a < b`.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        let n = self.mesh.nodes.len();
        (0..n).flat_map(|a| (a + 1..n).map(move |b| (a, b))).collect()
    }

    /// The node name owning overlay address `ip` (its subnet's /26).
    pub fn owner(&self, ip: Ipv4Addr) -> &str {
        self.overlays
            .iter()
            .position(|o| u32::from(*o) & !63 == u32::from(ip) & !63)
            .map_or("?", |i| self.mesh.nodes[i].name.as_str())
    }

    fn wait_for_mesh(&self) -> Result<()> {
        step("waiting for the tunnels: the first ping on each pair starts its handshake");
        let once = PingOptions { count: 1, interval: Duration::from_millis(200), timeout: Duration::from_secs(1) };
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
                        self.mesh.logs(15)
                    );
                }
            }
        }
        progress(&format!("{} tunnels up", self.pairs().len()));
        Ok(())
    }

    /// Tears everything down and checks that no namespace of ours is left.
    pub fn tear_down(self) -> Result<()> {
        step("tearing down: stopping the netmanagers, deleting namespaces and files");
        let names = self.tb.netns_names();
        let dir = self.dir.path().to_owned();
        drop(self);
        let left: Vec<&String> = names.iter().filter(|n| netns_tests::Netns::exists(n)).collect();
        if !left.is_empty() {
            anyhow::bail!("namespaces left behind: {left:?}; delete them with `ip netns delete NAME`");
        }
        progress(&format!("nothing left behind: {} namespaces deleted, {} removed", names.len(), dir.display()));
        Ok(())
    }
}
