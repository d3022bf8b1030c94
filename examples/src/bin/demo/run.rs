//! The demo from start to end: bring the platform up, deploy the
//! pipeline, stream, kill an edge worker, watch the failover and the
//! re-creation, tear down, and say what happened in one JSON line.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use netns_tests::pipeline::{topology, Pipeline, ANONYMISE};
use serde_json::{json, Value};

use crate::preflight;
use crate::stop;
use crate::ui::{indented, progress, say, step};
use crate::view::{site_of, View};
use crate::DemoArgs;

/// The edge sites' cameras: (name, the cluster node the camera box runs beside).
const CAMERAS: [(&str, &str); 2] = [("munich", "muc"), ("milan", "mil")];

/// What the JSON line reports.
struct Outcome {
    failover_s: Option<f64>,
    recreated_s: Option<f64>,
}

/// Runs the demo; everything it started is stopped by the `Drop` guards
/// on every way out (success, error, Ctrl-C).
pub fn run(args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    step("checking this machine");
    preflight::check(!args.no_install)?;
    say("grove demo: cameras at two edge sites find their nearest anonymiser by name; faces are pixelated");
    say("at the edge, people counted in the cloud; then an edge worker dies and the cameras follow.");
    say("");
    step("building the platform in network namespaces: Frankfurt (cloud: root, cluster, a worker), Munich (cluster + camera box, two workers), Milan (cluster + camera box, a worker); WAN latency from distance");
    let mut p = Pipeline::build(topology()).map_err(|e| anyhow!("bringing up the platform: {e}"))?;
    stop::check()?;
    progress(&format!("{} nodes joined the mesh by token; root, 3 clusters and 4 workers registered", p.o.keys().len()));

    step("deploying examples/sla/pipeline.json through the root's public API (`grove deploy`)");
    let (took, text) = p.deploy(Duration::from_secs(60)).map_err(|e| anyhow!("deploying the pipeline: {e}"))?;
    say(&indented(text.trim_end()));
    progress(&format!("every instance RUNNING {:.1} s after the call", took.as_secs_f64()));
    stop::check()?;

    step("a camera in each edge site streams to `closest.anonymise` (resolved by getaddrinfo through its node's resolver)");
    let fps = args.fps.to_string();
    for (name, key) in CAMERAS {
        p.start_camera(key, name, &["--fps", &fps]).map_err(|e| anyhow!("camera {name}: {e}"))?;
    }
    for (name, key) in CAMERAS {
        let site: Vec<&str> = p.o.keys().iter().map(String::as_str).filter(|k| k.starts_with(&key[..3])).collect();
        p.wait_served(name, &site, Duration::from_secs(30)).map_err(|e| anyhow!("{e}"))?;
    }
    let mut view = View::new();
    let clock = Clock { started: Instant::now() };
    watch(&p, &mut view, &clock, Duration::from_secs_f64(args.duration), |_, _| false)?;

    let victim = p
        .latest("munich")
        .and_then(|r| r["anonymiser"].as_str().and_then(|a| p.node_of(a)))
        .ok_or_else(|| anyhow!("the Munich camera has no anonymiser to fail"))?;
    view.detach();
    step(&format!("killing worker node {victim} ({}), which runs Munich's anonymiser: SIGKILL to its netmanager, worker and everything", site_of(&victim)));
    let before = p.switches("munich").len();
    p.o.kill_node(&victim);
    let killed = Instant::now();
    view.event(format!("{:5.1} s  {victim} killed", clock.now()));
    let mut outcome = Outcome { failover_s: None, recreated_s: None };
    let back_home = |p: &Pipeline, o: &mut Outcome| -> bool {
        let switches = p.switches("munich");
        if o.failover_s.is_none() {
            o.failover_s = switches.get(before).and_then(|s| s["gap_s"].as_f64());
        }
        if o.recreated_s.is_none() {
            let running_elsewhere = p.o.running(ANONYMISE).iter().any(|i| i.node.as_deref().and_then(|n| p.o.key_of(n)).is_some_and(|k| k.starts_with("muc") && k != victim));
            if running_elsewhere {
                o.recreated_s = Some(killed.elapsed().as_secs_f64());
            }
        }
        let home = p.latest("munich").and_then(|r| r["anonymiser"].as_str().and_then(|a| p.node_of(a))).is_some_and(|k| k.starts_with("muc") && k != victim);
        o.failover_s.is_some() && o.recreated_s.is_some() && home
    };
    let mut noted = (false, false);
    let mut went_to = String::new();
    watch(&p, &mut view, &clock, Duration::from_secs(45), |p, events| {
        let done = back_home(p, &mut outcome);
        if let (Some(gap), false) = (outcome.failover_s, noted.0) {
            noted.0 = true;
            let to = p.switches("munich").get(before).and_then(|s| s["to"].as_str().and_then(|a| p.node_of(a))).unwrap_or_default();
            events.push(format!("munich camera failed over to {to} ({}) after {gap:.2} s without frames", site_of(&to)));
            went_to = to;
        }
        if let (Some(t), false) = (outcome.recreated_s, noted.1) {
            noted.1 = true;
            events.push(format!("orchestrator re-created Munich's anonymiser {t:.1} s after the kill"));
        }
        done
    })?;
    // A few more seconds of the healed pipeline.
    watch(&p, &mut view, &clock, Duration::from_secs(3), |_, _| false)?;
    view.detach();

    if args.hold {
        hold(&p, &mut view, &clock)?;
    }
    let summary = summary(&p, &outcome, &went_to);
    p.stop_cameras();
    step("tearing down: cameras, services, daemons, namespaces");
    drop(p);
    say("");
    explain(&summary);
    say(&format!("Done in {:.0} s.", started.elapsed().as_secs_f64()));
    println!("{summary}");
    Ok(())
}

struct Clock {
    started: Instant,
}

impl Clock {
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Redraws the view every half second for `duration` or until `done`
/// (which may add event lines to the view).
fn watch(
    p: &Pipeline,
    view: &mut View,
    clock: &Clock,
    duration: Duration,
    mut done: impl FnMut(&Pipeline, &mut Vec<String>) -> bool,
) -> Result<()> {
    let until = Instant::now() + duration;
    loop {
        let mut events = Vec::new();
        let finished = done(p, &mut events) || Instant::now() >= until;
        for line in events {
            view.event(format!("{:5.1} s  {line}", clock.now()));
        }
        view.draw(p, clock.now());
        if finished {
            return Ok(());
        }
        stop::sleep(Duration::from_millis(500))?;
    }
}

/// Keeps everything up until Ctrl-C, with commands to try.
fn hold(p: &Pipeline, view: &mut View, clock: &Clock) -> Result<()> {
    let root = &p.o.node(p.o.root_key()).netns;
    let token = p.o.token_file();
    say("");
    say("Holding until Ctrl-C. Meanwhile, in another shell:");
    say(&format!("  nsenter --net=/run/netns/{root} target/release/grove status --root {} --token-file {}", p.o.root_url(), token.display()));
    if let Some(camera) = p.cameras().first() {
        say(&format!("  ip netns exec {} getent hosts closest.anonymise     # what the {} camera resolves", camera.netns, camera.name));
        say(&format!("  ip netns exec {} target/release/camera --name me --duration 5", camera.netns));
    }
    say("");
    match watch(p, view, clock, Duration::from_secs(86_400 * 365), |_, _| false) {
        Err(e) if e.downcast_ref::<stop::Interrupted>().is_some() => {
            view.detach();
            Ok(())
        }
        other => other,
    }
}

fn summary(p: &Pipeline, outcome: &Outcome, went_to: &str) -> Value {
    let reports: Vec<Value> = p.cameras().iter().filter_map(|c| p.latest(&c.name)).collect();
    let sum = |field: &str| reports.iter().filter_map(|r| r[field].as_u64()).sum::<u64>();
    json!({
        "demo": "ok",
        "cameras": reports.len(),
        "frames": sum("frames"),
        "faces_blurred": sum("faces_blurred"),
        "failover_s": outcome.failover_s.map(|s| (s * 100.0).round() / 100.0),
        "recreated_s": outcome.recreated_s.map(|s| (s * 10.0).round() / 10.0),
        "failed_over_to": site_of(went_to),
    })
}

fn explain(summary: &Value) {
    say("What you saw:");
    say("  - 6 machines (network namespaces) at 3 sites behind a WAN emulator, joined into an encrypted mesh");
    say("    (WireGuard-style tunnels on UDP 50103) by token; a root, a cluster per site, workers.");
    say("  - the pipeline deployed by one SLA file: the root spread `anonymise` over the two edge clusters");
    say("    (a geo constraint keeps it out of the cloud) and put `detect` in Frankfurt.");
    say(&format!(
        "  - each camera resolved `closest.anonymise` to the instance in its own site; {} frames, {} faces",
        summary["frames"], summary["faces_blurred"]
    ));
    say("    pixelated before leaving the site, people counted in the cloud on the anonymised frames.");
    say(&format!(
        "  - a Munich worker was killed: the cluster re-created its anonymiser on the other Munich worker {} s",
        summary["recreated_s"]
    ));
    let to = summary["failed_over_to"].as_str().unwrap_or("?");
    if to == "Munich" {
        say(&format!("    later; the camera, {} s without frames, found that one first (the nearest) and stayed home.", summary["failover_s"]));
    } else {
        say(&format!("    later; the camera went to {to} after {} s without frames, then came home.", summary["failover_s"]));
    }
    say("");
    say("Try next:");
    say("  cargo run --release -p examples --bin demo -- --hold              # keep it up and poke at it");
    say("  cargo run --release -p netns-tests --bin bench -- pipeline        # frames/s, end-to-end latency, failover");
    say("  examples/sla/pipeline.json, README.md \"Orchestration\"            # deploy it on real machines");
    say("");
}
