//! The orchestrator's daemons on a dynamic mesh: `grove root`, `grove
//! cluster` and `grove worker` run in a node's namespace beside its
//! netmanager (with `nsenter --net`, like netmanager itself, so workload
//! namespaces stay visible), and a small HTTP client for the root's API
//! and for services, driven from inside a namespace.
//!
//! [`Orchestra`] puts it together for the orchestrator tests: a testbed on
//! the emulated WAN with nodes at sites, a token-joined mesh over it,
//! `grove root` on the cloud node, a `grove cluster` per site and `grove
//! worker`s on chosen nodes, waited for until every one is registered; then
//! the user API (from inside a namespace, over the underlay), `closest`
//! through a node's resolver, HTTP to an instance through the mesh, and
//! killing and bringing back the root, a worker's node or any node.
//!
//! ```no_run
//! use netns_tests::orchestra::{echo_service, frankfurt, geo, munich, sla, Orchestra, Role::*};
//! let o = Orchestra::builder()
//!     .node("fra", frankfurt(), &[Root, Cluster, Worker])
//!     .node("muc", munich(), &[Cluster, Worker])
//!     .build()
//!     .expect("orchestra");
//! let (status, _) = o.deploy(&sla("shop", &[echo_service("web", 1, geo(48.14, 11.58, 50.0))]));
//! assert_eq!(status, 201);
//! o.wait_running("web.shop.prod", 1, std::time::Duration::from_secs(20)).expect("running");
//! ```
//!
//! Member names are `<key>-<unique suffix>` (a worker's cgroups are named
//! after its node, and they are machine-wide), so tests share nothing and
//! may run in parallel; [`Orchestra::name`] maps a key to the member name
//! that constraints and views use. Dropping an `Orchestra` stops the
//! daemons (workers first: they remove their instances), then the
//! netmanagers, then sweeps what SIGKILLed daemons left behind (instance
//! processes in the workers' cgroups, workload namespaces) and deletes the
//! namespaces.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use orchestrator::api::types::{ClusterView, InstanceView, NodeView, ServiceView};
use orchestrator::model::InstanceState;
use serde_json::{json, Value};

use crate::dnsq::{query_a, resolver_socket, AAnswer, GROVE_RESOLVER};
use crate::dynamic::{peer_id_of, DynamicMesh, DynamicNode};
use crate::inns::in_netns;
use crate::{bin_path, unique_name, ChildGuard, ScratchDir, Signal, Site, Testbed};

mod admission;
mod sla;
#[cfg(test)]
mod tests;
mod wire;

pub use sla::*;
pub use wire::http_in;
use wire::raw_exchange;

/// What the harness's fallible steps return: the error is a message with
/// the daemons' logs in it, ready for a panic or an `anyhow!`.
pub type Outcome<T> = std::result::Result<T, String>;

/// The root's user API port (`--api 0.0.0.0:10000`).
pub const API_PORT: u16 = 10000;
/// The root's cluster port on its node's overlay address.
pub const CLUSTER_PORT: u16 = 10001;
/// A cluster's worker port on its node's overlay address.
pub const WORKER_PORT: u16 = 10002;
/// The port [`echo_service`] instances answer on.
pub const ECHO_PORT: u16 = 8080;
/// Memory (MiB) of every test service's instance unless told otherwise.
pub const SERVICE_MIB: u64 = 64;
/// CPU every worker offers unless told otherwise: plenty, so that the
/// tests' one-vCPU instances are never refused for CPU on a 2-core machine.
pub const WORKER_CPU_MILLIS: u32 = 64_000;

/// Frankfurt: the cloud.
pub fn frankfurt() -> Site {
    Site::new("frankfurt", 50.11, 8.68)
}

/// Munich: an edge site (~300 km from Frankfurt).
pub fn munich() -> Site {
    Site::new("munich", 48.14, 11.58)
}

/// Milan: an edge site (~350 km from Munich, ~520 km from Frankfurt).
pub fn milan() -> Site {
    Site::new("milan", 45.46, 9.19)
}

/// What a node runs besides its netmanager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `grove root` (exactly one node; it also admits the mesh).
    Root,
    /// `grove cluster`, reporting to the root.
    Cluster,
    /// `grove worker`, reporting to a cluster (by default the first
    /// cluster at its site, else the root's node's cluster).
    Worker,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Cluster => "cluster",
            Role::Worker => "worker",
        }
    }
}

#[derive(Debug, Clone)]
struct Plan {
    key: String,
    site: Site,
    roles: Vec<Role>,
    cluster: Option<String>,
    memory_mib: Option<u64>,
    cpu_millis: Option<u32>,
    /// Joins the mesh with a token from its cluster (a delegate of the
    /// authority), after the clusters registered, not from the authority.
    via_cluster: bool,
}

/// Builds an [`Orchestra`]: nodes (key, site, roles), in any order.
#[derive(Debug, Clone, Default)]
pub struct OrchestraBuilder {
    plans: Vec<Plan>,
    cluster_timeout_ms: Option<u64>,
    worker_grace_ms: Option<u64>,
    quiet: bool,
}

impl OrchestraBuilder {
    /// A node `key` (short, lowercase letters and digits) at `site` running `roles`.
    pub fn node(mut self, key: &str, site: Site, roles: &[Role]) -> Self {
        // Nodes of one site stand a little apart, so none is exactly another.
        let same = self.plans.iter().filter(|p| p.site.name == site.name).count() as f64;
        let site = Site::new(site.name.clone(), site.lat + 0.01 * same, site.lon + 0.01 * same);
        self.plans.push(Plan { key: key.into(), site, roles: roles.to_vec(), cluster: None, memory_mib: None, cpu_millis: None, via_cluster: false });
        self
    }

    /// The worker on `key` reports to the cluster on node `cluster_key`.
    pub fn worker_of(mut self, key: &str, cluster_key: &str) -> Self {
        if let Some(p) = self.plans.iter_mut().find(|p| p.key == key) {
            p.cluster = Some(cluster_key.into());
        }
        self
    }

    /// The node `key` joins the mesh through its cluster: with a join token
    /// from the cluster's netmanager, which admits it under the block the
    /// root delegated (root → cluster → node), once the clusters are up.
    pub fn admitted_by_cluster(mut self, key: &str) -> Self {
        if let Some(p) = self.plans.iter_mut().find(|p| p.key == key) {
            p.via_cluster = true;
        }
        self
    }

    /// The worker on `key` offers this much memory (MiB) to instances.
    pub fn worker_memory(mut self, key: &str, mib: u64) -> Self {
        if let Some(p) = self.plans.iter_mut().find(|p| p.key == key) {
            p.memory_mib = Some(mib);
        }
        self
    }

    /// The worker on `key` offers this much CPU (millicores).
    pub fn worker_cpu(mut self, key: &str, millis: u32) -> Self {
        if let Some(p) = self.plans.iter_mut().find(|p| p.key == key) {
            p.cpu_millis = Some(millis);
        }
        self
    }

    /// `grove root --cluster-timeout`.
    pub fn cluster_timeout(mut self, ms: u64) -> Self {
        self.cluster_timeout_ms = Some(ms);
        self
    }

    /// `grove cluster --worker-grace`.
    pub fn worker_grace(mut self, ms: u64) -> Self {
        self.worker_grace_ms = Some(ms);
        self
    }

    /// No progress lines on stderr.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Builds the testbed and the mesh, starts every daemon and waits until
    /// every cluster and every worker is registered with the root.
    pub fn build(self) -> Outcome<Orchestra> {
        crate::require_root().map_err(|e| e.to_string())?;
        let mut plans = self.plans.clone();
        let roots: Vec<usize> = plans.iter().enumerate().filter(|(_, p)| p.roles.contains(&Role::Root)).map(|(i, _)| i).collect();
        if roots.len() != 1 {
            return Err(format!("an orchestra needs exactly one root node, got {}", roots.len()));
        }
        // The root's node admits the mesh: it is node 0.
        let root_plan = plans.remove(roots[0]);
        plans.insert(0, root_plan);
        for p in &plans {
            if p.key.is_empty() || !p.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                return Err(format!("node key {:?}: lowercase letters and digits only", p.key));
            }
        }
        let started = Instant::now();
        let say = |what: &str| {
            if !self.quiet {
                eprintln!("[orchestra {:>5.1}s] {what}", started.elapsed().as_secs_f64());
            }
        };
        let suffix = unique_name("o").trim_start_matches("o-").to_owned();
        let names: Vec<String> = plans.iter().map(|p| format!("{}-{suffix}", p.key)).collect();
        let builder = plans.iter().zip(&names).fold(Testbed::builder(), |b, (p, name)| b.with_node_at(name, p.site.clone()));
        let tb = builder.build().map_err(|e| format!("testbed: {e}"))?;
        let scratch = ScratchDir::new("orch").map_err(|e| e.to_string())?;
        let dir = scratch.path().to_path_buf();
        let mesh = DynamicMesh::prepare(&tb, &dir).map_err(|e| format!("mesh: {e}"))?;
        let peer_ids = mesh.nodes.iter().map(|n| peer_id_of(&dir.join(format!("{}.identity", n.name))).unwrap_or_default()).collect();
        let keys: Vec<String> = plans.iter().map(|p| p.key.clone()).collect();
        let mut o = Orchestra {
            daemons: Vec::new(),
            mesh,
            keys,
            peer_ids,
            token: String::new(),
            root_state: dir.join("root-state"),
            dir,
            cluster_timeout_ms: self.cluster_timeout_ms,
            tb,
            scratch,
        };
        for i in (0..o.mesh.nodes.len()).filter(|&i| !plans[i].via_cluster) {
            o.mesh.nodes[i].start().map_err(|e| format!("netmanager {}: {e}\n{}", o.mesh.nodes[i].name, o.mesh.logs(20)))?;
        }
        o.mesh.wait_converged(Duration::from_secs(30)).map_err(|e| format!("{e}\n{}", o.mesh.logs(20)))?;
        say(&format!("mesh of {} up", o.mesh.nodes.len()));

        // The root, then the clusters, then the workers.
        o.start_root()?;
        let root_name = o.mesh.nodes[0].name.clone();
        let mut clusters = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            if p.roles.contains(&Role::Cluster) {
                let mut args = vec!["--root".to_owned(), root_name.clone()];
                if let Some(ms) = self.worker_grace_ms {
                    args.extend(["--worker-grace".to_owned(), ms.to_string()]);
                }
                o.spawn(i, Role::Cluster, args)?;
                clusters.push(o.mesh.nodes[i].name.clone());
            }
        }
        for (i, p) in plans.iter().enumerate().filter(|(_, p)| p.via_cluster) {
            let cluster = cluster_of(&o, &plans, p)?;
            o.join_through_cluster(i, cluster)?;
            say(&format!("{} admitted by the cluster on {}", o.mesh.nodes[i].name, o.mesh.nodes[cluster].name));
        }
        let mut workers = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            if !p.roles.contains(&Role::Worker) {
                continue;
            }
            let cluster = cluster_of(&o, &plans, p)?;
            let state = o.dir.join(format!("worker-{}", p.key));
            let mut args = vec![
                "--cluster".to_owned(),
                o.mesh.nodes[cluster].name.clone(),
                "--state-dir".to_owned(),
                state.display().to_string(),
                "--cpu-millis".to_owned(),
                p.cpu_millis.unwrap_or(WORKER_CPU_MILLIS).to_string(),
            ];
            if let Some(mib) = p.memory_mib {
                args.extend(["--memory-mib".to_owned(), mib.to_string()]);
            }
            o.spawn(i, Role::Worker, args)?;
            workers.push(o.mesh.nodes[i].name.clone());
        }
        o.wait_registered(&clusters, &workers, Duration::from_secs(30))?;
        say(&format!("root, {} clusters and {} workers registered", clusters.len(), workers.len()));
        Ok(o)
    }
}

/// The cluster node a node's worker reports to (and, with
/// [`OrchestraBuilder::admitted_by_cluster`], joins through): the one named
/// by `worker_of`, else the first cluster at its site, else the root's.
fn cluster_of(o: &Orchestra, plans: &[Plan], p: &Plan) -> Outcome<usize> {
    match &p.cluster {
        Some(key) => o
            .index(key)
            .filter(|&c| plans[c].roles.contains(&Role::Cluster))
            .ok_or_else(|| format!("{}: worker_of {key}: no cluster there", p.key)),
        None => plans
            .iter()
            .position(|c| c.roles.contains(&Role::Cluster) && c.site.name == p.site.name)
            .or_else(|| plans[0].roles.contains(&Role::Cluster).then_some(0))
            .ok_or_else(|| format!("{}: no cluster at {} and none on the root's node", p.key, p.site.name)),
    }
}

/// One grove daemon: how to start it again, and the running process.
#[derive(Debug)]
struct Daemon {
    role: Role,
    node: usize,
    args: Vec<String>,
    log: PathBuf,
    child: Option<ChildGuard>,
}

/// The tiers on a mesh; everything is stopped and removed on drop.
#[derive(Debug)]
pub struct Orchestra {
    // Drop order after `Drop::drop`: daemons, netmanagers, namespaces, scratch.
    daemons: Vec<Daemon>,
    mesh: DynamicMesh,
    keys: Vec<String>,
    peer_ids: Vec<String>,
    token: String,
    root_state: PathBuf,
    dir: PathBuf,
    cluster_timeout_ms: Option<u64>,
    tb: Testbed,
    scratch: ScratchDir,
}

/// How an HTTP exchange ended: (status, body).
pub type HttpResult = Outcome<(u16, Vec<u8>)>;

impl Orchestra {
    /// Starts describing one.
    pub fn builder() -> OrchestraBuilder {
        OrchestraBuilder::default()
    }

    // ---- the nodes ----

    /// The node index of `key`.
    pub fn index(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }

    fn at(&self, key: &str) -> usize {
        self.index(key).unwrap_or_else(|| panic!("no node {key:?} in this orchestra (nodes: {:?})", self.keys))
    }

    /// The netmanager of node `key`.
    pub fn node(&self, key: &str) -> &DynamicNode {
        &self.mesh.nodes[self.at(key)]
    }

    /// The mesh member name of node `key` (what constraints and views use).
    pub fn name(&self, key: &str) -> String {
        self.node(key).name.clone()
    }

    /// The key of the node with member name `name`.
    pub fn key_of(&self, name: &str) -> Option<&str> {
        self.mesh.nodes.iter().position(|n| n.name == name).map(|i| self.keys[i].as_str())
    }

    /// Every node key, the root's first.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The mesh.
    pub fn mesh(&self) -> &DynamicMesh {
        &self.mesh
    }

    /// The testbed (WAN emulator, namespaces).
    pub fn testbed(&self) -> &Testbed {
        &self.tb
    }

    /// The scratch directory (configs, logs, state directories); kept
    /// after a failed test.
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// The node's underlay address.
    pub fn underlay(&self, key: &str) -> Ipv4Addr {
        self.node(key).underlay
    }

    /// The node's overlay address (first host of its subnet).
    pub fn overlay(&self, key: &str) -> Option<Ipv4Addr> {
        self.node(key).overlay()
    }

    /// The netmanager peer id of node `key`.
    pub fn peer_id(&self, key: &str) -> &str {
        &self.peer_ids[self.at(key)]
    }

    /// The node's granted subnet (its instances' addresses lie in it).
    pub fn subnet(&self, key: &str) -> Option<ipnet::Ipv4Net> {
        self.node(key).subnet()?.parse().ok()
    }

    /// True when `ip` lies in the subnet of the node whose member name is `name`.
    pub fn on_node(&self, name: &str, ip: Ipv4Addr) -> bool {
        self.key_of(name).and_then(|k| self.subnet(k)).is_some_and(|s| s.contains(&ip))
    }

    /// The root's node key.
    pub fn root_key(&self) -> &str {
        &self.keys[0]
    }

    // ---- daemons ----

    fn spawn(&mut self, node: usize, role: Role, args: Vec<String>) -> Outcome<()> {
        let key = &self.keys[node];
        let log = self.dir.join(format!("{key}-{}.log", role.word()));
        let child = spawn_daemon(&self.mesh.nodes[node], &log, role, &args)?;
        self.daemons.push(Daemon { role, node, args, log, child: Some(child) });
        Ok(())
    }

    fn start_root(&mut self) -> Outcome<()> {
        let mut args =
            vec!["--api".to_owned(), format!("0.0.0.0:{API_PORT}"), "--state-dir".to_owned(), self.root_state.display().to_string()];
        if let Some(ms) = self.cluster_timeout_ms {
            args.extend(["--cluster-timeout".to_owned(), ms.to_string()]);
        }
        self.spawn(0, Role::Root, args)?;
        let token_file = self.token_file();
        let read = wait_for(Duration::from_secs(15), || std::fs::read_to_string(&token_file).ok().filter(|t| !t.trim().is_empty()));
        let Some(token) = read else {
            return Err(format!("the root made no token file {} in 15 s\n{}", token_file.display(), self.logs(30)));
        };
        self.token = token.trim().to_owned();
        self.wait_health(Duration::from_secs(15))
    }

    fn wait_health(&mut self, timeout: Duration) -> Outcome<()> {
        let healthy = wait_for(timeout, || (self.api_raw("GET", "/v1/health", None, None).0 == 200).then_some(()));
        if healthy.is_none() {
            let exited = self.daemons.iter_mut().any(|d| d.role == Role::Root && d.child.as_mut().is_some_and(|c| !c.is_running()));
            return Err(format!("the root's API does not answer /v1/health (exited: {exited})\n{}", self.logs(30)));
        }
        Ok(())
    }

    fn wait_registered(&mut self, clusters: &[String], workers: &[String], timeout: Duration) -> Outcome<()> {
        let done = wait_for(timeout, || {
            let cs = self.clusters();
            let ns = self.nodes();
            let clusters_ok = clusters.iter().all(|c| cs.iter().any(|v| v.name == *c && v.state == "alive"));
            let workers_ok = workers.iter().all(|w| ns.iter().any(|v| v.name == *w));
            (clusters_ok && workers_ok).then_some(())
        });
        if done.is_none() {
            let mut exited = Vec::new();
            for d in self.daemons.iter_mut() {
                if d.child.as_mut().is_some_and(|c| !c.is_running()) {
                    exited.push(format!("{} on node {}", d.role.word(), d.node));
                }
            }
            return Err(format!(
                "not every cluster ({clusters:?}) and worker ({workers:?}) registered within {timeout:?}; exited: {exited:?}\nclusters: {}\nnodes: {}\n{}",
                self.get("/v1/clusters"),
                self.get("/v1/nodes"),
                self.logs(30)
            ));
        }
        Ok(())
    }

    /// The root's state directory.
    pub fn root_state(&self) -> &Path {
        &self.root_state
    }

    /// The root's API token file (`<state-dir>/api-token`).
    pub fn token_file(&self) -> PathBuf {
        self.root_state.join("api-token")
    }

    /// The API token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `http://<root underlay>:10000`.
    pub fn root_url(&self) -> String {
        format!("http://{}:{API_PORT}", self.mesh.nodes[0].underlay)
    }

    /// SIGKILLs the root and waits for it to be gone.
    pub fn kill_root(&mut self) {
        for d in self.daemons.iter_mut().filter(|d| d.role == Role::Root) {
            if let Some(mut child) = d.child.take() {
                let _ = child.signal(Signal::Kill);
                let _ = child.wait_for_exit(Duration::from_secs(5));
            }
        }
    }

    /// Starts the root again (SIGKILLing a running one first) on the same
    /// state directory and waits for its API.
    pub fn restart_root(&mut self) -> Outcome<()> {
        self.kill_root();
        let i = self.daemons.iter().position(|d| d.role == Role::Root).ok_or("no root daemon")?;
        let child = spawn_daemon(&self.mesh.nodes[0], &self.daemons[i].log, Role::Root, &self.daemons[i].args)?;
        self.daemons[i].child = Some(child);
        self.wait_health(Duration::from_secs(15))
    }

    /// SIGKILLs every grove daemon on node `key` and its netmanager: the
    /// node is gone as if unplugged. Returns when they have exited.
    pub fn kill_node(&mut self, key: &str) {
        let i = self.at(key);
        for d in self.daemons.iter_mut().filter(|d| d.node == i) {
            if let Some(child) = d.child.as_ref() {
                let _ = child.signal(Signal::Kill);
            }
        }
        let _ = self.mesh.nodes[i].stop_with(Signal::Kill);
        for d in self.daemons.iter_mut().filter(|d| d.node == i) {
            if let Some(mut child) = d.child.take() {
                let _ = child.wait_for_exit(Duration::from_secs(5));
            }
        }
    }

    /// SIGKILLs the worker and the netmanager of node `key` (and anything
    /// else running there): [`Orchestra::kill_node`].
    pub fn kill_worker(&mut self, key: &str) {
        self.kill_node(key);
    }

    /// Brings a killed node back: its netmanager (rejoining with its kept
    /// grant), then its daemons with their old arguments; waits until the
    /// mesh has converged and its cluster and worker (if any) are registered.
    pub fn revive_node(&mut self, key: &str) -> Outcome<()> {
        let i = self.at(key);
        self.mesh.nodes[i].start().map_err(|e| format!("netmanager {key}: {e}"))?;
        self.mesh.wait_converged(Duration::from_secs(30)).map_err(|e| format!("{e}\n{}", self.mesh.logs(15)))?;
        let mut workers = Vec::new();
        let mut clusters = Vec::new();
        for d in 0..self.daemons.len() {
            let role = self.daemons[d].role;
            if self.daemons[d].node != i || self.daemons[d].child.is_some() || role == Role::Root {
                continue;
            }
            let child = spawn_daemon(&self.mesh.nodes[i], &self.daemons[d].log, role, &self.daemons[d].args)?;
            self.daemons[d].child = Some(child);
            match role {
                Role::Worker => workers.push(self.mesh.nodes[i].name.clone()),
                Role::Cluster => clusters.push(self.mesh.nodes[i].name.clone()),
                Role::Root => {}
            }
        }
        if self.daemons.iter().any(|d| d.node == i && d.role == Role::Root && d.child.is_none()) {
            self.restart_root()?;
        }
        self.wait_registered(&clusters, &workers, Duration::from_secs(30))
    }

    /// True while the daemon `role` on `key` runs.
    pub fn is_running(&mut self, key: &str, role: Role) -> bool {
        let i = self.at(key);
        self.daemons.iter_mut().any(|d| d.node == i && d.role == role && d.child.as_mut().is_some_and(ChildGuard::is_running))
    }

    /// The tail of every grove daemon's log (for failure messages).
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for d in &self.daemons {
            let text = std::fs::read_to_string(&d.log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            out.push_str(&format!("---- {} ----\n{tail}\n", d.log.file_name().unwrap_or_default().to_string_lossy()));
        }
        out
    }

    /// Lines of the logs of `role` daemons containing `needle`.
    pub fn log_lines(&self, role: Role, needle: &str) -> Vec<String> {
        let mut out = Vec::new();
        for d in self.daemons.iter().filter(|d| d.role == role) {
            let text = std::fs::read_to_string(&d.log).unwrap_or_default();
            out.extend(text.lines().filter(|l| l.contains(needle)).map(str::to_owned));
        }
        out
    }

    // ---- the user API ----

    /// One API call from inside the root's namespace to its underlay
    /// address: (status, JSON body, or the text as a JSON string). Status
    /// 0 when there was no answer (the body is then the error).
    pub fn api_raw(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        self.api_from(self.root_key(), method, path, token, body)
    }

    /// Like [`Orchestra::api_raw`], from node `key`'s namespace over the underlay.
    pub fn api_from(&self, key: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let to = SocketAddr::new(self.mesh.nodes[0].underlay.into(), API_PORT);
        let mut headers = Vec::new();
        if let Some(token) = token {
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        match http_in(&self.node(key).netns, to, method, path, &headers, body.map(str::as_bytes), Duration::from_secs(15)) {
            Ok((status, bytes)) => {
                let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
                (status, value)
            }
            Err(e) => (0, Value::String(e)),
        }
    }

    /// GET with the token: the JSON on a 200, else Null.
    pub fn get(&self, path: &str) -> Value {
        match self.api_raw("GET", path, Some(&self.token), None) {
            (200, v) => v,
            _ => Value::Null,
        }
    }

    /// `POST /v1/apps` with an SLA document.
    pub fn deploy(&self, sla_json: &str) -> (u16, Value) {
        self.api_raw("POST", "/v1/apps", Some(&self.token), Some(sla_json))
    }

    /// `POST /v1/services/<ref>/scale`.
    pub fn scale(&self, reference: &str, instances: u32) -> (u16, Value) {
        let body = json!({ "instances": instances }).to_string();
        self.api_raw("POST", &format!("/v1/services/{reference}/scale"), Some(&self.token), Some(&body))
    }

    /// `GET /v1/services/<ref>`, typed; `None` unless 200.
    pub fn service(&self, reference: &str) -> Option<ServiceView> {
        match self.api_raw("GET", &format!("/v1/services/{reference}"), Some(&self.token), None) {
            (200, v) => serde_json::from_value(v).ok(),
            _ => None,
        }
    }

    /// `GET /v1/services/<ref>` as JSON, with its status.
    pub fn service_value(&self, reference: &str) -> (u16, Value) {
        self.api_raw("GET", &format!("/v1/services/{reference}"), Some(&self.token), None)
    }

    /// The RUNNING instances of a service.
    pub fn running(&self, reference: &str) -> Vec<InstanceView> {
        self.service(reference).map(|s| s.instances.into_iter().filter(|i| i.state == InstanceState::Running).collect()).unwrap_or_default()
    }

    /// `GET /v1/clusters`, typed (empty on failure).
    pub fn clusters(&self) -> Vec<ClusterView> {
        serde_json::from_value(self.get("/v1/clusters")).unwrap_or_default()
    }

    /// `GET /v1/nodes`, typed (empty on failure).
    pub fn nodes(&self) -> Vec<NodeView> {
        serde_json::from_value(self.get("/v1/nodes")).unwrap_or_default()
    }

    /// Polls the service until `done` holds: how long that took and the
    /// view; on timeout, the last view and the daemons' logs.
    pub fn wait_service(&self, reference: &str, timeout: Duration, mut done: impl FnMut(&ServiceView) -> bool) -> Outcome<(Duration, ServiceView)> {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < timeout {
            if let Some(view) = self.service(reference) {
                if done(&view) {
                    return Ok((start.elapsed(), view));
                }
                last = Some(view);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{reference}: condition not met within {timeout:?}; last view: {}\n{}",
            last.map(|v| serde_json::to_string_pretty(&v).unwrap_or_default()).unwrap_or_else(|| "none".into()),
            self.logs(25)
        ))
    }

    /// Waits until exactly `n` instances are RUNNING, each with an address
    /// (and none other is left); how long that took.
    pub fn wait_running(&self, reference: &str, n: usize, timeout: Duration) -> Outcome<Duration> {
        self.wait_service(reference, timeout, |v| v.running() == n && v.instances.len() == n && v.instances.iter().all(|i| i.address.is_some()))
            .map(|(took, _)| took)
    }

    /// Runs the `grove` CLI in the root's namespace with `--root` and
    /// `--token-file` appended.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(&[], args)
    }

    /// [`Orchestra::cli`] with `env` added to the CLI's environment.
    pub fn cli_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let grove = bin_path("grove").map(|p| p.display().to_string()).unwrap_or_else(|_| "grove".into());
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.mesh.nodes[0].netns))
            .arg(grove)
            .args(args)
            .envs(env.iter().copied())
            .args(["--root", &self.root_url(), "--token-file", &self.token_file().display().to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running grove {args:?}: {e}"))
    }

    // ---- the mesh from the inside ----

    /// An A query on node `from`'s resolver (127.0.0.153), one retry;
    /// rcode 255 when nothing answered.
    pub fn resolve(&self, from: &str, name: &str) -> AAnswer {
        let netns = self.node(from).netns.clone();
        let ask = || resolver_socket(&netns, GROVE_RESOLVER).and_then(|s| query_a(&s, name, Duration::from_millis(700)));
        ask().or_else(|_| ask()).unwrap_or(AAnswer { rcode: 255, addresses: Vec::new() })
    }

    /// `closest.<service ref>.grove` from node `from` (a name that already
    /// starts with `closest.` or ends in `.grove` is completed, not doubled).
    pub fn resolve_closest(&self, from: &str, name: &str) -> Vec<Ipv4Addr> {
        let mut fqdn = name.trim_end_matches('.').to_owned();
        if !fqdn.starts_with("closest.") {
            fqdn = format!("closest.{fqdn}");
        }
        if !fqdn.ends_with(".grove") {
            fqdn.push_str(".grove");
        }
        self.resolve(from, &fqdn).addresses
    }

    /// Polls `closest.<name>` from `from` until the answer satisfies `ok`:
    /// how long that took, or the last answer.
    pub fn wait_closest(
        &self,
        from: &str,
        name: &str,
        timeout: Duration,
        mut ok: impl FnMut(&[Ipv4Addr]) -> bool,
    ) -> std::result::Result<Duration, Vec<Ipv4Addr>> {
        let start = Instant::now();
        let mut last = Vec::new();
        while start.elapsed() < timeout {
            last = self.resolve_closest(from, name);
            if ok(&last) {
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(last)
    }

    /// `GET /` to `ip:port` from inside node `from`'s namespace (through
    /// the mesh when `ip` is an instance elsewhere): the body of a 200.
    pub fn http_get(&self, from: &str, ip: Ipv4Addr, port: u16) -> Outcome<String> {
        match http_in(&self.node(from).netns, SocketAddr::new(ip.into(), port), "GET", "/", &[], None, Duration::from_secs(3)) {
            Ok((200, body)) => Ok(String::from_utf8_lossy(&body).into_owned()),
            Ok((status, body)) => Err(format!("{ip}:{port} answered {status}: {}", String::from_utf8_lossy(&body))),
            Err(e) => Err(e),
        }
    }

    /// Adds `cidr` (e.g. `10.18.250.1/32`) to `lo` in node `key`'s namespace.
    pub fn add_address(&self, key: &str, cidr: &str) -> Outcome<()> {
        crate::cmd::ip(&["-n", &self.node(key).netns, "addr", "add", cidr, "dev", "lo"]).map(|_| ()).map_err(|e| e.to_string())
    }

    /// From node `key`'s namespace, a TCP connection from `source` to
    /// `to`; sends `payload`, then reads until the peer closes or `wait`
    /// passes: (bytes read, whether the peer closed).
    pub fn raw_exchange(&self, key: &str, source: Ipv4Addr, to: SocketAddr, payload: &[u8], wait: Duration) -> Outcome<(Vec<u8>, bool)> {
        let payload = payload.to_vec();
        let netns = self.node(key).netns.clone();
        in_netns(&netns, move || raw_exchange(source, to, &payload, wait)).map_err(|e| e.to_string())?
    }

    /// Kills and removes what SIGKILLed daemons left behind: instance
    /// processes in the workers' cgroups, workload namespaces.
    fn sweep(&self) {
        for (i, node) in self.mesh.nodes.iter().enumerate() {
            // Instances of a SIGKILLed worker run on in their cgroups.
            for hierarchy in ["memory", "cpu", "cpu,cpuacct", "pids", "unified", ""] {
                let parent = Path::new("/sys/fs/cgroup").join(hierarchy).join(format!("grove-{}", node.name));
                let Ok(entries) = std::fs::read_dir(&parent) else { continue };
                for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                    let procs = std::fs::read_to_string(entry.path().join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        // SAFETY: kill(2) on a process of this orchestra's cgroup.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    let _ = std::fs::remove_dir(entry.path());
                }
                let _ = std::fs::remove_dir(&parent);
            }
            // Workload namespaces a SIGKILLed netmanager left behind
            // (netmanager names them gw<last 6 of its peer id>-w<n>).
            let id = &self.peer_ids[i];
            if id.len() < 6 {
                continue;
            }
            let prefix = format!("gw{}-w", id[id.len() - 6..].to_ascii_lowercase());
            let Ok(entries) = std::fs::read_dir("/run/netns") else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with(&prefix) {
                    continue;
                }
                if let Ok(out) = Command::new("ip").args(["netns", "pids", &name]).output() {
                    for pid in String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        // SAFETY: kill(2) on a process inside this orchestra's namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                let _ = Command::new("ip").args(["netns", "del", &name]).output();
                let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&name));
            }
        }
    }
}

impl Drop for Orchestra {
    fn drop(&mut self) {
        // Workers first (they stop their instances through their netmanager), then the rest.
        for role in [Role::Worker, Role::Cluster, Role::Root] {
            for d in self.daemons.iter().filter(|d| d.role == role) {
                if let Some(child) = d.child.as_ref() {
                    let _ = child.signal(Signal::Term);
                }
            }
            for d in self.daemons.iter_mut().filter(|d| d.role == role) {
                if let Some(child) = d.child.as_mut() {
                    if child.wait_for_exit(Duration::from_secs(8)).ok().flatten().is_none() {
                        let _ = child.signal(Signal::Kill);
                    }
                }
            }
        }
        if std::thread::panicking() {
            eprintln!("---- grove daemons of this orchestra ({}) ----\n{}", self.dir.display(), self.logs(60));
        }
        self.daemons.clear();
        for node in &self.mesh.nodes {
            if let Some(child) = node.child.as_ref() {
                let _ = child.signal(Signal::Term);
            }
        }
        for node in &mut self.mesh.nodes {
            if let Some(child) = node.child.as_mut() {
                let _ = child.wait_for_exit(Duration::from_secs(5));
            }
        }
        self.sweep();
    }
}

fn spawn_daemon(node: &DynamicNode, log: &Path, role: Role, args: &[String]) -> Outcome<ChildGuard> {
    let grove = bin_path("grove").map_err(|e| e.to_string())?;
    let file = std::fs::File::options().create(true).append(true).open(log).map_err(|e| format!("log {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| format!("log {}: {e}", log.display()))?;
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", node.netns))
        .arg(&grove)
        .arg(role.word())
        .args(args)
        .arg("--netmanager-socket")
        .arg(&node.control_socket)
        .env("RUST_LOG", std::env::var("GROVE_TEST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawn {} {}: {e}", grove.display(), role.word()))?;
    Ok(ChildGuard::new(format!("grove {} on {}", role.word(), node.name), child, log.to_path_buf()))
}

/// Polls `f` every 50 ms until it gives a value or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
