//! [`Testbed`]: node namespaces around a router namespace whose forwarding
//! runs through the userspace WAN emulator.
//!
//! ```text
//!  node i (eth0: 198.18.i.2/24, fd18:i::2/64, default via .1)
//!     │ veth
//!  router (n<i>: 198.18.i.1/24, fd18:i::1/64)
//!     ├─ ip rule: iif n<i> → table 100 (default dev wan0)
//!     └─ wan0 (TUN) ⇄ wanem: delay / loss / cut per (src, dst)
//!         packets written back into wan0 follow the main table to n<dst>
//! ```

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use crate::child::ChildGuard;
use crate::geo::{geo_one_way_delay, Site};
use crate::wan::WanControl;
use crate::{bin_path, require_root, unique_name, wait_until_named, Error, Netns, Result, ScratchDir};

/// Routing table in the router whose default route is the WAN TUN.
const WAN_TABLE: &str = "100";
/// The TUN device wanem serves.
const WAN_TUN: &str = "wan0";
/// Name of the node's veth end inside the node namespace.
pub const NODE_IFACE: &str = "eth0";
/// At most this many nodes (one /24 of 198.18.0.0/16 each).
pub const MAX_NODES: usize = 256;

/// One node namespace of a [`Testbed`].
#[derive(Debug)]
pub struct Node {
    index: usize,
    name: String,
    site: Option<Site>,
    netns: Netns,
}

impl Node {
    /// Position in the testbed, 0-based; it picks the addresses.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The name given to the builder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the node stands, if it was given a site.
    pub fn site(&self) -> Option<&Site> {
        self.site.as_ref()
    }

    /// The node's namespace, to run commands and daemons in.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Underlay IPv4 address, `198.18.<index>.2`.
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.index as u8, 2)
    }

    /// Underlay IPv6 address, `fd18:<index>::2`.
    pub fn ipv6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd18, self.index as u16, 0, 0, 0, 0, 0, 2)
    }

    /// The router's address on this node's link, `198.18.<index>.1`.
    pub fn gateway_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.index as u8, 1)
    }

    /// The router's IPv6 address on this node's link, `fd18:<index>::1`.
    pub fn gateway_v6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd18, self.index as u16, 0, 0, 0, 0, 0, 1)
    }
}

#[derive(Debug, Clone)]
struct NodeSpec {
    name: String,
    site: Option<Site>,
}

#[derive(Debug, Clone)]
enum LinkDelay {
    Rtt { a: String, b: String, rtt: Duration },
    OneWay { from: String, to: String, delay: Duration },
}

/// Builds a [`Testbed`]. Nodes with sites get pair delays from
/// [`geo_one_way_delay`]; per-link settings override them; all other pairs
/// get the default delay (0 unless set).
#[derive(Debug, Clone, Default)]
pub struct TestbedBuilder {
    nodes: Vec<NodeSpec>,
    links: Vec<LinkDelay>,
    default_delay: Duration,
}

impl TestbedBuilder {
    /// Adds a node without a site.
    pub fn with_node(mut self, name: impl Into<String>) -> Self {
        self.nodes.push(NodeSpec { name: name.into(), site: None });
        self
    }

    /// Adds a node standing at `site`.
    pub fn with_node_at(mut self, name: impl Into<String>, site: Site) -> Self {
        self.nodes.push(NodeSpec { name: name.into(), site: Some(site) });
        self
    }

    /// Adds `n` nodes named `n<index>`.
    pub fn with_nodes(mut self, n: usize) -> Self {
        for _ in 0..n {
            let name = format!("n{}", self.nodes.len());
            self.nodes.push(NodeSpec { name, site: None });
        }
        self
    }

    /// One-way delay of pairs without their own.
    pub fn with_default_delay(mut self, delay: Duration) -> Self {
        self.default_delay = delay;
        self
    }

    /// Round-trip time between nodes `a` and `b` (by name), half each way.
    pub fn with_link_rtt(mut self, a: &str, b: &str, rtt: Duration) -> Self {
        self.links.push(LinkDelay::Rtt { a: a.into(), b: b.into(), rtt });
        self
    }

    /// One-way delay from `from` to `to` (by name).
    pub fn with_link_one_way(mut self, from: &str, to: &str, delay: Duration) -> Self {
        self.links.push(LinkDelay::OneWay { from: from.into(), to: to.into(), delay });
        self
    }

    /// Creates the namespaces, veths, routes and the emulator.
    pub fn build(self) -> Result<Testbed> {
        require_root()?;
        self.validate()?;
        // Leftovers of SIGKILLed test processes would otherwise linger (and
        // could collide with ours once their pid is reused).
        let _ = crate::netns::sweep_stale("tb");
        let scratch = ScratchDir::new("tb")?;
        let base = unique_name("tb");
        let router = Netns::with_name(format!("{base}-r"))?;
        configure_router(&router)?;
        let control = scratch.join("wan.sock");
        let wanem = start_wanem(&router, &control, &scratch, self.default_delay)?;
        let wan = WanControl::new(&control);
        router.ip(&["route", "add", "default", "dev", WAN_TUN, "table", WAN_TABLE])?;
        router.ip(&["-6", "route", "add", "default", "dev", WAN_TUN, "table", WAN_TABLE])?;

        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (index, spec) in self.nodes.iter().enumerate() {
            let netns = Netns::with_name(format!("{base}-n{index}"))?;
            let node = Node { index, name: spec.name.clone(), site: spec.site.clone(), netns };
            attach_node(&router, &node)?;
            nodes.push(node);
        }

        let testbed = Testbed { wanem, nodes, router, wan, scratch };
        self.apply_delays(&testbed)?;
        Ok(testbed)
    }

    fn validate(&self) -> Result<()> {
        if self.nodes.len() > MAX_NODES {
            return Err(Error::Config(format!("at most {MAX_NODES} nodes")));
        }
        let mut seen = HashSet::new();
        for node in &self.nodes {
            if !seen.insert(node.name.as_str()) {
                return Err(Error::Config(format!("duplicate node name {:?}", node.name)));
            }
        }
        for link in &self.links {
            let (a, b) = match link {
                LinkDelay::Rtt { a, b, .. } => (a, b),
                LinkDelay::OneWay { from, to, .. } => (from, to),
            };
            for n in [a, b] {
                if !seen.contains(n.as_str()) {
                    return Err(Error::Config(format!("link names unknown node {n:?}")));
                }
            }
        }
        Ok(())
    }

    fn apply_delays(&self, testbed: &Testbed) -> Result<()> {
        let wan = testbed.wan();
        for a in testbed.nodes() {
            for b in testbed.nodes() {
                if let (Some(sa), Some(sb), false) = (a.site(), b.site(), a.index == b.index) {
                    wan.set_one_way(a, b, geo_one_way_delay(sa, sb))?;
                }
            }
        }
        let node = |name: &str| {
            testbed
                .node_named(name)
                .ok_or_else(|| Error::Config(format!("unknown node {name:?}")))
        };
        for link in &self.links {
            match link {
                LinkDelay::Rtt { a, b, rtt } => wan.set_latency(node(a)?, node(b)?, *rtt)?,
                LinkDelay::OneWay { from, to, delay } => {
                    wan.set_one_way(node(from)?, node(to)?, *delay)?
                }
            }
        }
        Ok(())
    }
}

/// Node namespaces around a router namespace with the WAN emulator.
/// Dropping it stops wanem and deletes every namespace (and with them the
/// veths and the TUN).
#[derive(Debug)]
pub struct Testbed {
    // Field order is drop order: the emulator first, then the nodes, the
    // router, and last the scratch directory with the logs.
    wanem: ChildGuard,
    nodes: Vec<Node>,
    router: Netns,
    wan: WanControl,
    scratch: ScratchDir,
}

impl Testbed {
    /// Starts building a testbed.
    pub fn builder() -> TestbedBuilder {
        TestbedBuilder::default()
    }

    /// Node `index` (0-based). Panics if out of range, like slice indexing.
    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// The node with this name.
    pub fn node_named(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// All nodes in builder order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The router namespace.
    pub fn router(&self) -> &Netns {
        &self.router
    }

    /// A client for the WAN emulator.
    pub fn wan(&self) -> WanControl {
        self.wan.clone()
    }

    /// Directory for configs, sockets and logs; kept if a test panics.
    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// Names of all namespaces this testbed owns (router first).
    pub fn netns_names(&self) -> Vec<String> {
        std::iter::once(self.router.name().to_string())
            .chain(self.nodes.iter().map(|n| n.netns.name().to_string()))
            .collect()
    }

    /// wanem's log so far.
    pub fn wanem_log(&self) -> String {
        self.wanem.log()
    }
}

fn configure_router(router: &Netns) -> Result<()> {
    for (key, value) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
        ("net.ipv4.conf.all.send_redirects", "0"),
        ("net.ipv4.conf.default.send_redirects", "0"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("net.ipv6.conf.default.forwarding", "1"),
    ] {
        router.sysctl(key, value)?;
    }
    Ok(())
}

fn start_wanem(
    router: &Netns,
    control: &Path,
    scratch: &ScratchDir,
    default_delay: Duration,
) -> Result<ChildGuard> {
    let wanem = bin_path("wanem")?;
    let control_arg = control.to_string_lossy().into_owned();
    let delay_ms = format!("{}", default_delay.as_secs_f64() * 1000.0);
    let mut child = router.spawn_logged(
        &wanem.to_string_lossy(),
        &["--tun", WAN_TUN, "--control", &control_arg, "--default-delay-ms", &delay_ms],
        &scratch.join("wanem.log"),
    )?;
    let client = WanControl::new(control);
    let ready = wait_until_named("wanem control socket", Duration::from_secs(10), || {
        !matches!(child.try_exit_status(), Ok(Some(_))) && client.stats().is_ok()
            || matches!(child.try_exit_status(), Ok(Some(_)))
    });
    if let Some(status) = child.try_exit_status()? {
        return Err(Error::Wan(format!("wanem exited ({status}): {}", child.log_tail(20))));
    }
    ready?;
    router.sysctl(&format!("net.ipv4.conf.{WAN_TUN}.rp_filter"), "0")?;
    Ok(child)
}

fn attach_node(router: &Netns, node: &Node) -> Result<()> {
    let ns = node.netns();
    let r_if = format!("n{}", node.index);
    crate::cmd::ip(&[
        "link", "add", &r_if, "netns", router.name(), "type", "veth", "peer", "name", NODE_IFACE,
        "netns", ns.name(),
    ])?;
    let gw4 = node.gateway_v4().to_string();
    let gw6 = node.gateway_v6().to_string();
    router.ip(&["addr", "add", &format!("{gw4}/24"), "dev", &r_if])?;
    router.ip(&["-6", "addr", "add", &format!("{gw6}/64"), "dev", &r_if, "nodad"])?;
    router.ip(&["link", "set", &r_if, "up"])?;
    router.sysctl(&format!("net.ipv4.conf.{r_if}.rp_filter"), "0")?;
    let pref = "100";
    router.ip(&["rule", "add", "iif", &r_if, "table", WAN_TABLE, "pref", pref])?;
    router.ip(&["-6", "rule", "add", "iif", &r_if, "table", WAN_TABLE, "pref", pref])?;

    ns.ip(&["addr", "add", &format!("{}/24", node.ipv4()), "dev", NODE_IFACE])?;
    ns.ip(&["-6", "addr", "add", &format!("{}/64", node.ipv6()), "dev", NODE_IFACE, "nodad"])?;
    ns.ip(&["link", "set", NODE_IFACE, "up"])?;
    ns.ip(&["route", "add", "default", "via", &gw4])?;
    ns.ip(&["-6", "route", "add", "default", "via", &gw6])?;
    Ok(())
}
