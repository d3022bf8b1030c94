//! `bench deploy`: the orchestration tiers measured the way Oakestra
//! measures itself, and the scheduler alone.
//!
//! 1. An [`Orchestra`] on the emulated WAN: the cloud (Frankfurt: root,
//!    cluster, worker), Munich (a cluster node and two worker nodes) and
//!    Milan (cluster and worker). `--runs` fresh services (one application
//!    each, an `echo_http` instance with a geo constraint that puts it in
//!    Munich) are deployed one after another; each is timed from
//!    `POST /v1/apps` to the first HTTP 200 from the address that
//!    `closest.web.<app>.prod.grove` gives on the Frankfurt node's resolver
//!    (asked again and again, then GET through the mesh), and removed.
//! 2. `--kills` reschedules: a fresh service runs in Munich, the node of
//!    its worker is SIGKILLed (worker and netmanager), and the time until
//!    `closest` from Frankfurt names another address that answers HTTP is
//!    taken; the node is brought back between runs.
//! 3. The scheduler alone: `orchestrator::schedule::{pick_cluster,
//!    pick_worker}` on a simulated inventory of 10,000 workers in 100
//!    clusters across Europe, every request with a geo and/or latency
//!    constraint, capacity reserved as placements are made (and the
//!    cluster's summary recomputed, as its next report would): decisions
//!    per second (one decision = a cluster picked, then a worker in it,
//!    falling back to the runners-up when the cluster's workers refuse).
//!
//! A failed run is reported (with the service's view) and counted, not
//! fatal. Progress goes to stderr; stdout gets a table and, last, one line:
//! `{"bench":"deploy","deploy_p50_ms":…,"deploy_p95_ms":…,"reschedule_p50_s":…,"reschedule_p99_s":…,"sched_per_s_10k":…}`

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use dns::{Label, Location};
use netns_tests::interrupt;
use netns_tests::orchestra::{echo_service, frankfurt, geo, milan, munich, sla, Orchestra, Role::*, ECHO_PORT};
use orchestrator::model::{Capacity, ClusterId, WorkerId};
use orchestrator::schedule::{pick_cluster, pick_worker, ClusterSummary, Decision, GeoRtt, WorkerState};
use orchestrator::sla::{Command, Constraint, LatencyFrom, Resources, ServiceSpec};

use super::closest::percentile;

/// Munich's centre: the services' geo constraint.
const MUNICH: (f64, f64) = (48.137, 11.575);
/// Longest wait for one deployment to answer.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for one reschedule to answer.
const RESCHEDULE_TIMEOUT: Duration = Duration::from_secs(60);

/// Reference figures the table compares with.
const OAKESTRA_DEPLOY_S: f64 = 2.4;
const OAKESTRA_RESCHEDULE_S: f64 = 45.0;
const KUBERNETES_PODS_PER_S: f64 = 100.0;
const NOMAD_PLACEMENTS_PER_S: f64 = 3750.0;

/// Options of `bench deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Deployments timed (each a fresh service, POST → first answer through closest).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Worker kills timed.
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// Scheduler decisions timed on the simulated inventory.
    #[arg(long, default_value_t = 20_000)]
    decisions: usize,
    /// Seed of the simulated inventory and requests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only the pure scheduler figure (no namespaces).
    #[arg(long)]
    sched_only: bool,
}

#[derive(Debug, Default)]
struct Results {
    deploy_ms: Vec<f64>,
    deploy_failed: usize,
    reschedule_s: Vec<f64>,
    reschedule_failed: usize,
    sched: Option<Sched>,
}

#[derive(Debug, Clone, Copy)]
struct Sched {
    decisions: usize,
    placed: usize,
    fallbacks: usize,
    per_s: f64,
}

fn say(t0: Instant, what: &str) {
    eprintln!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
}

/// Runs the benchmark and prints the table and the JSON line.
pub fn run(args: &DeployArgs) -> Result<()> {
    interrupt::install()?;
    let t0 = Instant::now();
    let mut r = Results::default();
    if !args.sched_only {
        say(t0, "building the orchestra: Frankfurt (root, cluster, worker), Munich (cluster; 2 workers), Milan (cluster, worker)");
        let mut o = Orchestra::builder()
            .node("fra", frankfurt(), &[Root, Cluster, Worker])
            .node("muc1", munich(), &[Cluster])
            .node("muc2", munich(), &[Worker])
            .node("muc3", munich(), &[Worker])
            .node("mil", milan(), &[Cluster, Worker])
            .worker_of("muc2", "muc1")
            .worker_of("muc3", "muc1")
            .build()
            .map_err(|e| anyhow!("{e}"))?;
        say(t0, &format!("1. {} deployments, each timed POST → first HTTP answer via closest from fra", args.runs));
        for i in 0..args.runs {
            interrupt::check()?;
            match deploy_once(&o, &format!("d{i}")) {
                Ok(took) => {
                    say(t0, &format!("   d{i}: {:.0} ms", took.as_secs_f64() * 1000.0));
                    r.deploy_ms.push(took.as_secs_f64() * 1000.0);
                }
                Err(e) => {
                    say(t0, &format!("   d{i}: FAILED: {e}"));
                    r.deploy_failed += 1;
                }
            }
            let _ = o.api_raw("DELETE", &format!("/v1/apps/d{i}.prod"), Some(o.token()), None);
        }
        say(t0, &format!("2. {} reschedules: the worker's node SIGKILLed, timed until closest from fra answers elsewhere", args.kills));
        for i in 0..args.kills {
            interrupt::check()?;
            match reschedule_once(&mut o, &format!("r{i}")) {
                Ok((took, from, to)) => {
                    say(t0, &format!("   r{i}: {from} → {to} in {:.2} s", took.as_secs_f64()));
                    r.reschedule_s.push(took.as_secs_f64());
                }
                Err(e) => {
                    say(t0, &format!("   r{i}: FAILED: {e}"));
                    r.reschedule_failed += 1;
                }
            }
            let _ = o.api_raw("DELETE", &format!("/v1/apps/r{i}.prod"), Some(o.token()), None);
        }
        say(t0, "tearing down");
        drop(o);
    }
    interrupt::check()?;
    say(t0, &format!("3. scheduler alone: {} decisions over 10,000 workers in 100 clusters", args.decisions));
    let sched = scheduler(args.decisions, args.seed);
    say(t0, &format!("   {:.0} decisions/s ({} placed, {} needed a fallback cluster)", sched.per_s, sched.placed, sched.fallbacks));
    r.sched = Some(sched);
    println!("{}", markdown(&r));
    println!("{}", json(&r));
    Ok(())
}

/// Deploys app `app` (service `web`, in Munich) and times POST → first 200 through closest from fra.
fn deploy_once(o: &Orchestra, app: &str) -> Result<Duration> {
    let reference = format!("web.{app}.prod");
    let document = sla(app, &[echo_service("web", 1, geo(MUNICH.0, MUNICH.1, 50.0))]);
    let start = Instant::now();
    let (status, body) = o.deploy(&document);
    if status != 201 {
        return Err(anyhow!("POST answered {status}: {body}"));
    }
    let mut last = Vec::new();
    while start.elapsed() < DEPLOY_TIMEOUT {
        interrupt::check()?;
        last = o.resolve_closest("fra", &reference);
        if let Some(&ip) = last.first() {
            if o.http_get("fra", ip, ECHO_PORT).is_ok() {
                return Ok(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(anyhow!(
        "no answer through closest.{reference} within {DEPLOY_TIMEOUT:?} (closest says {last:?}); the root says {}",
        serde_json::to_string(&o.service(&reference)).unwrap_or_default()
    ))
}

/// Runs a fresh service in Munich, kills its worker's node, times until
/// closest from fra names another address that answers; revives the node.
fn reschedule_once(o: &mut Orchestra, app: &str) -> Result<(Duration, String, String)> {
    let reference = format!("web.{app}.prod");
    deploy_once(o, app)?;
    let first = o.running(&reference).into_iter().next().ok_or_else(|| anyhow!("{reference} not RUNNING"))?;
    let (node, old) = (first.node.clone().unwrap_or_default(), first.address.ok_or_else(|| anyhow!("no address"))?);
    let key = o.key_of(&node).ok_or_else(|| anyhow!("unknown node {node}"))?.to_owned();
    let start = Instant::now();
    o.kill_worker(&key);
    let mut answered: Option<(Duration, Ipv4Addr)> = None;
    while start.elapsed() < RESCHEDULE_TIMEOUT {
        interrupt::check()?;
        if let Some(&ip) = o.resolve_closest("fra", &reference).first() {
            if ip != old && o.http_get("fra", ip, ECHO_PORT).is_ok() {
                answered = Some((start.elapsed(), ip));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let to = answered.map(|(_, ip)| {
        o.running(&reference).into_iter().find(|i| i.address == Some(ip)).and_then(|i| i.node).unwrap_or_else(|| ip.to_string())
    });
    let view = serde_json::to_string(&o.service(&reference)).unwrap_or_default();
    o.revive_node(&key).map_err(|e| anyhow!("bringing {key} back: {e}"))?;
    match answered {
        Some((took, _)) => Ok((took, node, to.unwrap_or_default())),
        None => Err(anyhow!("closest.{reference} never answered from elsewhere within {RESCHEDULE_TIMEOUT:?}; the root says {view}")),
    }
}

/// xorshift64*, as the other benchmarks use.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }
}

fn label(text: &str) -> Label {
    Label::parse(text).unwrap_or_else(|| panic!("label {text}"))
}

fn location(lat: f64, lon: f64) -> Location {
    Location { lat, lon }
}

/// 100 clusters × 100 workers across Europe; requests with geo and latency
/// constraints; capacity reserved as placed.
fn scheduler(decisions: usize, seed: u64) -> Sched {
    let mut rng = Rng::new(seed);
    let mut clusters: Vec<ClusterSummary> = Vec::with_capacity(100);
    let mut centres: Vec<Location> = Vec::with_capacity(100);
    let mut workers: Vec<Vec<WorkerState>> = Vec::with_capacity(100);
    let mut next_worker = 0u64;
    for c in 0..100u64 {
        let centre = location(rng.range(37.0, 60.0), rng.range(-8.0, 28.0));
        let ws: Vec<WorkerState> = (0..100)
            .map(|_| {
                next_worker += 1;
                let used = rng.range(0.0, 0.5);
                WorkerState {
                    id: WorkerId(next_worker),
                    name: label(&format!("w{next_worker}")),
                    capacity: Capacity::new(4000, 8192),
                    reserved: Capacity::new((4000.0 * used) as u32 / 1000 * 1000, (8192.0 * used) as u64),
                    arch: "x86_64".into(),
                    location: Some(location(centre.lat + rng.range(-0.3, 0.3), centre.lon + rng.range(-0.3, 0.3))),
                    alive: true,
                }
            })
            .collect();
        clusters.push(summary(ClusterId(c + 1), label(&format!("c{}", c + 1)), centre, &ws));
        centres.push(centre);
        workers.push(ws);
    }
    let specs: Vec<ServiceSpec> = (0..512)
        .map(|i| {
            let near = location(rng.range(38.0, 59.0), rng.range(-6.0, 26.0));
            let constraints = match i % 3 {
                0 => vec![Constraint::Geo { near, within_km: rng.range(200.0, 800.0) }],
                1 => vec![Constraint::Latency { from: LatencyFrom::Location(near), within_ms: rng.range(5.0, 25.0) }],
                _ => vec![
                    Constraint::Geo { near, within_km: rng.range(300.0, 900.0) },
                    Constraint::Latency { from: LatencyFrom::Location(near), within_ms: rng.range(8.0, 30.0) },
                ],
            };
            ServiceSpec {
                name: label(&format!("s{i}")),
                namespace: label("bench"),
                command: Command { program: "/bin/true".into(), args: Vec::new() },
                environment: Vec::new(),
                resources: Resources { memory_mib: 256, vcpus: 1 },
                ports: Vec::new(),
                constraints,
                one_shot: false,
                instances: 1,
            }
        })
        .collect();
    let oracle = GeoRtt::default();
    let (mut placed, mut fallbacks) = (0, 0);
    let start = Instant::now();
    for i in 0..decisions {
        let spec = &specs[i % specs.len()];
        let request = Capacity::request(&spec.resources);
        let Decision::Place(placement) = pick_cluster(spec, &clusters, &oracle) else { continue };
        for (tried, id) in std::iter::once(placement.id).chain(placement.fallbacks.iter().copied()).take(4).enumerate() {
            let c = (id.0 - 1) as usize;
            if let Decision::Place(worker) = pick_worker(spec, &workers[c], &oracle) {
                if let Some(w) = workers[c].iter_mut().find(|w| w.id == worker.id) {
                    w.reserved = w.reserved.saturating_add(request);
                }
                // The cluster's next report, folded in at once.
                clusters[c] = summary(clusters[c].id, clusters[c].name, centres[c], &workers[c]);
                placed += 1;
                fallbacks += usize::from(tried > 0);
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Sched { decisions, placed, fallbacks, per_s: decisions as f64 / secs.max(1e-9) }
}

fn summary(id: ClusterId, name: Label, centre: Location, workers: &[WorkerState]) -> ClusterSummary {
    let mut total = Capacity::ZERO;
    let mut free = Capacity::ZERO;
    let mut largest = Capacity::ZERO;
    for w in workers {
        total = total.saturating_add(w.capacity);
        free = free.saturating_add(w.free());
        if w.free().memory_mib > largest.memory_mib {
            largest = w.free();
        }
    }
    ClusterSummary { id, name, total, free, largest_worker_free: largest, location: Some(centre), alive: true }
}

fn markdown(r: &Results) -> String {
    let ms = |p| percentile(&r.deploy_ms, p).map_or("–".to_owned(), |v| format!("{v:.0}"));
    let s = |p| percentile(&r.reschedule_s, p).map_or("–".to_owned(), |v| format!("{v:.2}"));
    let ratio = |ours: Option<f64>, theirs: f64| ours.map_or("–".to_owned(), |v| format!("{:.0}× faster", theirs / v.max(1e-9)));
    let mut out = String::new();
    out.push_str("| measure | grove | reference | grove vs reference |\n|---|---:|---|---:|\n");
    out.push_str(&format!(
        "| deploy: POST → first HTTP answer via `closest`, p50 / p95 ms ({} runs, {} failed) | {} / {} | Oakestra: {OAKESTRA_DEPLOY_S} s average | {} (p50) |\n",
        r.deploy_ms.len() + r.deploy_failed,
        r.deploy_failed,
        ms(50.0),
        ms(95.0),
        ratio(percentile(&r.deploy_ms, 50.0).map(|v| v / 1000.0), OAKESTRA_DEPLOY_S),
    ));
    out.push_str(&format!(
        "| reschedule: worker's node SIGKILLed → answering elsewhere via `closest`, p50 / p99 s ({} runs, {} failed) | {} / {} | Oakestra: ~{OAKESTRA_RESCHEDULE_S} s | {} (p50) |\n",
        r.reschedule_s.len() + r.reschedule_failed,
        r.reschedule_failed,
        s(50.0),
        s(99.0),
        ratio(percentile(&r.reschedule_s, 50.0), OAKESTRA_RESCHEDULE_S),
    ));
    if let Some(sched) = r.sched {
        out.push_str(&format!(
            "| scheduler decisions/s, 10,000 workers in 100 clusters, geo + latency ({} decisions, {} placed, {} via a fallback cluster) | {:.0} | Kubernetes ~{KUBERNETES_PODS_PER_S:.0} pods/s at 5k nodes; Nomad ~3,750 placements/s | {:.0}× Kubernetes, {:.1}× Nomad |\n",
            sched.decisions,
            sched.placed,
            sched.fallbacks,
            sched.per_s,
            sched.per_s / KUBERNETES_PODS_PER_S,
            sched.per_s / NOMAD_PLACEMENTS_PER_S,
        ));
    }
    out.push_str(
        "\nThe scheduler figure is the pure placement functions on one core (no I/O, no store writes, no network); \
         the others are whole paths through real daemons on the emulated WAN of one 2-core machine.",
    );
    out
}

fn json(r: &Results) -> String {
    let f = |v: Option<f64>, digits: usize| v.map_or_else(|| "null".to_owned(), |v| format!("{v:.digits$}"));
    format!(
        "{{\"bench\":\"deploy\",\"deploy_p50_ms\":{},\"deploy_p95_ms\":{},\"reschedule_p50_s\":{},\"reschedule_p99_s\":{},\"sched_per_s_10k\":{}}}",
        f(percentile(&r.deploy_ms, 50.0), 1),
        f(percentile(&r.deploy_ms, 95.0), 1),
        f(percentile(&r.reschedule_s, 50.0), 3),
        f(percentile(&r.reschedule_s, 99.0), 3),
        f(r.sched.map(|s| s.per_s), 0),
    )
}
