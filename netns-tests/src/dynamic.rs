//! Dynamic grove meshes on a [`Testbed`]: node 0 is the admission
//! authority (`--admit`), every other node pins it by peer id
//! (`bootstrap = ["<peer-id>@<ip>:50103"]`), joins with a token kept in a
//! 0600 file, and learns its peers from signed records. The tests, the `closest` benchmark and
//! the demo bring dynamic meshes up through here.
//!
//! netmanager is started with `nsenter --net` rather than `ip netns exec`:
//! the latter gives it a private mount namespace, and the workload
//! namespaces it creates would be invisible to everyone else.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::dnsq::{query_a, resolver_socket, AAnswer, GROVE_RESOLVER};
use crate::grove::{netmanager, MESH_PORT};
use crate::{bin_path, cmd, wait_until_named, ChildGuard, Error, Result, Signal, Testbed};

/// One netmanager of a dynamic mesh.
#[derive(Debug)]
pub struct DynamicNode {
    pub name: String,
    pub netns: String,
    pub underlay: Ipv4Addr,
    pub location: Option<(f64, f64)>,
    pub config_path: PathBuf,
    pub control_socket: PathBuf,
    pub log: PathBuf,
    pub child: Option<ChildGuard>,
    /// Extra `run` arguments (`--admit <file>` on the authority).
    run_args: Vec<String>,
}

impl DynamicNode {
    /// Starts (or restarts) the daemon and waits for its control socket.
    pub fn start(&mut self) -> Result<()> {
        let bin = bin_path("netmanager")?;
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| Error::io(format!("open log {}", self.log.display()), e))?;
        let file2 = file.try_clone().map_err(|e| Error::io("clone log handle", e))?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg(&bin)
            .args(["run", "--config"])
            .arg(&self.config_path)
            .args(&self.run_args)
            .env("RUST_LOG", std::env::var("GROVE_TEST_LOG").unwrap_or_else(|_| "info,hickory_server=warn,libp2p_gossipsub=error".into()))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .map_err(|source| Error::Spawn { program: bin.display().to_string(), source })?;
        self.child = Some(ChildGuard::new(format!("netmanager {}", self.name), child, self.log.clone()));
        let socket = self.control_socket.clone();
        let started = wait_until_named(
            &format!("netmanager {} to join and answer on its control socket", self.name),
            Duration::from_secs(30),
            || {
                netmanager(&["status", "--socket", &socket.to_string_lossy()]).is_ok()
                    || self.child.as_mut().is_some_and(|c| !c.is_running())
            },
        );
        if let Some(child) = self.child.as_mut() {
            if !child.is_running() {
                return Err(Error::Config(format!("netmanager {} exited at start:\n{}", self.name, child.log_tail(20))));
            }
        }
        started
    }

    /// Sends `signal` and waits for the exit.
    pub fn stop_with(&mut self, signal: Signal) -> Result<Option<std::process::ExitStatus>> {
        let Some(mut child) = self.child.take() else { return Ok(None) };
        child.signal(signal)?;
        child.wait_for_exit(Duration::from_secs(10))
    }

    /// `netmanager status --json`: device status plus `members`.
    pub fn status(&self) -> Result<serde_json::Value> {
        let out = netmanager(&["status", "--json", "--socket", &self.control_socket.to_string_lossy()])?;
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Parse { tool: "netmanager status --json".into(), reason: e.to_string() })
    }

    /// `netmanager status` as a user sees it.
    pub fn status_text(&self) -> Result<String> {
        let out = netmanager(&["status", "--socket", &self.control_socket.to_string_lossy()])?;
        Ok(cmd::stdout_text(&out))
    }

    /// Names of members in `state` ("alive", "suspect", "dead").
    pub fn members_in(&self, state: &str) -> Vec<String> {
        let Ok(status) = self.status() else { return Vec::new() };
        status["members"]["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter(|m| m["state"] == state)
                    .filter_map(|m| m["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// This node's granted subnet, e.g. `10.18.0.64/26`.
    pub fn subnet(&self) -> Option<String> {
        self.status().ok()?["members"]["local"]["subnet"].as_str().map(str::to_owned)
    }

    /// The node's own overlay address (its bridge, `.1` of its subnet).
    pub fn overlay(&self) -> Option<Ipv4Addr> {
        let subnet: ipnet_lite::Net = self.subnet()?.parse().ok()?;
        Some(subnet.first_host())
    }

    /// A local API call through curl: `method path [json body]` → JSON.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, serde_json::Value)> {
        let socket = self.control_socket.to_string_lossy().into_owned();
        let url = format!("http://netmanager{path}");
        let mut args = vec!["-s", "-w", "\n%{http_code}", "--unix-socket", &socket, "-X", method, &url];
        if let Some(body) = body {
            args.extend(["-H", "content-type: application/json", "-d", body]);
        }
        let out = cmd::run("curl", &args)?;
        let text = cmd::stdout_text(&out);
        let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code: u16 = code.trim().parse().map_err(|_| Error::Parse { tool: "curl".into(), reason: text.clone() })?;
        let value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
        Ok((code, value))
    }

    /// A UDP socket inside this node's namespace, aimed at its resolver.
    pub fn resolver(&self) -> Result<UdpSocket> {
        resolver_socket(&self.netns, GROVE_RESOLVER)
    }

    /// The daemon's process id (`nsenter` execs netmanager, so the child
    /// is the daemon), if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(ChildGuard::is_running)
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmHWM`: peak RSS, `VmRSS`).
    pub fn proc_status_kb(&self, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
        line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
    }

    /// Peak resident memory so far (`VmHWM`), in kB.
    pub fn vmhwm_kb(&self) -> Option<u64> {
        self.proc_status_kb("VmHWM")
    }

    /// Resident memory now (`VmRSS`), in kB.
    pub fn vmrss_kb(&self) -> Option<u64> {
        self.proc_status_kb("VmRSS")
    }

    /// Open file descriptors of the daemon.
    pub fn fd_count(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()?)).ok().map(|d| d.count())
    }

    /// The state `name` has in this node's view (`alive`, `suspect`, …).
    pub fn state_of(&self, name: &str) -> Option<String> {
        let status = self.status().ok()?;
        let members = status["members"]["members"].as_array()?;
        members.iter().find(|m| m["name"] == name).and_then(|m| m["state"].as_str()).map(str::to_owned)
    }
}

/// A dynamic mesh over every node of a testbed; stopped on drop.
#[derive(Debug)]
pub struct DynamicMesh {
    pub nodes: Vec<DynamicNode>,
    pub token: String,
    /// The authority's peer id, which joining nodes pin.
    pub authority_id: String,
    pub dir: PathBuf,
}

impl DynamicMesh {
    /// Writes configs (node 0: authority with a token file; the others:
    /// the authority pinned, the token in a file). Nothing is started.
    pub fn prepare(testbed: &Testbed, dir: &Path) -> Result<DynamicMesh> {
        let tokens = dir.join("tokens");
        let out = netmanager(&["token", "generate", "--file", &tokens.to_string_lossy()])?;
        let token = cmd::stdout_text(&out).trim().to_owned();
        let token_file = dir.join("join-token");
        write_private(&token_file, &format!("{token}\n"))?;
        let authority = testbed.node(0).ipv4();
        let authority_id = peer_id_of(&dir.join(format!("{}.identity", testbed.node(0).name())))?;
        let mut nodes = Vec::new();
        for (i, node) in testbed.nodes().iter().enumerate() {
            let name = node.name().to_owned();
            let key = dir.join(format!("{name}.key"));
            netmanager(&["keygen", "--out", &key.to_string_lossy()])?;
            let plan = DynamicNode {
                name: name.clone(),
                netns: node.netns().name().to_owned(),
                underlay: node.ipv4(),
                location: node.site().map(|s| (s.lat, s.lon)),
                config_path: dir.join(format!("{name}.toml")),
                control_socket: dir.join(format!("{name}.sock")),
                log: dir.join(format!("{name}.log")),
                child: None,
                run_args: if i == 0 { vec!["--admit".into(), tokens.to_string_lossy().into_owned()] } else { Vec::new() },
            };
            let bootstrap = if i == 0 {
                String::new()
            } else {
                format!("bootstrap = [\"{authority_id}@{authority}:{MESH_PORT}\"]\njoin_token_file = \"{}\"\n", token_file.display())
            };
            write_dynamic_config(&plan, &bootstrap)?;
            nodes.push(plan);
        }
        Ok(DynamicMesh { nodes, token, authority_id, dir: dir.to_owned() })
    }

    /// `[control]` lines that join through the authority (pinned) with the
    /// token in `token_file`, if any.
    pub fn joining(&self, testbed: &Testbed, token_file: Option<&Path>) -> String {
        let token = token_file.map(|f| format!("join_token_file = \"{}\"\n", f.display())).unwrap_or_default();
        format!("bootstrap = [\"{}@{}:{MESH_PORT}\"]\n{token}", self.authority_id, testbed.node(0).ipv4())
    }

    /// Starts the authority, then every other node.
    pub fn start_all(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            node.start()?;
        }
        Ok(())
    }

    /// Waits until every running node sees every other running node alive.
    pub fn wait_converged(&self, timeout: Duration) -> Result<()> {
        let running: Vec<&DynamicNode> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
        let want = running.len() - 1;
        wait_until_named("every node to see every other alive", timeout, || {
            running.iter().all(|n| n.members_in("alive").len() >= want)
        })
    }

    pub fn node(&self, name: &str) -> Option<&DynamicNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Every node's log tail, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(lines).collect();
                format!("--- {} ---\n{}\n", n.name, tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect()
    }
}

/// The peer id of an identity file (created if missing), as
/// `netmanager id` prints it.
pub fn peer_id_of(identity: &Path) -> Result<String> {
    let out = netmanager(&["id", "--identity", &identity.to_string_lossy()])?;
    Ok(cmd::stdout_text(&out).trim().to_owned())
}

/// Writes `text` to a new file only its owner can read (tokens).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Writes a `[control]` config for `node` with `extra` lines in `[control]`.
pub fn write_dynamic_config(node: &DynamicNode, extra_control: &str) -> Result<()> {
    let location = node.location.map(|(lat, lon)| format!("location = {{ lat = {lat}, lon = {lon} }}\n")).unwrap_or_default();
    let state = node.config_path.with_extension("state");
    let text = format!(
        "# written by netns-tests (dynamic mode)\nprivate_key_file = \"{name}.key\"\nlisten_port = {MESH_PORT}\ninterface = \"grove0\"\ncontrol_socket = \"{sock}\"\nname = \"{name}\"\n{location}\n[control]\nlisten = \"{ip}:{MESH_PORT}\"\nidentity_file = \"{name}.identity\"\nstate_dir = \"{state}\"\n{extra_control}",
        name = node.name,
        sock = node.control_socket.display(),
        ip = node.underlay,
        state = state.display(),
    );
    std::fs::write(&node.config_path, text).map_err(|e| Error::io(format!("write {}", node.config_path.display()), e))
}

/// Asks `closest.<service>` (or any name) on a node's resolver socket.
pub fn ask(socket: &UdpSocket, name: &str) -> Result<AAnswer> {
    query_a(socket, name, Duration::from_millis(500))
}

/// Polls until `f` holds or `timeout`; returns how long it took.
pub fn time_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The overlay address of `node`'s workload or gateway from a subnet
/// string, without pulling ipnet into the testbed.
mod ipnet_lite {
    use std::net::Ipv4Addr;

    pub struct Net(Ipv4Addr);

    impl Net {
        pub fn first_host(&self) -> Ipv4Addr {
            Ipv4Addr::from(u32::from(self.0) + 1)
        }
    }

    impl std::str::FromStr for Net {
        type Err = ();
        fn from_str(s: &str) -> Result<Net, ()> {
            let (addr, _) = s.split_once('/').ok_or(())?;
            addr.parse().map(Net).map_err(|_| ())
        }
    }
}


/// Mesh endpoint helper for tests that need the authority's address.
pub fn authority_addr(testbed: &Testbed) -> SocketAddr {
    SocketAddr::new(testbed.node(0).ipv4().into(), MESH_PORT)
}
