//! `bench pipeline`: the camera pipeline of `examples/` on the demo's
//! topology (Frankfurt cloud, Munich and Milan edges; real daemons and
//! the real `camera`, `anonymise`, `detect` binaries on the emulated WAN).
//!
//! 1. End-to-end latency: a camera per edge site at `--fps`, every frame's
//!    round trip camera → anonymise → detect → camera, against what it
//!    must cost: the emulated RTTs of both legs plus the two stages'
//!    processing times (which each frame's answer reports).
//! 2. Frames/s per anonymiser instance: `--streams` cameras streaming flat
//!    out (one frame in flight each) at Munich's instance.
//! 3. Camera failover, `--trials` times: the worker node serving the
//!    Munich camera is SIGKILLed; the camera's gap between the last frame
//!    from the dead instance and the first from the next is taken; the node
//!    is brought back and the camera allowed home between trials.
//!
//! Last stdout line:
//! `{"bench":"pipeline","fps_per_instance":…,"e2e_p50_ms":…,"e2e_p99_ms":…,"failover_p99_s":…}`

use std::time::Duration;

use anyhow::{anyhow, Result};
use netns_tests::interrupt;
use netns_tests::pipeline::{topology, Pipeline};
use serde_json::{json, Value};

use super::closest::percentile;

/// OSCAR's per-frame figure: a file upload triggers a MinIO event, then a
/// Kubernetes job (its paper and docs: seconds per frame).
const OSCAR_PER_FRAME_S: f64 = 3.0;

/// Options of `bench pipeline`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// Seconds of steady streaming for the latency figures.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Frames per second of each camera for the latency figures.
    #[arg(long, default_value_t = 4.0)]
    fps: f64,
    /// Cameras streaming flat out for the frames/s figure.
    #[arg(long, default_value_t = 2)]
    streams: usize,
    /// Seconds of flat-out streaming.
    #[arg(long, default_value_t = 10)]
    flat_seconds: u64,
    /// Failovers timed.
    #[arg(long, default_value_t = 5)]
    trials: usize,
}

/// One frame's figures.
struct FrameTiming {
    rtt_ms: f64,
    expected_ms: f64,
}

pub fn run(args: &PipelineArgs) -> Result<()> {
    interrupt::install()?;
    eprintln!("bench pipeline: building the demo's platform (6 nodes, 3 sites)");
    let mut p = Pipeline::build(topology()).map_err(|e| anyhow!("{e}"))?;
    let (took, _) = p.deploy(Duration::from_secs(60)).map_err(|e| anyhow!("{e}"))?;
    eprintln!("  pipeline deployed and RUNNING in {:.1} s", took.as_secs_f64());

    // 1. Latency.
    let fps = args.fps.to_string();
    for (name, key) in [("munich", "muc"), ("milan", "mil")] {
        p.start_camera(key, name, &["--fps", &fps, "--frames-log"]).map_err(|e| anyhow!("{e}"))?;
    }
    p.wait_served("munich", &["mucwa", "mucwb"], Duration::from_secs(30)).map_err(|e| anyhow!("{e}"))?;
    p.wait_served("milan", &["milw"], Duration::from_secs(30)).map_err(|e| anyhow!("{e}"))?;
    let skip: Vec<usize> = ["munich", "milan"].iter().map(|n| frames(&p, n).len()).collect();
    eprintln!("  streaming {} s at {fps} fps per camera", args.seconds);
    interrupt::sleep(Duration::from_secs(args.seconds))?;
    let mut timings = Vec::new();
    for (i, (name, home)) in [("munich", "muc"), ("milan", "mil")].into_iter().enumerate() {
        for f in frames(&p, name).into_iter().skip(skip[i]) {
            if let Some(t) = timing(&p, home, &f) {
                timings.push(t);
            }
        }
    }
    p.stop_camera("munich");
    p.stop_camera("milan");
    let rtts: Vec<f64> = timings.iter().map(|t| t.rtt_ms).collect();
    let expected: Vec<f64> = timings.iter().map(|t| t.expected_ms).collect();
    let overhead: Vec<f64> = timings.iter().map(|t| t.rtt_ms - t.expected_ms).collect();

    // 2. Throughput of one instance.
    eprintln!("  {} cameras flat out at Munich's anonymiser for {} s", args.streams, args.flat_seconds);
    let names: Vec<String> = (0..args.streams).map(|i| format!("flat{i}")).collect();
    for name in &names {
        p.start_camera("muc", name, &["--fps", "0"]).map_err(|e| anyhow!("{e}"))?;
    }
    for name in &names {
        p.wait_served(name, &["mucwa", "mucwb"], Duration::from_secs(30)).map_err(|e| anyhow!("{e}"))?;
    }
    let start: u64 = names.iter().map(|n| frames_served(&p, n)).sum();
    interrupt::sleep(Duration::from_secs(args.flat_seconds))?;
    let end: u64 = names.iter().map(|n| frames_served(&p, n)).sum();
    let fps_per_instance = end.saturating_sub(start) as f64 / args.flat_seconds as f64;
    for name in &names {
        p.stop_camera(name);
    }

    // 3. Failover.
    p.start_camera("muc", "failover", &["--fps", "10"]).map_err(|e| anyhow!("{e}"))?;
    let mut gaps = Vec::new();
    for trial in 0..args.trials {
        let home = p.wait_served("failover", &["mucwa", "mucwb"], Duration::from_secs(60)).map_err(|e| anyhow!("{e}"))?;
        let victim = home["anonymiser"].as_str().and_then(|a| p.node_of(a)).ok_or_else(|| anyhow!("no anonymiser"))?;
        let before = p.switches("failover").len();
        p.o.kill_node(&victim);
        let others: Vec<&str> = ["milw", "mucwa", "mucwb"].into_iter().filter(|k| *k != victim).collect();
        match p.wait_served("failover", &others, Duration::from_secs(20)) {
            Ok(_) => {
                let gap = p.switches("failover").get(before).and_then(|s| s["gap_s"].as_f64());
                eprintln!("  failover {}: {victim} killed, gap {:?} s", trial + 1, gap);
                gaps.extend(gap);
            }
            Err(e) => eprintln!("  failover {}: no failover within 20 s: {e}", trial + 1),
        }
        p.o.revive_node(&victim).map_err(|e| anyhow!("reviving {victim}: {e}"))?;
    }

    let r = |v: Option<f64>| v.map(|x| (x * 100.0).round() / 100.0);
    let e2e_p50 = percentile(&rtts, 50.0);
    let e2e_p99 = percentile(&rtts, 99.0);
    println!("| figure | grove | note |");
    println!("|---|---:|---|");
    println!("| frames measured | {} | 2 cameras × {} s at {} fps |", rtts.len(), args.seconds, args.fps);
    println!("| end-to-end p50 / p99 (ms) | {:?} / {:?} | camera → anonymise → detect → camera |", r(e2e_p50), r(e2e_p99));
    println!("| RTTs + processing p50 / p99 (ms) | {:?} / {:?} | emulated RTTs of both legs + both stages' reported time |", r(percentile(&expected, 50.0)), r(percentile(&expected, 99.0)));
    println!("| overhead p50 / p99 (ms) | {:?} / {:?} | end-to-end minus the above (frame transfer, tunnel, scheduling); target p50 ≤ 5 |", r(percentile(&overhead, 50.0)), r(percentile(&overhead, 99.0)));
    println!("| frames/s per anonymiser instance | {fps_per_instance:.1} | {} streams flat out, detection included, 2 shared cores |", args.streams);
    println!("| camera failover p50 / p99 (s) | {:?} / {:?} | {} of {} trials; target p99 ≤ 2 |", r(percentile(&gaps, 50.0)), r(percentile(&gaps, 99.0)), gaps.len(), args.trials);
    println!("| OSCAR, per frame (s) | {OSCAR_PER_FRAME_S} | object-store event + Kubernetes job per file |");
    let summary = json!({
        "bench": "pipeline",
        "fps_per_instance": (fps_per_instance * 10.0).round() / 10.0,
        "e2e_p50_ms": r(e2e_p50),
        "e2e_p99_ms": r(e2e_p99),
        "failover_p99_s": r(percentile(&gaps, 99.0)),
    });
    println!("{summary}");
    Ok(())
}

/// Camera `name`'s per-frame lines.
fn frames(p: &Pipeline, name: &str) -> Vec<Value> {
    p.reports(name).into_iter().filter(|r| r["event"] == "frame").collect()
}

fn frames_served(p: &Pipeline, name: &str) -> u64 {
    p.latest(name).and_then(|r| r["frames"].as_u64()).unwrap_or(0)
}

/// A frame's round trip and what it must cost, or nothing if it was not
/// fully served (no detector answer).
fn timing(p: &Pipeline, camera_node: &str, frame: &Value) -> Option<FrameTiming> {
    let anonymiser = p.node_of(frame["anonymiser"].as_str()?)?;
    let detector = p.node_of(frame["detector"].as_str()?)?;
    let legs = p.modelled_rtt(camera_node, &anonymiser)? + p.modelled_rtt(&anonymiser, &detector)?;
    let processing = frame["anonymise_ms"].as_f64()? + frame["detect_ms"].as_f64()?;
    Some(FrameTiming { rtt_ms: frame["rtt_ms"].as_f64()?, expected_ms: legs.as_secs_f64() * 1e3 + processing })
}
