//! The control plane under attack, partition and restart: joins without a
//! valid token are refused on both sides; a rogue libp2p peer (the `rogue`
//! binary) that forges, steals and replays records changes nothing; a
//! partition between two sites heals and `closest` moves back; a mesh whose
//! every node restarted finds itself again.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use netns_tests::dynamic::{ask, authority_addr, time_until, write_dynamic_config, DynamicMesh, DynamicNode};
use netns_tests::grove::MESH_PORT;
use netns_tests::{bin_path, ScratchDir, Signal, Site, Testbed};
use serde_json::Value;

use super::support::build;

const MUNICH: (f64, f64) = (48.14, 11.58);
const HELSINKI: (f64, f64) = (60.17, 24.94);

/// `[control]` lines of a node joining through `via`, with `token` if any.
fn joining(via: SocketAddr, token: Option<&str>) -> String {
    let token = token.map(|t| format!("join_token = \"{t}\"\n")).unwrap_or_default();
    format!("bootstrap = [\"{via}\"]\n{token}")
}

fn control_addr(tb: &Testbed, i: usize) -> String {
    SocketAddr::new(tb.node(i).ipv4().into(), MESH_PORT).to_string()
}

/// Address `k` of a node's granted subnet.
fn host_in(node: &DynamicNode, k: u32) -> Ipv4Addr {
    let subnet = node.subnet().unwrap_or_else(|| panic!("{} has no subnet", node.name));
    let network: Ipv4Addr = subnet.split('/').next().and_then(|a| a.parse().ok()).expect("subnet address");
    Ipv4Addr::from(u32::from(network) + k)
}

/// Announces `service` instance `number` at `ip` on `node` (no workload
/// namespace needed). Numbers must differ across nodes: the directory keys
/// instances by (service, app, namespace, number).
fn announce(mesh: &DynamicMesh, node: usize, service: &str, number: u32, ip: Ipv4Addr) {
    let body = format!(r#"{{"service":"{service}","app":"cam","number":{number},"ipv4":"{ip}"}}"#);
    let (code, answer) = mesh.nodes[node].api("POST", "/v1/instances", Some(&body)).expect("POST /v1/instances");
    assert!((200..300).contains(&code), "announcing {service} on {}: {code} {answer}", mesh.nodes[node].name);
}

fn closest(node: &DynamicNode, service: &str) -> Vec<Ipv4Addr> {
    let socket = node.resolver().expect("resolver socket");
    ask(&socket, &format!("closest.{service}.grove")).map(|a| a.addresses).unwrap_or_default()
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

/// The member views `node` holds, by name.
fn members(node: &DynamicNode) -> Vec<Value> {
    node.status().ok().and_then(|s| s["members"]["members"].as_array().cloned()).unwrap_or_default()
}

fn member<'a>(views: &'a [Value], name: &str) -> Option<&'a Value> {
    views.iter().find(|m| m["name"] == name)
}

/// Runs the rogue inside testbed node `i`'s namespace; its JSON report.
fn rogue(tb: &Testbed, i: usize, args: &[&str]) -> Value {
    let bin = bin_path("rogue").expect("rogue binary (cargo build --release -p netns-tests)");
    let out = Command::new("ip")
        .args(["netns", "exec", tb.node(i).netns().name()])
        .arg(&bin)
        .args(args)
        .output()
        .expect("run rogue");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rogue {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("rogue printed no JSON ({e}): {stderr}"))
}

/// The version of `name`'s record in a rogue sync report.
fn version_in(report: &Value, name: &str) -> u64 {
    let nodes = report["state"]["nodes"].as_array().expect("nodes");
    nodes.iter().find(|n| n["name"] == name).and_then(|n| n["version"].as_u64()).unwrap_or(0)
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
    let (authority, member) = (authority_addr(&tb), control_addr(&tb, 1).parse().expect("addr"));
    let cases: [(usize, String, &str); 4] = [
        (2, joining(authority, None), "no join token presented"),
        (3, joining(authority, Some("WrongWrongWrongWrongWrongWrong00")), "join token unknown"),
        (4, joining(authority, Some(expired)), "expired"),
        (5, joining(member, Some(&mesh.token)), "does not admit members"),
    ];
    for (i, lines, _) in &cases {
        write_dynamic_config(&mesh.nodes[*i], lines).expect("config");
    }
    for i in 0..2 {
        mesh.nodes[i].start().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
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
    for needle in ["without a token", "join token unknown", "expired"] {
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

#[test]
fn a_rogue_peer_cannot_forge_steal_or_replay_records() {
    let tb =
        build(Testbed::builder().with_node("auth").with_node("m1").with_node("m2").with_node("m3").with_node("rogue"));
    let dir = ScratchDir::new("sec-rogue").expect("scratch");
    let mut mesh = DynamicMesh::prepare(&tb, dir.path()).expect("prepare");
    let joined = joining(authority_addr(&tb), Some(&mesh.token));
    mesh.nodes[3].location = Some(MUNICH);
    write_dynamic_config(&mesh.nodes[3], &joined).expect("config");
    for i in 0..4 {
        mesh.nodes[i].start().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    }
    mesh.wait_converged(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    let everywhere =
        time_until(Duration::from_secs(10), || (0..4).all(|i| closest(&mesh.nodes[i], "ms2") == vec![genuine]));
    assert!(everywhere.is_some(), "ms2 at {genuine} not answered everywhere\n{}", mesh.logs(20));
    let m2_endpoints = member(&members(&mesh.nodes[0]), "m2").map(|m| m["endpoints"].clone()).expect("m2 at auth");

    // Capture m3's record, then make m3 publish a newer one (restart at
    // another location): the capture is now an old record.
    let captured = dir.join("captured.bin");
    let before = rogue(&tb, 4, &["sync", "--dial", &control_addr(&tb, 1), "--out", &captured.to_string_lossy()]);
    let old_version = version_in(&before, "m3");
    assert!(old_version > 0, "no m3 record in the capture: {before}");
    mesh.nodes[3].stop_with(Signal::Term).expect("stop m3");
    mesh.nodes[3].location = Some(HELSINKI);
    write_dynamic_config(&mesh.nodes[3], &joined).expect("config");
    mesh.nodes[3].start().unwrap_or_else(|e| panic!("restart m3: {e}\n{}", mesh.logs(20)));
    let moved =
        |i: usize| member(&members(&mesh.nodes[i]), "m3").is_some_and(|m| m["location"] == serde_json::json!(HELSINKI));
    let newer = time_until(Duration::from_secs(15), || (0..3).all(moved));
    assert!(newer.is_some(), "m3's new record did not spread\n{}", mesh.logs(20));
    let new_version = mesh.nodes[3].status().expect("m3 status")["members"]["local"]["version"].as_u64().unwrap_or(0);
    assert!(new_version > old_version, "m3 restarted with version {new_version} <= {old_version}");

    let (claim, rogue_ip, m1) =
        (host_in(&mesh.nodes[1], 20).to_string(), tb.node(4).ipv4().to_string(), control_addr(&tb, 1));
    let captured = captured.to_string_lossy();
    let attack = ["attack", "--dial", &m1, "--advertise", &rogue_ip, "--captured", &captured];
    let report = rogue(&tb, 4, &[&attack[..], &["--hijack", "m2", "--replay", "m3", "--claim-ip", &claim]].concat());
    assert_eq!(report["failed"], serde_json::json!([]), "some payloads were not published: {report}");
    assert!(report["syncs_served"].as_u64() >= Some(1), "m1 never synced with the rogue: {report}");
    let rogue_id = report["rogue"].as_str().expect("rogue peer id").to_owned();
    eprintln!("rogue: {report}");

    for (i, node) in mesh.nodes.iter().enumerate().take(4) {
        let views = members(node);
        let names: Vec<&str> = views.iter().filter_map(|m| m["name"].as_str()).collect();
        let logs = mesh.logs(20);
        assert_eq!(views.len(), 3, "{} holds {names:?}, want the 3 real members\n{logs}", node.name);
        assert!(
            views.iter().all(|m| m["peer_id"] != rogue_id.as_str() && m["state"] == "alive"),
            "{}: {views:?}",
            node.name
        );
        if i != 2 {
            let m2 = member(&views, "m2").expect("m2");
            assert_eq!(m2["endpoints"], m2_endpoints, "{}: m2's endpoints were hijacked\n{logs}", node.name);
        }
        if i != 3 {
            assert!(moved(i), "{}: m3 rolled back to its old record: {:?}", node.name, member(&views, "m3"));
        }
        let held = version_in(&rogue(&tb, 4, &["sync", "--dial", &control_addr(&tb, i)]), "m3");
        assert!(
            held >= new_version,
            "{} holds m3 at version {held}, older than {new_version} (replay accepted)",
            node.name
        );
        assert_eq!(closest(node, "ms2"), vec![genuine], "{}: closest.ms2 names a rogue instance", node.name);
        assert_eq!(closest(node, "evil"), Vec::<Ipv4Addr>::new(), "{}: the rogue's service is answered", node.name);
        let log = std::fs::read_to_string(&node.log).unwrap_or_default();
        for needle in [
            "not the cluster authority",
            "grant is for node",
            "signature does not verify",
            "instance record rejected",
            "suspicion rejected",
            "dropped gossip",
        ] {
            assert!(log.contains(needle), "{}'s log lacks a warning with {needle:?}\n{logs}", node.name);
        }
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
