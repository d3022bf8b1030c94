//! Real processes, real cgroups (skipped where the host has none).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(what: &str) -> String {
    format!("t{}-{}-{what}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn supervisor(policy: RestartPolicy) -> (Supervisor, mpsc::UnboundedReceiver<RuntimeEvent>, PathBuf) {
    let dir = std::env::temp_dir().join(unique("rt"));
    let (s, rx) = Supervisor::with_log_cap(dir.clone(), &unique("grove-test"), policy, 64 * 1024).expect("supervisor");
    (s, rx, dir)
}

fn sh(id: &str, script: &str, one_shot: bool) -> LaunchSpec {
    LaunchSpec {
        id: id.into(),
        netns: None,
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("GREETING".into(), "hello".into())],
        memory_mib: 0,
        vcpus: 0,
        one_shot,
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<RuntimeEvent>) -> RuntimeEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event in time").expect("open")
}

#[tokio::test]
async fn one_shot_completes_with_both_streams_logged() {
    let (s, mut rx, _) = supervisor(RestartPolicy::default());
    s.start(sh("a", "echo $GREETING; echo err >&2", true)).await.expect("start");
    assert!(matches!(next(&mut rx).await, RuntimeEvent::Started { .. }));
    assert_eq!(next(&mut rx).await, RuntimeEvent::Completed { id: "a".into() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (text, total) = s.logs("a", 1000).expect("logs");
    assert!(text.contains("hello") && text.contains("err"), "{text:?}");
    assert_eq!(total, text.len() as u64);
}

#[tokio::test]
async fn crashes_restart_then_give_up() {
    let policy = RestartPolicy { max_restarts: 2, window: Duration::from_secs(60), backoff_initial: Duration::from_millis(10), backoff_max: Duration::from_millis(20) };
    let (s, mut rx, _) = supervisor(policy);
    s.start(sh("b", "echo run; exit 3", false)).await.expect("start");
    let mut starts = 0;
    loop {
        match next(&mut rx).await {
            RuntimeEvent::Started { .. } => starts += 1,
            RuntimeEvent::Exited { exit, restarting_in, reason, .. } => {
                assert_eq!(exit, ExitKind::Code(3));
                assert!(reason.contains("code 3"), "{reason}");
                let _ = restarting_in;
            }
            RuntimeEvent::GaveUp { reason, .. } => {
                assert!(reason.starts_with("crashed 3 times"), "{reason}");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(starts, 3);
    let (text, _) = s.logs("b", 10_000).expect("logs");
    assert!(text.contains("--- grove: restart 2 after exited with code 3 ---"), "{text}");
}

#[tokio::test]
async fn stop_kills_the_process_and_its_children() {
    let (s, mut rx, _) = supervisor(RestartPolicy::default());
    let pid = s.start(sh("c", "sleep 1000 & sleep 1000", false)).await.expect("start");
    next(&mut rx).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop("c").await.expect("stop");
    assert_eq!(next(&mut rx).await, RuntimeEvent::Stopped { id: "c".into() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Nobody is left running in the process group (zombies may wait for a
    // reaper that this container's init is not).
    assert!(group_members(pid).is_empty(), "process group {pid} still has {:?}", group_members(pid));
    assert!(matches!(s.stop("c").await, Err(RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn memory_and_cpu_limits_hold() {
    let (s, mut rx, _) = supervisor(RestartPolicy { max_restarts: 0, ..RestartPolicy::default() });
    if matches!(s.cgroups(), Cgroups::None(_)) {
        eprintln!("skipped: {}", s.cgroups().describe());
        return;
    }
    let group = s.cgroups().create("probe", 32, 1).expect("group");
    let files: Vec<String> = group.dirs().iter().flat_map(|d| ["memory.limit_in_bytes", "memory.max", "cpu.cfs_quota_us", "cpu.max"].map(|f| d.join(f))).filter_map(|p| std::fs::read_to_string(p).ok()).collect();
    assert!(files.iter().any(|v| v.trim() == (32u64 << 20).to_string()), "{files:?}");
    assert!(files.iter().any(|v| v.trim() == "100000" || v.trim() == "100000 100000"), "{files:?}");
    group.remove();
    let mut hog = sh("d", "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}", false);
    hog.memory_mib = 32;
    s.start(hog).await.expect("start");
    next(&mut rx).await;
    match next(&mut rx).await {
        RuntimeEvent::Exited { oom_killed, reason, .. } => assert!(oom_killed && reason.contains("out of memory"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refuses_what_cannot_run() {
    let (s, _rx, _) = supervisor(RestartPolicy::default());
    let mut missing = sh("e", "", false);
    missing.program = "/no/such/program".into();
    let e = s.start(missing).await.expect_err("missing");
    assert!(e.to_string().contains("/no/such/program: not found"), "{e}");
    let mut not_exec = sh("f", "", false);
    not_exec.program = "/etc/passwd".into();
    assert!(matches!(s.start(not_exec).await, Err(RuntimeError::NotExecutable { why: "not executable", .. })));
    assert!(matches!(s.start(sh("../x", "", false)).await, Err(RuntimeError::BadId(_))));
    assert!(s.running().is_empty());
}

#[tokio::test]
async fn runs_in_the_namespace_with_its_resolv_conf() {
    let netns = unique("grove-rt");
    if std::process::Command::new("ip").args(["netns", "add", &netns]).status().map(|s| !s.success()).unwrap_or(true) {
        eprintln!("skipped: cannot create a network namespace");
        return;
    }
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.0));
        }
    }
    let _cleanup = Cleanup(netns.clone());
    std::fs::create_dir_all(format!("/etc/netns/{netns}")).expect("dir");
    std::fs::write(format!("/etc/netns/{netns}/resolv.conf"), "nameserver 10.9.9.9\n").expect("resolv.conf");
    let (s, mut rx, _) = supervisor(RestartPolicy::default());
    let mut spec = sh("g", "readlink /proc/self/ns/net; cat /etc/resolv.conf", true);
    spec.netns = Some(netns);
    s.start(spec).await.expect("start");
    next(&mut rx).await;
    assert_eq!(next(&mut rx).await, RuntimeEvent::Completed { id: "g".into() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (text, _) = s.logs("g", 1000).expect("logs");
    let ours = std::fs::read_link("/proc/self/ns/net").expect("netns").display().to_string();
    assert!(!text.contains(&ours), "{text}");
    assert!(text.contains("nameserver 10.9.9.9"), "{text}");
}

#[tokio::test]
async fn logs_rotate_at_the_cap() {
    let (s, mut rx, dir) = supervisor(RestartPolicy::default());
    s.start(sh("h", "i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789012345678901234567890123456789; i=$((i+1)); done", true)).await.expect("start");
    next(&mut rx).await;
    next(&mut rx).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let size = std::fs::metadata(dir.join("logs/h.log")).expect("log").len();
    assert!(size <= 64 * 1024, "{size}");
    assert!(dir.join("logs/h.log.1").exists());
    let (_, total) = s.logs("h", 10).expect("logs");
    assert!(total > 200_000, "{total}");
}

/// Live (not zombie) processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp ...
        let Some(after) = stat.rsplit_once(") ").map(|(_, rest)| rest) else { continue };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            live.extend(entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()));
        }
    }
    live
}
