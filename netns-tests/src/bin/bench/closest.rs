//! `bench closest`: a dynamic grove mesh of N nodes (default 30) in real
//! cities on the emulated WAN — node 0 admits, the others join with a
//! token — and what its `closest` answers are worth: do they name the truly
//! nearest `ms2` instance, how good are the Vivaldi RTT estimates, how fast
//! does a new instance reach every resolver and a dead one leave them, what
//! does an idle mesh cost in underlay bytes and netmanager memory.
//! BENCHMARKS.md ("closest") describes each step.

mod accuracy;
mod idle;
mod mesh;
mod poll;
mod summary;
mod trials;
mod world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use netns_tests::dynamic::DynamicMesh;
use netns_tests::testbed::MAX_NODES;
use netns_tests::{interrupt, ScratchDir, Testbed};

use accuracy::Instance;
use mesh::MeshGuard;
use poll::{deploy, pause};
pub use summary::percentile;
use summary::Results;
use trials::Scene;
use world::{Rng, World};

/// Options of `bench closest`.
#[derive(Debug, clap::Args)]
pub struct ClosestArgs {
    /// Nodes in the mesh (node 0 is the admission authority), at most 256.
    #[arg(long, default_value_t = 30)]
    nodes: usize,
    /// Seconds between deploying `ms2` and the accuracy check (Vivaldi
    /// needs samples).
    #[arg(long, default_value_t = 25)]
    settle_secs: u64,
    /// Rounds of `closest.ms2` on every node for the accuracy, 2.5 s apart.
    #[arg(long, default_value_t = 5)]
    accuracy_rounds: usize,
    /// New-instance trials.
    #[arg(long, default_value_t = 10)]
    converge_trials: usize,
    /// Failover trials with a plain SIGKILL.
    #[arg(long, default_value_t = 8)]
    kill_trials: usize,
    /// Failover trials with the node's links cut before the SIGKILL.
    #[arg(long, default_value_t = 4)]
    silent_trials: usize,
    /// Seconds of the idle-traffic measurement.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// Seed of the node coordinates' jitter and the trials' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Copy every netmanager log and wanem's log into this directory at
    /// the end (after a failure they are copied to /tmp anyway).
    #[arg(long)]
    keep_logs: Option<PathBuf>,
}

/// Progress lines on stderr, stamped with the time since the start.
#[derive(Debug, Clone, Copy)]
pub struct Progress(Instant);

impl Progress {
    pub fn say(&self, msg: &str) {
        eprintln!("[{:>6.1}s] {msg}", self.0.elapsed().as_secs_f64());
    }
}

/// Runs the benchmark and prints the table and the JSON line.
pub fn run(args: &ClosestArgs) -> Result<()> {
    interrupt::install()?;
    if !(2..=MAX_NODES).contains(&args.nodes) {
        return Err(anyhow!("--nodes must be 2 to {MAX_NODES}"));
    }
    let p = Progress(Instant::now());
    let mut rng = Rng::new(args.seed);
    let world = World::new(args.nodes, &mut rng);
    if world.ms2_hosts().len() < 2 {
        return Err(anyhow!(
            "{} nodes leave fewer than two ms2 hosts; use --nodes 13 or more",
            args.nodes
        ));
    }
    p.say(&format!(
        "building the testbed: {} nodes in {} cities",
        args.nodes,
        world.cities()
    ));
    let tb = world.builder().build()?;
    let dir = ScratchDir::new("closest")?;
    let mut mesh = MeshGuard(DynamicMesh::prepare(&tb, dir.path())?);
    let outcome = measure(&tb, &mut mesh, &world, args, &mut rng, p);
    let keep = match (&args.keep_logs, &outcome) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Err(_)) if !interrupt::requested() => {
            Some(std::env::temp_dir().join(format!("grove-closest-logs-{}", std::process::id())))
        }
        (None, _) => None,
    };
    if let Some(keep) = keep {
        match mesh::copy_logs(&[dir.path(), tb.scratch_dir()], &keep) {
            Ok(n) => p.say(&format!("{n} logs copied to {}", keep.display())),
            Err(e) => p.say(&format!("logs not copied: {e:#}")),
        }
    }
    p.say("tearing down");
    drop(mesh);
    drop(tb);
    let results = outcome?;
    p.say("done");
    println!("{}", results.markdown());
    println!("{}", results.json());
    Ok(())
}

/// A measurement step that failed is reported and skipped; Ctrl-C is not.
pub fn step<T>(p: Progress, what: &str, r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if interrupt::requested() => Err(e),
        Err(e) => {
            p.say(&format!("{what} FAILED: {e:#}"));
            Ok(None)
        }
    }
}

fn measure(
    tb: &Testbed,
    mesh: &mut DynamicMesh,
    world: &World,
    args: &ClosestArgs,
    rng: &mut Rng,
    p: Progress,
) -> Result<Results> {
    let n = mesh.nodes.len();
    let mut r = Results {
        nodes: n,
        cities: world.cities(),
        ..Results::default()
    };

    p.say("1. starting netmanager on every node (node 0 admits, the others join with the token)");
    r.converged_s = Some(mesh::start_all(mesh, p)?.as_secs_f64());

    p.say("2. deploying ms2");
    let mut instances: Vec<Instance> = Vec::new();
    for (slot, &h) in world.ms2_hosts().iter().enumerate() {
        let number = u32::try_from(slot + 1).unwrap_or(u32::MAX);
        let addr = deploy(&mesh.nodes[h], "ms2", number)?;
        p.say(&format!(
            "   ms2 #{number} on {} ({}) at {addr}",
            world.places[h].name, world.places[h].city
        ));
        instances.push((h, addr));
    }
    r.ms2_instances = instances.len();
    let chunks = args.settle_secs.div_ceil(5).max(1);
    for _ in 0..chunks {
        pause(Duration::from_secs(args.settle_secs.min(5)))?;
        let errs = accuracy::coordinate_errors(&mesh.nodes);
        p.say(&format!(
            "   settling: Vivaldi error (nodes' own estimate) median {:.3}, max {:.3}",
            percentile(&errs, 50.0).unwrap_or(f64::NAN),
            percentile(&errs, 100.0).unwrap_or(f64::NAN)
        ));
        r.coord_err = errs;
    }

    let sockets = mesh
        .nodes
        .iter()
        .map(|n| n.resolver())
        .collect::<netns_tests::Result<Vec<_>>>()?;
    p.say(&format!(
        "3. accuracy: closest.ms2.grove on all {n} resolvers, {} rounds 2.5 s apart",
        args.accuracy_rounds
    ));
    r.accuracy = step(
        p,
        "accuracy",
        accuracy::accuracy(
            world,
            &sockets,
            &instances,
            args.accuracy_rounds,
            Duration::from_millis(2500),
        ),
    )?;
    if let Some(a) = &r.accuracy {
        p.say(&format!(
            "   {} of {} answers right ({} askers considered)",
            a.correct,
            a.answers + a.unanswered,
            a.considered_askers
        ));
        for line in &a.wrong {
            p.say(&format!("   wrong: {line}"));
        }
    }

    p.say("4. RTT estimates: every node's status vs the model");
    r.rtt = step(p, "RTT estimates", accuracy::rtt_error(world, &mesh.nodes))?;
    if let Some(e) = &r.rtt {
        p.say(&format!(
            "   median relative error {:.1} % over {} pairs (p90 {:.1} %); {} pairs measured directly",
            e.median().unwrap_or(f64::NAN) * 100.0,
            e.estimated.len(),
            percentile(&e.estimated, 90.0).unwrap_or(f64::NAN) * 100.0,
            e.measured.len()
        ));
        for line in &e.worst {
            p.say(&format!("   worst: {line}"));
        }
    }

    p.say(&format!(
        "5. new instances: {} trials",
        args.converge_trials
    ));
    r.convergence = step(
        p,
        "new-instance trials",
        trials::convergence(mesh, &sockets, args.converge_trials, rng, p),
    )?;

    p.say(&format!(
        "6. failover: {} SIGKILL trials and {} silent ones, interleaved",
        args.kill_trials, args.silent_trials
    ));
    let mut scene = Scene {
        tb,
        mesh: &mut *mesh,
        world,
        sockets: &sockets,
        p,
    };
    let failovers = trials::failover_trials(
        &mut scene,
        &mut instances,
        args.kill_trials,
        args.silent_trials,
    )?;
    r.failover = Some(failovers);

    p.say(&format!(
        "7. idle traffic: 10 s quiet, then eth0 counters over {} s",
        args.idle_secs
    ));
    pause(Duration::from_secs(10))?;
    r.idle = step(
        p,
        "idle traffic",
        idle::idle(tb, &mesh.nodes, Duration::from_secs(args.idle_secs)),
    )?;
    if let Some(idle) = &r.idle {
        let b = &idle.bytes_per_sec;
        let top = (0..b.len())
            .max_by(|&i, &j| b[i].total_cmp(&b[j]))
            .map_or("", |i| mesh.nodes[i].name.as_str());
        p.say(&format!(
            "   mean {:.0} B/s per node, max {:.0} ({top}); netmanager CPU mean {:.1} % of a core; wanem {:.0} packets/s, CPU {:.1} %",
            summary::mean(b).unwrap_or(0.0),
            percentile(b, 100.0).unwrap_or(0.0),
            summary::mean(&idle.cpu).unwrap_or(0.0) * 100.0,
            idle.wanem_pps.unwrap_or(f64::NAN),
            idle.wanem_cpu.unwrap_or(f64::NAN) * 100.0
        ));
    }

    p.say("8. memory: VmRSS of every netmanager");
    r.rss_mb = step(p, "memory", idle::rss_mb(&mesh.nodes))?;
    Ok(r)
}
