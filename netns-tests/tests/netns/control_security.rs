//! The control plane under attack, partition and restart: joins without a
//! valid token (or at a node that is not the authority) are refused on
//! both sides; a member replaying records it captured, as they were and in
//! byte variants, changes nothing; a partition between two sites heals and
//! `closest` moves back; a mesh whose every node restarted finds itself
//! again. The attacks of the review are in `attacks_stranger.rs` and
//! `attacks_member.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use netns_tests::dynamic::{authority_addr, peer_id_of, time_until, write_dynamic_config, write_private, DynamicMesh, DynamicNode};
use netns_tests::grove::MESH_PORT;
use netns_tests::{ScratchDir, Signal, Site, Testbed};
use serde_json::Value;

use super::attack_kit::{announce, closest, host_in, member, members, spawn_rogue};
use super::support::build;

const MUNICH: (f64, f64) = (48.14, 11.58);
const HELSINKI: (f64, f64) = (60.17, 24.94);

/// `[control]` lines of a node joining through `peer`@`via` (pinned),
/// with `token` (kept in a 0600 file under `dir`) if any.
fn joining(dir: &Path, peer: &str, via: SocketAddr, token: Option<&str>) -> String {
    let token = token.map(|t| {
        let file = dir.join(format!("token-{}", t.len() + t.bytes().map(usize::from).sum::<usize>()));
        write_private(&file, &format!("{t}\n")).expect("token file");
        format!("join_token_file = \"{}\"\n", file.display())
    });
    format!("bootstrap = [\"{peer}@{via}\"]\n{}", token.unwrap_or_default())
}

fn control_addr(tb: &Testbed, i: usize) -> String {
    SocketAddr::new(tb.node(i).ipv4().into(), MESH_PORT).to_string()
}

/// Why `node` answers `closest.<service>` as it does: the resolver's own
/// explanation (`explain.` TXT), then `netmanager status`.
fn why(node: &DynamicNode, service: &str) -> String {
    let name = format!("explain.closest.{service}.grove");
    let out = Command::new("ip")
        .args(["netns", "exec", &node.netns, "dig", "+short", "@127.0.0.153", &name, "TXT"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("dig: {e}"));
    format!("{} answers {:?}\n{out}\n{}", node.name, closest(node, service), node.status_text().unwrap_or_default())
}

#[test]
fn joins_without_a_valid_token_are_refused_on_both_sides() {
    let tb = build(Testbed::builder().with_node("auth").with_node("member").with_nodes(4));
    let dir = ScratchDir::new("sec-join").expect("scratch");
    let mut mesh = DynamicMesh::prepare(&tb, dir.path()).expect("prepare");
    // An expired token beside the good one (unix seconds: 2001).
    let expired = "ExpiredExpiredExpiredExpired0001";
    let tokens = dir.join("tokens");
    let listed = std::fs::read_to_string(&tokens).expect("token file");
    std::fs::write(&tokens, format!("{listed}{expired} 1000000000\n")).expect("token file");
    let authority = (mesh.authority_id.clone(), authority_addr(&tb));
    for i in 0..2 {
        mesh.nodes[i].start().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    }
    // A node that pins a member as its authority: the member refuses.
    let member_id = peer_id_of(&dir.join(format!("{}.identity", mesh.nodes[1].name))).expect("member id");
    let d = dir.path();
    let cases: [(usize, String, &str); 4] = [
        (2, joining(d, &authority.0, authority.1, None), "no join token presented"),
        (3, joining(d, &authority.0, authority.1, Some("WrongWrongWrongWrongWrongWrong00")), "join token not accepted"),
        (4, joining(d, &authority.0, authority.1, Some(expired)), "join token not accepted"),
        (5, joining(d, &member_id, control_addr(&tb, 1).parse().expect("addr"), Some(&mesh.token)), "not the admission authority"),
    ];
    for (i, lines, _) in &cases {
        write_dynamic_config(&mesh.nodes[*i], lines).expect("config");
    }

    for (i, _, reason) in &cases {
        let node = &mut mesh.nodes[*i];
        let started = Instant::now();
        let err = match node.start() {
            Ok(()) => panic!("{} joined although it must be refused ({reason})", node.name),
            Err(e) => e.to_string(),
        };
        let took = started.elapsed();
        let status = node.child.as_mut().and_then(|c| c.try_exit_status().ok().flatten());
        assert!(status.is_some_and(|s| !s.success()), "{}: exit status {status:?}, want non-zero", node.name);
        assert!(took < Duration::from_secs(10), "{} took {took:?} to give up", node.name);
        assert!(
            err.contains("join refused by") && err.contains(reason),
            "{} should say the join was refused ({reason}):\n{err}",
            node.name
        );
    }
    let log = std::fs::read_to_string(&mesh.nodes[0].log).unwrap_or_default();
    let refusals = log.lines().filter(|l| l.contains("refused a join")).count();
    assert!(refusals >= 3, "the authority logged {refusals} refusals, want 3:\n{}", mesh.logs(20));
    // The joiner hears one generic refusal; the authority's log says why.
    for needle in ["no join token presented", "unknown token", "expired at"] {
        assert!(log.contains(needle), "the authority's log lacks {needle:?}:\n{}", mesh.logs(20));
    }
    let seen = members(&mesh.nodes[0]);
    let refused: Vec<&str> = cases.iter().map(|(i, _, _)| mesh.nodes[*i].name.as_str()).collect();
    assert!(
        seen.iter().all(|m| !refused.iter().any(|r| m["name"] == *r)),
        "the authority lists a refused node: {seen:?}"
    );
}

#[test]
fn a_mesh_restarted_as_a_whole_finds_itself_again() {
    let tb = build(Testbed::builder().with_nodes(3));
    let dir = ScratchDir::new("sec-restart").expect("scratch");
    let mut mesh = DynamicMesh::prepare(&tb, dir.path()).expect("prepare");
    mesh.start_all().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    mesh.wait_converged(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    // Every node keeps its grant but no membership: the joiners must find
    // the authority through `bootstrap` again.
    for node in &mut mesh.nodes {
        node.stop_with(Signal::Term).expect("stop");
    }
    mesh.start_all().unwrap_or_else(|e| panic!("restart: {e}\n{}", mesh.logs(20)));
    mesh.wait_converged(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("after restarting every node: {e}\n{}", mesh.logs(20)));
}

/// F20 and replays: a member captures every record when it joins; m3
/// then restarts elsewhere (a newer record); the rogue replays the old
/// records as they were and in hundreds of byte variants each (trailing
/// bytes, a payload byte the signature does not cover, a padded signer
/// key). Nothing rolls back, no variant is believed, and the mesh answers
/// as before.
#[test]
fn a_member_cannot_replay_captured_records_or_their_variants() {
    let tb = build(Testbed::builder().with_node("rp-auth").with_node("rp-m1").with_node("rp-m2").with_node("rp-m3").with_node("rp-rogue"));
    let dir = ScratchDir::new("sec-replay").expect("scratch");
    let mut mesh = DynamicMesh::prepare(&tb, dir.path()).expect("prepare");
    let joined = mesh.joining(&tb, Some(&dir.join("join-token")));
    mesh.nodes[3].location = Some(MUNICH);
    write_dynamic_config(&mesh.nodes[3], &joined).expect("config");
    for i in 0..4 {
        mesh.nodes[i].start().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    }
    mesh.wait_converged(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    let everywhere = time_until(Duration::from_secs(10), || (0..4).all(|i| closest(&mesh.nodes[i], "ms2") == vec![genuine]));
    assert!(everywhere.is_some(), "ms2 at {genuine} not answered everywhere\n{}", mesh.logs(20));
    let old_version = mesh.nodes[3].status().expect("m3 status")["members"]["local"]["version"].as_u64().unwrap_or(0);

    let token = dir.join("join-token");
    let args = [
        "member", "--dial", &control_addr(&tb, 0), "--authority", &mesh.authority_id, "--token-file", &token.to_string_lossy(),
        "--name", "rp-rogue", "--mode", "replay", "--replay-after", "12", "--variants", "300", "--seconds", "20",
    ];
    let replay = spawn_rogue(&tb, 4, &args);
    let listed = time_until(Duration::from_secs(10), || (0..4).all(|i| member(&members(&mesh.nodes[i]), "rp-rogue").is_some()));
    assert!(listed.is_some(), "the rogue did not join\n{}", mesh.logs(20));
    // The capture is taken; now m3 moves (a newer record).
    mesh.nodes[3].stop_with(Signal::Term).expect("stop m3");
    mesh.nodes[3].location = Some(HELSINKI);
    write_dynamic_config(&mesh.nodes[3], &joined).expect("config");
    mesh.nodes[3].start().unwrap_or_else(|e| panic!("restart m3: {e}\n{}", mesh.logs(20)));
    let moved = |i: usize| member(&members(&mesh.nodes[i]), "rp-m3").is_some_and(|m| m["location"] == serde_json::json!({ "lat": HELSINKI.0, "lon": HELSINKI.1 }) && m["state"] == "alive");
    let newer = time_until(Duration::from_secs(10), || (0..3).all(moved));
    assert!(newer.is_some(), "m3's new record did not spread\n{}", mesh.logs(20));
    let new_version = mesh.nodes[3].status().expect("m3 status")["members"]["local"]["version"].as_u64().unwrap_or(0);
    assert!(new_version > old_version, "m3 restarted with version {new_version:x} <= {old_version:x}");

    let report = replay.wait();
    eprintln!("attack=replay report={report}");
    assert!(report["report"]["replay_syncs_served"].as_u64().unwrap_or(0) >= 2, "no member took the captured records from the rogue's sync answers: {report}");
    assert!(report["report"]["variants"]["ok"].as_u64().unwrap_or(0) >= 900, "too few variants published: {report}");
    for i in 0..4 {
        let node = &mesh.nodes[i];
        if i != 3 {
            assert!(moved(i), "{}: m3 rolled back to its old record: {:?}\n{}", node.name, member(&members(node), "rp-m3"), mesh.logs(20));
        }
        assert_eq!(closest(node, "ms2"), vec![genuine], "{}: closest.ms2 changed", node.name);
        let views = members(node);
        let real: Vec<&Value> = views.iter().filter(|m| m["name"] != "rp-rogue").collect();
        assert!(real.iter().all(|m| m["state"] == "alive"), "{}: {real:?}", node.name);
    }
    for i in 0..4 {
        eprintln!("attack=replay node={} vmhwm_kb={}", mesh.nodes[i].name, mesh.nodes[i].vmhwm_kb().unwrap_or(0));
    }
}

#[test]
fn a_partition_between_two_sites_heals_and_closest_moves_back() {
    let (muc, fra) = (Site::new("munich", MUNICH.0, MUNICH.1), Site::new("frankfurt", 50.11, 8.68));
    let mut builder = Testbed::builder();
    for (i, site) in [&muc, &muc, &muc, &fra, &fra, &fra].into_iter().enumerate() {
        builder = builder.with_node_at(format!("{}{}", &site.name[..1], i % 3), site.clone());
    }
    // f0's link to its own site's f2 is slow: f0 prefers m1 across the WAN.
    let tb = build(builder.with_link_rtt("f0", "f2", Duration::from_millis(40)));
    let dir = ScratchDir::new("sec-part").expect("scratch");
    let mut mesh = DynamicMesh::prepare(&tb, dir.path()).expect("prepare");
    mesh.start_all().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    mesh.wait_converged(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    let (near, far) = (host_in(&mesh.nodes[1], 10), host_in(&mesh.nodes[5], 10));
    announce(&mesh, 1, "ms2", 1, near);
    announce(&mesh, 5, "ms2", 2, far);
    let f0 = &mesh.nodes[3];
    let first = time_until(Duration::from_secs(15), || closest(f0, "ms2") == vec![near]);
    assert!(first.is_some(), "want m1's {near}: {}", why(f0, "ms2"));

    let wan = tb.wan();
    let cross = || (0..3).flat_map(|a| (3..6).map(move |b| (a, b)));
    for (a, b) in cross() {
        wan.cut(tb.node(a), tb.node(b)).expect("cut");
    }
    let other_side = |i: usize| -> Vec<String> {
        let range = if i < 3 { 3..6 } else { 0..3 };
        range.map(|j| mesh.nodes[j].name.clone()).collect()
    };
    let split = time_until(Duration::from_secs(15), || {
        (0..6).all(|i| {
            let dead = mesh.nodes[i].members_in("dead");
            other_side(i).iter().all(|n| dead.contains(n))
        })
    });
    assert!(split.is_some(), "the sides did not declare each other dead\n{}", mesh.logs(20));
    let moved = time_until(Duration::from_secs(5), || closest(f0, "ms2") == vec![far]);
    assert!(moved.is_some(), "during the partition, want f2's {far}: {}", why(f0, "ms2"));

    for (a, b) in cross() {
        wan.heal(tb.node(a), tb.node(b)).expect("heal");
    }
    let healed = Instant::now();
    mesh.wait_converged(Duration::from_secs(20)).unwrap_or_else(|e| panic!("after healing: {e}\n{}", mesh.logs(20)));
    let back =
        time_until(Duration::from_secs(20).saturating_sub(healed.elapsed()), || closest(f0, "ms2") == vec![near]);
    assert!(back.is_some(), "after healing, want m1's {near} again: {}", why(f0, "ms2"));
    eprintln!("partition: split seen after {split:?}, healed in {:?}", healed.elapsed());
}
