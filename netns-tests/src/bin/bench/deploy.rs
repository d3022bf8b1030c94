//! `bench deploy`: the orchestration tiers measured the way Oakestra
//! measures itself — from the deploy call to the new service answering its
//! first request through `closest.<service>` from another node; a worker
//! killed (with its node) until the service answers again from elsewhere;
//! and the pure schedulers' decisions per second on a simulated inventory
//! of 10,000 workers in 100 clusters with geo and latency constraints.
//!
//! Topology: Frankfurt runs root and cluster, two Munich nodes are its
//! workers, a Milan node is the client. Last stdout line:
//! `{"bench":"deploy","deploy_p50_ms":…,"deploy_p95_ms":…,"reschedule_p50_s":…,"reschedule_p99_s":…,"sched_per_s_10k":…}`

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use netns_tests::dynamic::{ask, DynamicMesh};
use netns_tests::orchestra::{daemon, http, RootClient};
use netns_tests::{bin_path, ChildGuard, ScratchDir, Signal, Site, Testbed};

use super::closest::percentile;

/// Options of `bench deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Deployments timed.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Worker kills timed.
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// Scheduler decisions timed on the simulated inventory.
    #[arg(long, default_value_t = 20_000)]
    decisions: usize,
}

const PORT: u16 = 8080;

fn sla(name: &str) -> Result<String> {
    let code = bin_path("echo_http")?.display().to_string();
    Ok(format!(
        r#"{{"sla_version":"v2.0","customerID":"bench","applications":[{{"applicationID":"","application_name":"{name}","application_namespace":"bench","application_desc":"",
        "microservices":[{{"microserviceID":"","microservice_name":"web","microservice_namespace":"bench","virtualization":"process","code":"{code}","memory":32,"vcpus":1}}]}}]}}"#
    ))
}

/// Until `closest.web.<app>.bench` from the client answers HTTP from an
/// address not in `not`: that address.
fn first_answer(mesh: &DynamicMesh, client: usize, app: &str, not: Option<Ipv4Addr>, timeout: Duration) -> Result<Ipv4Addr> {
    let node = &mesh.nodes[client];
    let resolver = node.resolver()?;
    let name = format!("closest.web.{app}.bench.grove");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(&address) = ask(&resolver, &name).ok().and_then(|a| a.addresses.first().copied()).as_ref() {
            if Some(address) != not {
                let to = SocketAddr::from((address, PORT));
                if let Ok((200, _)) = http(&node.netns, to, "GET", "/", None, None, Duration::from_millis(300)) {
                    return Ok(address);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(anyhow!("{name} did not answer within {timeout:?}"))
}

pub fn run(args: &DeployArgs) -> Result<()> {
    let sched = scheduler_rate(args.decisions);
    eprintln!("scheduler: {sched:.0} decisions/s on 10,000 workers in 100 clusters");
    let tb = Testbed::builder()
        .with_node_at("bd-fra", Site::new("frankfurt", 50.110, 8.682))
        .with_node_at("bd-muc1", Site::new("munich", 48.137, 11.575))
        .with_node_at("bd-muc2", Site::new("munich", 48.150, 11.560))
        .with_node_at("bd-mil", Site::new("milan", 45.464, 9.190))
        .build()?;
    let scratch = ScratchDir::new("bench-deploy")?;
    let mut mesh = DynamicMesh::prepare(&tb, scratch.path())?;
    mesh.start_all()?;
    mesh.wait_converged(Duration::from_secs(30))?;
    let dir = scratch.path().to_path_buf();
    let state = |n: &str| dir.join(format!("state-{n}")).display().to_string();
    let root_state = state("root");
    let _root = daemon(&mesh.nodes[0], &dir, "root", &["--state-dir", &root_state])?;
    let _cluster = daemon(&mesh.nodes[0], &dir, "cluster", &["--root", "bd-fra"])?;
    let start_worker = |mesh: &DynamicMesh, i: usize| daemon(&mesh.nodes[i], &dir, "worker", &["--cluster", "bd-fra", "--state-dir", &state(&format!("w{i}")), "--cpu-millis", "64000"]);
    let mut workers: Vec<Option<ChildGuard>> = vec![None, Some(start_worker(&mesh, 1)?), Some(start_worker(&mesh, 2)?), None];
    let root = RootClient::new(&mesh.nodes[0].netns, std::path::Path::new(&root_state))?;
    let two_workers = |root: &RootClient| root.get("/v1/nodes").as_array().is_some_and(|n| n.len() == 2);
    netns_tests::wait_until_named("both workers registered", Duration::from_secs(30), || two_workers(&root))?;

    let mut deploys = Vec::new();
    for i in 0..args.runs {
        let app = format!("d{i}");
        let body = sla(&app)?;
        let started = Instant::now();
        let (status, reply) = root.call("POST", "/v1/apps", Some(&body))?;
        if status != 201 {
            return Err(anyhow!("deploy answered {status}: {reply}"));
        }
        first_answer(&mesh, 3, &app, None, Duration::from_secs(10))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        eprintln!("deploy {i}: {ms:.0} ms");
        deploys.push(ms);
        root.call("DELETE", &format!("/v1/apps/{app}.bench"), None)?;
    }

    let mut moves = Vec::new();
    for k in 0..args.kills {
        let app = format!("k{k}");
        root.call("POST", "/v1/apps", Some(&sla(&app)?))?;
        let before = first_answer(&mesh, 3, &app, None, Duration::from_secs(10))?;
        let view = root.get(&format!("/v1/services/web.{app}.bench"));
        let node = view["instances"][0]["node"].as_str().context("no node")?.to_owned();
        let victim = mesh.index(&node).context("victim")?;
        let started = Instant::now();
        if let Some(w) = workers[victim].take() {
            let _ = w.signal(Signal::Kill);
        }
        mesh.nodes[victim].stop_with(Signal::Kill)?;
        first_answer(&mesh, 3, &app, Some(before), Duration::from_secs(30))?;
        let s = started.elapsed().as_secs_f64();
        eprintln!("worker {node} killed: answering again from elsewhere after {s:.2} s");
        moves.push(s);
        root.call("DELETE", &format!("/v1/apps/{app}.bench"), None)?;
        mesh.nodes[victim].start()?;
        workers[victim] = Some(start_worker(&mesh, victim)?);
        netns_tests::wait_until_named("the worker back", Duration::from_secs(30), || two_workers(&root))?;
    }
    let p = |v: &[f64], q: f64| percentile(v, q).unwrap_or(f64::NAN);
    let (d50, d95) = (p(&deploys, 50.0), p(&deploys, 95.0));
    let (r50, r99) = (p(&moves, 50.0), p(&moves, 99.0));
    println!("| figure | grove | reference |");
    println!("|---|---|---|");
    println!("| deploy → first answer via closest, p50 | {d50:.0} ms | Oakestra ~2.4 s average ({:.1}× faster) |", 2400.0 / d50);
    println!("| deploy → first answer via closest, p95 | {d95:.0} ms | |");
    println!("| worker killed → answering from elsewhere, p50 | {r50:.2} s | Oakestra ~30 s to mark failed + 15 s loop |");
    println!("| worker killed → answering from elsewhere, p99 | {r99:.2} s | |");
    println!("| scheduler decisions/s, 10k workers / 100 clusters | {sched:.0} | Kubernetes ~100 pods/s at 5k nodes; Nomad ~3,750/s |");
    println!(
        "{{\"bench\":\"deploy\",\"deploy_p50_ms\":{d50:.1},\"deploy_p95_ms\":{d95:.1},\"reschedule_p50_s\":{r50:.3},\"reschedule_p99_s\":{r99:.3},\"sched_per_s_10k\":{sched:.0}}}"
    );
    Ok(())
}

/// Root pick then cluster pick, on 100 clusters × 100 workers across Europe,
/// each service with a geo and a latency constraint; pure functions, no I/O.
fn scheduler_rate(decisions: usize) -> f64 {
    use dns::{Label, Location};
    use orchestrator::model::{Capacity, ClusterId, WorkerId};
    use orchestrator::schedule::{pick_cluster, pick_worker, ClusterSummary, Decision, GeoRtt, WorkerState};
    use orchestrator::sla::{Command, Constraint, LatencyFrom, Resources, ServiceSpec};
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let at = |r: &mut dyn FnMut() -> f64| Location { lat: 36.0 + r() * 24.0, lon: -9.0 + r() * 33.0 };
    let mut clusters = Vec::new();
    let mut workers: Vec<Vec<WorkerState>> = Vec::new();
    for c in 0..100u64 {
        let centre = at(&mut rand);
        let mut ws = Vec::new();
        for w in 0..100u64 {
            let location = Location { lat: centre.lat + rand() - 0.5, lon: centre.lon + rand() - 0.5 };
            ws.push(WorkerState {
                id: WorkerId(c * 100 + w),
                name: Label::parse(&format!("w{c}-{w}")).expect("label"),
                capacity: Capacity::new(4000, 8192),
                reserved: Capacity::new((rand() * 3000.0) as u32, (rand() * 6000.0) as u64),
                arch: "aarch64".into(),
                location: Some(location),
                alive: true,
            });
        }
        let total = ws.iter().fold(Capacity::ZERO, |a, w| a.saturating_add(w.capacity));
        let free = ws.iter().fold(Capacity::ZERO, |a, w| a.saturating_add(w.free()));
        let largest = ws.iter().map(|w| w.free()).max_by_key(|f| f.memory_mib).unwrap_or(Capacity::ZERO);
        clusters.push(ClusterSummary { id: ClusterId(c), name: Label::parse(&format!("c{c}")).expect("label"), total, free, largest_worker_free: largest, location: Some(centre), alive: true });
        workers.push(ws);
    }
    let oracle = GeoRtt::default();
    let services: Vec<ServiceSpec> = (0..64)
        .map(|i| {
            let near = at(&mut rand);
            ServiceSpec {
                name: Label::parse(&format!("s{i}")).expect("label"),
                namespace: Label::parse("bench").expect("label"),
                command: Command { program: "/bin/true".into(), args: vec![] },
                environment: vec![],
                resources: Resources { memory_mib: 512, vcpus: 1 },
                ports: vec![],
                constraints: vec![
                    Constraint::Geo { near, within_km: 800.0 },
                    Constraint::Latency { from: LatencyFrom::Location(near), within_ms: 25.0 },
                ],
                one_shot: false,
                instances: 1,
            }
        })
        .collect();
    let started = Instant::now();
    let mut placed = 0usize;
    for i in 0..decisions {
        let service = &services[i % services.len()];
        if let Decision::Place(p) = pick_cluster(service, &clusters, &oracle) {
            if let Decision::Place(_) = pick_worker(service, &workers[p.id.0 as usize], &oracle) {
                placed += 1;
            }
        }
    }
    let rate = decisions as f64 / started.elapsed().as_secs_f64();
    eprintln!("scheduler: {placed} of {decisions} placed");
    rate
}
