//! The camera pipeline of `examples/` on the demo's topology (real root,
//! clusters, workers and netmanagers on the emulated WAN; the real
//! `camera`, `anonymise` and `detect` binaries): each camera is served by
//! the anonymiser in its own site, fails over to the next nearest when
//! that site's worker dies, comes back when the orchestrator has
//! re-created it; and no raw frame ever crosses to the cloud, in clear or
//! otherwise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use examples_markers::{ANONYMISED_MARK, RAW_MARK};
use netns_tests::orchestra::wait_for;
use netns_tests::pipeline::{topology, Pipeline, ANONYMISE, DETECT};
use netns_tests::{wait_until_named, ChildGuard, Signal};

use super::support::need_root;

/// The markers the examples' frames carry in their JPEG comment
/// (`examples::frames`; this crate cannot depend on `examples`, which
/// depends on it, so the two strings are repeated here and checked there).
mod examples_markers {
    pub const RAW_MARK: &str = "grove-camera-raw";
    pub const ANONYMISED_MARK: &str = "grove-anonymised";
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// tcpdump on every interface of node `key`'s namespace, to a file.
fn capture(p: &Pipeline, key: &str, filter: &str) -> (ChildGuard, PathBuf) {
    let i = p.o.index(key).expect("node");
    let file = p.o.dir().join(format!("{key}.pcap"));
    let log = p.o.dir().join(format!("{key}.tcpdump.log"));
    let file_s = file.display().to_string();
    let mut args = vec!["-i", "any", "-n", "-U", "--immediate-mode", "-s", "0", "-w", &file_s];
    args.extend(filter.split(' '));
    let child = p.o.testbed().node(i).netns().spawn_logged("tcpdump", &args, &log).expect("tcpdump (apt-get install tcpdump)");
    wait_until_named("tcpdump to listen", Duration::from_secs(10), || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("listening on")))
        .expect("tcpdump started");
    (child, file)
}

fn finish(mut child: ChildGuard, file: &PathBuf) -> Vec<u8> {
    child.signal(Signal::Int).expect("stop tcpdump");
    let _ = child.wait_for_exit(Duration::from_secs(5));
    std::fs::read(file).expect("read capture")
}

/// The whole story on one platform (6 netmanagers, 3 clusters, 4
/// workers): placement, each camera at home, the raw stream never in the
/// cloud, failover to the next nearest site, re-creation, return.
#[test]
fn pipeline_cameras_are_served_at_home_fail_over_to_the_next_site_and_no_raw_frame_reaches_the_cloud() {
    need_root();
    let mut p = Pipeline::build(topology().quiet()).unwrap_or_else(|e| panic!("platform: {e}"));
    let (took, _) = p.deploy(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("pipeline deployed and RUNNING in {:.1} s", took.as_secs_f64());

    // Placement: one anonymiser per edge site, the detector in the cloud.
    let on = |service: &str| -> Vec<String> {
        p.o.running(service).iter().filter_map(|i| i.node.as_deref().and_then(|n| p.o.key_of(n)).map(str::to_owned)).collect()
    };
    let anonymisers = on(ANONYMISE);
    assert_eq!(anonymisers.len(), 2, "{anonymisers:?}");
    assert!(anonymisers.iter().any(|k| k.starts_with("muc")) && anonymisers.iter().any(|k| k.starts_with("mil")), "spread over both edges: {anonymisers:?}");
    assert_eq!(on(DETECT), ["fra"], "the detector in Frankfurt");

    // Captures: the cloud node (its WAN link carries ciphertext, its
    // tunnel interface what the cloud decrypts) and, as the control that
    // proves the markers are visible, the Munich camera box.
    let (cloud, cloud_file) = capture(&p, "fra", "tcp or udp port 50103");
    let (edge, edge_file) = capture(&p, "muc", "tcp");

    p.start_camera("muc", "munich", &["--fps", "4"]).unwrap_or_else(|e| panic!("{e}"));
    p.start_camera("mil", "milan", &["--fps", "4"]).unwrap_or_else(|e| panic!("{e}"));
    let munich_home = p.wait_served("munich", &["mucwa", "mucwb"], Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    p.wait_served("milan", &["milw"], Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    // (Right after the deploy a camera may first get the other edge's
    // instance: until its node has probed the new instance's node,
    // `closest` goes by network coordinates. What counts is from here on.)
    let milan_switches = p.switches("milan").len();
    // Faces pixelated at the edge, frames analysed in Frankfurt.
    let blurred_and_detected = |r: &serde_json::Value| {
        r["faces_blurred"].as_u64().unwrap_or(0) > 0 && r["detector"].as_str().is_some_and(|d| p.node_of(d).as_deref() == Some("fra"))
    };
    let seen = wait_for(Duration::from_secs(10), || p.latest("munich").filter(|r| blurred_and_detected(r)));
    assert!(seen.is_some(), "no faces blurred and detected in the cloud: {:?}", p.latest("munich"));

    // Failover: kill the worker node that serves Munich.
    let victim = p.node_of(munich_home["anonymiser"].as_str().expect("anonymiser")).expect("its node");
    let before = p.switches("munich").len();
    let killed = Instant::now();
    p.o.kill_node(&victim);
    // Next nearest: Milan's instance, or the re-created one on the other
    // Munich worker if the cluster was quicker than the camera noticed.
    let other = if victim == "mucwa" { "mucwb" } else { "mucwa" };
    let away = p
        .wait_served("munich", &["milw", other], Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("the Munich camera did not fail over: {e}"));
    let switch = p.switches("munich").get(before).cloned().expect("a switch event");
    let gap = switch["gap_s"].as_f64().expect("gap");
    eprintln!("munich camera: failed over after {gap:.2} s without frames ({:.2} s after the kill); {away}", killed.elapsed().as_secs_f64());
    assert!(gap < 10.0, "failover took {gap} s");

    // Re-created on the other Munich worker, and the camera back home.
    p.wait_served("munich", &[other], Duration::from_secs(45)).unwrap_or_else(|e| panic!("not back in Munich on {other}: {e}"));
    eprintln!("munich camera back home on {other} {:.1} s after the kill", killed.elapsed().as_secs_f64());
    assert_eq!(p.switches("milan").len(), milan_switches, "the Milan camera stays home: {:?}", p.switches("milan"));

    p.stop_cameras();
    let cloud = finish(cloud, &cloud_file);
    let edge = finish(edge, &edge_file);
    assert!(contains(&edge, RAW_MARK), "control: the Munich box's capture shows its camera's raw frames ({} bytes)", edge.len());
    assert!(contains(&cloud, ANONYMISED_MARK), "control: anonymised frames reached the cloud in the capture ({} bytes)", cloud.len());
    assert!(!contains(&cloud, RAW_MARK), "a raw camera frame reached the cloud node");
}
