//! The orchestration tiers end to end, as real processes beside real
//! netmanagers: `grove root` on the cloud node, a `grove cluster` on the
//! cloud and on an edge node, `grove worker`s on three nodes, a client node
//! that only asks DNS. Deploy through the API, reach the instance by
//! `closest.<service>` through the mesh, a crashing instance restarted, a
//! worker killed and its instance moved, the root killed and restarted with
//! nothing lost, logs, removal, tokens and bad SLAs.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use netns_tests::dynamic::{time_until, DynamicMesh, DynamicNode};
use netns_tests::{bin_path, ChildGuard, ScratchDir, Signal, Testbed};
use serde_json::Value;

use super::attack_kit::{closest, mesh_of};
use super::support::build;

/// One grove daemon in a node's network namespace.
fn daemon(node: &DynamicNode, dir: &Path, role: &str, args: &[&str]) -> ChildGuard {
    let log = dir.join(format!("{}-{role}.log", node.name));
    let file = std::fs::File::options().create(true).append(true).open(&log).expect("log");
    let err = file.try_clone().expect("log");
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", node.netns))
        .arg(bin_path("grove").expect("grove is built"))
        .arg(role)
        .args(args)
        .arg("--netmanager-socket")
        .arg(&node.control_socket)
        .env("RUST_LOG", std::env::var("GROVE_TEST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .expect("spawn grove");
    ChildGuard::new(format!("grove {role} on {}", node.name), child, log)
}

struct Site {
    dir: PathBuf,
    root_ns: String,
    token: String,
}

impl Site {
    /// curl inside the root's namespace: (status, JSON).
    fn api(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.root_ns, "curl", "-s", "-m", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
        if let Some(token) = token {
            c.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(body) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", body]);
        }
        c.arg(format!("http://127.0.0.1:10000{path}"));
        let out = c.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        self.api("GET", path, Some(&self.token), None).1
    }

    fn running(&self, service: &str) -> Vec<Value> {
        let view = self.get(&format!("/v1/services/{service}"));
        view["instances"].as_array().cloned().unwrap_or_default().into_iter().filter(|i| i["state"] == "RUNNING").collect()
    }
}

fn sla(service: &str, script: &str, instances: u32, constraints: &str) -> String {
    format!(
        r#"{{"sla_version":"v2.0","customerID":"test","applications":[{{"applicationID":"","application_name":"shop","application_namespace":"prod","application_desc":"",
        "microservices":[{{"microserviceID":"","microservice_name":"{service}","microservice_namespace":"prod","virtualization":"process",
        "code":"/bin/sh","cmd":["-c","{script}"],"memory":64,"vcpus":1,"instances":{instances},"constraints":[{constraints}]}}]}}]}}"#
    )
}

fn logs(guards: &[&ChildGuard], dir: &Path) -> String {
    let _ = guards;
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") && name.contains('-') {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("== {name}\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
        }
    }
    out
}

/// Kills what instances a SIGKILLed worker left running (on a real machine
/// they die with the node; here the "node" is only a namespace), also when
/// the test fails.
struct Leftovers(Vec<String>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for node in &self.0 {
            for hierarchy in ["memory", "cpu", "cpu,cpuacct", ""] {
                let parent = Path::new("/sys/fs/cgroup").join(hierarchy).join(format!("grove-{node}"));
                for group in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                    let procs = std::fs::read_to_string(group.path().join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        // SAFETY: kill(2) on a pid read from our own cgroup.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    let _ = std::fs::remove_dir(group.path());
                }
                let _ = std::fs::remove_dir(&parent);
            }
        }
    }
}

#[test]
fn deploy_reach_heal_restart_and_remove_through_the_tiers() {
    let _leftovers = Leftovers(["or-cloud", "or-edge", "or-edge2", "or-edge3"].map(String::from).to_vec());
    let tb: Testbed = build(
        Testbed::builder().with_node("or-cloud").with_node("or-edge").with_node("or-edge2").with_node("or-edge3").with_node("or-cli"),
    );
    let scratch = ScratchDir::new("orch").expect("scratch");
    let mut mesh: DynamicMesh = mesh_of(&tb, &scratch, 5);
    let dir = scratch.path().to_path_buf();
    let state = |n: &str| dir.join(format!("state-{n}")).display().to_string();
    let root_state = state("root");
    let root = daemon(&mesh.nodes[0], &dir, "root", &["--state-dir", &root_state]);
    let _clusters = [
        daemon(&mesh.nodes[0], &dir, "cluster", &["--root", "or-cloud"]),
        daemon(&mesh.nodes[1], &dir, "cluster", &["--root", "or-cloud"]),
    ];
    // The edge cluster's node runs no worker, so killing a worker's node never takes its cluster too.
    let (w0, w2, w3) = (state("w0"), state("w2"), state("w3"));
    let mut workers = vec![
        Some(daemon(&mesh.nodes[0], &dir, "worker", &["--cluster", "or-cloud", "--state-dir", &w0])),
        None,
        Some(daemon(&mesh.nodes[2], &dir, "worker", &["--cluster", "or-edge", "--state-dir", &w2])),
        Some(daemon(&mesh.nodes[3], &dir, "worker", &["--cluster", "or-edge", "--state-dir", &w3])),
    ];
    let token_file = PathBuf::from(&root_state).join("api-token");
    assert!(time_until(Duration::from_secs(10), || token_file.exists()).is_some(), "no token file\n{}", logs(&[], &dir));
    let site = Site { dir: dir.clone(), root_ns: mesh.nodes[0].netns.clone(), token: std::fs::read_to_string(&token_file).expect("token").trim().to_owned() };
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&token_file).expect("token").permissions().mode() & 0o777, 0o600);

    // Both clusters register with their workers.
    let registered = time_until(Duration::from_secs(20), || {
        let nodes = site.get("/v1/nodes");
        nodes.as_array().is_some_and(|n| n.len() == 3)
    });
    assert!(registered.is_some(), "workers not all registered: {}\n{}", site.get("/v1/nodes"), logs(&[], &site.dir));

    // Tokens and bad SLAs.
    assert_eq!(site.api("GET", "/v1/health", None, None).0, 200);
    assert_eq!(site.api("GET", "/v1/services", None, None).0, 401);
    assert_eq!(site.api("GET", "/v1/services", Some("not-the-token-at-all"), None).0, 401);
    let bad = sla("web", "exit 0", 1, "").replace("\"memory\":64", "\"memory\":0");
    let (status, body) = site.api("POST", "/v1/apps", Some(&site.token), Some(&bad));
    assert_eq!(status, 400, "{body}");
    assert!(body["violations"].to_string().contains("applications[0].microservices[0].memory"), "{body}");
    let docker = sla("web", "exit 0", 1, "").replace("\"process\"", "\"docker\"");
    assert_eq!(site.api("POST", "/v1/apps", Some(&site.token), Some(&docker)).0, 422);

    // Deploy two instances on the edge cluster; reach one by name from the client node.
    let web = sla("web", "echo hello from $GROVE_INSTANCE; exec sleep 1000", 2, r#"{"type":"direct","cluster":"or-edge"}"#);
    let (status, body) = site.api("POST", "/v1/apps", Some(&site.token), Some(&web));
    assert_eq!(status, 201, "{body}");
    let up = time_until(Duration::from_secs(15), || site.running("web.shop.prod").len() == 2);
    assert!(up.is_some(), "not RUNNING: {}\n{}", site.get("/v1/services/web"), logs(&[], &site.dir));
    let view = site.get("/v1/services/web");
    assert!(view["instances"].as_array().expect("instances").iter().all(|i| i["cluster"] == "or-edge"), "{view}");
    let addresses: Vec<Ipv4Addr> = site.running("web").iter().filter_map(|i| i["address"].as_str()?.parse().ok()).collect();
    let answered = time_until(Duration::from_secs(5), || closest(&mesh.nodes[4], "web.shop.prod").iter().any(|a| addresses.contains(a)));
    assert!(answered.is_some(), "closest.web from or-cli: {:?}, instances at {addresses:?}", closest(&mesh.nodes[4], "web.shop.prod"));
    let target = closest(&mesh.nodes[4], "web.shop.prod")[0];
    let ping = Command::new("ip").args(["netns", "exec", &mesh.nodes[4].netns, "ping", "-c", "1", "-W", "2", &target.to_string()]).output().expect("ping");
    assert!(ping.status.success(), "the instance at {target} does not answer through the mesh");

    // Logs come from the worker.
    let logs_ok = time_until(Duration::from_secs(5), || site.get("/v1/services/web/logs").to_string().contains("hello from instance-"));
    assert!(logs_ok.is_some(), "{}", site.get("/v1/services/web/logs"));

    // A crashing instance is restarted by its worker.
    // Another application: an SLA describes its applications whole, so
    // deploying `shop` without `web` would remove `web`.
    let crash = sla("crash", "sleep 0.2; exit 3", 1, r#"{"type":"direct","cluster":"or-cloud"}"#).replace("\"shop\"", "\"lab\"");
    assert_eq!(site.api("POST", "/v1/apps", Some(&site.token), Some(&crash)).0, 201);
    let restarted = time_until(Duration::from_secs(15), || {
        site.get("/v1/services/crash.lab")["instances"].as_array().is_some_and(|is| is.iter().any(|i| i["restarts"].as_u64().unwrap_or(0) > 0))
    });
    assert!(restarted.is_some(), "no restart: {}", site.get("/v1/services/crash.lab"));

    // A worker killed with its node: its instances run on the other edge worker, within the target.
    let victim = site.running("web")[0]["node"].as_str().expect("node").to_owned();
    let index = mesh.index(&victim).expect("victim node");
    if let Some(w) = workers[index].take() {
        let _ = w.signal(Signal::Kill);
    }
    mesh.nodes[index].stop_with(Signal::Kill).expect("kill netmanager");
    let healed = time_until(Duration::from_secs(10), || {
        let running = site.running("web");
        running.len() == 2 && running.iter().all(|i| i["node"] != victim.as_str())
    });
    assert!(healed.is_some(), "not moved off {victim}: {}\n{}", site.get("/v1/services/web"), logs(&[], &site.dir));
    eprintln!("moved off {victim} in {:?}", healed);

    // The root killed and restarted: nothing lost.
    let _ = root.signal(Signal::Kill);
    drop(root);
    let root2 = daemon(&mesh.nodes[0], &dir, "root", &["--state-dir", &root_state]);
    let back = time_until(Duration::from_secs(15), || site.running("web").len() == 2);
    assert!(back.is_some(), "after the root's restart: {}\n{}", site.get("/v1/services/web"), logs(&[], &site.dir));

    // Removal: gone from the API and from DNS.
    assert_eq!(site.api("DELETE", "/v1/apps/shop.prod", Some(&site.token), None).0, 200);
    assert_eq!(site.api("GET", "/v1/services/web", Some(&site.token), None).0, 404);
    let gone = time_until(Duration::from_secs(5), || closest(&mesh.nodes[4], "web.shop.prod").is_empty());
    assert!(gone.is_some(), "closest.web still answers {:?}", closest(&mesh.nodes[4], "web.shop.prod"));
    drop(root2);
}

/// Where an instance of `service` runs, once it does, or its reason.
fn placed(site: &Site, service: &str, timeout: Duration) -> Result<String, String> {
    let mut last = Value::Null;
    let ok = time_until(timeout, || {
        last = site.get(&format!("/v1/services/{service}"));
        last["instances"][0]["state"] == "RUNNING"
    });
    match ok {
        Some(_) => Ok(last["instances"][0]["node"].as_str().unwrap_or("?").to_owned()),
        None => Err(last["instances"][0]["reason"].as_str().unwrap_or("").to_owned()),
    }
}

/// Each constraint type is obeyed, and a constraint nothing meets (or a
/// request nothing can hold) is a REQUESTED instance with the reason, not a
/// hang. A stranger's connection to the root's cluster port is refused.
#[test]
fn constraints_are_obeyed_or_refused_with_a_reason() {
    use netns_tests::Site as At;
    let _leftovers = Leftovers(["oc-fra", "oc-muc", "oc-mil"].map(String::from).to_vec());
    let tb = build(
        Testbed::builder()
            .with_node_at("oc-fra", At::new("frankfurt", 50.110, 8.682))
            .with_node_at("oc-muc", At::new("munich", 48.137, 11.575))
            .with_node_at("oc-mil", At::new("milan", 45.464, 9.190)),
    );
    let scratch = ScratchDir::new("orch-c").expect("scratch");
    let mesh = mesh_of(&tb, &scratch, 3);
    let dir = scratch.path().to_path_buf();
    let state = |n: &str| dir.join(format!("state-{n}")).display().to_string();
    let root_state = state("root");
    let _root = daemon(&mesh.nodes[0], &dir, "root", &["--state-dir", &root_state]);
    let (w0, w1, w2) = (state("w0"), state("w1"), state("w2"));
    let _guards = [
        daemon(&mesh.nodes[0], &dir, "cluster", &["--root", "oc-fra"]),
        daemon(&mesh.nodes[1], &dir, "cluster", &["--root", "oc-fra"]),
        // Room for every case's vCPU (the machine has two; nothing here burns CPU).
        daemon(&mesh.nodes[0], &dir, "worker", &["--cluster", "oc-fra", "--state-dir", &w0, "--cpu-millis", "16000"]),
        daemon(&mesh.nodes[1], &dir, "worker", &["--cluster", "oc-muc", "--state-dir", &w1, "--cpu-millis", "16000"]),
        // Milan's worker belongs to the Munich cluster: one cluster, two cities.
        daemon(&mesh.nodes[2], &dir, "worker", &["--cluster", "oc-muc", "--state-dir", &w2, "--cpu-millis", "16000"]),
    ];
    let token_file = PathBuf::from(&root_state).join("api-token");
    assert!(time_until(Duration::from_secs(10), || token_file.exists()).is_some());
    let site = Site { dir: dir.clone(), root_ns: mesh.nodes[0].netns.clone(), token: std::fs::read_to_string(&token_file).expect("token").trim().to_owned() };
    let registered = time_until(Duration::from_secs(20), || site.get("/v1/nodes").as_array().is_some_and(|n| n.len() == 3));
    assert!(registered.is_some(), "{}\n{}", site.get("/v1/nodes"), logs(&[], &dir));

    let deploy = |name: &str, constraint: &str, memory: u64| {
        let body = sla(name, "exec sleep 1000", 1, constraint).replace("\"shop\"", &format!("\"{name}\"")).replace("\"memory\":64", &format!("\"memory\":{memory}"));
        let (status, reply) = site.api("POST", "/v1/apps", Some(&site.token), Some(&body));
        assert_eq!(status, 201, "{reply}");
        format!("{name}.{name}")
    };
    let wait = Duration::from_secs(10);
    let cases = [
        ("nearmuc", r#"{"type":"geo","location":"48.137,11.575","threshold":50}"#, "oc-muc"),
        ("nearmil", r#"{"type":"geo","location":"45.464,9.190","threshold":50}"#, "oc-mil"),
        ("nearfra", r#"{"type":"geo","location":"50.110,8.682","threshold":50}"#, "oc-fra"),
        ("fastmil", r#"{"type":"latency","area":"oc-mil","threshold":3}"#, "oc-mil"),
        ("pinned", r#"{"type":"direct","node":"oc-mil"}"#, "oc-mil"),
        ("oncluster", r#"{"type":"direct","cluster":"oc-fra"}"#, "oc-fra"),
    ];
    for (name, constraint, want) in cases {
        let service = deploy(name, constraint, 64);
        assert_eq!(placed(&site, &service, wait).as_deref(), Ok(want), "{name} ({constraint}): {}\n{}", site.get(&format!("/v1/services/{service}")), logs(&[], &dir));
    }
    let refusals = [
        ("nearrome", r#"{"type":"geo","location":"41.903,12.496","threshold":50}"#, 64, "too far"),
        ("tooslow", r#"{"type":"latency","area":"oc-mil","threshold":0.5}"#, 64, "too slow"),
        ("nosuch", r#"{"type":"direct","node":"oc-nowhere"}"#, 64, "not allowed"),
        ("huge", "", 1_000_000, "not enough resources"),
    ];
    for (name, constraint, memory, why) in refusals {
        let service = deploy(name, constraint, memory);
        let reason = placed(&site, &service, Duration::from_secs(2)).expect_err("must not be placed");
        assert!(reason.contains(why), "{name}: the reason {reason:?} does not say {why:?}");
        assert_eq!(site.get(&format!("/v1/services/{service}"))["instances"][0]["state"], "REQUESTED");
    }

    // A stranger (an address in no member's subnet) cannot register as a cluster.
    let ns = &mesh.nodes[0].netns;
    let overlay = mesh.nodes[0].overlay().expect("overlay").to_string();
    let sh = |args: &[&str]| Command::new("ip").args(["netns", "exec", ns]).args(args).output().expect("run");
    sh(&["ip", "addr", "add", "10.18.250.1/32", "dev", "lo"]);
    let _ = sh(&["curl", "-s", "-m", "3", "--interface", "10.18.250.1", &format!("http://{overlay}:10001/")]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(site.get("/v1/clusters").as_array().map(Vec::len), Some(2), "{}", site.get("/v1/clusters"));
    let root_log = std::fs::read_to_string(dir.join("oc-fra-root.log")).unwrap_or_default();
    assert!(root_log.contains("refused a cluster"), "{root_log}");
}
