//! Attacks by members: a `rogue member` joins with a real token (so the
//! authority grants it a subnet, name and key) and then misbehaves —
//! suspects everyone (F3), loops record versions (F7), advertises
//! unroutable addresses (F15), fills the table of sets waiting for their
//! node (known gap 3), claims another node's instance (known gap 4), or
//! tries to join with another member's tunnel key (F5) or name (F4).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use libp2p_identity::PeerId;
use netns_tests::dynamic::time_until;
use netns_tests::{ScratchDir, Site, Testbed};
use serde_json::Value;

use super::attack_kit::{
    announce, assert_real_alive, assert_running, closest, expect_closest, host_in, log_total, log_total_except, member, member_args,
    members, mesh_of, record_memory, refs, rogue, spawn_rogue, wait_listed,
};
use super::sampling::{assert_samples, Sampler};
use super::support::build;

/// F3, F6: a member that suspects everyone, again after every record it
/// sees, keeps no node out of the answers and kills nobody (a suspicion
/// counts only from a watcher, is rate-limited per suspector, and one
/// watcher's word neither kills nor, since 8973e80, makes a node unhealthy),
/// and it must not drive a refute storm: a target refutes what the others
/// accept, not every suspicion the rogue signs.
#[test]
fn a_member_suspecting_everyone_steers_nothing_and_kills_nobody() {
    let (muc, hel) = (Site::new("munich", 48.14, 11.58), Site::new("helsinki", 60.17, 24.94));
    let tb = build(
        Testbed::builder()
            .with_node_at("sa-auth", muc.clone())
            .with_node_at("sa-m1", muc.clone())
            .with_node_at("sa-v", muc.clone())
            .with_node_at("sa-far", hel)
            .with_node_at("sa-rogue", muc),
    );
    let dir = ScratchDir::new("atk-suspect").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 4);
    let running = [0, 1, 2, 3];
    let (near, far) = (host_in(&mesh.nodes[2], 10), host_in(&mesh.nodes[3], 10));
    announce(&mesh, 2, "ms2", 1, near);
    announce(&mesh, 3, "ms2", 2, far);
    expect_closest(&mesh, &[0, 1, 2], "ms2", near, Duration::from_secs(15));
    expect_closest(&mesh, &[3], "ms2", far, Duration::from_secs(15));
    let (suspected, died) = (
        log_total_except(&mesh, &running, "member suspected", "sa-rogue"),
        log_total_except(&mesh, &running, "declared dead", "sa-rogue"),
    );
    let refuted_before = log_total(&mesh, &running, "refuting with a newer record");
    let sampler = Sampler::start(&mesh, "ms2", &[(0, near), (1, near), (2, near), (3, far)]);
    let report = rogue(&tb, 4, &refs(&member_args(&mesh, &tb, "sa-rogue", "suspect-all", 20)));
    let samples = sampler.stop();
    eprintln!("attack=suspect-all report={report}");
    assert_eq!(report["joined"], true, "{report}");
    // At least one round a second (more when it sees refutations); a
    // suspicion it made before is the same bytes, which gossip drops.
    assert!(report["report"]["rounds"].as_u64().unwrap_or(0) >= 15, "the rogue gave up: {report}");
    // The rogue itself dies when it exits (without a leave): not counted.
    let suspected = log_total_except(&mesh, &running, "member suspected", "sa-rogue") - suspected;
    let died = log_total_except(&mesh, &running, "declared dead", "sa-rogue") - died;
    let refuted = log_total(&mesh, &running, "refuting with a newer record") - refuted_before;
    eprintln!("attack=suspect-all suspicions_accepted_log_lines={suspected} deaths={died} refutations={refuted}");
    assert_eq!(died, 0, "the rogue's suspicions killed a node\n{}", mesh.logs(30));
    // A suspicion that gets through lasts until the refutation arrives:
    // the sampler may see one, never a death.
    let names: Vec<&str> = running.iter().map(|i| mesh.nodes[*i].name.as_str()).collect();
    for s in samples.values() {
        assert!(
            s.unhealthy.keys().all(|k| k.ends_with("=suspect") || k.starts_with("sa-rogue=")),
            "a node was seen dead: {:?}",
            s.unhealthy
        );
    }
    assert_samples("suspect-all", &samples, 0.95, &names, &mesh.logs(20));
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
    // F6 from a member: a target refutes what the others believe (one
    // suspicion in a while, rate-limited per suspector), not every
    // suspicion the rogue signs; each refutation is a new record every
    // node applies and gossips.
    assert!(refuted <= suspected + 20, "{refuted} refutations for {suspected} accepted suspicions: the rogue drives a refute storm");
    record_memory(&mesh, "suspect-all", &running);
}

/// F7: a member re-signing its record 200 times a second: every member
/// accepts about one a second (burst 10), so no projection storm.
#[test]
fn a_member_looping_versions_is_rate_limited() {
    let tb = build(
        Testbed::builder()
            .with_node("vl-auth")
            .with_node("vl-m1")
            .with_node("vl-m2")
            .with_node("vl-rogue"),
    );
    let dir = ScratchDir::new("atk-versions").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let running = [0, 1, 2];
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    expect_closest(&mesh, &running, "ms2", genuine, Duration::from_secs(10));
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine), (2, genuine)]);
    let seconds = 15;
    let report = rogue(&tb, 3, &refs(&member_args(&mesh, &tb, "vl-rogue", "version-loop", seconds)));
    let samples = sampler.stop();
    eprintln!("attack=version-loop report={report}");
    let published = report["report"]["last_increment"].as_u64().unwrap_or(0);
    assert!(published >= 2000, "the rogue published only {published} versions: {report}");
    let polls = report["report"]["polls"].as_u64().unwrap_or(0);
    let held = report["report"]["distinct_held"].as_object().cloned().unwrap_or_default();
    assert!(
        held.len() >= 3,
        "the rogue read its record back from {} members: {report}",
        held.len()
    );
    assert!(polls >= 3 * seconds, "only {polls} read-backs: {report}");
    for (name, distinct) in &held {
        let distinct = distinct.as_u64().unwrap_or(u64::MAX);
        eprintln!("attack=version-loop node={name} versions_seen_accepted={distinct} polls={polls} published={published}");
        // Each member takes one record a second (after a burst of 10): the
        // record it holds changes at most that often, however fast the
        // rogue signs; polled every 250 ms an unlimited member would show
        // a new version at nearly every poll.
        assert!(
            distinct <= seconds + 10 && distinct * 2 < polls,
            "{name} took {distinct} new versions in {polls} read-backs over {seconds} s"
        );
    }
    assert_samples("version-loop", &samples, 0.95, &[], &mesh.logs(20));
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
    record_memory(&mesh, "version-loop", &running);
}

/// F15: a record advertising loopback, multicast and in-mesh addresses is
/// refused by gossip and as a sync `me`; members keep the member's last
/// good addresses and never dial or handshake the bad ones.
#[test]
fn a_member_advertising_unroutable_addresses_is_refused() {
    let tb = build(
        Testbed::builder()
            .with_node("be-auth")
            .with_node("be-m1")
            .with_node("be-m2")
            .with_node("be-rogue"),
    );
    let dir = ScratchDir::new("atk-endpoints").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let running = [0, 1, 2];
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine), (2, genuine)]);
    let report = rogue(&tb, 3, &refs(&member_args(&mesh, &tb, "be-rogue", "bad-endpoints", 8)));
    let samples = sampler.stop();
    eprintln!("attack=bad-endpoints report={report}");
    let answers = report["report"]["bad_sync_answers"].as_object().cloned().unwrap_or_default();
    assert!(
        !answers.is_empty() && answers.keys().all(|k| k == "NotMember"),
        "a sync presenting the bad record was answered: {report}"
    );
    let good = format!("{}:50103", tb.node(3).ipv4());
    let held = report["report"]["held_addresses"].as_object().cloned().unwrap_or_default();
    assert!(held.len() >= 3, "{report}");
    for (name, addresses) in &held {
        assert_eq!(
            addresses,
            &serde_json::json!([good, good]),
            "{name} holds the bad addresses: {report}"
        );
    }
    for i in running {
        let views = members(&mesh.nodes[i]);
        let endpoints = member(&views, "be-rogue").map(|m| m["endpoints"].clone());
        assert_eq!(
            endpoints,
            Some(serde_json::json!([good])),
            "{}'s view of the rogue",
            mesh.nodes[i].name
        );
        let log = std::fs::read_to_string(&mesh.nodes[i].log).unwrap_or_default();
        assert!(
            !log.contains("127.0.0.1:22") || log.contains("advertised address"),
            "{} used the bad address",
            mesh.nodes[i].name
        );
    }
    eprintln!(
        "attack=bad-endpoints rejections_logged={}",
        log_total(&mesh, &running, "advertised address")
    );
    assert_samples("bad-endpoints", &samples, 0.95, &["be-rogue"], &mesh.logs(20));
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
    record_memory(&mesh, "bad-endpoints", &running);
}

/// A member signs itself a delegation and "admits" ghost nodes under it
/// (grants it signed, records the ghosts signed), by gossip and in its
/// sync answers: no member believes a ghost, since a delegation counts only
/// when the pinned authority signed it; the mesh keeps answering.
#[test]
fn a_member_forging_a_delegation_admits_no_ghost() {
    let tb = build(
        Testbed::builder()
            .with_node("fd-auth")
            .with_node("fd-m1")
            .with_node("fd-m2")
            .with_node("fd-rogue"),
    );
    let dir = ScratchDir::new("atk-delegation").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let running = [0, 1, 2];
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine), (2, genuine)]);
    let report = rogue(&tb, 3, &refs(&member_args(&mesh, &tb, "fd-rogue", "forge-delegation", 8)));
    let samples = sampler.stop();
    eprintln!("attack=forge-delegation report={report}");
    assert!(report["report"]["rounds"].as_u64().unwrap_or(0) >= 5, "the rogue gave up: {report}");
    assert!(report["report"]["published"]["ok"].as_u64().unwrap_or(0) > 0, "no ghost record went out: {report}");
    for i in running {
        let views = members(&mesh.nodes[i]);
        for ghost in 0..4 {
            assert!(member(&views, &format!("ghost-{ghost}")).is_none(), "{} believes ghost-{ghost}", mesh.nodes[i].name);
        }
        assert!(member(&views, "fd-rogue").is_some(), "{} dropped the rogue's own (real) membership", mesh.nodes[i].name);
    }
    assert_samples("forge-delegation", &samples, 0.95, &["fd-rogue"], &mesh.logs(20));
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
    record_memory(&mesh, "forge-delegation", &running);
}

/// Known gap 3: instance sets from 2000 signers nobody knows are held in a
/// small bounded table, briefly; memory stays flat, none is answered, and
/// a real node joining right after is served at once.
#[test]
fn instance_sets_of_unknown_signers_fill_nothing() {
    let tb = build(
        Testbed::builder()
            .with_node("pf-auth")
            .with_node("pf-m1")
            .with_node("pf-m2")
            .with_node("pf-rogue")
            .with_node("pf-late"),
    );
    let dir = ScratchDir::new("atk-pending").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    expect_closest(&mesh, &[0, 1, 2], "ms2", genuine, Duration::from_secs(10));
    let before: BTreeMap<String, u64> = [0, 1, 2]
        .iter()
        .map(|i| (mesh.nodes[*i].name.clone(), mesh.nodes[*i].vmhwm_kb().unwrap_or(0)))
        .collect();
    let sampler = Sampler::start(&mesh, "ms2", &[(0, genuine), (1, genuine), (2, genuine)]);
    let report = rogue(&tb, 3, &refs(&member_args(&mesh, &tb, "pf-rogue", "pending-fill", 6)));
    eprintln!("attack=pending-fill report={report}");
    assert!(report["report"]["published"]["ok"].as_u64().unwrap_or(0) >= 1900, "{report}");
    mesh.nodes[4].start().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    let late = host_in(&mesh.nodes[4], 10);
    announce(&mesh, 4, "late", 1, late);
    let served = time_until(Duration::from_secs(10), || {
        [0, 1, 2, 4].iter().all(|i| closest(&mesh.nodes[*i], "late") == vec![late])
    });
    eprintln!(
        "attack=pending-fill late_instance_served_after_ms={:?}",
        served.map(|d| d.as_millis())
    );
    assert!(
        served.is_some(),
        "a real node's instance was not served after the fill\n{}",
        mesh.logs(20)
    );
    let samples = sampler.stop();
    for i in [0, 1, 2, 4] {
        assert!(
            closest(&mesh.nodes[i], "fill").is_empty(),
            "{} answers an unknown signer's instance",
            mesh.nodes[i].name
        );
    }
    let running = [0, 1, 2, 4];
    mesh.wait_converged(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    assert_samples("pending-fill", &samples, 0.95, &["pf-rogue"], &mesh.logs(20));
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
    let peaks = record_memory(&mesh, "pending-fill", &running);
    for (name, hwm) in &before {
        let grew = peaks[name].saturating_sub(*hwm);
        eprintln!("attack=pending-fill node={name} vmhwm_growth_kb={grew}");
        assert!(grew < 10 * 1024, "{name}'s peak RSS grew by {grew} kB");
    }
}

/// Known gap 4: a member announcing an instance key another node serves:
/// every node serves the lower peer id's and lists the conflict.
#[test]
fn a_conflicting_instance_resolves_the_same_way_everywhere() {
    let tb = build(
        Testbed::builder()
            .with_node("co-auth")
            .with_node("co-m1")
            .with_node("co-m2")
            .with_node("co-rogue"),
    );
    let dir = ScratchDir::new("atk-conflict").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 3);
    let running = [0, 1, 2];
    let genuine = host_in(&mesh.nodes[2], 10);
    announce(&mesh, 2, "ms2", 1, genuine);
    expect_closest(&mesh, &running, "ms2", genuine, Duration::from_secs(10));
    let mut args = member_args(&mesh, &tb, "co-rogue", "conflict", 15);
    args.extend(["--service", "ms2", "--number", "1"].map(String::from));
    let claim = spawn_rogue(&tb, 3, &refs(&args));
    wait_listed(&mesh, &running, "co-rogue");
    let ids: BTreeMap<String, PeerId> = member(&members(&mesh.nodes[0]), "co-rogue")
        .into_iter()
        .chain(member(&members(&mesh.nodes[0]), "co-m2"))
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_owned(),
                PeerId::from_str(m["peer_id"].as_str().unwrap_or("")).expect("peer id"),
            )
        })
        .collect();
    let (winner, loser) = if ids["co-m2"] < ids["co-rogue"] {
        ("co-m2", "co-rogue")
    } else {
        ("co-rogue", "co-m2")
    };
    let conflicts_everywhere = time_until(Duration::from_secs(10), || {
        running.iter().all(|i| {
            let status = mesh.nodes[*i].status().unwrap_or(Value::Null);
            status["members"]["conflicts"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["nodes"] == serde_json::json!([winner, loser])))
        })
    });
    assert!(
        conflicts_everywhere.is_some(),
        "not every node lists the conflict with {winner} first\n{}",
        mesh.nodes[0]
            .status()
            .map(|s| s["members"]["conflicts"].to_string())
            .unwrap_or_default()
    );
    let answers: Vec<Vec<Ipv4Addr>> = running.iter().map(|i| closest(&mesh.nodes[*i], "ms2")).collect();
    eprintln!("attack=conflict winner={winner} answers={answers:?}");
    assert!(
        answers.iter().all(|a| a.len() == 1 && *a == answers[0]),
        "nodes disagree: {answers:?}"
    );
    let served_by: Vec<String> = running
        .iter()
        .map(|i| {
            mesh.nodes[*i]
                .status()
                .ok()
                .and_then(|s| s["members"]["closest"].as_array().and_then(|c| c.first().cloned()))
                .map(|c| c["node"].as_str().unwrap_or("").to_owned())
                .unwrap_or_default()
        })
        .collect();
    assert!(
        served_by.iter().all(|n| n == winner),
        "closest is served by {served_by:?}, want {winner} (the lower peer id) everywhere"
    );
    if winner == "co-m2" {
        assert_eq!(answers[0], vec![genuine]);
    }
    let report = claim.wait();
    eprintln!("attack=conflict report={report}");
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
    record_memory(&mesh, "conflict", &running);
}

/// F5, F4: joining with another member's tunnel key or name is refused by
/// the authority (`KeyTaken`, `NameTaken`), and the member keeps both.
#[test]
fn joining_with_a_members_key_or_name_is_refused() {
    let tb = build(Testbed::builder().with_node("kt-auth").with_node("kt-m1").with_node("kt-rogue"));
    let dir = ScratchDir::new("atk-taken").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 2);
    let running = [0, 1];
    let key = mesh.nodes[1].status().expect("status")["public_key"]
        .as_str()
        .expect("public_key")
        .to_owned();
    let mut with_key = member_args(&mesh, &tb, "kt-clone", "quiet", 2);
    with_key.extend(["--wg-key".to_owned(), key]);
    let report = rogue(&tb, 2, &refs(&with_key));
    eprintln!("attack=key-taken report={report}");
    assert_eq!(report["joined"], false, "{report}");
    assert_eq!(report["refusal"], "KeyTaken", "{report}");
    let report = rogue(&tb, 2, &refs(&member_args(&mesh, &tb, "kt-m1", "quiet", 2)));
    eprintln!("attack=name-taken report={report}");
    assert_eq!(report["joined"], false, "{report}");
    assert!(report["refusal"].as_str().is_some_and(|r| r.starts_with("NameTaken")), "{report}");
    let views = members(&mesh.nodes[0]);
    assert_eq!(views.len(), 1, "the authority lists {views:?}");
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
    // The same rogue with its own name and key is admitted: the refusals
    // were about the key and the name, nothing else.
    let report = rogue(&tb, 2, &refs(&member_args(&mesh, &tb, "kt-own", "quiet", 2)));
    assert_eq!(report["joined"], true, "{report}");
    record_memory(&mesh, "key-name-taken", &running);
}
