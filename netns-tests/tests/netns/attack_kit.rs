//! What the attack scenarios share: running the `rogue` binary inside a
//! testbed namespace (bounded, killed on drop), starting meshes, announcing
//! instances, asserting membership, and recording each daemon's peak
//! memory in one stable line per node: `attack=<name> node=<node>
//! vmhwm_kb=<k> …` (collected into the notes). Sampling while an attack
//! runs is in [`super::sampling`].

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netns_tests::dynamic::{ask, time_until, DynamicMesh, DynamicNode};
use netns_tests::grove::MESH_PORT;
use netns_tests::{bin_path, ScratchDir, Testbed};
use serde_json::Value;

/// No rogue run may outlast this (its own bound is shorter).
const ROGUE_LIMIT: Duration = Duration::from_secs(170);

/// TCP 50103 (control) of testbed node `i`.
pub fn control_addr(tb: &Testbed, i: usize) -> SocketAddr {
    SocketAddr::new(tb.node(i).ipv4().into(), MESH_PORT)
}

/// A rogue running in the background; killed if dropped unfinished.
pub struct RogueRun {
    child: Option<Child>,
    args: Vec<String>,
    started: Instant,
}

impl RogueRun {
    /// Waits for the report (JSON on stdout); panics with stderr on failure.
    pub fn wait(mut self) -> Value {
        let mut child = self.child.take().expect("running");
        let deadline = self.started + ROGUE_LIMIT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("rogue {:?} ran past {ROGUE_LIMIT:?}", self.args);
                }
            }
        };
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        assert!(status.success(), "rogue {:?} failed ({status}): {err}", self.args);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("rogue {:?} printed no JSON ({e}): {out}\n{err}", self.args))
    }
}

impl Drop for RogueRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the rogue inside testbed node `i`'s namespace.
pub fn spawn_rogue(tb: &Testbed, i: usize, args: &[&str]) -> RogueRun {
    let bin = bin_path("rogue").expect("rogue binary (cargo build --release -p netns-tests)");
    // stdout/stderr are small (one report, a few lines): pipes do not fill.
    let child = Command::new("ip")
        .args(["netns", "exec", tb.node(i).netns().name()])
        .arg(&bin)
        .args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rogue");
    RogueRun {
        child: Some(child),
        args: args.iter().map(|a| a.to_string()).collect(),
        started: Instant::now(),
    }
}

/// Waits until something listens on TCP `port` in testbed node `i`'s
/// namespace (a rogue listener that has bound), without connecting to it.
pub fn wait_listening(tb: &Testbed, i: usize, port: u16) {
    let ns = tb.node(i).netns();
    let filter = format!("sport = :{port}");
    let up = time_until(Duration::from_secs(10), || {
        ns.exec("ss", &["-Hltn", &filter]).map(|o| !o.stdout.is_empty()).unwrap_or(false)
    });
    assert!(up.is_some(), "nothing listens on TCP {port} in {} after 10 s", ns.name());
}

/// Runs the rogue to completion; its report.
pub fn rogue(tb: &Testbed, i: usize, args: &[&str]) -> Value {
    spawn_rogue(tb, i, args).wait()
}

/// Address `k` of a node's granted subnet.
pub fn host_in(node: &DynamicNode, k: u32) -> Ipv4Addr {
    let subnet = node.subnet().unwrap_or_else(|| panic!("{} has no subnet", node.name));
    let network: Ipv4Addr = subnet.split('/').next().and_then(|a| a.parse().ok()).expect("subnet address");
    Ipv4Addr::from(u32::from(network) + k)
}

/// Announces `service` instance `number` at `ip` on node `node`.
pub fn announce(mesh: &DynamicMesh, node: usize, service: &str, number: u32, ip: Ipv4Addr) {
    let body = format!(r#"{{"service":"{service}","app":"cam","number":{number},"ipv4":"{ip}"}}"#);
    let (code, answer) = mesh.nodes[node]
        .api("POST", "/v1/instances", Some(&body))
        .expect("POST /v1/instances");
    assert!(
        (200..300).contains(&code),
        "announcing {service} on {}: {code} {answer}",
        mesh.nodes[node].name
    );
}

pub fn closest(node: &DynamicNode, service: &str) -> Vec<Ipv4Addr> {
    let socket = node.resolver().expect("resolver socket");
    ask(&socket, &format!("closest.{service}.grove"))
        .map(|a| a.addresses)
        .unwrap_or_default()
}

/// Waits until every node in `nodes` answers `closest.<service>` with `want`.
pub fn expect_closest(mesh: &DynamicMesh, nodes: &[usize], service: &str, want: Ipv4Addr, timeout: Duration) {
    let ok = time_until(timeout, || nodes.iter().all(|i| closest(&mesh.nodes[*i], service) == vec![want]));
    assert!(
        ok.is_some(),
        "closest.{service} is not {want} everywhere: {:?}\n{}",
        nodes.iter().map(|i| closest(&mesh.nodes[*i], service)).collect::<Vec<_>>(),
        mesh.logs(20)
    );
}

/// The member views `node` holds.
pub fn members(node: &DynamicNode) -> Vec<Value> {
    node.status()
        .ok()
        .and_then(|s| s["members"]["members"].as_array().cloned())
        .unwrap_or_default()
}

pub fn member<'a>(views: &'a [Value], name: &str) -> Option<&'a Value> {
    views.iter().find(|m| m["name"] == name)
}

/// Every running node sees exactly the other running nodes, all alive.
pub fn assert_membership(mesh: &DynamicMesh, running: &[usize]) {
    let expected = names(mesh, running);
    for i in running {
        let node = &mesh.nodes[*i];
        let views = members(node);
        let mut seen: Vec<(String, String)> = views
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or("?").to_owned(),
                    m["state"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect();
        seen.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .filter(|n| **n != node.name)
            .map(|n| (n.clone(), "alive".to_owned()))
            .collect();
        want.sort();
        assert_eq!(seen, want, "{}'s membership\n{}", node.name, mesh.logs(15));
    }
}

/// Every daemon in `running` is still running.
pub fn assert_running(mesh: &mut DynamicMesh, running: &[usize]) {
    for i in running {
        let node = &mut mesh.nodes[*i];
        assert!(
            node.is_running(),
            "netmanager {} exited:\n{}",
            node.name,
            node.child.as_ref().map(|c| c.log_tail(30)).unwrap_or_default()
        );
    }
}

/// After `attack`: the `running` nodes converge again, none exited, each
/// sees all the others alive; then their peak memory is recorded.
pub fn assert_whole_after(mesh: &mut DynamicMesh, attack: &str, running: &[usize]) {
    mesh.wait_converged(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    assert_running(mesh, running);
    assert_membership(mesh, running);
    record_memory(mesh, attack, running);
}

/// Prints (and returns) every running daemon's peak RSS under `attack`.
pub fn record_memory(mesh: &DynamicMesh, attack: &str, running: &[usize]) -> BTreeMap<String, u64> {
    let mut peaks = BTreeMap::new();
    for i in running {
        let node = &mesh.nodes[*i];
        let (hwm, rss) = (node.vmhwm_kb().unwrap_or(0), node.vmrss_kb().unwrap_or(0));
        eprintln!("attack={attack} node={} vmhwm_kb={hwm} vmrss_kb={rss}", node.name);
        peaks.insert(node.name.clone(), hwm);
    }
    peaks
}

/// Lines of `node`'s log containing `needle`.
pub fn log_lines(node: &DynamicNode, needle: &str) -> usize {
    std::fs::read_to_string(&node.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Starts nodes `0..n` of a fresh mesh over `tb` and waits for them.
pub fn mesh_of(tb: &Testbed, dir: &ScratchDir, n: usize) -> DynamicMesh {
    let mut mesh = DynamicMesh::prepare(tb, dir.path()).expect("prepare");
    for i in 0..n {
        mesh.nodes[i].start().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    }
    mesh.wait_converged(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    mesh
}

pub fn names(mesh: &DynamicMesh, running: &[usize]) -> Vec<String> {
    running.iter().map(|i| mesh.nodes[*i].name.clone()).collect()
}

/// The `[control]` lines of a node that joins through the pinned
/// authority with the mesh's token, with `extra` bootstrap entries first.
pub fn joining_with(mesh: &DynamicMesh, tb: &Testbed, extra: &[String]) -> String {
    let mut entries: Vec<String> = extra.iter().map(|e| format!("\"{e}\"")).collect();
    entries.push(format!("\"{}@{}\"", mesh.authority_id, control_addr(tb, 0)));
    format!(
        "bootstrap = [{}]\njoin_token_file = \"{}\"\n",
        entries.join(", "),
        mesh.dir.join("join-token").display()
    )
}

/// `rogue member` arguments joining `mesh` as `name` from testbed node `i`.
pub fn member_args(mesh: &DynamicMesh, tb: &Testbed, name: &str, mode: &str, seconds: u64) -> Vec<String> {
    let token = mesh.dir.join("join-token");
    [
        "member",
        "--dial",
        &control_addr(tb, 0).to_string(),
        "--authority",
        &mesh.authority_id,
        "--token-file",
        &token.to_string_lossy(),
        "--name",
        name,
        "--mode",
        mode,
        "--seconds",
        &seconds.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every running node holds every other running node alive (views are
/// refreshed twice a second: wait a little for them).
pub fn assert_real_alive(mesh: &DynamicMesh, running: &[usize]) {
    let all_alive = || {
        running.iter().all(|i| {
            let views = members(&mesh.nodes[*i]);
            running
                .iter()
                .filter(|j| *j != i)
                .all(|j| member(&views, &mesh.nodes[*j].name).is_some_and(|m| m["state"] == "alive"))
        })
    };
    let _ = time_until(Duration::from_secs(5), all_alive);
    for i in running {
        let views = members(&mesh.nodes[*i]);
        for j in running.iter().filter(|j| *j != i) {
            let name = &mesh.nodes[*j].name;
            let state = member(&views, name).map(|m| m["state"].clone());
            assert_eq!(
                state,
                Some(Value::from("alive")),
                "{} holds {name} as {state:?}\n{}",
                mesh.nodes[*i].name,
                mesh.logs(20)
            );
        }
    }
}

/// Waits until every node in `running` lists the member `name`.
pub fn wait_listed(mesh: &DynamicMesh, running: &[usize], name: &str) {
    let listed = time_until(Duration::from_secs(15), || {
        running.iter().all(|i| member(&members(&mesh.nodes[*i]), name).is_some())
    });
    assert!(listed.is_some(), "{name} is not listed everywhere\n{}", mesh.logs(20));
}

/// Log lines of `needle` on every running node, summed.
pub fn log_total(mesh: &DynamicMesh, running: &[usize], needle: &str) -> usize {
    running.iter().map(|i| log_lines(&mesh.nodes[*i], needle)).sum()
}

/// Log lines with `needle` that are not about `except` (the rogue).
pub fn log_total_except(mesh: &DynamicMesh, running: &[usize], needle: &str, except: &str) -> usize {
    running
        .iter()
        .map(|i| {
            std::fs::read_to_string(&mesh.nodes[*i].log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(needle) && !l.contains(except))
                .count()
        })
        .sum()
}
