//! Everything a testbed creates is gone after it drops — also when the test
//! body panics.

use std::panic::{catch_unwind, AssertUnwindSafe};

use netns_tests::netns::list;
use netns_tests::{Netns, VethLink};

use super::support::testbed;

fn leftovers(names: &[String]) -> Vec<String> {
    let present = list().expect("ip netns list");
    names.iter().filter(|n| present.contains(n)).cloned().collect()
}

fn root_links() -> String {
    let out = std::process::Command::new("ip").args(["-o", "link"]).output().expect("ip link");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn testbed_removes_namespaces_after_drop() {
    let tb = testbed(3);
    let names = tb.netns_names();
    assert_eq!(names.len(), 4);
    assert_eq!(leftovers(&names), names, "all namespaces exist while the testbed lives");
    let scratch = tb.scratch_dir().to_path_buf();
    drop(tb);
    assert!(leftovers(&names).is_empty(), "left behind: {:?}", leftovers(&names));
    assert!(!scratch.exists(), "scratch dir {} left behind", scratch.display());
    let links = root_links();
    for name in &names {
        assert!(!links.contains(name.as_str()), "link named after {name} in the root namespace");
    }
}

#[test]
fn testbed_removes_namespaces_when_test_panics() {
    let mut names = Vec::new();
    let mut scratch = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let tb = testbed(2);
        names = tb.netns_names();
        scratch = Some(tb.scratch_dir().to_path_buf());
        panic!("deliberate panic with a live testbed");
    }));
    assert!(result.is_err(), "the body panicked");
    assert_eq!(names.len(), 3);
    assert!(leftovers(&names).is_empty(), "left behind: {:?}", leftovers(&names));
    // A panicking test keeps its scratch dir for post-mortems; this one
    // panicked on purpose, so tidy up.
    let scratch = scratch.expect("scratch dir recorded");
    assert!(scratch.exists(), "logs are kept after a panic");
    std::fs::remove_dir_all(&scratch).expect("remove kept scratch dir");
}

#[test]
fn veth_link_and_netns_clean_up() {
    super::support::need_root();
    let link = VethLink::new().expect("veth link");
    let names = vec![link.a().name().to_string(), link.b().name().to_string()];
    let stats = netns_tests::ping(link.a(), link.b_ip().into(), 1).expect("ping");
    assert_eq!(stats.received, 1);
    drop(link);
    assert!(leftovers(&names).is_empty());

    let ns = Netns::new("solo").expect("netns");
    let name = ns.name().to_string();
    let mut child = ns.spawn("sleep", &["30"]).expect("spawn sleep");
    assert!(child.is_running());
    child.signal(netns_tests::Signal::Term).expect("SIGTERM");
    assert!(child.wait_for_exit(std::time::Duration::from_secs(5)).expect("wait").is_some());
    drop(child);
    drop(ns);
    assert!(!Netns::exists(&name));
}

#[test]
fn stale_namespaces_of_dead_processes_are_swept() {
    super::support::need_root();
    // 36^5 - 1 is above any pid_max, so this "owner" is certainly dead. A
    // tag of its own keeps the testbeds' automatic "tb" sweeps out of it.
    let name = "sweeptest-zzzzz-0-x";
    let leaked = Netns::with_name(name).expect("netns");
    std::mem::forget(leaked);
    assert!(Netns::exists(name));
    netns_tests::netns::sweep_stale("sweeptest").expect("sweep");
    assert!(!Netns::exists(name), "a namespace of a dead test process survived the sweep");
}
