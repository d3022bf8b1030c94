//! What members do on purpose, through real daemons and the CLI: leave
//! (SIGTERM: a signed goodbye, `left` everywhere at once), be removed by
//! the authority (`netmanager members remove`: gone everywhere, its
//! records refused from then on), and join with tokens made on the
//! authority (`netmanager token create/list/revoke`: counted, revocable;
//! F10).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netns_tests::dynamic::{time_until, write_dynamic_config, write_private};
use netns_tests::grove::netmanager;
use netns_tests::{cmd, ScratchDir, Signal, Testbed};
use serde_json::Value;

use super::attack_kit::{
    announce, assert_real_alive, assert_running, closest, expect_closest, host_in, log_total, member, members, mesh_of, record_memory,
    wait_listed,
};
use super::support::build;

/// A member stopped with SIGTERM says goodbye: every other node shows it
/// `left` at once, and never `suspect` or `dead`.
#[test]
fn a_member_that_leaves_is_left_everywhere_at_once_and_never_suspected() {
    let tb = build(
        Testbed::builder()
            .with_node("lv-auth")
            .with_node("lv-m1")
            .with_node("lv-m2")
            .with_node("lv-m3"),
    );
    let dir = ScratchDir::new("atk-leave").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 4);
    let observers = [0usize, 1, 3];
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let watchers: Vec<_> = observers
        .iter()
        .map(|i| {
            let (sock, stop) = (mesh.nodes[*i].control_socket.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen: Vec<(Duration, String)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let out = netmanager(&["status", "--json", "--socket", &sock.to_string_lossy()]);
                    let doc: Value = out.ok().and_then(|o| serde_json::from_slice(&o.stdout).ok()).unwrap_or(Value::Null);
                    let state = doc["members"]["members"].as_array().and_then(|ms| {
                        ms.iter()
                            .find(|m| m["name"] == "lv-m2")
                            .map(|m| m["state"].as_str().unwrap_or("?").to_owned())
                    });
                    let state = state.unwrap_or_else(|| "absent".into());
                    if seen.last().is_none_or(|(_, s)| *s != state) {
                        seen.push((started.elapsed(), state));
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let sent = started.elapsed();
    mesh.nodes[2].stop_with(Signal::Term).expect("SIGTERM lv-m2");
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for (i, watcher) in observers.iter().zip(watchers) {
        let seen = watcher.join().expect("watcher");
        let name = &mesh.nodes[*i].name;
        eprintln!("attack=leave node={name} states={seen:?}");
        let left = seen.iter().find(|(_, s)| s == "left").map(|(at, _)| at.saturating_sub(sent));
        let left = left.unwrap_or_else(|| panic!("{name} never showed lv-m2 as left: {seen:?}\n{}", mesh.logs(20)));
        eprintln!("attack=leave node={name} left_after_ms={}", left.as_millis());
        assert!(left < Duration::from_secs(1), "{name} showed lv-m2 left after {left:?}");
        assert!(
            seen.iter().all(|(_, s)| s == "alive" || s == "left"),
            "{name} saw lv-m2 as {seen:?}"
        );
    }
    let running = [0, 1, 3];
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
}

/// A member removed on the authority (`netmanager members remove`) drops
/// out of every member's view at once, and its records are refused from
/// then on, also after it restarts with its kept grant.
#[test]
fn a_removed_member_disappears_everywhere_and_stays_out() {
    let tb = build(
        Testbed::builder()
            .with_node("rv-auth")
            .with_node("rv-m1")
            .with_node("rv-m2")
            .with_node("rv-m3"),
    );
    let dir = ScratchDir::new("atk-revoke").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 4);
    let genuine = host_in(&mesh.nodes[3], 10);
    announce(&mesh, 3, "ms2", 1, genuine);
    expect_closest(&mesh, &[0, 1, 2], "ms2", genuine, Duration::from_secs(10));
    let others = [0usize, 1, 2];
    let sock = mesh.nodes[0].control_socket.to_string_lossy().into_owned();
    let asked = Instant::now();
    let out = netmanager(&["members", "remove", "--socket", &sock, "rv-m3"]).unwrap_or_else(|e| panic!("members remove: {e}"));
    eprintln!("attack=revoke cli={:?}", cmd::stdout_text(&out).trim());
    let gone = time_until(Duration::from_secs(5), || {
        others.iter().all(|i| member(&members(&mesh.nodes[*i]), "rv-m3").is_none())
    });
    let gone = gone.unwrap_or_else(|| panic!("rv-m3 is still listed\n{}", mesh.logs(20)));
    eprintln!(
        "attack=revoke removed_everywhere_after_ms={}",
        (asked.elapsed().min(gone + Duration::from_millis(50))).as_millis()
    );
    assert!(gone < Duration::from_secs(2), "removal took {gone:?}");
    let dns_gone = time_until(Duration::from_secs(3), || {
        others.iter().all(|i| closest(&mesh.nodes[*i], "ms2").is_empty())
    });
    assert!(dns_gone.is_some(), "the removed member's instance is still answered");
    // It still runs and republishes; then it restarts with its kept grant.
    std::thread::sleep(Duration::from_secs(4));
    mesh.nodes[3].stop_with(Signal::Term).expect("stop rv-m3");
    let _ = mesh.nodes[3].start();
    std::thread::sleep(Duration::from_secs(5));
    for i in others {
        assert!(
            member(&members(&mesh.nodes[i]), "rv-m3").is_none(),
            "{} took the removed member back\n{}",
            mesh.nodes[i].name,
            mesh.logs(20)
        );
        assert!(
            closest(&mesh.nodes[i], "ms2").is_empty(),
            "{} answers the removed member's instance",
            mesh.nodes[i].name
        );
    }
    let refused = log_total(&mesh, &others, "revoked");
    eprintln!("attack=revoke refusals_logged={refused}");
    assert_running(&mut mesh, &others);
    assert_real_alive(&mesh, &others);
    record_memory(&mesh, "revoke", &others);
}

/// The token's id from `netmanager token create`'s stderr ("token <id> made").
fn token_id(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .skip_while(|w| *w != "token")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// F10: tokens made through the CLI: a one-use token admits one node and
/// refuses the next; a revoked token refuses; `token list` says so.
#[test]
fn tokens_made_on_the_authority_are_counted_and_revocable() {
    let tb = build(
        Testbed::builder()
            .with_node("tk-auth")
            .with_node("tk-a")
            .with_node("tk-b")
            .with_node("tk-c"),
    );
    let dir = ScratchDir::new("atk-tokens").expect("scratch");
    let mut mesh = mesh_of(&tb, &dir, 1);
    let sock = mesh.nodes[0].control_socket.to_string_lossy().into_owned();
    let create = |extra: &[&str]| {
        let mut args = vec!["token", "create", "--socket", sock.as_str(), "--ttl", "1h"];
        args.extend_from_slice(extra);
        let out = netmanager(&args).unwrap_or_else(|e| panic!("token create: {e}"));
        (
            cmd::stdout_text(&out).trim().to_owned(),
            token_id(&String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (once, once_id) = create(&["--uses", "1", "--note", "one use"]);
    let (revoked, revoked_id) = create(&["--note", "to revoke"]);
    assert!(
        once.len() >= 16 && revoked.len() >= 16 && once_id.len() == 8 && revoked_id.len() == 8,
        "{once:?} {once_id:?} {revoked:?} {revoked_id:?}"
    );
    let file = |name: &str, token: &str| {
        let path = dir.join(name);
        write_private(&path, &format!("{token}\n")).expect("token file");
        path
    };
    let (once_file, revoked_file) = (file("once-token", &once), file("revoked-token", &revoked));
    for (i, f) in [(1, &once_file), (2, &once_file), (3, &revoked_file)] {
        write_dynamic_config(&mesh.nodes[i], &mesh.joining(&tb, Some(f))).expect("config");
    }
    mesh.nodes[1]
        .start()
        .unwrap_or_else(|e| panic!("the one-use token did not admit tk-a: {e}\n{}", mesh.logs(20)));
    let second = mesh.nodes[2].start();
    let err = second.expect_err("a one-use token admitted a second node").to_string();
    assert!(err.contains("join token not accepted"), "tk-b: {err}");
    let out = netmanager(&["token", "revoke", "--socket", &sock, &revoked_id]).unwrap_or_else(|e| panic!("token revoke: {e}"));
    assert!(cmd::stdout_text(&out).contains(&revoked_id));
    let err = mesh.nodes[3].start().expect_err("a revoked token admitted tk-c").to_string();
    assert!(err.contains("join token not accepted"), "tk-c: {err}");
    let out = netmanager(&["token", "list", "--socket", &sock, "--json"]).unwrap_or_else(|e| panic!("token list: {e}"));
    let list: Value = serde_json::from_slice(&out.stdout).expect("token list --json");
    let entry = |id: &str| {
        list.as_array()
            .and_then(|l| l.iter().find(|t| t["id"] == id).cloned())
            .unwrap_or(Value::Null)
    };
    eprintln!("attack=tokens once={} revoked={}", entry(&once_id), entry(&revoked_id));
    assert_eq!(entry(&once_id)["uses_left"], 0, "{list}");
    assert_eq!(entry(&once_id)["used"], 1, "{list}");
    assert_eq!(entry(&revoked_id)["revoked"], true, "{list}");
    let text = netmanager(&["token", "list", "--socket", &sock])
        .map(|o| cmd::stdout_text(&o))
        .unwrap_or_default();
    assert!(text.contains("used up") && text.contains("revoked"), "{text}");
    wait_listed(&mesh, &[0], "tk-a");
    std::thread::sleep(Duration::from_secs(1));
    let names: Vec<String> = members(&mesh.nodes[0])
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        vec!["tk-a".to_owned()],
        "the authority admitted {names:?}\n{}",
        mesh.logs(40)
    );
    let running = [0, 1];
    assert_running(&mut mesh, &running);
    assert_real_alive(&mesh, &running);
}
