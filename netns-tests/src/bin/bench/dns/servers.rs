//! The two servers under test, each alone in a fresh namespace and
//! listening on that namespace's `127.0.0.153:53`:
//!
//! - grove: one `netmanager run` (static mode, forwarding off) whose
//!   `[[peer]]` entries are the eleven pretend nodes (names and locations,
//!   no endpoints: they are never contacted), with the 10,000 instances
//!   registered through the local API;
//! - Knot DNS: `knotd` with one UDP, one TCP and one background worker and
//!   a static zone `grove.` holding the answers grove computes.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};
use netns_tests::grove::{write_config_with_endpoints, GroveMesh, GroveNode};
use netns_tests::{wait_until_named, ChildGuard, Netns, ScratchDir};

use super::data::{self, Service};
use crate::peers::{ensure_running, require_program, SetupError};

/// Where both servers listen, inside their own namespace.
pub const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 153)), 53);

/// grove's TTL for `closest` answers (`[dns.ttl] moving_secs`, default);
/// Knot's records get the same.
pub const CLOSEST_TTL: u32 = 2;

/// Bodies of `POST /v1/instances` stay well below netmanager's 8 MiB limit
/// (the whole data set fits in one).
const MAX_API_BODY: usize = 4 << 20;

/// A server running in its namespace; everything goes on drop (the daemon,
/// then the namespace, then the scratch directory).
pub struct Server {
    /// The process whose memory and CPU time are reported.
    pub pid: u32,
    /// Keeps the daemon alive (stopped first on drop).
    daemon: Daemon,
    pub ns: Netns,
    pub dir: ScratchDir,
}

enum Daemon {
    Grove(GroveMesh),
    Knot(ChildGuard),
}

impl Server {
    /// The daemon's log tail, for failure messages.
    pub fn log_tail(&self) -> String {
        match &self.daemon {
            Daemon::Grove(mesh) => mesh.logs(),
            Daemon::Knot(child) => child.log_tail(20),
        }
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> PathBuf {
        match &self.daemon {
            Daemon::Grove(mesh) => mesh.log_path(0),
            Daemon::Knot(child) => child.log_path().to_owned(),
        }
    }

    /// Fails with the log if the daemon has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match &mut self.daemon {
            Daemon::Grove(mesh) => match mesh.nodes[0].child.as_mut() {
                Some(child) => ensure_running(child),
                None => Err(anyhow!("netmanager is not running")),
            },
            Daemon::Knot(child) => ensure_running(child),
        }
    }
}

/// Starts netmanager and registers every instance of `services`.
/// `rust_log`: netmanager's `RUST_LOG` (`None`: unset, its default filter).
pub fn grove(services: &[Service], rust_log: Option<&str>) -> Result<Server, SetupError> {
    let ns = Netns::new("dnsg")?;
    let dir = ScratchDir::new("dnsbench-grove")?;
    let local = data::local_site();
    let remotes = data::remote_sites();
    // The serving node plus the pretend ones: keys and names for the
    // config. Only node 0 is ever started.
    let underlay = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut specs = vec![(local.name.as_str(), ns.name(), underlay)];
    specs.extend(remotes.iter().map(|s| (s.name.as_str(), ns.name(), underlay)));
    let mut plans = GroveMesh::plan(&specs);
    for (plan, site) in plans.iter_mut().zip(std::iter::once(&local).chain(&remotes)) {
        plan.location = Some((site.lat, site.lon));
    }
    let mut mesh = GroveMesh::prepare(plans, dir.path())?;
    {
        let peers: Vec<(&GroveNode, Vec<SocketAddr>)> = mesh.nodes[1..].iter().map(|n| (n, Vec::new())).collect();
        // The per-client rate limit off: dnsperf is one client asking
        // 100k qps, and this measures the server (Knot runs without RRL).
        let extra = format!(
            "dns_on_overlay = false\n[dns]\nlisten = [\"{LISTEN}\"]\n[dns.ttl]\nmoving_secs = {CLOSEST_TTL}\n[dns.rate_limit]\nqps = 0\n[dns.forward]\nenabled = false\n"
        );
        write_config_with_endpoints(&mesh.nodes[0], &peers, &extra)?;
    }
    // netmanager inherits the environment: set RUST_LOG for it alone.
    let saved = std::env::var_os("RUST_LOG");
    match rust_log {
        Some(filter) => std::env::set_var("RUST_LOG", filter),
        None => std::env::remove_var("RUST_LOG"),
    }
    let started = mesh.start_node(0);
    match saved {
        Some(v) => std::env::set_var("RUST_LOG", v),
        None => std::env::remove_var("RUST_LOG"),
    }
    if let Err(e) = started {
        return Err(SetupError::Failed(anyhow!("{e}\n{}", mesh.logs())));
    }
    let pid = mesh.nodes[0].pid().ok_or_else(|| anyhow!("netmanager has no pid"))?;
    let socket = mesh.nodes[0].control_socket.clone();
    let batches = data::registration_batches(services, MAX_API_BODY);
    for batch in &batches {
        if let Err(e) = post(&socket, "/v1/instances", batch) {
            return Err(SetupError::Failed(anyhow!(
                "register instances: {e:#}\n{}",
                mesh.logs()
            )));
        }
    }
    let listed = get(&socket, "/v1/instances").context("GET /v1/instances")?;
    let count = serde_json::from_str::<serde_json::Value>(&listed)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    let want = services.iter().map(|s| s.instances.len()).sum::<usize>();
    if count != want {
        return Err(SetupError::Failed(anyhow!(
            "netmanager lists {count} instances, {want} were registered"
        )));
    }
    eprintln!(
        "          grove: {count} instances registered in {} POSTs",
        batches.len()
    );
    Ok(Server {
        pid,
        daemon: Daemon::Grove(mesh),
        ns,
        dir,
    })
}

/// Starts knotd with the equivalent static zone.
pub fn knot(services: &[Service]) -> Result<Server, SetupError> {
    require_program("knotd", "knot")?;
    let ns = Netns::new("dnsk")?;
    let dir = ScratchDir::new("dnsbench-knot")?;
    let zone = dir.join("grove.zone");
    write(&zone, &data::knot_zone(services, CLOSEST_TTL))?;
    let storage = dir.join("db");
    std::fs::create_dir_all(&storage).with_context(|| format!("create {}", storage.display()))?;
    let config = dir.join("knot.conf");
    write(&config, &knot_config(dir.path(), &storage, &zone))?;
    let log = dir.join("knotd.log");
    let mut child = ns.spawn_logged("knotd", &["-c", &config.to_string_lossy()], &log)?;
    let loaded = wait_until_named("knotd to load the zone", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("[grove.] loaded")) || !child.is_running()
    });
    ensure_running(&mut child)?;
    if let Err(e) = loaded {
        return Err(SetupError::Failed(anyhow!("{e}\n{}", child.log_tail(20))));
    }
    Ok(Server {
        pid: child.pid(),
        daemon: Daemon::Knot(child),
        ns,
        dir,
    })
}

fn knot_config(rundir: &Path, storage: &Path, zone: &Path) -> String {
    format!(
        r#"server:
    rundir: "{rundir}"
    listen: {ip}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{storage}"
log:
  - target: stderr
    any: info
zone:
  - domain: grove
    file: "{zone}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
"#,
        rundir = rundir.display(),
        ip = LISTEN.ip(),
        port = LISTEN.port(),
        storage = storage.display(),
        zone = zone.display(),
    )
}

fn write(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// `POST path` with a JSON body on netmanager's local API; fails unless 2xx.
fn post(socket: &Path, path: &str, body: &str) -> anyhow::Result<String> {
    request(socket, "POST", path, body)
}

fn get(socket: &Path, path: &str) -> anyhow::Result<String> {
    request(socket, "GET", path, "")
}

/// One HTTP/1.1 exchange over the unix socket (`Connection: close`).
fn request(socket: &Path, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let mut stream = UnixStream::connect(socket).with_context(|| format!("connect {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: netmanager\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default();
    let ok = status
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    anyhow::ensure!(
        ok,
        "{method} {path}: {status}: {}",
        payload.chars().take(300).collect::<String>()
    );
    // The body is sent with Content-Length (hyper, Full body): no chunking.
    Ok(payload.to_owned())
}
