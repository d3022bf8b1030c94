//! Attacks from peers without a grant, against real daemons: a stranger
//! that forges, probes and floods gossip (F2, F6, F8, F20), a fake
//! authority and bootstrap peer (F1), a foreign peer racing the authority
//! at a bootstrap address, and a sync-response bomb (F2). Each runs while
//! `closest` and the membership are sampled on every node; each daemon's
//! peak memory is printed as `attack=<name> node=<node> vmhwm_kb=<k>`.

use std::time::{Duration, Instant};

use netns_tests::dynamic::{write_dynamic_config, DynamicMesh};
use netns_tests::grove::MESH_PORT;
use netns_tests::{ScratchDir, Signal, Testbed};

use super::attack_kit::{
    announce, assert_membership, assert_running, closest, control_addr, expect_closest, host_in, joining_with, log_lines, mesh_of,
    record_memory, spawn_rogue, wait_listening,
};
use super::sampling::{assert_samples, Sampler};
use super::support::build;

fn version(mesh: &DynamicMesh, i: usize) -> u64 {
    mesh.nodes[i].status().expect("status")["members"]["local"]["version"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_stranger_gets_nothing_and_is_closed_after_its_grace() {
    let tb = build(
        Testbed::builder()
            .with_node("st-auth")
            .with_node("st-m1")
            .with_node("st-m2")
            .with_node("st-rogue"),
    );
    let dir = ScratchDir::new("atk-stranger").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let running = [0, 1, 2];
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    expect_closest(&mesh, &running, "ms2", genuine, Duration::from_secs(10));
    let versions: Vec<u64> = running.iter().map(|i| version(&mesh, *i)).collect();
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine), (2, genuine)]);

    let at_member = spawn_rogue(&tb, 3, &["stranger", "--dial", &control_addr(&tb, 1).to_string()]);
    let at_authority = spawn_rogue(
        &tb,
        3,
        &["stranger", "--dial", &control_addr(&tb, 0).to_string(), "--variants", "300"],
    );
    let reports = [at_member.wait(), at_authority.wait()];
    let samples = sampler.stop();
    for report in &reports {
        eprintln!("attack=stranger report={report}");
        assert_eq!(report["sync"], "NotMember", "{report}");
        assert_eq!(report["records_received"], 0, "{report}");
        assert_eq!(report["suspected_pings"], serde_json::json!({ "NotMember": 20 }), "{report}");
        assert_eq!(report["pingreq"], "NotMember", "{report}");
        assert_eq!(report["gossip_received"], 0, "a stranger was sent gossip: {report}");
        let closed = report["closed_after_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("the member never closed the stranger: {report}"));
        assert!(
            (9_000..14_000).contains(&closed),
            "closed after {closed} ms, want ~10 s (STRANGER_GRACE): {report}"
        );
        eprintln!("attack=stranger closed_after_ms={closed}");
    }
    assert_samples("stranger", &samples, 0.95, &[], &mesh.logs(20));
    assert_running(&mut mesh, &running);
    assert_membership(&mesh, &running);
    let after: Vec<u64> = running.iter().map(|i| version(&mesh, *i)).collect();
    assert_eq!(
        versions, after,
        "a stranger's `suspected` pings made a node re-sign its record (F6)"
    );
    let rogue_ids: Vec<&str> = reports.iter().filter_map(|r| r["rogue"].as_str()).collect();
    for i in running {
        let log = std::fs::read_to_string(&mesh.nodes[i].log).unwrap_or_default();
        let lines = log.lines().filter(|l| rogue_ids.iter().any(|id| l.contains(id))).count();
        eprintln!("attack=stranger node={} log_lines_about_rogue={lines}", mesh.nodes[i].name);
        assert!(
            lines <= 10,
            "{} logged {lines} lines about the strangers (a log flood)",
            mesh.nodes[i].name
        );
    }
    record_memory(&mesh, "stranger", &running);
}

/// F1: a joiner whose bootstrap list names a fake authority (first!) and
/// which that fake dials again and again while it starts joins the real,
/// pinned authority; the fake never sees a `Join` (nor the token), and its
/// self-signed grants and records are believed by nobody.
#[test]
fn a_fake_authority_never_sees_the_token_and_is_never_believed() {
    // The fake answers 30 ms later than the authority: whichever completes
    // its handshake first decides the join's dial (see the next test), and
    // this one is about what reaches the fake, not about that race.
    let tb = build(
        Testbed::builder()
            .with_node("fa-auth")
            .with_node("fa-m1")
            .with_node("fa-joiner")
            .with_node("fa-rogue")
            .with_link_rtt("fa-joiner", "fa-rogue", Duration::from_millis(60)),
    );
    let dir = ScratchDir::new("atk-fake-auth").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 2);
    let rogue_addr = control_addr(&tb, 3);
    let joiner_addr = control_addr(&tb, 2);
    let fake = spawn_rogue(
        &tb,
        3,
        &[
            "listen",
            "--listen",
            &rogue_addr.to_string(),
            "--seconds",
            "25",
            "--dial",
            &joiner_addr.to_string(),
            "--dial-every-ms",
            "100",
        ],
    );
    wait_listening(&tb, 3, MESH_PORT);
    write_dynamic_config(&mesh.nodes[2], &joining_with(&mesh, &tb, &[rogue_addr.to_string()])).expect("config");
    let started = Instant::now();
    mesh.nodes[2]
        .start()
        .unwrap_or_else(|e| panic!("the joiner did not join: {e}\n{}", mesh.logs(20)));
    eprintln!("attack=fake-authority join_took_ms={}", started.elapsed().as_millis());
    mesh.wait_converged(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    let running = [0, 1, 2];
    let genuine = host_in(&mesh.nodes[1], 10);
    announce(&mesh, 1, "ms2", 1, genuine);
    expect_closest(&mesh, &running, "ms2", genuine, Duration::from_secs(10));
    let report = fake.wait();
    eprintln!("attack=fake-authority report={report}");
    assert_eq!(report["seen"]["joins_received"], 0, "the fake authority was sent a Join: {report}");
    assert_eq!(
        report["seen"]["tokens_seen"],
        serde_json::json!([]),
        "the token reached the fake authority: {report}"
    );
    let status = mesh.nodes[2].status().expect("joiner status");
    assert_eq!(
        status["members"]["local"]["authority"],
        mesh.authority_id.as_str(),
        "the joiner trusts another authority"
    );
    assert_membership(&mesh, &running);
    assert!(closest_is_not_evil(&mesh, &running), "a forged instance is answered");
    let rejected = log_lines(&mesh.nodes[2], "records rejected");
    eprintln!(
        "attack=fake-authority syncs_served_by_rogue={} joiner_rejection_lines={rejected}",
        report["seen"]["syncs_received"]
    );
    assert_running(&mut mesh, &running);
    record_memory(&mesh, "fake-authority", &running);
}

/// A foreign peer answering at one of the bootstrap addresses (a fake, or
/// just another member) must not stall the join: the joiner dials the
/// pinned authority at every bootstrap address, and a connection that
/// turns out to be someone else's must not cancel the others. Here the
/// foreign peer answers faster than the authority (60 ms away).
#[test]
fn a_foreign_peer_at_a_bootstrap_address_does_not_stall_the_join() {
    let tb = build(
        Testbed::builder()
            .with_node("ds-auth")
            .with_node("ds-joiner")
            .with_node("ds-rogue")
            .with_link_rtt("ds-joiner", "ds-auth", Duration::from_millis(60)),
    );
    let dir = ScratchDir::new("atk-dial-race").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 1);
    let rogue_addr = control_addr(&tb, 2);
    let fake = spawn_rogue(&tb, 2, &["listen", "--listen", &rogue_addr.to_string(), "--seconds", "35"]);
    wait_listening(&tb, 2, MESH_PORT);
    write_dynamic_config(&mesh.nodes[1], &joining_with(&mesh, &tb, &[rogue_addr.to_string()])).expect("config");
    let started = Instant::now();
    let joined = mesh.nodes[1].start();
    let took = started.elapsed();
    let tries = log_lines(&mesh.nodes[1], "still trying to reach the authority");
    eprintln!(
        "attack=dial-race join_took_ms={} retries_logged={tries} joined={}",
        took.as_millis(),
        joined.is_ok()
    );
    let report = fake.wait();
    eprintln!("attack=dial-race report={report}");
    assert_eq!(report["seen"]["joins_received"], 0, "{report}");
    let log = std::fs::read_to_string(&mesh.nodes[1].log).unwrap_or_default();
    let why: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("still trying") || l.contains("netmanager:"))
        .take(3)
        .collect();
    assert!(
        joined.is_ok() && took < Duration::from_secs(10),
        "the join took {took:?} (joined: {}): a foreign peer at a bootstrap address wins the dial race\n{}",
        joined.is_ok(),
        why.join("\n")
    );
    record_memory(&mesh, "dial-race", &[0, 1]);
}

fn closest_is_not_evil(mesh: &DynamicMesh, running: &[usize]) -> bool {
    running.iter().all(|i| closest(&mesh.nodes[*i], "evil").is_empty())
}

/// F2: a bootstrap address that answers syncs with response bombs (300 k
/// empty records in one frame, a 16 MiB length claim, 256 forged records)
/// costs the node that syncs with it nothing: its memory stays flat, it
/// logs one line per page, and it keeps answering DNS.
#[test]
fn a_sync_response_bomb_at_a_bootstrap_address_is_refused_unread() {
    let tb = build(
        Testbed::builder()
            .with_node("bo-auth")
            .with_node("bo-m1")
            .with_node("bo-victim")
            .with_node("bo-rogue"),
    );
    let dir = ScratchDir::new("atk-bomb").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 2);
    let rogue_addr = control_addr(&tb, 3);
    let bomb = spawn_rogue(&tb, 3, &["bomb", "--listen", &rogue_addr.to_string(), "--seconds", "40"]);
    wait_listening(&tb, 3, MESH_PORT);
    write_dynamic_config(&mesh.nodes[2], &joining_with(&mesh, &tb, &[rogue_addr.to_string()])).expect("config");
    let genuine = host_in(&mesh.nodes[1], 10);
    announce(&mesh, 1, "ms2", 1, genuine);
    let mut peaks = Vec::new();
    for round in 0..3 {
        if round > 0 {
            mesh.nodes[2].stop_with(Signal::Term).expect("stop the victim");
        }
        mesh.nodes[2].start().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
        mesh.wait_converged(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
        expect_closest(&mesh, &[2], "ms2", genuine, Duration::from_secs(10));
        // The bomb lands when the node syncs with its bootstrap addresses,
        // right after it starts.
        std::thread::sleep(Duration::from_secs(3));
        expect_closest(&mesh, &[0, 1, 2], "ms2", genuine, Duration::from_secs(5));
        let hwm = mesh.nodes[2].vmhwm_kb().unwrap_or(0);
        eprintln!("attack=bomb round={round} node={} vmhwm_kb={hwm}", mesh.nodes[2].name);
        peaks.push(hwm);
    }
    let report = bomb.wait();
    eprintln!("attack=bomb report={report}");
    let served: Vec<&str> = report["served"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["bomb"].as_str())
        .collect();
    assert!(
        served.len() >= 3,
        "the victim synced with the bomb {} times, want 3 (one per start): {report}",
        served.len()
    );
    for kind in ["elements", "claim16", "records"] {
        assert!(served.contains(&kind), "bomb {kind} never served: {report}");
    }
    for (round, hwm) in peaks.iter().enumerate() {
        assert!(*hwm < 60 * 1024, "round {round}: the victim's peak RSS is {hwm} kB (≥ 60 MB)");
    }
    let lines = log_lines(&mesh.nodes[2], "records rejected");
    eprintln!("attack=bomb victim_rejection_lines={lines}");
    assert!(lines <= 3, "256 rejected records made {lines} log lines, want one per page");
    let running = [0, 1, 2];
    assert_running(&mut mesh, &running);
    assert_membership(&mesh, &running);
    assert!(closest_is_not_evil(&mesh, &running));
    record_memory(&mesh, "bomb", &running);
}
