//! Runs real `netmanager` daemons on testbed namespaces: keys, static
//! configs for a full mesh, start, readiness, status and teardown.
//!
//! The tests, the benchmark and the demo all bring grove up through here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{bin_path, cmd, wait_until_named, ChildGuard, Error, Result, Signal};

/// grove's mesh port.
pub const MESH_PORT: u16 = 50103;
/// Overlay addresses handed out by [`GroveMesh`]: `10.18.0.<i+1>/24`.
const OVERLAY_PREFIX_LEN: u8 = 24;

/// Where and how to run one node.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// Short name, used for files (`<name>.key`, `<name>.toml`, …).
    pub name: String,
    /// Namespace to run in.
    pub netns: String,
    /// Underlay address peers use to reach it.
    pub underlay: IpAddr,
    /// Overlay address.
    pub overlay: Ipv4Addr,
    /// Where the node stands (lat, lon), written to its config and its
    /// peers' configs for DNS `closest`.
    pub location: Option<(f64, f64)>,
}

/// One running netmanager.
#[derive(Debug)]
pub struct GroveNode {
    pub plan: NodePlan,
    pub public_key: String,
    pub config_path: PathBuf,
    pub control_socket: PathBuf,
    pub child: Option<ChildGuard>,
}

impl GroveNode {
    /// `netmanager status --json` of this node, parsed.
    pub fn status(&self) -> Result<serde_json::Value> {
        let out = netmanager(&["status", "--json", "--socket", &self.control_socket.to_string_lossy()])?;
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Parse {
            tool: "netmanager status --json".into(),
            reason: e.to_string(),
        })
    }

    /// `netmanager status` as a user sees it.
    pub fn status_text(&self) -> Result<String> {
        let out = netmanager(&["status", "--socket", &self.control_socket.to_string_lossy()])?;
        Ok(cmd::stdout_text(&out))
    }

    /// The drop counter `reason` of the peer with `public_key`, or of the
    /// device itself when `public_key` is `None`.
    pub fn drops(&self, public_key: Option<&str>, reason: &str) -> u64 {
        let Ok(status) = self.status() else { return 0 };
        let drops = match public_key {
            None => &status["drops"],
            Some(key) => match status["peers"]
                .as_array()
                .and_then(|peers| peers.iter().find(|p| p["public_key"] == key))
            {
                Some(peer) => &peer["drops"],
                None => return 0,
            },
        };
        drops[reason].as_u64().unwrap_or(0)
    }

    /// The endpoint this node currently uses for the peer with `public_key`.
    pub fn peer_endpoint(&self, public_key: &str) -> Option<SocketAddr> {
        let status = self.status().ok()?;
        let peer = status["peers"].as_array()?.iter().find(|p| p["public_key"] == public_key)?;
        peer["endpoint"].as_str()?.parse().ok()
    }

    /// Starts (or restarts) the daemon and waits until its control socket answers.
    pub fn start(&mut self, log: &Path) -> Result<()> {
        let bin = bin_path("netmanager")?;
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("open log {}", log.display()), e))?;
        let file2 = file.try_clone().map_err(|e| Error::io("clone log handle", e))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.plan.netns])
            .arg(&bin)
            .args(["run", "--config"])
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: bin.display().to_string(),
                source,
            })?;
        self.child = Some(ChildGuard::new(
            format!("netmanager {}", self.plan.name),
            child,
            log.to_owned(),
        ));
        let socket = self.control_socket.clone();
        let started = wait_until_named(
            &format!("netmanager {} to answer on its control socket", self.plan.name),
            Duration::from_secs(10),
            || {
                netmanager(&["status", "--socket", &socket.to_string_lossy()]).is_ok()
                    || self.child.as_mut().is_some_and(|c| !c.is_running())
            },
        );
        if let Some(child) = self.child.as_mut() {
            if !child.is_running() {
                return Err(Error::Config(format!(
                    "netmanager {} exited at start:\n{}",
                    self.plan.name,
                    child.log_tail(20)
                )));
            }
        }
        started
    }

    /// Sends `signal` and waits for the process to exit.
    pub fn stop_with(&mut self, signal: Signal) -> Result<Option<std::process::ExitStatus>> {
        let Some(mut child) = self.child.take() else { return Ok(None) };
        child.signal(signal)?;
        child.wait_for_exit(Duration::from_secs(10))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }
}

/// A full mesh of netmanagers, one per namespace; stopped on drop.
#[derive(Debug)]
pub struct GroveMesh {
    pub nodes: Vec<GroveNode>,
    dir: PathBuf,
}

impl GroveMesh {
    /// Plans overlay addresses `10.18.0.<i+1>` for `(name, netns, underlay)`.
    pub fn plan(nodes: &[(&str, &str, IpAddr)]) -> Vec<NodePlan> {
        nodes
            .iter()
            .enumerate()
            .map(|(i, (name, netns, underlay))| NodePlan {
                name: (*name).to_owned(),
                netns: (*netns).to_owned(),
                underlay: *underlay,
                overlay: Ipv4Addr::new(10, 18, 0, (i + 1) as u8),
                location: None,
            })
            .collect()
    }

    /// Writes keys and configs into `dir` without starting anything, so a
    /// test can edit a config first. Every node lists every other as a peer.
    pub fn prepare(plans: Vec<NodePlan>, dir: &Path) -> Result<GroveMesh> {
        let mut nodes = Vec::new();
        for plan in plans {
            let key = dir.join(format!("{}.key", plan.name));
            let out = netmanager(&["keygen", "--out", &key.to_string_lossy()])?;
            let public_key = cmd::stdout_text(&out).trim().to_owned();
            nodes.push(GroveNode {
                config_path: dir.join(format!("{}.toml", plan.name)),
                control_socket: dir.join(format!("{}.sock", plan.name)),
                plan,
                public_key,
                child: None,
            });
        }
        for node in &nodes {
            let peers: Vec<&GroveNode> = nodes.iter().filter(|n| n.plan.name != node.plan.name).collect();
            write_config(node, &peers, "")?;
        }
        Ok(GroveMesh {
            nodes,
            dir: dir.to_owned(),
        })
    }

    /// Prepares and starts a full mesh.
    pub fn start(plans: Vec<NodePlan>, dir: &Path) -> Result<GroveMesh> {
        let mut mesh = Self::prepare(plans, dir)?;
        mesh.start_all()?;
        Ok(mesh)
    }

    pub fn start_all(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.start_node(i)?;
        }
        Ok(())
    }

    pub fn start_node(&mut self, i: usize) -> Result<()> {
        let log = self.log_path(i);
        self.nodes[i].start(&log)
    }

    /// The node's log file (kept in the mesh directory).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.nodes[i].plan.name))
    }

    /// Every node's log tail, for failure messages.
    pub fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}\n", self.nodes[i].plan.name, tail.join("\n"))
            })
            .collect()
    }
}

/// Writes `node`'s config listing `peers` at their planned underlay
/// addresses, plus `extra` TOML lines.
pub fn write_config(node: &GroveNode, peers: &[&GroveNode], extra: &str) -> Result<()> {
    let with_endpoints: Vec<(&GroveNode, Vec<SocketAddr>)> = peers
        .iter()
        .map(|p| (*p, vec![SocketAddr::new(p.plan.underlay, MESH_PORT)]))
        .collect();
    write_config_with_endpoints(node, &with_endpoints, extra)
}

/// Like [`write_config`], with explicit endpoint lists per peer (IPv6,
/// several addresses, unreachable ones…).
pub fn write_config_with_endpoints(
    node: &GroveNode,
    peers: &[(&GroveNode, Vec<SocketAddr>)],
    extra: &str,
) -> Result<()> {
    let mut text = format!(
        "# written by netns-tests\nprivate_key_file = \"{}.key\"\nlisten_port = {MESH_PORT}\ninterface = \"grove0\"\naddress = \"{}/{OVERLAY_PREFIX_LEN}\"\ncontrol_socket = \"{}\"\nname = \"{}\"\n{}{extra}\n",
        node.plan.name,
        node.plan.overlay,
        node.control_socket.display(),
        node.plan.name,
        location_line(&node.plan),
    );
    for (peer, endpoints) in peers {
        let endpoints: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        text.push_str(&format!(
            "\n[[peer]]\npublic_key = \"{}\"\nendpoints = [{}]\nallowed_ips = [\"{}/32\"]\nname = \"{}\"\n{}",
            peer.public_key,
            endpoints.join(", "),
            peer.plan.overlay,
            peer.plan.name,
            location_line(&peer.plan),
        ));
    }
    std::fs::write(&node.config_path, text)
        .map_err(|e| Error::io(format!("write {}", node.config_path.display()), e))
}

fn location_line(plan: &NodePlan) -> String {
    plan.location
        .map(|(lat, lon)| format!("location = {{ lat = {lat}, lon = {lon} }}\n"))
        .unwrap_or_default()
}

/// Runs the netmanager binary (outside any namespace) and checks its status.
pub fn netmanager(args: &[&str]) -> Result<std::process::Output> {
    let bin = bin_path("netmanager")?;
    cmd::run(&bin.to_string_lossy(), args)
}
