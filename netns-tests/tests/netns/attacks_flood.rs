//! Floods from peers without a grant, against real daemons: connections
//! that never handshake and strangers with fresh identities (F8), join
//! attempts with oversized, over-long and wrong tokens (F10, F18, F19), and
//! WireGuard initiations with a valid MAC1 on the tunnel port (F13). Each
//! runs while `closest` and the membership are sampled on every node; each
//! daemon's peak memory is printed as `attack=<name> node=<node> vmhwm_kb=<k>`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netns_tests::dynamic::time_until;
use netns_tests::grove::MESH_PORT;
use netns_tests::{ScratchDir, Testbed};
use serde_json::Value;

use super::attack_kit::{
    announce, assert_membership, assert_running, assert_whole_after, control_addr, expect_closest, host_in, mesh_of, record_memory, rogue, spawn_rogue,
};
use super::sampling::{assert_samples, echo_client, echoes, udp_echo, Sampler};
use super::support::build;

/// F8: hundreds of TCP connections that never handshake, and libp2p
/// strangers with fresh identities, from one address: the authority holds
/// at most a few of them, closes the rest, keeps answering its API, DNS
/// and probes, and admits a real node meanwhile.
#[test]
fn a_connection_flood_is_capped_per_address_and_the_authority_still_admits() {
    let tb = build(
        Testbed::builder()
            .with_node("cf-auth")
            .with_node("cf-m1")
            .with_node("cf-m2")
            .with_node("cf-rogue")
            .with_node("cf-late"),
    );
    let dir = ScratchDir::new("atk-connflood").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    expect_closest(&mesh, &[0, 1, 2], "ms2", genuine, Duration::from_secs(10));
    let fds_before = mesh.nodes[0].fd_count().unwrap_or(0);
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine), (2, genuine)]);
    let flood = spawn_rogue(
        &tb,
        3,
        &[
            "conn-flood",
            "--dial",
            &control_addr(&tb, 0).to_string(),
            "--n",
            "300",
            "--libp2p",
            "12",
            "--hold-secs",
            "26",
        ],
    );
    let started = Instant::now();
    let (mut max_fds, mut slowest) = (0usize, Duration::ZERO);
    let mut joined = None;
    while started.elapsed() < Duration::from_secs(25) {
        max_fds = max_fds.max(mesh.nodes[0].fd_count().unwrap_or(0));
        let asked = Instant::now();
        mesh.nodes[0]
            .status_text()
            .unwrap_or_else(|e| panic!("the authority's status failed during the flood: {e}"));
        slowest = slowest.max(asked.elapsed());
        if joined.is_none() && started.elapsed() > Duration::from_secs(3) {
            let t = Instant::now();
            mesh.nodes[4]
                .start()
                .unwrap_or_else(|e| panic!("a real node could not join during the flood: {e}\n{}", mesh.logs(20)));
            joined = Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let report = flood.wait();
    let samples = sampler.stop();
    eprintln!("attack=conn-flood report={report}");
    eprintln!(
        "attack=conn-flood node={} fds_before={fds_before} fds_max={max_fds} slowest_status_ms={} late_join_ms={:?}",
        mesh.nodes[0].name,
        slowest.as_millis(),
        joined.map(|d| d.as_millis())
    );
    assert!(
        slowest < Duration::from_secs(1),
        "`netmanager status` took {slowest:?} during the flood"
    );
    assert!(
        max_fds < fds_before + 40,
        "the authority's descriptors grew from {fds_before} to {max_fds}"
    );
    let closed = report["tcp_closed_within_1s"].as_u64().unwrap_or(0);
    assert!(
        closed + 16 >= 300,
        "only {closed} of 300 handshake-less connections were closed within 1 s: {report}"
    );
    assert!(
        report["tcp_close_ms_max"].as_u64().unwrap_or(u64::MAX) < 15_000,
        "handshake-less connections were held too long: {report}"
    );
    let first = report["first_wave"]["established"].as_u64().unwrap_or(99);
    assert_eq!(
        first, 0,
        "strangers got in while the address held its 8 (handshake-less) slots: {report}"
    );
    let second = report["second_wave"]["established"].as_u64().unwrap_or(99);
    assert!(
        (1..=8).contains(&second),
        "{second} libp2p strangers from one address were let in (per-address cap 8): {report}"
    );
    assert_eq!(
        report["second_wave"]["closed_by_member"], second,
        "an admitted stranger was kept open past its grace: {report}"
    );
    assert_samples("conn-flood", &samples, 0.95, &[], &mesh.logs(20));
    let running = [0, 1, 2, 4];
    assert_whole_after(&mut mesh, "conn-flood", &running);
}

/// F10, F18, F19: frames over the request limit are refused unread, a token
/// longer than any token and wrong tokens get one generic refusal, and a
/// burst from one address is rate-limited; a real node joins afterwards.
#[test]
fn a_join_flood_is_refused_generically_and_rate_limited() {
    let tb = build(
        Testbed::builder()
            .with_node("jf-auth")
            .with_node("jf-m1")
            .with_node("jf-rogue")
            .with_node("jf-late"),
    );
    let dir = ScratchDir::new("atk-joinflood").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 2);
    let genuine = host_in(&mesh.nodes[1], 10);
    announce(&mesh, 1, "ms2", 1, genuine);
    expect_closest(&mesh, &[0, 1], "ms2", genuine, Duration::from_secs(10));
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine)]);
    let asked = Instant::now();
    let report = rogue(
        &tb,
        2,
        &[
            "join-flood",
            "--dial",
            &control_addr(&tb, 0).to_string(),
            "--authority",
            &mesh.authority_id,
            "--n",
            "24",
            "--oversized",
            "4",
        ],
    );
    let took = asked.elapsed();
    eprintln!("attack=join-flood report={report} took_ms={}", took.as_millis());
    assert_eq!(
        report["oversized"],
        serde_json::json!({ "refused": 4 }),
        "oversized join frames were read: {report}"
    );
    assert_eq!(report["long_token"], "Refused(Token)", "{report}");
    let (refused, limited) = (
        report["token_refusals"].as_u64().unwrap_or(0),
        report["rate_limited"].as_u64().unwrap_or(0),
    );
    assert!(
        (1..=5).contains(&refused),
        "{refused} wrong tokens were checked before the rate limit (burst 5): {report}"
    );
    assert_eq!(
        refused + limited,
        24,
        "every wrong token gets Refused(Token) or Refused(RateLimited): {report}"
    );
    eprintln!("attack=join-flood token_refusals={refused} rate_limited={limited}");
    let log = std::fs::read_to_string(&mesh.nodes[0].log).unwrap_or_default();
    let warnings = log
        .lines()
        .filter(|l| l.contains("refused a join") || l.contains("rate-limited"))
        .count();
    eprintln!("attack=join-flood authority_log_lines={warnings}");
    mesh.nodes[3]
        .start()
        .unwrap_or_else(|e| panic!("a real node could not join after the flood: {e}\n{}", mesh.logs(20)));
    let running = [0, 1, 3];
    mesh.wait_converged(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    std::thread::sleep(Duration::from_secs(2));
    let samples = sampler.stop();
    assert_samples("join-flood", &samples, 0.95, &[], &mesh.logs(20));
    assert_running(&mut mesh, &running);
    assert_membership(&mesh, &running);
    record_memory(&mesh, "join-flood", &running);
}

fn drops(status: &Value) -> (u64, u64) {
    let d = &status["drops"];
    (
        d["rate_limited"].as_u64().unwrap_or(0),
        d["handshake_rate_limited"].as_u64().unwrap_or(0),
    )
}

/// F13: initiations with a valid MAC1 from one source as fast as it can
/// send: the victim answers with cookies, then limits the source; its
/// memory stays flat, the mesh keeps carrying data and `closest`, and a
/// node that joins during the flood completes its handshake with the
/// victim.
#[test]
fn a_handshake_flood_is_rate_limited_and_data_keeps_flowing() {
    let tb = build(
        Testbed::builder()
            .with_node("hf-auth")
            .with_node("hf-victim")
            .with_node("hf-m2")
            .with_node("hf-rogue")
            .with_node("hf-late"),
    );
    let dir = ScratchDir::new("atk-handshake").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    expect_closest(&mesh, &[0, 1, 2], "ms2", genuine, Duration::from_secs(10));
    let overlay = |i: usize| {
        mesh.nodes[i]
            .overlay()
            .unwrap_or_else(|| panic!("{} has no overlay address", mesh.nodes[i].name))
    };
    for i in [1, 2] {
        udp_echo(&mesh.nodes[i], overlay(i), 7007);
    }
    // Data between two other members (auth → m2) and to the victim (m2 → victim).
    let to_other = echo_client(&mesh.nodes[0], SocketAddr::new(overlay(2).into(), 7007));
    let to_victim = echo_client(&mesh.nodes[2], SocketAddr::new(overlay(1).into(), 7007));
    let ready = time_until(Duration::from_secs(10), || echoes(&to_other) && echoes(&to_victim));
    assert!(ready.is_some(), "no overlay traffic before the flood\n{}", mesh.logs(20));
    let status = mesh.nodes[1].status().expect("victim status");
    let key = status["public_key"].as_str().expect("public_key").to_owned();
    let before = drops(&status);
    let rss_before = mesh.nodes[1].vmrss_kb().unwrap_or(0);
    let victim_overlay = overlay(1);
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine), (2, genuine)]);
    let target = format!("{}:{MESH_PORT}", tb.node(1).ipv4());
    let flood = spawn_rogue(&tb, 3, &["handshake-flood", "--target", &target, "--key", &key, "--seconds", "22"]);
    std::thread::sleep(Duration::from_secs(2));
    let (mut others, mut victim, mut rounds) = (0, 0, 0);
    let started = Instant::now();
    let mut handshake = None;
    while started.elapsed() < Duration::from_secs(18) {
        rounds += 1;
        others += usize::from(echoes(&to_other));
        victim += usize::from(echoes(&to_victim));
        if handshake.is_none() && started.elapsed() > Duration::from_secs(5) {
            // A new node needs a new session with the victim, now.
            mesh.nodes[4]
                .start()
                .unwrap_or_else(|e| panic!("start hf-late: {e}\n{}", mesh.logs(20)));
            let from_late = echo_client(&mesh.nodes[4], SocketAddr::new(victim_overlay.into(), 7007));
            let took = time_until(Duration::from_secs(12), || echoes(&from_late));
            handshake = Some(took.unwrap_or_else(|| panic!("hf-late never reached the victim through the flood\n{}", mesh.logs(20))));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let handshake = handshake.expect("hf-late started");
    let report = flood.wait();
    let samples = sampler.stop();
    let status = mesh.nodes[1].status().expect("victim status");
    let after = drops(&status);
    let (rss_after, hwm) = (mesh.nodes[1].vmrss_kb().unwrap_or(0), mesh.nodes[1].vmhwm_kb().unwrap_or(0));
    eprintln!("attack=handshake-flood report={report}");
    eprintln!(
        "attack=handshake-flood node={} rate_limited={} handshake_rate_limited={} vmrss_before_kb={rss_before} vmrss_after_kb={rss_after} vmhwm_kb={hwm} echo_others={others}/{rounds} echo_victim={victim}/{rounds} new_session_ms={}",
        mesh.nodes[1].name,
        after.0 - before.0,
        after.1 - before.1,
        handshake.as_millis()
    );
    assert!(
        report["sent"].as_u64().unwrap_or(0) > 10_000,
        "the flood was too slow to mean anything: {report}"
    );
    assert!(
        after.0 + after.1 > before.0 + before.1 + 1000,
        "the victim's rate-limit drop counters did not rise: {before:?} → {after:?}"
    );
    assert!(
        rss_after < rss_before + 10 * 1024,
        "the victim's RSS grew from {rss_before} kB to {rss_after} kB"
    );
    assert!(
        others == rounds,
        "data between two other members was lost during the flood: {others}/{rounds}"
    );
    assert!(
        victim * 10 >= rounds * 9,
        "data to the victim was lost during the flood: {victim}/{rounds}"
    );
    assert_samples("handshake-flood", &samples, 0.95, &[], &mesh.logs(20));
    let running = [0, 1, 2, 4];
    assert_whole_after(&mut mesh, "handshake-flood", &running);
}
